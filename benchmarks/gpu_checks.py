r"""GPU figures of CryoLithe, the hash grid and ICE-TIDE (issues 19 and 20), on one CUDA device.

Prints the figures as they come and writes them to ``$OUT/gpu.json`` (or ``./gpu.json``):

- CryoLithe, both shipped heads: CUDA against CPU on a small tomogram (largest difference
  over the CPU tomogram's std), CUDA run twice (deterministic?), then 128^3 and 256^3 from
  41 tilts with chunks of 2,048 and 65,536 points and the default: seconds, points/s,
  peak device MiB.
- The core.fields hash grid (ICE-TIDE's settings) against a dense ``grid_sample`` grid of as
  many parameters: forward + backward points/s on 2^16 and 2^20 points.
- ICE-TIDE at the issue's size (128 x 128 x 64, 41 tilts): ``bench.icetide._timing`` with
  ``ICE_STEPS`` (default 150) of the default 1,500 steps on CUDA, scaled, plus the polish.

    python benchmarks/gpu_checks.py [cryolithe] [hashgrid] [icetide]
"""

import json
import os
import sys
import time

import torch
import torch.nn.functional as F


def _sync() -> None:
    torch.cuda.synchronize()


def cryolithe(out: dict) -> None:
    """Both shipped heads on CUDA: agreement with the CPU, determinism, speed, memory."""
    from inversa.cryolithe import default_model_path, load_model, reconstruct, tilt_angles
    from inversa.tomography import TiltGeometry

    geo = TiltGeometry(angles=torch.tensor(tilt_angles(60.0, 3.0), dtype=torch.float64))
    for head in ("wavelet", "pixel"):
        model = load_model(default_model_path(head))[0]
        small = torch.randn(41, 40, 44, generator=torch.Generator().manual_seed(1))
        kw = {"model": model, "shape": (12, 40, 44)}
        cpu = reconstruct(small, geo, device="cpu", **kw)
        gpu = reconstruct(small, geo, device="cuda", **kw)
        again = reconstruct(small, geo, device="cuda", **kw)
        out[f"cryolithe_{head}_cuda_vs_cpu_max_rel"] = float((gpu - cpu).abs().max() / cpu.std())
        out[f"cryolithe_{head}_cuda_deterministic"] = bool(torch.equal(gpu, again))
        for n in (128, 256):
            data = torch.randn(41, n, n, generator=torch.Generator().manual_seed(n))
            vol = torch.empty((n, n, n), dtype=torch.float32)
            for chunk in (2048, 65536, None):  # None: reconstruct's default on a GPU
                torch.cuda.reset_peak_memory_stats()
                _sync()
                t0 = time.perf_counter()
                reconstruct(
                    data, geo, model=model, shape=(n, n, n), device="cuda", out=vol, chunk=chunk
                )
                _sync()
                sec = time.perf_counter() - t0
                key = f"cryolithe_{head}_{n}_chunk{chunk or 'default'}"
                out[key + "_seconds"] = sec
                out[key + "_points_per_s"] = n**3 / (8 if head == "wavelet" else 1) / sec
                out[key + "_cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20


def hashgrid(out: dict) -> None:
    """Forward + backward points/s of the hash grid and a dense grid of as many parameters."""
    from inversa.core.fields import HashGridConfig, HashGridEncoding

    g = torch.Generator().manual_seed(0)
    config = HashGridConfig(dim=3, n_levels=8, n_features=2, log2_table_size=16, max_resolution=128)
    enc = HashGridEncoding(config, generator=g).cuda()
    side = round((enc.table.numel() / 16) ** (1 / 3))
    dense = torch.nn.Parameter(1e-4 * torch.randn(1, 16, side, side, side, device="cuda"))
    proj = torch.randn(16, device="cuda")

    def hash_step(pts: torch.Tensor) -> None:
        enc.zero_grad()
        (enc(pts) @ proj).sum().backward()

    def dense_step(pts: torch.Tensor) -> None:
        dense.grad = None
        grid = (2 * pts - 1).view(1, 1, 1, -1, 3)
        feats = F.grid_sample(dense, grid, align_corners=True)[0, :, 0, 0].T
        (feats @ proj).sum().backward()

    for n_points in (2**16, 2**20):
        pts = torch.rand(n_points, 3, device="cuda")
        for name, step in (("hashgrid", hash_step), ("densegrid", dense_step)):
            for _ in range(3):  # warm-up
                step(pts)
            _sync()
            t0 = time.perf_counter()
            for _ in range(10):
                step(pts)
            _sync()
            rate = 10 * n_points / (time.perf_counter() - t0)
            out[f"cuda_{name}_{n_points}_points_per_s"] = rate


def icetide(out: dict) -> None:
    """ICE-TIDE's default run at 128 x 128 x 64 from 41 tilts, timed on CUDA."""
    from inversa.bench.icetide import _timing

    timing = _timing(int(os.environ.get("ICE_STEPS", "150")), "cuda")
    out.update({f"icetide_cuda_{k}": v for k, v in timing.items()})


def main() -> None:
    """Run the checks named on the command line (all by default)."""
    out = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}
    path = os.path.join(os.environ.get("OUT", "."), "gpu.json")
    checks = {"cryolithe": cryolithe, "hashgrid": hashgrid, "icetide": icetide}
    for name in sys.argv[1:] or list(checks):
        checks[name](out)
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

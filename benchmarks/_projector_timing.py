"""Time the Joseph projectors (2-D Radon, 3-D tilt series) and ASTRA's CPU 'linear' projector.

Run: ``.venv/bin/python benchmarks/_projector_timing.py``. Numba compilation is excluded
(one warm-up call each); every timing is the best of ``REPEATS`` runs, in seconds.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

import numpy as np
import torch

from inversa.tomography._radon import Radon2D
from inversa.tomography._tiltseries import TiltSeriesProjector

REPEATS = 5


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def astra_times(image: np.ndarray, angles_deg: np.ndarray, n_det: int) -> tuple[float, float]:
    import astra

    vol_geom = astra.create_vol_geom(*image.shape)
    proj_geom = astra.create_proj_geom("parallel", 1.0, n_det, np.deg2rad(angles_deg))
    proj = astra.create_projector("linear", proj_geom, vol_geom)
    sino = np.zeros((len(angles_deg), n_det), dtype=np.float32)
    vol_id = astra.data2d.create("-vol", vol_geom, image)
    sino_id = astra.data2d.create("-sino", proj_geom, sino)

    def run(kind: str) -> None:
        cfg = astra.astra_dict(kind)
        cfg["ProjectorId"] = proj
        cfg["ProjectionDataId"] = sino_id
        cfg["VolumeDataId" if kind == "FP" else "ReconstructionDataId"] = vol_id
        alg = astra.algorithm.create(cfg)
        astra.algorithm.run(alg)
        astra.algorithm.delete(alg)

    try:
        fwd = best_of(lambda: run("FP"))
        back = best_of(lambda: run("BP"))
    finally:
        astra.data2d.delete([vol_id, sino_id])
        astra.projector.delete(proj)
    return fwd, back


def main() -> None:
    print(f"torch threads {torch.get_num_threads()}")
    image = torch.rand(512, 512, generator=torch.Generator().manual_seed(0))
    angles = torch.arange(360) * 0.5
    for n_det in (512, 725):
        op = Radon2D(image_shape=(512, 512), angles=angles, n_detector=n_det)
        sino = op.forward(image)
        fwd = best_of(lambda op=op: op.forward(image))
        back = best_of(lambda op=op, sino=sino: op.adjoint(sino))
        try:
            a_fwd, a_back = astra_times(image.numpy(), angles.numpy(), n_det)
            ratio = (
                f"astra fwd {a_fwd:.3f} adj {a_back:.3f} "
                f"(ours faster x{a_fwd / fwd:.1f} / x{a_back / back:.1f})"
            )
        except ImportError:
            ratio = "astra not installed"
        print(f"radon 512^2 x 360 n_det {n_det}: fwd {fwd:.3f} adj {back:.3f} | {ratio}")

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    volume = torch.rand(256, 256, 256, generator=torch.Generator().manual_seed(1))
    tilts = torch.arange(-60.0, 61.0, 2.0)
    op3 = TiltSeriesProjector(volume_shape=(256, 256, 256), tilt_angles=tilts)
    stack = op3.forward(volume)
    fwd3 = best_of(lambda: op3.forward(volume), repeats=3)
    back3 = best_of(lambda: op3.adjoint(stack), repeats=3)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"tilt series 256^3 x {len(tilts)} tilts: fwd {fwd3:.3f} adj {back3:.3f} "
        f"| peak RSS {rss1 / 1024:.0f} MiB (+{(rss1 - rss0) / 1024:.0f} MiB for this part)"
    )


if __name__ == "__main__":
    main()

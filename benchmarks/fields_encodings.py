"""Throughput of the neural-field encodings: hash grid vs a dense grid vs Fourier features.

Measures points per second for the forward pass and for forward + backward of a typical
3-D hash grid (16 levels, 2^19 rows, F = 2, resolutions 16..2048) beside, in the same run,
a dense feature volume of about the same number of parameters read with
``F.grid_sample`` (trilinear) and a Gaussian Fourier-feature encoding of the same width
(32 features). Prints a table and the hash-grid ratios; the numbers in ``docs/fields.md``
come from this script.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fields_encodings.py --repeats 5
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F

from inversa.core.fields import (
    FourierFeatures,
    GaussianFourierConfig,
    HashGridConfig,
    HashGridEncoding,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(fn: Callable[[], None], device: torch.device, repeats: int) -> tuple[float, float]:
    """Median wall-clock and process CPU seconds of ``fn`` (after one warm-up call)."""
    fn()  # allocator, lazy initialisation
    wall, cpu = [], []
    for _ in range(repeats):
        _sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


PASSES = ("forward", "fwd+bwd params", "fwd+bwd params+coords")


def _measure(
    encode: Callable[[torch.Tensor], torch.Tensor],
    params: list[torch.Tensor],
    coords: torch.Tensor,
    repeats: int,
) -> dict[str, tuple[float, float]]:
    """(points per wall second, points per CPU second) of each pass in `PASSES`.

    The backward passes differentiate a fixed random projection of the features with
    respect to the parameters, and in the last one with respect to the coordinates too
    (as a method refining poses needs); an encoding without parameters gets NaN for the
    parameters-only pass.
    """
    n = coords.shape[0]
    device = coords.device
    weight = torch.randn(n, 32, generator=torch.Generator().manual_seed(1)).to(device)

    def forward() -> None:
        with torch.no_grad():
            encode(coords)

    def backward(with_coords: bool) -> Callable[[], None]:
        def run() -> None:
            x = coords.detach().requires_grad_(with_coords)
            for p in params:
                p.grad = None
            (encode(x) * weight).sum().backward()

        return run

    def rate(fn: Callable[[], None]) -> tuple[float, float]:
        wall, cpu = _seconds(fn, device, repeats)
        return n / wall, n / cpu

    return {
        "forward": rate(forward),
        "fwd+bwd params": rate(backward(False)) if params else (math.nan, math.nan),
        "fwd+bwd params+coords": rate(backward(True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2**16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    coords = torch.rand(args.points, 3, generator=gen).to(device)

    hash_config = HashGridConfig(dim=3)  # 16 levels, 2^19, F = 2, 16..2048
    hash_grid = HashGridEncoding(hash_config, generator=gen).to(device)
    # a dense volume with the hash table's parameter count and the same 32 channels
    side = round((hash_config.table_rows * hash_config.n_features / 32) ** (1 / 3))
    volume = (1e-4 * torch.randn(1, 32, side, side, side, generator=gen)).to(device)
    volume.requires_grad_()

    def dense(x: torch.Tensor) -> torch.Tensor:
        grid = (2 * x - 1).view(1, 1, 1, -1, 3)  # grid_sample wants [-1, 1], (x, y, z) last
        out = F.grid_sample(volume, grid, mode="bilinear", align_corners=True)
        return out.view(32, -1).T

    fourier = FourierFeatures(
        GaussianFourierConfig(dim=3, n_frequencies=16, sigma=10.0), generator=gen
    )
    fourier = fourier.to(device)

    rows = {
        f"hash grid (L=16, T=2^19, F=2), {hash_config.table_rows * 2 / 1e6:.1f} M params": _measure(
            hash_grid, [hash_grid.table], coords, args.repeats
        ),
        f"dense grid_sample ({side}^3 x 32), {volume.numel() / 1e6:.1f} M params": _measure(
            dense, [volume], coords, args.repeats
        ),
        "Fourier features (m=16, Gaussian), 0 params": _measure(fourier, [], coords, args.repeats),
    }
    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    print(
        f"{args.points} points, device {device}, torch threads {threads}, median of {args.repeats}"
    )
    print(f"{'encoding':<52}{'pass':<24}{'points/s (wall)':>18}{'points/CPU-s':>16}")
    for name, row in rows.items():
        for key in PASSES:
            wall, cpu = row[key]
            print(f"{name:<52}{key:<24}{wall:>18,.0f}{cpu:>16,.0f}")
    # on a shared CPU the CPU-time rate is the steadier one; on a GPU only wall time counts
    column, label = (1, "points/CPU-s") if device.type == "cpu" else (0, "points/s")
    hash_row, dense_row, fourier_row = rows.values()
    for key in PASSES:
        ratios = [hash_row[key][column] / other[key][column] for other in (dense_row, fourier_row)]
        print(
            f"ratio hash grid / dense grid, hash grid / Fourier ({key}, {label}): "
            f"{ratios[0]:.2f}, {ratios[1]:.3f}"
        )


if __name__ == "__main__":
    main()

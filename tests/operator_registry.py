"""Every linear operator of the project, built small, for the generic suite in test_operators.py.

Each entry is ``(name, factory)``; ``factory(dtype)`` returns the operator for inputs of that
floating dtype (operators that hold no float data may ignore it). Add new operators here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from inversa.core.operators import (
    DiagonalOperator,
    IdentityOperator,
    LinearOperator,
    MatrixOperator,
)
from inversa.tomography._geometry import TiltGeometry
from inversa.tomography._radon import Radon2D
from inversa.tomography._tiltseries import TiltSeriesProjector
from inversa.tomography._warp import Warp2D

Factory = Callable[[torch.dtype], LinearOperator]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _xf(n: int, seed: int) -> torch.Tensor:
    """Rotations by up to ~20 degrees, anisotropic scales near 1, sub-pixel shifts."""
    g = _gen(seed)
    phi = (torch.rand(n, generator=g, dtype=torch.float64) - 0.5) * 0.7
    scale = 1 + (torch.rand(n, 2, generator=g, dtype=torch.float64) - 0.5) * 0.1
    rot = torch.stack(
        [torch.stack([phi.cos(), -phi.sin()], -1), torch.stack([phi.sin(), phi.cos()], -1)], -2
    )
    a = rot * scale[:, None, :]
    d = (torch.rand(n, 2, 1, generator=g, dtype=torch.float64) - 0.5) * 3
    return torch.cat([a, d], dim=2)


TILTS = torch.tensor([-60.0, -42.0, -20.0, 0.0, 15.0, 45.0, 60.0])

REGISTRY: list[tuple[str, Factory]] = [
    (
        "radon_odd_exact_angles",
        lambda dt: Radon2D(image_shape=(7, 9), angles=torch.tensor([0.0, 45.0, 90.0, 135.0, 17.5])),
    ),
    (
        "radon_even",
        lambda dt: Radon2D(image_shape=(8, 6), angles=torch.linspace(0, 180, 7)[:-1]),
    ),
    (
        "radon_offset_spacing",
        lambda dt: Radon2D(
            image_shape=(6, 7),
            angles=torch.tensor([0.0, 30.0, 60.0, 90.0, 120.0, 150.0, 200.0, -45.0, 300.0]),
            n_detector=11,
            detector_spacing=0.8,
            detector_offset=0.35,
        ),
    ),
    (
        "radon_coarse_detector",
        lambda dt: Radon2D(
            image_shape=(5, 8),
            angles=torch.rand(6, generator=_gen(1), dtype=torch.float64) * 360,
            n_detector=6,
            detector_spacing=1.7,
            detector_offset=-0.6,
        ),
    ),
    (
        "radon_torch_backend",
        lambda dt: Radon2D(
            image_shape=(7, 6),
            angles=torch.tensor([0.0, 45.0, 90.0, 135.0, 33.0, 250.0]),
            n_detector=9,
            detector_offset=0.25,
            backend="torch",
        ),
    ),
    (
        "tiltseries",
        lambda dt: TiltSeriesProjector(volume_shape=(5, 4, 7), geometry=TiltGeometry(angles=TILTS)),
    ),
    (
        "tiltseries_xf",
        lambda dt: TiltSeriesProjector(
            volume_shape=(4, 5, 6),
            geometry=TiltGeometry(angles=TILTS, xf=_xf(7, 2)),
            n_detector=8,
        ),
    ),
    ("warp2d", lambda dt: Warp2D(image_shape=(6, 7), xf=_xf(3, 3))),
    (
        "matrix",
        lambda dt: MatrixOperator(torch.randn(5, 4, generator=_gen(4), dtype=torch.float64).to(dt)),
    ),
    (
        "diagonal",
        lambda dt: DiagonalOperator(
            torch.randn(3, 4, generator=_gen(5), dtype=torch.float64).to(dt)
        ),
    ),
    ("identity", lambda dt: IdentityOperator((3, 2))),
]


def _ctf_operator(dt: torch.dtype) -> LinearOperator:
    from inversa.tomography._ctf import CTFOperator, CTFParams

    params = CTFParams(pixel_size_A=2.0, defocus_um=torch.tensor([1.0, 2.5, 4.0]), b_factor=40.0)
    return CTFOperator(params=params, image_shape=(6, 7))


REGISTRY.append(("ctf_per_tilt", _ctf_operator))


def _fibration_circular(dt: torch.dtype) -> LinearOperator:
    from inversa.fibration import circular_means

    return circular_means(9, n_centres=5, n_radii=4)


def _fibration_geodesic(dt: torch.dtype) -> LinearOperator:
    from inversa.fibration import default_speed_map, geodesic_ray_transform

    return geodesic_ray_transform(default_speed_map(8), step_px=0.5)


def _fibration_radon(dt: torch.dtype) -> LinearOperator:
    from inversa.fibration import radon_transform

    return radon_transform(8)


REGISTRY.append(("fibration_circular_means", _fibration_circular))
REGISTRY.append(("fibration_geodesic_rays", _fibration_geodesic))
REGISTRY.append(("fibration_radon", _fibration_radon))

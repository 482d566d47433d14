"""``refine_rigid`` with a per-tilt transfer and ``polish_rigid`` against a known volume."""

from __future__ import annotations

import pytest
import torch

from inversa.core.errors import InputError
from inversa.icetide import polish_rigid, refine_rigid, rigid_xf, xf_to_rigid
from inversa.tomography import (
    CTFParams,
    TiltGeometry,
    TiltSeriesCTF,
    TiltSeriesProjector,
    apply_ctf,
    tilt_ctf_grid,
    warp_images,
)


def _blob_volume(depth: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z, y, x = torch.meshgrid(
        *(torch.arange(n, dtype=torch.float64) - (n - 1) / 2 for n in (depth, size, size)),
        indexing="ij",
    )
    vol = torch.zeros(depth, size, size, dtype=torch.float64)
    for _ in range(8):
        c = (torch.rand(3, generator=g, dtype=torch.float64) - 0.5) * torch.tensor(
            [depth * 0.5, size * 0.6, size * 0.6], dtype=torch.float64
        )
        vol += torch.exp(-((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) / (2 * 2.0**2))
    return vol


ROT = torch.tensor([0.8, -0.5, 0.3], dtype=torch.float64)
SHIFT = torch.tensor([[0.4, -0.3], [-0.6, 0.2], [0.1, 0.5]], dtype=torch.float64)
ANGLES = torch.tensor([-30.0, 0.0, 30.0], dtype=torch.float64)


def test_refine_rigid_takes_a_per_tilt_transfer():
    ideal = TiltSeriesProjector(
        volume_shape=(8, 32, 32), geometry=TiltGeometry(angles=ANGLES).to(dtype=torch.float64)
    ).forward(_blob_volume(8, 32))
    ctf = TiltSeriesCTF(angles=ANGLES, defocus_u_um=torch.tensor([2.5, 3.0, 3.5]))
    transfer = tilt_ctf_grid(ctf, (32, 32), pixel_size_A=8.0)
    assert transfer.shape == (3, 32, 17)
    truth = rigid_xf(ROT, SHIFT)
    data = 5.0 - 2.0 * torch.fft.irfft2(
        torch.fft.rfft2(warp_images(ideal, truth)) * transfer, s=(32, 32)
    )
    start = rigid_xf(torch.zeros(3, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64))
    xf, _ = refine_rigid(data, ideal, start, ctf=transfer)
    rot, shift = xf_to_rigid(xf)
    assert torch.allclose(rot, ROT, atol=5e-3), rot
    assert torch.allclose(shift, SHIFT, atol=5e-3), shift


def test_polish_rigid_recovers_a_small_rotation_from_the_volume():
    vol = _blob_volume(8, 32, seed=1)
    geometry = TiltGeometry(angles=ANGLES)
    ideal = TiltSeriesProjector(
        volume_shape=tuple(vol.shape), geometry=geometry.to(dtype=torch.float64)
    ).forward(vol)
    ctf = TiltSeriesCTF(angles=ANGLES, defocus_u_um=3.0)
    params = CTFParams(pixel_size_A=8.0, defocus_um=3.0)
    truth = rigid_xf(ROT, SHIFT)
    stack = 100.0 - 20.0 * apply_ctf(warp_images(ideal, truth), params)
    start = rigid_xf(torch.zeros(3, dtype=torch.float64), SHIFT + 0.2)
    xf, info = polish_rigid(stack, vol, geometry, start, ctf=ctf, pixel_size_A=8.0)
    rot, shift = xf_to_rigid(xf)
    assert torch.allclose(rot, ROT, atol=5e-3), rot
    assert torch.allclose(shift, SHIFT, atol=5e-3), shift
    assert info["scan_offset_deg_max"] == 0.0


def test_polish_rigid_refuses_bad_input():
    vol = _blob_volume(8, 16)
    geometry = TiltGeometry(angles=ANGLES)
    xf = torch.eye(2, 3, dtype=torch.float64).repeat(3, 1, 1)
    with pytest.raises(InputError, match="share H, W"):
        polish_rigid(torch.zeros(3, 32, 32), vol, geometry, xf)
    ctf = TiltSeriesCTF(angles=ANGLES, defocus_u_um=3.0)
    with pytest.raises(InputError, match="pixel_size_A"):
        polish_rigid(torch.zeros(3, 16, 16), vol, geometry, xf, ctf=ctf)

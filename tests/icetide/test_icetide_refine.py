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


def test_fit_polish_lowers_the_rotation_and_shift_errors():
    from dataclasses import replace

    from inversa.icetide import IceTideConfig, alignment_errors, fit_icetide

    g = torch.Generator().manual_seed(3)
    t, shape = 9, (8, 48, 48)
    rot = (2 * torch.rand(t, generator=g, dtype=torch.float64) - 1) * 2.0
    shift = (2 * torch.rand(t, 2, generator=g, dtype=torch.float64) - 1) * 1.5
    truth = rigid_xf(rot, shift)
    vol = _blob_volume(*shape[:2], seed=2)
    geometry = TiltGeometry.from_range(-60, 60, 15.0)
    raw = TiltSeriesProjector(volume_shape=shape, geometry=geometry.replace(xf=truth))
    stack = 10.0 - raw.forward(vol).float()
    config = IceTideConfig(
        steps=200, rays_per_step=256, samples_per_ray=16, local_grid=0, thickness=8,
        log2_table_size=12, n_levels=4, base_resolution=4, hidden=(32,),
        rotation_start=0.3, local_start=1.0, lr_shift=0.1, polish=False,
    )  # fmt: skip
    plain = fit_icetide(stack, geometry, config=config)
    polished = fit_icetide(stack, geometry, config=replace(config, polish=True))
    assert plain.polish == {} and polished.polish["scan_offset_deg_max"] <= 0.025
    # the same fit, then the polish: the volume and local fields are the fit's
    assert torch.equal(plain.volume, polished.volume)
    expected, _ = polish_rigid(stack, plain.volume, geometry, plain.xf)
    torch.testing.assert_close(polished.xf, expected)
    before = alignment_errors(plain.xf, truth, angles=geometry.angles)
    after = alignment_errors(polished.xf, truth, angles=geometry.angles)
    # measured: rotation 0.31 -> 0.08 degree, shift median 0.17 -> 0.014 px
    assert after["rotation_err_deg"] < before["rotation_err_deg"] - 0.05, (before, after)
    assert after["shift_err_median_px"] < before["shift_err_median_px"], (before, after)


def test_polish_shifts_only_and_a_move_beyond_the_limit_is_reverted():
    vol = _blob_volume(8, 32, seed=1)
    geometry = TiltGeometry(angles=ANGLES)
    ideal = TiltSeriesProjector(
        volume_shape=tuple(vol.shape), geometry=geometry.to(dtype=torch.float64)
    ).forward(vol)
    truth = rigid_xf(ROT, SHIFT)
    stack = 100.0 - 20.0 * warp_images(ideal, truth)
    start = rigid_xf(ROT + 0.1, SHIFT + 0.2)
    xf, info = polish_rigid(stack, vol, geometry, start, rotation=False)
    rot, shift = xf_to_rigid(xf)
    assert torch.equal(rot, xf_to_rigid(start)[0]) and info["polish_rot_deg_max"] == 0.0
    assert (shift - SHIFT).abs().max() < 0.2  # moved towards the truth (rotation held off)
    xf, info = polish_rigid(stack, vol, geometry, start, max_move=(0.05, 0.05))
    assert info["reverted"] == 3.0 and torch.equal(xf, start)
    xf, info = polish_rigid(stack, vol, geometry, start)
    assert info["reverted"] == 0.0
    torch.testing.assert_close(xf_to_rigid(xf)[0], ROT, atol=5e-3, rtol=0)

import math

import pytest
import torch

from inversa.core.errors import InputError
from inversa.tomography._geometry import TiltGeometry
from inversa.tomography._radon import radon_forward
from inversa.tomography._tiltseries import (
    TiltSeriesProjector,
    tilt_series_adjoint,
    tilt_series_forward,
)
from inversa.tomography._warp import warp_images

TILTS = torch.tensor([-60.0, -45.0, -24.0, 0.0, 12.0, 45.0, 60.0])


def _rot_xf(deg: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    a = torch.deg2rad(deg.double())
    rot = torch.stack(
        [torch.stack([a.cos(), -a.sin()], -1), torch.stack([a.sin(), a.cos()], -1)], -2
    )
    return torch.cat([rot, shifts.double()[:, :, None]], dim=2)


def test_agrees_with_radon_on_every_y_slice():
    g = torch.Generator().manual_seed(0)
    vol = torch.rand(6, 5, 9, generator=g, dtype=torch.float64)  # (z, y, x)
    stack = tilt_series_forward(vol, TILTS)
    assert stack.shape == (7, 5, 9)
    for iy in range(5):
        # each y-slice is a (z, x) image: rows are z, columns are x
        ref = radon_forward(vol[:, iy, :], TILTS, n_detector=9)
        torch.testing.assert_close(stack[:, iy, :], ref, rtol=1e-12, atol=1e-12)


def test_single_y_slice_stays_in_its_detector_row():
    vol = torch.zeros(5, 6, 7, dtype=torch.float64)
    vol[:, 2, :] = torch.rand(5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    stack = tilt_series_forward(vol, TILTS)
    assert bool((stack[:, 2] > 0).any())
    others = torch.cat([stack[:, :2], stack[:, 3:]], dim=1)
    assert bool((others == 0).all())


def test_tilt_sign_convention():
    """At +theta a voxel at +z moves towards +u (u = x cos + z sin)."""
    vol = torch.zeros(9, 3, 9, dtype=torch.float64)
    vol[4 + 2, 1, 4] = 1  # x = 0, y = 0, z = 2
    stack = tilt_series_forward(vol, torch.tensor([30.0, -30.0]))
    u = torch.arange(9, dtype=torch.float64) - 4
    centroid = (stack[:, 1] * u).sum(-1) / stack[:, 1].sum(-1)
    assert float(centroid[0]) == pytest.approx(1.0, abs=1e-9)
    assert float(centroid[1]) == pytest.approx(-1.0, abs=1e-9)


def test_project_points_matches_a_delta_exactly():
    # z = 0, x = 2: u = 2 cos(theta) is an integer at 0 and +-60 degrees
    tilts = torch.tensor([-60.0, 0.0, 60.0])
    vol = torch.zeros(5, 7, 9, dtype=torch.float64)
    point = torch.tensor([[2.0, -1.0, 0.0]])
    vol[0 + 2, -1 + 3, 2 + 4] = 1
    # a quarter turn with integer shifts maps pixels onto pixels
    xf = _rot_xf(torch.tensor([90.0, 90.0, -90.0]), torch.tensor([[1.0, 0], [0, -1], [-1, 1]]))
    raw = TiltSeriesProjector(
        volume_shape=(5, 7, 9), geometry=TiltGeometry(angles=tilts, xf=xf), n_detector=9
    )
    uv = raw.project_points(point)
    assert uv.shape == (3, 1, 2)
    images = raw.forward(vol)  # (3, 7, 9)
    for t in range(3):
        peak = divmod(int(images[t].argmax()), 9)
        assert (peak[1] - 9 // 2, peak[0] - 7 // 2) == pytest.approx(uv[t, 0].tolist(), abs=1e-9)


def test_project_points_tracks_a_blob_through_a_general_alignment():
    d, h, w = 16, 32, 32
    z, y, x = torch.meshgrid(
        *(torch.arange(n, dtype=torch.float64) - n // 2 for n in (d, h, w)), indexing="ij"
    )
    centre = torch.tensor([5.0, -4.0, 3.0], dtype=torch.float64)  # (x, y, z)
    vol = torch.exp(
        -((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) / (2 * 1.5**2)
    )
    xf = _rot_xf(TILTS * 0.3, torch.stack([TILTS / 20, -TILTS / 30], -1))
    op = TiltSeriesProjector(volume_shape=(d, h, w), geometry=TiltGeometry(angles=TILTS, xf=xf))
    images = op.forward(vol)
    uv = op.project_points(centre[None])[:, 0]
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float64) - h // 2,
        torch.arange(w, dtype=torch.float64) - w // 2,
        indexing="ij",
    )
    mass = images.sum((-1, -2))
    cx = (images * xx).sum((-1, -2)) / mass
    cy = (images * yy).sum((-1, -2)) / mass
    torch.testing.assert_close(cx, uv[:, 0], rtol=0, atol=0.05)
    torch.testing.assert_close(cy, uv[:, 1], rtol=0, atol=0.05)
    # without xf the blob sits at (x cos + z sin, y)
    ideal = TiltSeriesProjector(
        volume_shape=(d, h, w), geometry=TiltGeometry(angles=TILTS)
    ).project_points(centre[None])
    theta = torch.deg2rad(TILTS.double())
    torch.testing.assert_close(ideal[:, 0, 0], 5 * theta.cos() + 3 * theta.sin())
    assert bool((ideal[:, 0, 1] == -4).all())


def test_xf_model_is_the_warp_of_the_ideal_projection():
    g = torch.Generator().manual_seed(2)
    vol = torch.rand(2, 4, 5, 6, generator=g, dtype=torch.float64)
    xf = _rot_xf(torch.linspace(-10, 10, 7), torch.randn(7, 2, generator=g, dtype=torch.float64))
    raw = tilt_series_forward(vol, TILTS, xf=xf, n_detector=8)
    ideal = tilt_series_forward(vol, TILTS, n_detector=8)
    torch.testing.assert_close(raw, warp_images(ideal, xf), rtol=0, atol=0)
    y = torch.randn(2, 7, 5, 8, generator=g, dtype=torch.float64)
    back = tilt_series_adjoint(y, TILTS, volume_shape=(4, 5, 6), xf=xf)
    lhs, rhs = float((raw * y).sum()), float((vol * back).sum())
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))
    assert math.isfinite(lhs)


def test_float32_large_stack_uses_blocked_kernels_consistently():
    g = torch.Generator().manual_seed(3)
    vol = torch.rand(12, 40, 14, generator=g)
    op = TiltSeriesProjector(volume_shape=(12, 40, 14), geometry=TiltGeometry(angles=TILTS))
    stack = op.forward(vol)
    ref = op.forward(vol.double())
    torch.testing.assert_close(stack.double(), ref, rtol=1e-5, atol=1e-5)
    y = torch.rand(7, 40, 14, generator=g)
    torch.testing.assert_close(op.adjoint(y).double(), op.adjoint(y.double()), rtol=1e-5, atol=1e-5)


def test_bad_input_raises():
    with pytest.raises(InputError):
        TiltSeriesProjector(volume_shape=(4, 4), geometry=TiltGeometry(angles=TILTS))
    with pytest.raises(InputError):
        TiltSeriesProjector(
            volume_shape=(4, 4, 4), geometry=TiltGeometry(angles=TILTS, xf=torch.zeros(3, 2, 3))
        )
    op = TiltSeriesProjector(volume_shape=(4, 4, 4), geometry=TiltGeometry(angles=TILTS))
    with pytest.raises(InputError):
        op.forward(torch.zeros(4, 5, 4))
    with pytest.raises(InputError):
        op.project_points(torch.zeros(3, 2))

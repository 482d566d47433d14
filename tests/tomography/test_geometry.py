"""TiltGeometry: constructors, files, wedge, and gradients through the torch path."""

import pytest
import torch

from inversa.alignment import wedge_mask
from inversa.core import io
from inversa.core.errors import InputError
from inversa.tomography import TiltGeometry, TiltSeriesProjector, tilt_series_sidecars


def _xf(n: int) -> torch.Tensor:
    a = torch.deg2rad(torch.linspace(-2.0, 3.0, n, dtype=torch.float64))
    xf = torch.zeros(n, 2, 3, dtype=torch.float64)
    xf[:, 0, 0], xf[:, 0, 1], xf[:, 1, 0], xf[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
    xf[:, 0, 2] = torch.linspace(-1.5, 2.0, n, dtype=torch.float64)
    xf[:, 1, 2] = torch.linspace(0.5, -1.0, n, dtype=torch.float64)
    return xf


def test_from_range_includes_the_end_and_reports_the_wedge():
    g = TiltGeometry.from_range(-60, 45, 15)
    torch.testing.assert_close(g.angles, torch.arange(-60.0, 46.0, 15.0, dtype=torch.float64))
    assert g.n_tilts == 8 and g.wedge == (-60.0, 45.0)
    with pytest.raises(InputError, match="tilt range"):
        TiltGeometry.from_range(10, -10, 2)


def test_tlt_xf_round_trip(tmp_path):
    g = TiltGeometry.from_range(-40, 40, 20, xf=_xf(5), detector_shape=(6, 8))
    g.write(tmp_path / "ts.tlt", tmp_path / "ts.xf")
    back = TiltGeometry.from_files(tmp_path / "ts.tlt", tmp_path / "ts.xf", detector_shape=(6, 8))
    torch.testing.assert_close(back.angles, g.angles, atol=1e-2, rtol=0)
    torch.testing.assert_close(back.xf, g.xf, atol=1e-5, rtol=0)
    assert back.detector_shape == (6, 8)
    # an .xf of another series is refused
    io.write_xf(tmp_path / "short.xf", _xf(3))
    with pytest.raises(InputError, match="3 transforms"):
        TiltGeometry.from_files(tmp_path / "ts.tlt", tmp_path / "short.xf")


def test_sidecars_find_tlt_and_xf_beside_the_stack(tmp_path):
    stack = tmp_path / "ts.mrc"
    with pytest.raises(InputError, match="not found"):
        tilt_series_sidecars(stack)
    stack.write_bytes(b"")  # only its existence matters here
    with pytest.raises(InputError, match="tilt angles"):
        tilt_series_sidecars(stack)
    TiltGeometry.from_range(-30, 30, 30).write(tmp_path / "ts.rawtlt")
    assert tilt_series_sidecars(stack) == (tmp_path / "ts.rawtlt", None)
    TiltGeometry.from_range(-30, 30, 30).write(tmp_path / "ts.tlt", tmp_path / "ts.xf")
    assert tilt_series_sidecars(stack) == (tmp_path / "ts.tlt", tmp_path / "ts.xf")
    explicit = tilt_series_sidecars(stack, angles_path=tmp_path / "a.tlt")
    assert explicit == (tmp_path / "a.tlt", tmp_path / "ts.xf")


def test_wedge_mask_from_geometry_equals_its_range():
    g = TiltGeometry(angles=torch.tensor([-50.0, -10.0, 20.0, 60.0]))
    from_geometry = wedge_mask((8, 9, 10), geometry=g)
    torch.testing.assert_close(from_geometry, wedge_mask((8, 9, 10), tilt_min=-50, tilt_max=60))
    assert not torch.equal(from_geometry, wedge_mask((8, 9, 10)))  # not the default -60..60


def test_invalid_geometry_is_input_error():
    with pytest.raises(InputError, match="angles"):
        TiltGeometry(angles=torch.zeros(0))
    with pytest.raises(InputError, match="finite"):
        TiltGeometry(angles=torch.tensor([0.0, float("nan")]))
    with pytest.raises(InputError, match="xf"):
        TiltGeometry(angles=torch.zeros(3), xf=_xf(2))
    g = TiltGeometry(angles=torch.zeros(3), detector_shape=(5, 7))
    with pytest.raises(InputError, match="detector height"):
        TiltSeriesProjector(volume_shape=(4, 6, 7), geometry=g)
    assert TiltSeriesProjector(volume_shape=(4, 5, 6), geometry=g).range_shape == (3, 5, 7)


def test_rotation_matrices_agree_with_the_projector():
    # a point on a delta volume lands where rotation_matrices / project_points say
    g = TiltGeometry(angles=torch.tensor([-60.0, 0.0, 60.0], dtype=torch.float64))
    rot = g.rotation_matrices()
    torch.testing.assert_close(rot @ rot.mT, torch.eye(3, dtype=torch.float64).expand(3, 3, 3))
    point = torch.tensor([[2.0, -1.0, 0.0]], dtype=torch.float64)
    vol = torch.zeros(5, 7, 9, dtype=torch.float64)
    vol[2, 2, 6] = 1.0
    images = TiltSeriesProjector(volume_shape=(5, 7, 9), geometry=g).forward(vol)
    uv = g.project_points(point)
    for t in range(3):
        iy, ix = divmod(int(images[t].argmax()), 9)
        assert (ix - 4, iy - 3) == pytest.approx(uv[t, 0].tolist(), abs=1e-9)


def test_angles_are_differentiable_through_project_points():
    angles = torch.tensor([-40.0, 5.0, 33.0], dtype=torch.float64, requires_grad=True)
    xf = _xf(3).requires_grad_(True)
    points = torch.tensor([[1.5, -2.0, 3.0], [0.0, 1.0, -2.5]], dtype=torch.float64)

    def f(a, x):
        return TiltGeometry(angles=a, xf=x).project_points(points)

    assert torch.autograd.gradcheck(f, (angles, xf))
    # and the gradient is the analytic one: du/dtheta = -x sin + z cos (radians)
    (grad,) = torch.autograd.grad(
        TiltGeometry(angles=angles).project_points(points)[..., 0].sum(), angles
    )
    theta = torch.deg2rad(angles.detach())
    expected = (-points[:, 0, None] * theta.sin() + points[:, 2, None] * theta.cos()).sum(0)
    torch.testing.assert_close(grad, expected * torch.pi / 180)


def test_projector_is_differentiable_in_xf():
    g = torch.Generator().manual_seed(0)
    vol = torch.rand(4, 6, 7, generator=g, dtype=torch.float64)
    shifts = torch.tensor([[0.3, -0.2], [0.1, 0.4]], dtype=torch.float64, requires_grad=True)

    def f(s):
        xf = torch.cat([torch.eye(2, dtype=torch.float64).expand(2, 2, 2), s[:, :, None]], dim=2)
        geometry = TiltGeometry(angles=torch.tensor([-20.0, 30.0]), xf=xf)
        return TiltSeriesProjector(volume_shape=(4, 6, 7), geometry=geometry).forward(vol)

    assert torch.autograd.gradcheck(f, (shifts,))

"""The tilt-series simulator below the methods, and its local deformation model."""

import dataclasses

import pytest
import torch

from inversa.core import phantoms
from inversa.core.errors import InputError
from inversa.tomography import (
    SimulationConfig,
    bspline_field,
    local_deformation,
    simulate,
    warp_images,
    warp_images_adjoint,
)

SMALL = SimulationConfig(
    shape=(24, 40, 40),
    voxel_size=5.0,
    structure=str(phantoms.builtin_structure_path("1ake")),
    reference_box=32,
    n_particles=2,
    n_membranes=1,
    tilt_step=10.0,
    dose=50.0,
    seed=3,
)


def _checksums(stack: torch.Tensor) -> tuple[float, float]:
    s = stack.double()
    return float(s.sum()), float((s * torch.arange(s.numel()).reshape(s.shape)).sum())


def test_default_structure_is_the_demo_ribosome_at_12_angstrom():
    config = SimulationConfig()
    assert config.structure_path() == str(phantoms.builtin_structure_path("ribosome"))
    assert config.voxel_size == 12.0 and config.local_deformation_px == 0.0


@pytest.mark.parametrize(
    ("rigid", "expected"),
    [
        # Counts of the same config before the simulator moved into tomography.
        ({}, (24296265.0, 252820803521.0)),
        ({"shift_px": 2.0, "rotation_deg": 1.5}, (24248401.0, 252291596583.0)),
    ],
)
def test_without_local_deformation_the_series_is_unchanged(rigid, expected):
    sim = simulate(dataclasses.replace(SMALL, **rigid))
    assert sim.displacement is None and sim.control is None
    assert sim.stack.shape == (13, 40, 40)
    assert _checksums(sim.stack) == expected


def test_local_deformation_changes_only_the_images_and_is_seeded():
    a = simulate(dataclasses.replace(SMALL, local_deformation_px=2.0))
    b = simulate(dataclasses.replace(SMALL, local_deformation_px=2.0))
    plain = simulate(SMALL)
    assert torch.equal(a.stack, b.stack) and torch.equal(a.displacement, b.displacement)
    assert torch.equal(a.volume, plain.volume)  # the scene is drawn before the deformation
    assert not torch.equal(a.stack, plain.stack)
    assert a.displacement.shape == (13, 40, 40, 2) and a.control.shape == (13, 6, 6, 2)
    other = simulate(dataclasses.replace(SMALL, local_deformation_px=2.0, seed=1))
    assert not torch.equal(other.displacement, a.displacement)


@pytest.mark.parametrize(("amplitude", "grid", "shape"), [(3.0, 6, (40, 48)), (0.5, 4, (33, 20))])
def test_deformation_is_bounded_smooth_and_zero_at_zero(amplitude, grid, shape):
    gen = torch.Generator().manual_seed(7)
    control, field = local_deformation(5, shape, amplitude_px=amplitude, grid=grid, generator=gen)
    norm = torch.linalg.vector_norm(field, dim=-1)
    assert float(norm.max()) <= amplitude + 1e-12
    assert float(norm.max()) > 0.3 * amplitude  # not trivially small
    assert float(torch.linalg.vector_norm(control, dim=-1).max()) <= amplitude + 1e-12
    # B-spline slope bound: |D(r + 1 px) - D(r)| <= 2 A (G - 3) / (N - 1) per axis
    for axis, n in ((1, shape[0]), (2, shape[1])):
        step = torch.linalg.vector_norm(torch.diff(field, dim=axis), dim=-1).max()
        assert float(step) <= 2 * amplitude * (grid - 3) / (n - 1) + 1e-12
    _, zero = local_deformation(5, shape, amplitude_px=0.0, grid=grid, generator=gen)
    assert torch.count_nonzero(zero) == 0
    with pytest.raises(InputError):
        local_deformation(5, shape, amplitude_px=1.0, grid=3, generator=gen)


def test_bspline_field_keeps_constants():
    control = torch.full((2, 5, 7, 2), 1.25, dtype=torch.float64)
    torch.testing.assert_close(
        bspline_field(control, (9, 11)), torch.full((2, 9, 11, 2), 1.25, dtype=torch.float64)
    )


def test_a_constant_displacement_is_a_shift_and_the_warp_keeps_its_adjoint():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 8, 9, generator=g, dtype=torch.float64)
    identity = torch.eye(2, 3, dtype=torch.float64).expand(3, 2, 3)
    shift = torch.tensor([1.5, -0.75], dtype=torch.float64)
    shifted = identity.clone()
    shifted[:, :, 2] = shift
    field = shift.expand(3, 8, 9, 2)
    torch.testing.assert_close(
        warp_images(images, identity, displacement=field), warp_images(images, shifted)
    )
    smooth = local_deformation(3, (8, 9), amplitude_px=2.0, grid=4, generator=g)[1]
    y = torch.rand(3, 8, 9, generator=g, dtype=torch.float64)
    lhs = (warp_images(images, shifted, displacement=smooth) * y).sum()
    rhs = (images * warp_images_adjoint(y, shifted, displacement=smooth)).sum()
    torch.testing.assert_close(lhs, rhs)
    with pytest.raises(InputError, match="displacement"):
        warp_images(images, identity, displacement=field[:, :4])


def test_config_rejects_bad_misalignment():
    with pytest.raises(InputError):
        SimulationConfig(local_deformation_px=-1.0)
    with pytest.raises(InputError):
        SimulationConfig(deformation_grid=3)


def test_config_ctf_matches_its_per_tilt_series():
    from inversa.tomography import SimulationConfig

    config = SimulationConfig(defocus_um=2.5, voltage_kv=200.0, amplitude_contrast=0.1)
    params, series = config.ctf_params(), config.tilt_series_ctf()
    assert params.defocus_um == 2.5 and params.pixel_size_A == config.voxel_size
    assert series.n_tilts == config.geometry().n_tilts
    assert torch.allclose(series.defocus_u_um.double(), torch.full((series.n_tilts,), 2.5).double())
    assert series.voltage_kv == params.voltage_kv == 200.0
    assert series.amplitude_contrast == params.amplitude_contrast == 0.1

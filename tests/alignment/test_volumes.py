import math

import pytest
import torch

from inversa.alignment._volumes import (
    find_shift,
    rotate_volume,
    shift_volume,
    spherical_mask,
    wedge_mask,
)
from inversa.core import phantoms, rotations
from inversa.tomography import TiltGeometry, TiltSeriesProjector


@pytest.fixture(scope="module")
def model():
    return phantoms.read_atomic_model(phantoms.builtin_structure_path())


def test_rotate_volume_matches_rotated_atoms(model):
    # rotate_volume follows the RELION convention of core.rotations and phantoms
    rot = rotations.euler_to_matrix(torch.tensor([30.0, 50.0, -70.0], dtype=torch.float64))
    ref = phantoms.density_from_atoms(
        model, voxel_size=4.0, shape=(32, 32, 32), resolution=12.0, dtype=torch.float64
    )
    truth = phantoms.density_from_atoms(
        model,
        voxel_size=4.0,
        shape=(32, 32, 32),
        resolution=12.0,
        rotation=rot,
        dtype=torch.float64,
    )
    out = rotate_volume(ref, rot)
    corr = torch.corrcoef(torch.stack([out.flatten(), truth.flatten()]))[0, 1]
    wrong = rotate_volume(ref, rot.T)
    corr_wrong = torch.corrcoef(torch.stack([wrong.flatten(), truth.flatten()]))[0, 1]
    assert corr > 0.97 and corr - corr_wrong > 0.05, (corr, corr_wrong)


@pytest.mark.parametrize("n", [15, 16])
def test_rotate_keeps_centred_delta_and_quarter_turns_are_exact(n):
    vol = torch.zeros(n, n, n, dtype=torch.float64)
    vol[n // 2, n // 2, n // 2] = 1.0
    r = rotations.random_rotations(
        1, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )[0]
    assert rotate_volume(vol, r)[n // 2, n // 2, n // 2] == pytest.approx(1.0)
    # 90 degrees about z maps +x to +y: a voxel at x = +2 moves to y = +2
    vol = torch.zeros(n, n, n, dtype=torch.float64)
    vol[n // 2, n // 2, n // 2 + 2] = 1.0
    rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    out = rotate_volume(vol, rz)
    assert out[n // 2, n // 2 + 2, n // 2] == pytest.approx(1.0)
    assert out.sum() == pytest.approx(1.0)


def test_shift_volume_moves_by_the_shift():
    vol = torch.zeros(16, 16, 16, dtype=torch.float64)
    vol[8, 8, 8] = 1.0
    out = shift_volume(vol, torch.tensor([2.0, -1.0, 3.0], dtype=torch.float64))
    assert out[11, 7, 10] == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("upsample", [1, 8])
def test_find_shift_recovers_subvoxel_shifts(model, upsample):
    ref = phantoms.density_from_atoms(
        model, voxel_size=4.0, shape=(32, 32, 32), resolution=10.0, dtype=torch.float64
    )
    g = torch.Generator().manual_seed(1)
    true = (torch.rand(5, 3, generator=g, dtype=torch.float64) - 0.5) * 6
    particles = shift_volume(ref.expand(5, 32, 32, 32), true)
    shifts, scores = find_shift(ref, particles, upsample=upsample, max_shift=5.0)
    tol = 0.07 if upsample == 8 else 0.51
    assert (shifts - true).abs().max() < tol
    assert (scores > (0.99 if upsample == 8 else 0.9)).all() and (scores <= 1 + 1e-9).all()


def test_find_shift_respects_max_shift(model):
    ref = phantoms.density_from_atoms(
        model, voxel_size=4.0, shape=(24, 24, 24), resolution=10.0, dtype=torch.float64
    )
    moved = shift_volume(ref, torch.tensor([6.0, 0.0, 0.0], dtype=torch.float64))
    shift, _ = find_shift(ref, moved, max_shift=3.0)
    assert torch.linalg.vector_norm(shift) <= 3.0 + 1e-9


def test_wedge_mask_is_where_a_tilt_series_puts_energy():
    # Back-project an asymmetric tilt series (-60..30): its spectrum lives inside the
    # wedge mask of that range, not inside the mirrored one (which pins the sign).
    n = 24
    g = torch.Generator().manual_seed(2)
    vol = torch.randn(n, n, n, generator=g, dtype=torch.float64)
    tilts = torch.arange(-60.0, 30.5, 1.0, dtype=torch.float64)
    proj = TiltSeriesProjector(volume_shape=(n, n, n), geometry=TiltGeometry(angles=tilts))
    power = torch.fft.fftn(proj.adjoint(proj.forward(vol))).abs() ** 2
    k = torch.stack(
        torch.meshgrid(*(torch.fft.fftfreq(n, dtype=torch.float64),) * 3, indexing="ij"), -1
    )
    band = torch.linalg.vector_norm(k, dim=-1) < 0.35  # away from corner aliasing

    def leak(mask):
        inside = (power * mask * band).sum() / (mask * band).sum()
        outside = (power * (1 - mask) * band).sum() / ((1 - mask) * band).sum()
        return float(outside / inside)

    right = leak(wedge_mask((n, n, n), tilt_min=-60, tilt_max=30, dtype=torch.float64))
    mirrored = leak(wedge_mask((n, n, n), tilt_min=-30, tilt_max=60, dtype=torch.float64))
    assert right < 0.2 and mirrored > 2 * right, (right, mirrored)
    frac = wedge_mask((n, n, n), tilt_min=-60, tilt_max=60).mean()
    assert 0.55 < frac < 0.75  # about 120/180 of the directions


def test_wedge_mask_full_range_and_bad_range():
    assert wedge_mask((8, 8, 8), tilt_min=-90, tilt_max=90).min() == 1
    with pytest.raises(Exception, match="tilt range"):
        wedge_mask((8, 8, 8), tilt_min=-100, tilt_max=60)


def test_spherical_mask_profile():
    m = spherical_mask((32, 32, 32), radius=10, soft_edge=4)
    assert m[16, 16, 16] == 1 and m[16, 16, 16 + 10] == 1
    assert m[16, 16, 16 + 14] == 0 and 0 < m[16, 16, 16 + 12] < 1
    assert math.isclose(float(m[16, 16, 16 + 12]), 0.5, abs_tol=1e-6)

import math

import pytest
import torch

from inversa.alignment import (
    ExhaustiveConfig,
    NewtonConfig,
    RefineConfig,
    aligner_config,
    refine,
)
from inversa.alignment._volumes import rotate_volume, shift_volume, wedge_mask
from inversa.core import phantoms, rotations
from inversa.core.errors import InputError
from inversa.core.fourier import fourier_shell_correlation

N = 6


@pytest.fixture(scope="module")
def data():
    model = phantoms.read_atomic_model(phantoms.builtin_structure_path())
    ref = phantoms.reference_density(model, voxel_size=4.0, box=20, resolution=8.0)
    g = torch.Generator().manual_seed(5)
    truth = rotations.random_rotations(N, generator=g)
    shifts = (torch.rand(N, 3, generator=g) - 0.5) * 3
    clean = shift_volume(rotate_volume(ref, truth), shifts)
    w = wedge_mask(ref.shape)
    wedged = torch.fft.ifftn(torch.fft.fftn(clean, dim=(-3, -2, -1)) * w, dim=(-3, -2, -1)).real
    particles = wedged + 0.5 * ref.std() * torch.randn(clean.shape, generator=g)
    return ref, truth, shifts, particles, g


ALIGNER = ExhaustiveConfig(refine_steps=(4.0, 1.5), wedge=(-60.0, 60.0), max_angle_deg=8.0)
CONFIG = RefineConfig(aligner=ALIGNER, initial_resolution=16.0)


def test_local_refinement_from_priors_improves_poses(data):
    ref, truth, _, particles, g = data
    kick = rotations.axis_angle_to_matrix(0.09 * torch.randn(N, 3, generator=g))  # ~5-9 deg
    priors = truth @ kick
    before = rotations.geodesic_distance(priors, truth)
    result = refine(
        particles,
        reference=ref,
        config=CONFIG,
        n_iterations=2,
        prior_rotations=priors,
        pixel_size=4.0,
    )
    after = rotations.geodesic_distance(result.alignment.rotations, truth)
    assert float(after.median()) < 2.0 and float(after.max()) < float(before.max()), (before, after)
    assert len(result.iterations) == 2 and all(it.local for it in result.iterations)
    assert all(math.isfinite(it.resolution) for it in result.iterations)
    assert result.iterations[-1].resolution <= 16.0
    fsc = fourier_shell_correlation(result.average.map, ref)
    assert float(fsc[1:5].min()) > 0.8, fsc


def test_refine_from_scratch_runs_and_validates(data):
    ref, _, _, particles, _ = data
    config = RefineConfig(
        aligner=ExhaustiveConfig(coarse_step=30.0, refine_steps=(15.0,), n_candidates=1),
        initial_resolution=16.0,
    )
    result = refine(particles[:4], config=config, n_iterations=1, pixel_size=4.0)
    assert result.average.map.shape == ref.shape
    assert not result.iterations[0].local
    # Poses are relative to the first particle: particle 0 aligns to itself.
    assert float(result.alignment.scores[0]) > float(result.alignment.scores[1:].min())
    with pytest.raises(InputError, match="method"):
        aligner_config("magic")
    with pytest.raises(InputError, match="aligner"):
        RefineConfig(aligner="exhaustive")
    with pytest.raises(InputError, match="N >= 2"):
        refine(particles[:1], config=CONFIG)
    with pytest.raises(InputError, match="reference box"):
        refine(particles, reference=ref[:-1], config=CONFIG)


def test_newton_is_the_default_and_the_config_is_not_rewritten():
    assert RefineConfig().method == "newton" and isinstance(RefineConfig().aligner, NewtonConfig)
    assert aligner_config("exhaustive", max_angle_deg=5.0).max_angle_deg == 5.0
    newton = NewtonConfig(wedge=(-50.0, 50.0), frequency_band=(0.05, 0.4), max_shift=2.0)
    config = RefineConfig(aligner=newton)
    assert config.wedge == (-50.0, 50.0) and config.method == "newton"
    # Only the band follows the reference's resolution, and only downwards.
    assert config.aligner_at(None) is newton
    assert config.aligner_at(0.2).frequency_band == (0.05, 0.2)
    assert config.aligner_at(0.45).frequency_band == (0.05, 0.4)
    assert config.aligner_at(0.2).max_shift == 2.0
    exhaustive = RefineConfig(aligner=ALIGNER).aligner_at(0.1)
    assert exhaustive.max_frequency == 0.1 and exhaustive.max_angle_deg == 8.0
    assert config.aligner is newton  # untouched


def test_refine_with_the_default_newton_aligner(data):
    ref, truth, _, particles, g = data
    kick = rotations.axis_angle_to_matrix(0.09 * torch.randn(N, 3, generator=g))
    aligner = NewtonConfig(band_limits=(6, 10), wedge=(-60.0, 60.0), max_angle_deg=10.0)
    result = refine(
        particles,
        reference=ref,
        config=RefineConfig(aligner=aligner, initial_resolution=16.0),
        n_iterations=1,
        prior_rotations=truth @ kick,
        pixel_size=4.0,
    )
    after = rotations.geodesic_distance(result.alignment.rotations, truth)
    assert result.iterations[0].local and float(after.median()) < 3.0, after
    assert result.subsets.tolist() == [1, 2] * (N // 2)

"""The ground-truth-free trust signal of alignment results."""

import dataclasses
import math

import pytest
import torch

from inversa.alignment import (
    AlignmentResult,
    DiagnosticsConfig,
    NewtonConfig,
    RefineConfig,
    align_newton,
    average_particles,
    diagnose_alignment,
    diagnose_refinement,
    refine,
    rotate_volume,
    shift_volume,
)
from inversa.core import phantoms, rotations
from inversa.core.errors import InputError

N_BOX = 24
N = 8
CONFIG = NewtonConfig(band_limits=(8, 14), l0=6, n_candidates=6)


@pytest.fixture(scope="module")
def structure():
    model = phantoms.read_atomic_model(phantoms.builtin_structure_path())
    voxel = 2 * model.radius() / (0.7 * N_BOX)
    return phantoms.density_from_atoms(
        model, voxel_size=voxel, shape=(N_BOX,) * 3, resolution=2.5 * voxel
    )


@pytest.fixture(scope="module")
def poses():
    g = torch.Generator().manual_seed(1)
    return rotations.random_rotations(N, generator=g), (torch.rand(N, 3, generator=g) - 0.5) * 2


def _noisy(clean, snr, seed):
    g = torch.Generator().manual_seed(seed)
    return clean + clean.std() / math.sqrt(snr) * torch.randn(clean.shape, generator=g)


def test_well_posed_alignment_is_trustworthy(structure, poses):
    truth, shifts = poses
    particles = _noisy(shift_volume(rotate_volume(structure, truth), shifts), 1.0, 2)
    result = align_newton(structure, particles, config=CONFIG)
    assert float(rotations.geodesic_distance(result.rotations, truth).median()) < 2.0
    diagnostics = diagnose_alignment(structure, particles, result, config=CONFIG)
    assert diagnostics.trustworthy and diagnostics.reasons == (), diagnostics.reasons
    assert diagnostics.z_scores.shape == (N,)
    assert diagnostics.unseparated_fraction <= 0.5 and diagnostics.resolution is None
    # The true poses are separated too; poses scrambled among particles are not.
    at_truth = dataclasses.replace(result, rotations=truth)
    assert diagnose_alignment(structure, particles, at_truth, config=CONFIG).trustworthy
    scrambled = dataclasses.replace(result, rotations=truth.roll(1, dims=0))
    wrong = diagnose_alignment(structure, particles, scrambled, config=CONFIG)
    assert not wrong.trustworthy and wrong.unseparated_fraction > 0.5


def test_pure_noise_particles_are_flagged(structure):
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(N, N_BOX, N_BOX, N_BOX, generator=g)
    result = align_newton(structure, noise, config=CONFIG)
    diagnostics = diagnose_alignment(structure, noise, result, config=CONFIG)
    assert not diagnostics.trustworthy
    assert len(diagnostics.reasons) == 1 and "random orientations" in diagnostics.reasons[0]
    assert diagnostics.unseparated_fraction > 0.5


def test_a_nearly_spherical_reference_is_flagged(poses):
    truth, shifts = poses
    g = torch.Generator().manual_seed(4)
    x = torch.arange(N_BOX, dtype=torch.float32) - N_BOX // 2
    r2 = x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2
    blob = torch.exp(-r2 / 32.0) * (1 + 0.02 * torch.randn(r2.shape, generator=g))
    particles = _noisy(shift_volume(rotate_volume(blob, truth), shifts), 10.0, 5)
    result = align_newton(blob, particles, config=CONFIG)
    diagnostics = diagnose_alignment(blob, particles, result, config=CONFIG)
    assert not diagnostics.trustworthy, diagnostics.z_scores


def test_half_map_checks(structure, poses):
    truth, shifts = poses
    particles = _noisy(shift_volume(rotate_volume(structure, truth), shifts), 1.0, 6)
    result = AlignmentResult(rotations=truth, shifts=shifts, scores=torch.ones(N))
    average = average_particles(particles, truth, shifts)
    assert math.isfinite(average.resolution)
    fine = diagnose_alignment(
        structure, particles, result, config=CONFIG, average=average, initial_resolution=1e3
    )
    assert fine.trustworthy and fine.resolution == average.resolution
    stuck = diagnose_alignment(
        structure,
        particles,
        result,
        config=CONFIG,
        average=average,
        initial_resolution=average.resolution,
    )
    assert not stuck.trustworthy and "starting reference" in stuck.reasons[0]
    flat = dataclasses.replace(average, resolution=math.inf)
    broken = diagnose_alignment(structure, particles, result, config=CONFIG, average=flat)
    assert not broken.trustworthy and "0.143" in broken.reasons[0]


def test_refinement_diagnostics_tell_signal_from_noise(structure, poses):
    truth, shifts = poses
    particles = _noisy(shift_volume(rotate_volume(structure, truth), shifts), 1.0, 7)
    kick = rotations.axis_angle_to_matrix(
        0.08 * torch.randn(N, 3, generator=torch.Generator().manual_seed(0))
    )
    config = RefineConfig(aligner=CONFIG)
    good = refine(
        particles, reference=structure, config=config, n_iterations=1, prior_rotations=truth @ kick
    )
    assert diagnose_refinement(particles, good, config=config).trustworthy
    g = torch.Generator().manual_seed(8)
    noise = torch.randn(particles.shape, generator=g)
    bad = refine(noise, reference=structure, config=config, n_iterations=1)
    diagnostics = diagnose_refinement(noise, bad, config=config)
    assert not diagnostics.trustworthy, diagnostics.z_scores


def test_bad_inputs_raise(structure):
    with pytest.raises(InputError, match="n_random"):
        DiagnosticsConfig(n_random=2)
    with pytest.raises(InputError, match="max_unseparated_fraction"):
        DiagnosticsConfig(max_unseparated_fraction=1.0)
    result = AlignmentResult(
        rotations=torch.eye(3)[None], shifts=torch.zeros(1, 3), scores=torch.ones(1)
    )
    with pytest.raises(InputError, match="poses"):
        diagnose_alignment(structure, structure.expand(2, -1, -1, -1), result, config=CONFIG)
    with pytest.raises(InputError, match="box"):
        diagnose_alignment(structure, structure[None, :-1], result, config=CONFIG)

import dataclasses

import pytest
import torch

from inversa.alignment._exhaustive import (
    ExhaustiveConfig,
    _fourier_crop,
    _rotate_many,
    align_exhaustive,
)
from inversa.alignment._volumes import rotate_volume, shift_volume, wedge_mask
from inversa.core import phantoms, rotations
from inversa.core.errors import InputError


@pytest.fixture(scope="module")
def reference():
    model = phantoms.read_atomic_model(phantoms.builtin_structure_path())
    return phantoms.reference_density(model, voxel_size=4.0, box=20, resolution=8.0)


FAST = ExhaustiveConfig(coarse_step=30.0, refine_steps=(10.0, 3.3, 1.1), n_candidates=2)


@pytest.mark.parametrize("multiresolution", [True, False])
def test_recovers_a_rotation_and_shift_on_the_grid(reference, multiresolution):
    grid = rotations.so3_grid(FAST.coarse_step)
    truth = grid[[17, 211]]
    shifts = torch.tensor([[2.0, -1.0, 0.0], [-1.0, 0.0, 3.0]])
    particles = shift_volume(rotate_volume(reference, truth), shifts)
    config = dataclasses.replace(FAST, multiresolution=multiresolution)
    result = align_exhaustive(reference, particles, config=config)
    err = rotations.geodesic_distance(result.rotations, truth)
    assert (err < 1.5).all(), err
    torch.testing.assert_close(result.shifts, shifts, atol=0.2, rtol=0)
    assert (result.scores > 0.95).all()


def test_local_search_with_wedge_and_noise_stays_near_prior(reference):
    g = torch.Generator().manual_seed(3)
    truth = rotations.random_rotations(2, generator=g)
    shifts = torch.tensor([[0.6, -1.3, 0.4], [-0.2, 0.9, 1.7]])
    clean = shift_volume(rotate_volume(reference, truth), shifts)
    wedge = wedge_mask(reference.shape, tilt_min=-60, tilt_max=60)
    particles = torch.fft.ifftn(torch.fft.fftn(clean, dim=(-3, -2, -1)) * wedge, dim=(-3, -2, -1))
    particles = particles.real + 0.3 * reference.std() * torch.randn(clean.shape, generator=g)
    offset = rotations.axis_angle_to_matrix(torch.tensor([[0.0, 0.1, 0.0], [0.08, 0.0, -0.05]]))
    priors = truth @ offset  # about 6 and 5 degrees off
    config = ExhaustiveConfig(max_angle_deg=10.0, refine_steps=(3.0, 1.0), wedge=(-60.0, 60.0))
    result = align_exhaustive(reference, particles, config=config, prior_rotations=priors)
    assert (rotations.geodesic_distance(result.rotations, truth) < 2.0).all()
    assert (rotations.geodesic_distance(result.rotations, priors) <= 10.0 + 1e-3).all()
    torch.testing.assert_close(result.shifts, shifts, atol=0.35, rtol=0)


@pytest.mark.parametrize("n", [9, 12])
def test_batched_rotation_equals_rotate_volume(n):
    g = torch.Generator().manual_seed(n)
    volume = torch.randn(n, n, n, generator=g, dtype=torch.float64)
    rots = rotations.random_rotations(4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(_rotate_many(volume, rots), rotate_volume(volume, rots))


@pytest.mark.parametrize("n,box", [(16, 8), (15, 10)])
def test_fourier_crop_keeps_the_centre_and_low_frequencies(n, box):
    delta = torch.zeros(n, n, n, dtype=torch.float64)
    delta[n // 2, n // 2, n // 2] = 1.0
    small = _fourier_crop(delta, box)
    assert small.shape == (box, box, box)
    assert tuple(int(i) for i in torch.nonzero(small == small.max())[0]) == (box // 2,) * 3
    # A constant keeps its value (the mean is the zero frequency).
    torch.testing.assert_close(
        _fourier_crop(torch.full((n, n, n), 2.0, dtype=torch.float64), box),
        torch.full((box, box, box), 2.0, dtype=torch.float64),
    )


def test_bad_settings_and_inputs_raise_input_error(reference):
    with pytest.raises(InputError, match="decreasing"):
        ExhaustiveConfig(refine_steps=(1.0, 2.0))
    local = ExhaustiveConfig(max_angle_deg=5.0)
    with pytest.raises(InputError, match="prior_rotations"):
        align_exhaustive(reference, reference, config=local, prior_rotations=torch.eye(3)[None, :2])
    with pytest.raises(InputError, match="box"):
        align_exhaustive(reference, reference[:-1], config=FAST)
    bad = reference.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        align_exhaustive(reference, bad, config=FAST)


def test_priors_without_a_local_range_and_a_range_without_priors_search_globally(reference):
    # One rule for both aligners: local only with priors and max_angle_deg.
    truth = rotations.so3_grid(FAST.coarse_step)[[40]]
    particle = rotate_volume(reference, truth)
    far = truth @ rotations.axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 1.5]]))  # 86 deg off
    ignored = align_exhaustive(reference, particle, config=FAST, prior_rotations=far)
    no_priors = align_exhaustive(
        reference, particle, config=dataclasses.replace(FAST, max_angle_deg=5.0)
    )
    for result in (ignored, no_priors):
        assert float(rotations.geodesic_distance(result.rotations, truth).max()) < 1.5


def test_the_final_shift_weight_is_built_once_per_alignment(reference, monkeypatch):
    import inversa.alignment._exhaustive as exhaustive

    calls = []

    def counting(*args, **kwargs):
        calls.append(args[0])
        return wedge_mask(*args, **kwargs)

    monkeypatch.setattr(exhaustive, "wedge_mask", counting)
    config = dataclasses.replace(FAST, wedge=(-60.0, 60.0), refine_steps=(10.0,))
    counts = []
    for n in (1, 3):
        calls.clear()
        align_exhaustive(reference, reference.expand(n, -1, -1, -1), config=config)
        counts.append(sum(tuple(shape) == tuple(reference.shape) for shape in calls))
    # Full-box masks are built per alignment (scorer, final shifts), not per particle.
    assert counts[0] == counts[1] <= 2, counts

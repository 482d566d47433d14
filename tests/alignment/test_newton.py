"""The Newton aligner (frequency-marched) on small noise-free structures."""

import math

import pytest
import torch

from inversa.alignment._harmonics import fourier_shell_samples, sh_analysis
from inversa.alignment._newton import (
    NewtonConfig,
    _prepare_reference,
    _score_fn,
    _sigma,
    _truncate,
    align_newton,
)
from inversa.alignment._so3 import correlation_kernels, newton_maximise
from inversa.alignment._volumes import shift_volume, wedge_mask
from inversa.alignment._wigner import euler_zyz_to_matrix
from inversa.core import phantoms
from inversa.core.errors import InputError
from inversa.core.rotations import axis_angle_to_matrix, geodesic_distance, random_rotations

N_BOX = 24


@pytest.fixture(scope="module")
def structure():
    model = phantoms.read_atomic_model(phantoms.builtin_structure_path())
    voxel = 2 * model.radius() / (0.7 * N_BOX)

    def render(rotation=None):
        return phantoms.density_from_atoms(
            model,
            voxel_size=voxel,
            shape=(N_BOX,) * 3,
            rotation=rotation,
            resolution=2.5 * voxel,
            dtype=torch.float64,
        )

    return render


def _particles(render, rotations, shifts, wedge=None):
    vols = torch.stack([render(r) for r in rotations])
    vols = shift_volume(vols, shifts)
    if wedge is not None:
        w = wedge_mask(vols.shape[-3:], tilt_min=wedge[0], tilt_max=wedge[1], dtype=vols.dtype)
        vols = torch.fft.ifftn(torch.fft.fftn(vols, dim=(-3, -2, -1)) * w, dim=(-3, -2, -1)).real
    return vols


CONFIG = NewtonConfig(band_limits=(8, 14), l0=6, n_candidates=6, n_alternations=2, newton_steps=5)


def test_true_pose_scores_highest(structure):
    g = torch.Generator().manual_seed(0)
    rot = random_rotations(1, generator=g, dtype=torch.float64)
    par = _particles(structure, rot, torch.zeros(1, 3))
    for wedge in (None, (-60.0, 60.0)):
        cfg = NewtonConfig(band_limits=(12,), wedge=wedge)
        ref = _prepare_reference(structure(), cfg)
        samples = (
            fourier_shell_samples(par * ref.mask, ref.grid).to(torch.complex128) * ref.wedge_dir
        )
        coef = sh_analysis(samples, ref.grid, 12)
        kernels = correlation_kernels(_sigma(coef, ref.coef, ref.grid.shell_weights))
        score = _score_fn(kernels, ref.kernels_n, coef, ref, False, 12)
        others = random_rotations(20, generator=g, dtype=torch.float64)
        values = score(torch.cat([rot, others])[None])[0][0]
        assert values[0] > values[1:].max() + 0.05
        # N(R) is band-limited like C(R), so the Cauchy-Schwarz bound 1 holds only nearly.
        assert values[0] <= 1.05
        assert values[0] > 0.95


def test_global_alignment_recovers_rotations_and_shifts(structure):
    g = torch.Generator().manual_seed(1)
    rots = random_rotations(3, generator=g, dtype=torch.float64)
    shifts = (torch.rand(3, 3, generator=g, dtype=torch.float64) * 2 - 1) * 2
    res = align_newton(structure(), _particles(structure, rots, shifts), config=CONFIG)
    assert res.rotations.shape == (3, 3, 3) and res.shifts.shape == (3, 3)
    assert geodesic_distance(res.rotations, rots).max() < 1.0
    assert torch.linalg.vector_norm(res.shifts - shifts, dim=1).max() < 0.3
    assert (res.scores > 0.9).all()


def test_global_alignment_with_missing_wedge(structure):
    g = torch.Generator().manual_seed(2)
    rots = random_rotations(3, generator=g, dtype=torch.float64)
    shifts = (torch.rand(3, 3, generator=g, dtype=torch.float64) * 2 - 1) * 2
    cfg = NewtonConfig(
        band_limits=(8, 14), l0=6, n_candidates=6, n_alternations=2, wedge=(-60.0, 60.0)
    )
    par = _particles(structure, rots, shifts, wedge=(-60.0, 60.0))
    res = align_newton(structure(), par, config=cfg)
    assert geodesic_distance(res.rotations, rots).max() < 1.0


def test_local_mode_stays_within_max_angle(structure):
    g = torch.Generator().manual_seed(3)
    rots = random_rotations(3, generator=g, dtype=torch.float64)
    par = _particles(structure, rots, torch.zeros(3, 3, dtype=torch.float64))
    # Priors 6 degrees off: found within 1 degree when the limit allows it ...
    axes = torch.nn.functional.normalize(torch.randn(3, 3, generator=g, dtype=torch.float64), dim=1)
    prior = rots @ axis_angle_to_matrix(axes * math.radians(6.0))
    cfg = NewtonConfig(band_limits=(8, 14), max_angle_deg=10.0, n_alternations=1)
    res = align_newton(structure(), par, config=cfg, prior_rotations=prior)
    assert geodesic_distance(res.rotations, rots).max() < 1.0
    # ... and never leave the allowed cone when it does not.
    tight = NewtonConfig(band_limits=(8, 14), max_angle_deg=3.0, n_alternations=1)
    res = align_newton(structure(), par, config=tight, prior_rotations=prior)
    assert geodesic_distance(res.rotations, prior).max() <= 3.0 + 1e-6


def test_newton_converges_from_gimbal_lock(structure):
    """Start exactly at tilt = 0 (alpha, gamma degenerate) near the truth."""
    truth = euler_zyz_to_matrix(*(torch.tensor(v, dtype=torch.float64) for v in (0.4, 0.12, 0.5)))
    start = euler_zyz_to_matrix(*(torch.tensor(v, dtype=torch.float64) for v in (0.7, 0.0, 0.0)))
    assert geodesic_distance(start, truth) > 3.0
    par = _particles(structure, truth[None], torch.zeros(1, 3, dtype=torch.float64))
    cfg = NewtonConfig(band_limits=(12,))
    ref = _prepare_reference(structure(), cfg)
    samples = fourier_shell_samples(par * ref.mask, ref.grid).to(torch.complex128)
    coef = sh_analysis(samples, ref.grid, 12)
    kernels = correlation_kernels(_sigma(coef, ref.coef, ref.grid.shell_weights))
    score = _score_fn(kernels, None, coef, ref, False, 12)
    rot, _ = newton_maximise(score, start[None, None], steps=12, max_step=math.pi / 12)
    assert geodesic_distance(rot[0, 0], truth) < 0.5


def test_bad_input_raises(structure):
    ref = structure()
    with pytest.raises(InputError):
        align_newton(ref, ref[None, :-1], config=CONFIG)
    bad = ref.clone()[None]
    bad[0, 0, 0, 0] = math.nan
    with pytest.raises(InputError):
        align_newton(ref, bad, config=CONFIG)
    with pytest.raises(InputError):
        NewtonConfig(band_limits=(16, 8))
    with pytest.raises(InputError, match="max_angle_deg"):
        NewtonConfig(max_angle_deg=0.0)


def test_without_a_local_range_priors_are_ignored(structure):
    g = torch.Generator().manual_seed(4)
    rots = random_rotations(2, generator=g, dtype=torch.float64)
    par = _particles(structure, rots, torch.zeros(2, 3, dtype=torch.float64))
    far = rots @ axis_angle_to_matrix(torch.tensor([[0.0, 1.5, 0.0]] * 2, dtype=torch.float64))
    cfg = NewtonConfig(band_limits=(8, 14), l0=6, n_candidates=6, max_angle_deg=None)
    res = align_newton(structure(), par, config=cfg, prior_rotations=far)
    assert geodesic_distance(res.rotations, rots).max() < 1.0


def test_kernels_of_a_lower_band_are_the_full_kernels_truncated():
    # _march builds the kernels once at the top band and truncates them per level.
    l_max = 10
    m = torch.arange(-l_max, l_max + 1)
    valid = m.abs()[None, :] <= torch.arange(l_max + 1)[:, None]  # |m| <= l
    g = torch.Generator().manual_seed(0)
    shape = (2, l_max + 1, 2 * l_max + 1, 2 * l_max + 1)
    sigma = torch.complex(
        torch.randn(shape, generator=g, dtype=torch.float64),
        torch.randn(shape, generator=g, dtype=torch.float64),
    )
    sigma = sigma * (valid[:, :, None] & valid[:, None, :])
    full = correlation_kernels(sigma)
    for band in (3, 7):
        direct = correlation_kernels(_truncate(sigma, band))
        torch.testing.assert_close(_truncate(full, band), direct, rtol=0, atol=1e-12)

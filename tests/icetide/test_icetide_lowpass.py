"""ICE-TIDE coarse to fine under a CTF: first zeros, restored low-pass data, xcorr start."""

from __future__ import annotations

import math

import pytest
import torch
from test_icetide import _blobs, _shift_only_config  # shared with those tests

from inversa.core.errors import InputError
from inversa.core.fourier import frequency_grid
from inversa.icetide import (
    IceTideConfig,
    align_xcorr,
    alignment_errors,
    cross_correlation_shift,
    ctf_first_zero,
    filter_patches,
    fit_icetide,
    phase_flip_tilts,
    restore_lowpass,
    rigid_xf,
)
from inversa.tomography import (
    CTFParams,
    TiltGeometry,
    TiltSeriesCTF,
    TiltSeriesProjector,
    apply_ctf,
    electron_wavelength_A,
    tilt_ctf_grid,
)

PIXEL_A = 8.0


def test_first_zero_is_where_the_ctf_turns_negative():
    angles = torch.tensor([-30.0, 0.0, 30.0, 45.0])
    ctf = TiltSeriesCTF(
        angles=angles,
        defocus_u_um=torch.tensor([3.0, 2.0, 3.0, 0.5], dtype=torch.float64),
        defocus_v_um=torch.tensor([3.0, 2.0, 4.0, 0.5], dtype=torch.float64),
        astigmatism_deg=torch.tensor([0.0, 0.0, 30.0, 0.0], dtype=torch.float64),
    )
    zero = ctf_first_zero(ctf, PIXEL_A)
    # Without Cs and amplitude contrast the first zero is 1 / sqrt(lambda df); both move
    # it by a few percent at these defoci.
    lam = electron_wavelength_A(300.0)
    rough = PIXEL_A / math.sqrt(lam * 3.0e4)
    assert abs(float(zero[0]) - rough) < 0.05 * rough
    assert float(zero[1]) > float(zero[0])  # less defocus: a later zero
    assert float(zero[2]) < float(zero[0])  # astigmatism: the larger defocus comes first
    assert float(zero[3]) == 0.5  # no zero below Nyquist at 0.5 um and 8 A
    for tilt in range(3):
        r = float(zero[tilt])
        phi = torch.arange(36, dtype=torch.float64) * (math.pi / 36)
        direction = torch.stack([torch.cos(phi), torch.sin(phi)], -1)
        before = ctf.tilt_ctf(direction * (r - 1e-3) / PIXEL_A, torch.tensor(tilt))
        at = ctf.tilt_ctf(direction * r / PIXEL_A, torch.tensor(tilt))
        assert bool((before > 0).all()) and bool((at <= 0).any())


def _lowpassed(images, cutoff):
    h, w = images.shape[-2:]
    k = frequency_grid((h, w), rfft=True, norm=True, dtype=torch.float64)
    low = torch.exp(-math.log(10.0) * (k / cutoff).square())
    return filter_patches(images, low.expand(images.shape[0], -1, -1))


def test_restore_lowpass_undoes_the_ctf_below_its_first_zero():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(3, 64, 64, generator=g, dtype=torch.float64)
    ctf = TiltSeriesCTF(angles=torch.tensor([-40.0, 0.0, 40.0]), defocus_u_um=3.0)
    transfer = tilt_ctf_grid(ctf, (64, 64), pixel_size_A=PIXEL_A)
    recorded = filter_patches(images, transfer)
    cutoff = 0.6 * ctf_first_zero(ctf, PIXEL_A)
    want = _lowpassed(images, cutoff[0])
    got = restore_lowpass(recorded, ctf, pixel_size_A=PIXEL_A, cutoff=cutoff, wiener=1e-4)
    err = float((got - want).norm() / want.norm())
    assert err < 0.02  # measured 0.3 %
    # Phase flipping alone keeps the CTF's weak low frequencies: far from the projection.
    flipped = _lowpassed(phase_flip_tilts(recorded, ctf, pixel_size_A=PIXEL_A), cutoff[0])
    assert float((flipped - want).norm() / want.norm()) > 0.3
    # A larger Wiener constant damps the weakest frequencies instead of restoring them.
    damped = restore_lowpass(recorded, ctf, pixel_size_A=PIXEL_A, cutoff=cutoff, wiener=0.1)
    assert float((damped - want).norm() / want.norm()) > 5 * err


def test_lowpass_options_are_checked():
    with pytest.raises(InputError, match="ctf_lowpass must be"):
        IceTideConfig(ctf_lowpass=1.5)
    with pytest.raises(InputError, match="ctf_lowpass_from"):
        IceTideConfig(ctf_lowpass_from=0.8, ctf_lowpass_to=0.5)
    with pytest.raises(InputError, match="ctf_wiener"):
        IceTideConfig(ctf_wiener=0.0)
    with pytest.raises(InputError, match="init must be"):
        IceTideConfig(init="projmatch")


def _ctf_series(seed: int, amplitude: float):
    """Tiny blob series, shifts uniform in +-amplitude px, 3 um CTF at 8 A, no noise."""
    shape = (8, 32, 32)
    volume, _ = _blobs(shape, 20, seed=seed, sigma=1.8, margin=3)
    geometry = TiltGeometry.from_range(-60, 60, 15.0)
    t = geometry.n_tilts
    g = torch.Generator().manual_seed(seed)
    true = (torch.rand(t, 2, generator=g, dtype=torch.float64) * 2 - 1) * amplitude
    xf = rigid_xf(torch.zeros(t, dtype=torch.float64), true)
    raw = TiltSeriesProjector(volume_shape=shape, geometry=geometry.replace(xf=xf))
    ctf = TiltSeriesCTF(angles=geometry.angles, defocus_u_um=3.0)
    recorded = apply_ctf(raw.forward(volume), CTFParams(pixel_size_A=PIXEL_A, defocus_um=3.0))
    return (10.0 - recorded).float(), geometry, ctf, xf


def test_xcorr_start_is_align_xcorr_of_the_phase_flipped_stack():
    stack, geometry, ctf, _xf = _ctf_series(seed=2, amplitude=2.0)
    config = IceTideConfig(steps=0, local_grid=0, init="xcorr", log2_table_size=8)
    fit = fit_icetide(stack, geometry, config=config, ctf=ctf, pixel_size_A=PIXEL_A)
    flipped = phase_flip_tilts(stack.double(), ctf, pixel_size_A=PIXEL_A)
    want = align_xcorr(flipped, geometry.angles)
    assert torch.allclose(fit.xf, want, atol=1e-5)
    assert float(want[:, :, 2].abs().max()) > 0.5  # a real start, not zero
    # A given .xf wins over init.
    given = rigid_xf(torch.zeros(geometry.n_tilts), torch.ones(geometry.n_tilts, 2))
    fit = fit_icetide(
        stack, geometry.replace(xf=given), config=config, ctf=ctf, pixel_size_A=PIXEL_A
    )
    assert torch.allclose(fit.xf, given.double(), atol=1e-6)


def test_cross_correlation_lowpass_is_applied():
    g = torch.Generator().manual_seed(4)
    ref = torch.randn(32, 32, generator=g, dtype=torch.float64)
    moving = torch.roll(ref, shifts=(2, -3), dims=(0, 1))  # rows +2, columns -3: s = (3, -2)
    for lowpass in (0.1, 0.25):
        shift, _peak = cross_correlation_shift(ref, moving, lowpass=lowpass)
        assert torch.allclose(shift, torch.tensor([3.0, -2.0], dtype=torch.float64), atol=0.1)
    # On white noise the normalised peak depends on the band kept.
    peaks = [float(cross_correlation_shift(ref, moving, lowpass=lp)[1]) for lp in (0.1, 0.4)]
    assert abs(peaks[0] - peaks[1]) > 1e-3


def test_lowpass_phase_pulls_in_shifts_the_ctf_model_alone_does_not():
    # Shifts up to 4 px under a 3 um CTF: the CTF-filtered images have side minima a few
    # pixels apart and the patch model from zero stops in them (measured 1.94 px median);
    # half the run on the restored data low-passed below the first zero reaches 0.35 px.
    stack, geometry, ctf, xf = _ctf_series(seed=2, amplitude=4.0)

    def median_error(lowpass: float) -> float:
        config = _shift_only_config(ctf_patch=16, ctf_lowpass=lowpass)
        fit = fit_icetide(stack, geometry, config=config, ctf=ctf, pixel_size_A=PIXEL_A)
        return alignment_errors(fit.xf, xf)["shift_err_median_px"]

    assert median_error(0.5) < 0.5
    assert median_error(0.0) > 1.0


def test_resume_checks_the_lowpass_phase_only_with_a_ctf(tmp_path):
    stack = 10.0 - torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    geometry = TiltGeometry(angles=torch.tensor([-20.0, 0.0, 20.0]))
    config = IceTideConfig(
        steps=4, rays_per_step=64, samples_per_ray=4, local_grid=0, thickness=8,
        log2_table_size=8, n_levels=2, base_resolution=4, hidden=(8,), ctf_patch=4,
        checkpoint_every=2,
    )  # fmt: skip
    shorter = IceTideConfig(**{**config.__dict__, "ctf_lowpass": 0.25})
    ctf = TiltSeriesCTF(angles=geometry.angles, defocus_u_um=2.0)
    ckpt = tmp_path / "ctf.pt"
    fit_icetide(stack, geometry, config=config, ctf=ctf, pixel_size_A=PIXEL_A, checkpoint=ckpt)
    with pytest.raises(InputError, match=r"CTF low-pass until 2\).*CTF low-pass until 1\)"):
        fit_icetide(stack, geometry, config=shorter, ctf=ctf, pixel_size_A=PIXEL_A, checkpoint=ckpt)
    plain = tmp_path / "plain.pt"  # without a CTF there is no such phase to disagree on
    fit_icetide(stack, geometry, config=config, checkpoint=plain)
    fit_icetide(stack, geometry, config=shorter, checkpoint=plain)

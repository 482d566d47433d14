"""Per-particle 3-D CTF x exposure weights: the weight, the aligners and the average."""

import dataclasses

import pytest
import torch

from inversa.alignment import (
    ExhaustiveConfig,
    NewtonConfig,
    ParticleCTF,
    align_exhaustive,
    align_newton,
    average_particles,
    ctf_weight_volume,
    spherical_mask,
    wedge_mask,
    wiener_constants,
)
from inversa.alignment._volumes import fourier_frequencies
from inversa.bench.alignment import make_ctf_particles
from inversa.core.errors import InputError
from inversa.core.fourier import fourier_shell_correlation
from inversa.core.rotations import geodesic_distance
from inversa.tomography import (
    CTFParams,
    TiltSeriesCTF,
    ctf3d_weight,
    ctf_2d,
    ctf_at,
    dose_symmetric_exposure,
    exposure_filter,
)

ANGLES = torch.arange(-60.0, 61.0, 3.0, dtype=torch.float64)


def _series(**kw):
    base = dict(
        angles=ANGLES,
        defocus_u_um=3.0 + 0.05 * torch.sin(ANGLES),
        defocus_v_um=2.9,
        astigmatism_deg=25.0,
        pre_exposure=dose_symmetric_exposure(ANGLES, 3.0),
    )
    base.update(kw)
    return TiltSeriesCTF(**base)


def test_ctf_at_matches_ctf_2d_without_astigmatism():
    params = CTFParams(pixel_size_A=4.0, defocus_um=2.5)
    grid = ctf_2d(params, (32, 32), rfft=False).double()
    k = torch.stack(
        torch.meshgrid(
            torch.fft.fftfreq(32, d=4.0, dtype=torch.float64),
            torch.fft.fftfreq(32, d=4.0, dtype=torch.float64),
            indexing="ij",
        )[::-1],
        dim=-1,
    )  # (ky rows, kx cols) -> (..., (kx, ky))
    mine = ctf_at(k, defocus_u_um=2.5, defocus_v_um=2.5)
    torch.testing.assert_close(mine, grid, atol=1e-4, rtol=0)


def test_astigmatism_follows_the_azimuth_of_u():
    k = torch.tensor([[0.05, 0.0], [0.0, 0.05]], dtype=torch.float64)
    astig = ctf_at(k, defocus_u_um=3.0, defocus_v_um=2.0, astigmatism_deg=0.0)
    along_u = ctf_at(k[:1], defocus_u_um=3.0, defocus_v_um=3.0)
    along_v = ctf_at(k[1:], defocus_u_um=2.0, defocus_v_um=2.0)
    torch.testing.assert_close(astig, torch.cat([along_u, along_v]))


def test_exposure_filter_is_one_at_zero_and_falls_with_dose_and_lower_voltage():
    k = torch.tensor([0.0, 0.05, 0.1, 0.2], dtype=torch.float64)
    assert exposure_filter(k, 0.0).eq(1).all()
    low, high = exposure_filter(k, 10.0), exposure_filter(k, 40.0)
    assert low[0] == 1 and high[0] == 1
    assert (high[1:] < low[1:]).all() and (low[2:] < low[1:-1]).all()
    assert (exposure_filter(k, 10.0, voltage_kv=200.0)[1:] < low[1:]).all()


def test_dose_symmetric_order_starts_at_zero_tilt():
    exposure = dose_symmetric_exposure(ANGLES, 2.0)
    assert exposure[ANGLES == 0].item() == 0.0
    order = torch.argsort(exposure)
    assert (ANGLES[order].abs().diff() >= 0).all()
    assert sorted(exposure.tolist()) == [2.0 * i for i in range(ANGLES.numel())]


def test_unit_slices_are_exactly_the_binary_wedge():
    k = fourier_frequencies((16, 16, 16), dtype=torch.float64) / 5.0
    weight = ctf3d_weight(k, _series(), ctf_weighted=False, dose_weighted=False)
    torch.testing.assert_close(weight, wedge_mask((16, 16, 16), dtype=torch.float64))


def test_on_a_slice_the_weight_is_that_tilt_ctf_times_its_exposure_filter():
    ts = _series()
    position = torch.tensor([300.0, -50.0, 400.0], dtype=torch.float64)
    local = ts.at_position(position)
    i = 27
    t = torch.deg2rad(ANGLES[i])
    k2 = torch.tensor([[0.03, 0.02], [-0.05, 0.01], [0.0, 0.04]], dtype=torch.float64)
    k3 = torch.stack([k2[:, 0] * torch.cos(t), k2[:, 1], k2[:, 0] * torch.sin(t)], dim=-1)
    expected = local.tilt_ctf(k2, torch.full((3,), i)) * exposure_filter(
        k2.norm(dim=-1), local.pre_exposure[i]
    )
    weight = ctf3d_weight(k3, ts, position_A=position)
    torch.testing.assert_close(weight[:2], expected[:2])
    flipped = ctf3d_weight(k3, ts, position_A=position, phase_flipped=True)
    torch.testing.assert_close(flipped[:2], expected[:2].abs())


def test_depth_offset_shifts_the_defocus_like_relion():
    ts = _series(handedness=-1.0)
    position = torch.tensor([1000.0, 0.0, 500.0], dtype=torch.float64)
    local = ts.at_position(position)
    depth = -1000.0 * torch.sin(torch.deg2rad(ANGLES)) + 500.0 * torch.cos(torch.deg2rad(ANGLES))
    torch.testing.assert_close(local.defocus_u_um - ts.defocus_u_um, -depth * 1e-4)
    torch.testing.assert_close(local.defocus_v_um - ts.defocus_v_um, -depth * 1e-4)


def test_grid_weights_are_even_and_match_pointwise_evaluation():
    ctf = ParticleCTF(
        series=(_series(),),
        series_index=torch.zeros(1, dtype=torch.long),
        positions_A=torch.tensor([[100.0, 0.0, 50.0]]),
        pixel_size_A=5.0,
    )
    for shape in [(15, 15, 15), (16, 16, 16)]:
        k = fourier_frequencies(shape, dtype=torch.float64)
        grid = ctf.on_grid(shape)[0]
        direct = ctf.weights(k)[0]
        nyquist = (k.abs() == 0.5).any(-1)
        torch.testing.assert_close(grid[~nyquist], direct[~nyquist])
    centred = ctf_weight_volume(ctf, 0, 15)
    torch.testing.assert_close(centred, centred.flip(0, 1, 2))


def test_particle_ctf_checks_its_inputs():
    with pytest.raises(InputError):
        ParticleCTF(
            series=(_series(),),
            series_index=torch.tensor([1]),
            positions_A=torch.zeros(1, 3),
            pixel_size_A=5.0,
        )
    with pytest.raises(InputError):
        ParticleCTF(
            series=(_series(),),
            series_index=torch.tensor([0, 0]),
            positions_A=torch.zeros(1, 3),
            pixel_size_A=5.0,
        )
    with pytest.raises(InputError):
        TiltSeriesCTF(angles=ANGLES, defocus_u_um=torch.ones(3))


@pytest.fixture(scope="module")
def ctf_data():
    """Noise-free 32^3 ribosome subtomograms from CTF'd, dose-filtered tilt series.

    At 14 A per voxel and 7-9 um defocus the CTF's first zero (about 40 A) lies inside
    the box's band, so the sign flips that a plain average cancels are present.
    """
    return make_ctf_particles(32, 4, snr_db=None, seed=0, max_shift=1.5, defocus_range_um=(7, 9))


FAST = NewtonConfig(band_limits=(8, 12), l0=6, n_candidates=6, n_alternations=2)


def test_newton_with_unit_slices_equals_the_wedge_aligner(ctf_data):
    ref, parts, _, _, ctf, _ = ctf_data
    unit = ParticleCTF(
        series=ctf.series,
        series_index=ctf.series_index,
        positions_A=ctf.positions_A,
        pixel_size_A=ctf.pixel_size_A,
        dose_weighted=False,
        ctf_weighted=False,
    )
    wedge = align_newton(ref, parts[:2], config=dataclasses.replace(FAST, wedge=(-60.0, 60.0)))
    special = align_newton(ref, parts[:2], config=FAST, ctf=unit.subset(slice(0, 2)))
    torch.testing.assert_close(special.rotations, wedge.rotations, atol=1e-3, rtol=0)
    torch.testing.assert_close(special.shifts, wedge.shifts, atol=1e-3, rtol=0)
    torch.testing.assert_close(special.scores, wedge.scores, atol=1e-3, rtol=0)


def test_newton_with_ctf_weights_recovers_poses_and_scores_at_most_one(ctf_data):
    ref, parts, rots, shifts, ctf, _ = ctf_data
    res = align_newton(ref, parts, config=FAST, ctf=ctf)
    err = geodesic_distance(res.rotations.double(), rots.double())
    assert float(err.max()) < 3.0, err
    torch.testing.assert_close(res.shifts, shifts, atol=0.5, rtol=0)
    assert (res.scores <= 1.02).all() and (res.scores > 0.5).all(), res.scores
    with pytest.raises(InputError):
        align_newton(ref, parts, config=FAST, ctf=ctf.subset(slice(0, 2)))


def test_exhaustive_with_ctf_weights_in_local_mode(ctf_data):
    ref, parts, rots, _, ctf, _ = ctf_data
    config = ExhaustiveConfig(refine_steps=(4.0, 2.0, 1.0), max_angle_deg=8.0, n_candidates=1)
    res = align_exhaustive(
        ref, parts[:1], config=config, prior_rotations=rots[:1], ctf=ctf.subset(slice(0, 1))
    )
    err = geodesic_distance(res.rotations.double(), rots[:1].double())
    assert float(err[0]) < 3.0
    assert 0.5 < float(res.scores[0]) <= 1.02


def test_ctf_corrected_average_beats_the_plain_average(ctf_data):
    ref, parts, rots, shifts, ctf, voxel = ctf_data
    noisy = parts + 0.05 * parts.std() * torch.randn(
        parts.shape, generator=torch.Generator().manual_seed(1)
    )
    plain = average_particles(noisy, rots, shifts, wedge=(-60.0, 60.0), pixel_size=voxel)
    corrected = average_particles(noisy, rots, shifts, ctf=ctf, pixel_size=voxel)
    mask = spherical_mask(ref.shape)
    f_plain = fourier_shell_correlation(plain.map * mask, ref * mask)
    f_ctf = fourier_shell_correlation(corrected.map * mask, ref * mask)
    beyond_zero = slice(12, 16)  # past the first CTF zero (shell ~11 at 7-9 um)
    assert f_ctf[beyond_zero].mean() > f_plain[beyond_zero].mean() + 0.3, (f_ctf, f_plain)
    assert f_ctf[1:8].min() > 0.8
    # No FSC shell measures the corners beyond Nyquist: the Wiener maps leave them empty
    # (they held 10x the signal's power in the demo's average before).
    from inversa.core.fourier import shell_index

    corners = shell_index(ref.shape, fftshift=False) > max(ref.shape) // 2  # fftn layout
    for vol in (corrected.map, corrected.half1, corrected.half2):
        power = torch.fft.fftn(vol.double()).abs().square()
        assert float(power[corners].max()) < 1e-12 * float(power.max())


def test_wiener_constant_falls_as_the_halves_agree():
    g = torch.Generator().manual_seed(0)
    signal = torch.fft.fftn(torch.randn(16, 16, 16, generator=g, dtype=torch.float64))
    noise = lambda: torch.fft.fftn(torch.randn(16, 16, 16, generator=g, dtype=torch.float64))  # noqa: E731
    denom = torch.full((16, 16, 16), 4.0, dtype=torch.float64)
    mask = torch.ones(16, 16, 16, dtype=torch.float64)
    clean = wiener_constants(signal + 0.1 * noise(), signal + 0.1 * noise(), denom, mask)
    dirty = wiener_constants(signal + 3.0 * noise(), signal + 3.0 * noise(), denom, mask)
    assert (clean[1:7, 1:7, 1:7] < dirty[1:7, 1:7, 1:7]).all()  # shells inside Nyquist
    assert (clean > 0).all()


def test_wiener_constants_sit_on_their_shells_in_the_fftn_layout():
    # Halves that agree below 0.2 cycles/voxel and not above: small constants at low
    # frequencies, large ones at high, where torch.fft.fftn puts them (zero at index 0).
    from inversa.core.fourier import radial_frequency

    g = torch.Generator().manual_seed(0)
    shape = (16, 16, 16)
    k = radial_frequency(shape, fftshift=False, dtype=torch.float64)  # fftn layout
    low = (k < 0.2).to(torch.float64)
    signal = torch.fft.fftn(torch.randn(shape, generator=g, dtype=torch.float64))

    def noise():
        return torch.fft.fftn(torch.randn(shape, generator=g, dtype=torch.float64))

    c = wiener_constants(
        10 * low * signal + noise(),
        10 * low * signal + noise(),
        torch.ones(shape, dtype=torch.float64),
        torch.ones(shape, dtype=torch.float64),
    )
    assert float(c[k < 0.15].max()) < 0.1 * float(c[(k > 0.3) & (k <= 0.5)].min())

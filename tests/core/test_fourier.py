import math

import numpy as np
import pytest
import torch

from inversa.core.fourier import (
    RAMP_FILTER_NAMES,
    apply_ramp_filter,
    fftn_centered,
    fourier_shell_correlation,
    frequency_grid,
    fsc_resolution,
    ifftn_centered,
    lowpass,
    radial_frequency,
    ramp_filter,
    shell_index,
)


@pytest.mark.parametrize("shape", [(6, 7), (5, 8), (4, 5, 6), (7, 7, 7)])
def test_centred_delta_has_constant_real_spectrum(shape):
    x = torch.zeros(shape, dtype=torch.float64)
    x[tuple(n // 2 for n in shape)] = 1.0
    dim = tuple(range(-len(shape), 0))
    spec = fftn_centered(x, dim=dim)
    torch.testing.assert_close(spec, torch.ones(shape, dtype=torch.complex128))
    ortho = fftn_centered(x, dim=dim, norm="ortho")
    expected = torch.full(shape, 1 / math.sqrt(math.prod(shape)), dtype=torch.float64)
    torch.testing.assert_close(ortho.real, expected)
    torch.testing.assert_close(ortho.imag, torch.zeros(shape, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(6, 7), (3, 5, 4)])
def test_fftn_centered_matches_numpy_and_round_trips(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn((2, *shape), generator=g, dtype=torch.float64)
    axes = tuple(range(-len(shape), 0))
    spec = fftn_centered(x, dim=axes)
    ref = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x.numpy(), axes=axes), axes=axes), axes=axes)
    np.testing.assert_allclose(spec.numpy(), ref, atol=1e-12)
    back = ifftn_centered(spec, dim=axes)
    torch.testing.assert_close(back.real, x)
    assert back.imag.abs().max() < 1e-12


@pytest.mark.parametrize("shape", [(6, 7), (4, 5, 6)])
def test_frequency_grid_is_the_phase_of_a_shifted_delta(shape):
    # A delta at coordinate r (x, y, z order) has spectrum exp(-2 pi i k.r).
    r = torch.tensor([2.0, -1.0, 1.0][: len(shape)], dtype=torch.float64)
    x = torch.zeros(shape, dtype=torch.float64)
    index = tuple(n // 2 + int(c) for n, c in zip(shape, r.flip(0), strict=True))
    x[index] = 1.0
    dim = tuple(range(-len(shape), 0))
    k = frequency_grid(shape, dtype=torch.float64)
    assert k.shape == (*shape, len(shape))
    expected = torch.exp(-2j * math.pi * (k @ r))
    torch.testing.assert_close(fftn_centered(x, dim=dim), expected)
    # The same with the rfft layout.
    k_half = frequency_grid(shape, rfft=True, dtype=torch.float64)
    assert k_half.shape == (*shape[:-1], shape[-1] // 2 + 1, len(shape))
    shifted = torch.fft.ifftshift(x, dim=dim)
    torch.testing.assert_close(
        torch.fft.rfftn(shifted, dim=dim), torch.exp(-2j * math.pi * (k_half @ r))
    )


def test_frequency_grid_zero_at_centre_and_radial():
    shape = (5, 6, 8)
    k = frequency_grid(shape)
    assert torch.all(k[2, 3, 4] == 0)
    assert k[2, 3, 5, 0] == pytest.approx(1 / 8)  # x component along the last axis
    assert k[2, 4, 4, 1] == pytest.approx(1 / 6)
    assert k[3, 3, 4, 2] == pytest.approx(1 / 5)
    r = radial_frequency(shape)
    torch.testing.assert_close(r, torch.linalg.vector_norm(k, dim=-1))
    assert radial_frequency(shape, rfft=True).shape == (5, 6, 5)


def test_shell_index():
    s = shell_index((8, 8))
    assert s.dtype == torch.int64
    assert s[4, 4] == 0 and s[4, 0] == 4 and s[0, 0] == round(math.sqrt(32))
    half = shell_index((8, 8, 8), rfft=True)
    assert half.shape == (8, 8, 5)
    assert half[0, 0, 0] == 0 and half[0, 0, 4] == 4 and half[3, 0, 0] == 3
    rect = shell_index((8, 6))  # rectangular: shells in units of the longest axis
    assert rect[4, 3] == 0 and rect[4, 0] == 4 and rect[0, 3] == 4


def test_fsc_of_rectangular_volume():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 10, 12, dtype=torch.float64, generator=g)
    fsc = fourier_shell_correlation(a, 2 * a)
    assert fsc.shape == (7,)
    torch.testing.assert_close(fsc, torch.ones(7, dtype=torch.float64))
    noisy = fourier_shell_correlation(a, torch.randn(a.shape, dtype=a.dtype, generator=g))
    assert noisy[1:].abs().max() < 0.9


@pytest.mark.parametrize("n", [8, 13, 64])
def test_ramp_filter_is_the_dft_of_the_discrete_kernel(n):
    filt = ramp_filter(n, dtype=torch.float64)
    assert filt.shape == (n // 2 + 1,)
    h = np.fft.irfft(filt.numpy(), n=n)
    k = np.fft.fftfreq(n, d=1.0 / n)
    expected = np.where(k % 2 == 1, -1.0 / (np.pi * np.maximum(np.abs(k), 1)) ** 2, 0.0)
    expected[0] = 0.25
    np.testing.assert_allclose(h, expected, atol=1e-14)


def test_ramp_filter_is_close_to_abs_f_with_small_positive_dc():
    n = 256
    filt = ramp_filter(n, dtype=torch.float64)
    f = torch.fft.rfftfreq(n, dtype=torch.float64)
    assert 0 < filt[0] < 1 / n
    assert torch.allclose(filt[8:], f[8:], rtol=0.01, atol=0)
    assert filt[-1] == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("name", RAMP_FILTER_NAMES)
def test_ramp_filter_windows_and_cutoff(name):
    n = 64
    full = ramp_filter(n, name="ramp", dtype=torch.float64)
    filt = ramp_filter(n, name=name, cutoff=0.5, dtype=torch.float64)
    f = torch.fft.rfftfreq(n, dtype=torch.float64)
    assert torch.all(filt[f > 0.25] == 0)
    window = filt[1:17] / full[1:17]
    end = {"ramp": 1.0, "shepp-logan": 2 / math.pi, "cosine": 0.0, "hann": 0.0}[name]
    assert window[-1].item() == pytest.approx(end, abs=1e-12)  # f = 0.25, the cutoff
    assert torch.all(window <= 1 + 1e-12) and torch.all(torch.diff(window) <= 1e-12)


def test_ramp_filter_rejects_bad_arguments():
    with pytest.raises(ValueError, match="ramp, shepp-logan, cosine, hann"):
        ramp_filter(16, name="hamming")
    with pytest.raises(ValueError, match="cutoff"):
        ramp_filter(16, cutoff=0.0)


@pytest.mark.parametrize("n", [7, 16])
def test_apply_ramp_filter_is_linear_convolution_with_kernel(n):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, n, generator=g, dtype=torch.float64)
    out = apply_ramp_filter(x)
    k = np.arange(-(n - 1), n)
    h = np.where(k % 2 == 1, -1.0 / (np.pi * np.maximum(np.abs(k), 1)) ** 2, 0.0)
    h[n - 1] = 0.25
    expected = np.stack([np.convolve(row, h)[n - 1 : 2 * n - 1] for row in x.numpy()])
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-13)
    # Along another dimension, and float32 in -> float32 out.
    out_t = apply_ramp_filter(x.T.contiguous().float(), dim=0)
    assert out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t.T.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("n_det", [63, 64])
def test_fbp_of_disk_recovers_amplitude(n_det):
    # Line integrals of a unit disk of radius R: p(t) = 2 sqrt(R^2 - t^2), the same at
    # every angle. FBP f(r) = (pi / K) sum_theta q(r cos theta) must give 1 inside.
    radius, n_angles = 20.0, 180
    t = torch.arange(n_det, dtype=torch.float64) - n_det // 2
    p = 2 * torch.sqrt(torch.clamp(radius**2 - t**2, min=0))
    q = apply_ramp_filter(p)
    theta = torch.arange(n_angles, dtype=torch.float64) * math.pi / n_angles
    for r in (0.0, 5.5, 12.0):
        s = r * torch.cos(theta) + n_det // 2
        i0 = s.floor().long()
        frac = s - i0
        samples = (1 - frac) * q[i0] + frac * q[i0 + 1]
        value = math.pi / n_angles * samples.sum()
        assert value.item() == pytest.approx(1.0, abs=0.02)
    # Outside the disk the reconstruction is near zero.
    s = 28.0 * torch.cos(theta) + n_det // 2
    i0 = s.floor().long()
    samples = (1 - (s - i0)) * q[i0] + (s - i0) * q[i0 + 1]
    assert abs(math.pi / n_angles * samples.sum().item()) < 0.02


def _fsc_bruteforce(a, b):
    fa = np.fft.fftn(a)
    fb = np.fft.fftn(b)
    n = a.shape[0]
    k = np.stack(np.meshgrid(*[np.fft.fftfreq(s) for s in a.shape], indexing="ij"))
    shells = np.round(np.sqrt((k**2).sum(0)) * n).astype(int)
    out = []
    for s in range(n // 2 + 1):
        m = shells == s
        num = np.real(fa[m] * np.conj(fb[m])).sum()
        out.append(num / np.sqrt((np.abs(fa[m]) ** 2).sum() * (np.abs(fb[m]) ** 2).sum()))
    return np.array(out)


@pytest.mark.parametrize("shape", [(16, 16), (15, 15), (8, 8, 8), (9, 9, 9)])
def test_fsc_matches_full_spectrum_definition(shape):
    g = torch.Generator().manual_seed(2)
    a = torch.randn(shape, generator=g, dtype=torch.float64)
    b = a + 0.7 * torch.randn(shape, generator=g, dtype=torch.float64)
    fsc = fourier_shell_correlation(a, b)
    assert fsc.shape == (shape[0] // 2 + 1,)
    np.testing.assert_allclose(fsc.numpy(), _fsc_bruteforce(a.numpy(), b.numpy()), atol=1e-12)
    torch.testing.assert_close(
        fourier_shell_correlation(a, a), torch.ones(shape[0] // 2 + 1, dtype=torch.float64)
    )
    torch.testing.assert_close(
        fourier_shell_correlation(a, -2 * a), -torch.ones(shape[0] // 2 + 1, dtype=torch.float64)
    )


def test_fsc_batched_and_n_shells():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(3, 12, 12, generator=g, dtype=torch.float64)
    b = torch.randn(3, 12, 12, generator=g, dtype=torch.float64)
    fsc = fourier_shell_correlation(a, b, ndim=2)
    assert fsc.shape == (3, 7)
    for i in range(3):
        torch.testing.assert_close(fsc[i], fourier_shell_correlation(a[i], b[i]))
    short = fourier_shell_correlation(a, b, ndim=2, n_shells=4)
    torch.testing.assert_close(short, fsc[:, :4])
    with pytest.raises(ValueError, match="ndim"):
        fourier_shell_correlation(a[None], b[None])


def test_fsc_resolution_interpolates_first_crossing():
    fsc = torch.tensor([1.0, 0.9, 0.5, 0.1, 0.3, 0.0])  # box 10
    # Crossing 0.143 between shells 2 (0.5) and 3 (0.1): s = 2 + 0.357 / 0.4.
    s = 2 + (0.5 - 0.143) / 0.4
    assert fsc_resolution(fsc, pixel_size=1.5) == pytest.approx(1.5 * 10 / s)
    assert fsc_resolution(fsc, threshold=0.5) == pytest.approx(10 / 2)
    assert fsc_resolution(torch.ones(9), pixel_size=2.0) == 4.0
    assert fsc_resolution(torch.tensor([0.1, 0.0])) == math.inf


def test_lowpass_keeps_low_and_removes_high_frequencies():
    n = 32
    y, x = torch.meshgrid(
        torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij"
    )
    low = torch.cos(2 * math.pi * 2 * x / n)  # 1/16 cycles/pixel
    high = torch.cos(2 * math.pi * 12 * y / n)  # 3/8 cycles/pixel
    out = lowpass(low + high + 3.0, resolution=5.0, pixel_size=1.0)  # cutoff 0.2
    torch.testing.assert_close(out, low + 3.0)
    vol = torch.randn(2, 8, 8, 8, dtype=torch.float32, generator=torch.Generator().manual_seed(4))
    out = lowpass(vol, resolution=4.0, ndim=3, soft_width=0.0)
    assert out.shape == vol.shape and out.dtype == torch.float32
    spec = torch.fft.rfftn(out.double(), dim=(-3, -2, -1))
    f = radial_frequency((8, 8, 8), rfft=True, dtype=torch.float64)
    assert spec[..., f > 0.25].abs().max() < 1e-5
    torch.testing.assert_close(
        spec[..., f <= 0.25],
        torch.fft.rfftn(vol.double(), dim=(-3, -2, -1))[..., f <= 0.25],
        rtol=1e-5,
        atol=1e-4,
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    x = torch.randn(2, 16, 16, device="cuda", dtype=torch.float64)
    cpu = x.cpu()
    torch.testing.assert_close(apply_ramp_filter(x).cpu(), apply_ramp_filter(cpu))
    torch.testing.assert_close(
        fourier_shell_correlation(x, 2 * x + 1, ndim=2).cpu(),
        fourier_shell_correlation(cpu, 2 * cpu + 1, ndim=2),
    )
    low = lowpass(x, resolution=4.0, ndim=2)
    torch.testing.assert_close(low.cpu(), lowpass(cpu, resolution=4.0, ndim=2))
    assert shell_index((8, 8), device="cuda").device.type == "cuda"

import math

import pytest
import torch

from inversa.core.errors import InputError
from inversa.tomography._ctf import CTFOperator, CTFParams, apply_ctf, ctf_2d, phase_flip


def _wavelength_A(voltage_kv: float) -> float:
    # Relativistic electron wavelength from CODATA constants (independent of torch-ctf).
    h, m, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 299792458.0
    v = voltage_kv * 1e3
    return h / math.sqrt(2 * m * e * v * (1 + e * v / (2 * m * c**2))) * 1e10


def _reference_ctf(k2: torch.Tensor, p: CTFParams, defocus_um: float) -> torch.Tensor:
    lam = _wavelength_A(p.voltage_kv)
    df = defocus_um * 1e4
    cs = p.spherical_aberration_mm * 1e7
    phase = (
        math.pi * lam * df * k2
        - math.pi / 2 * cs * lam**3 * k2**2
        + math.radians(p.phase_shift_deg)
        + math.asin(p.amplitude_contrast)
    )
    return torch.sin(phase) * torch.exp(-p.b_factor / 4 * k2)


def _k2_grid(h: int, w: int, pixel: float, *, rfft: bool) -> torch.Tensor:
    ky = torch.fft.fftfreq(h, d=pixel, dtype=torch.float64)
    kx = (torch.fft.rfftfreq if rfft else torch.fft.fftfreq)(w, d=pixel, dtype=torch.float64)
    return ky[:, None] ** 2 + kx[None, :] ** 2


def test_ctf_at_zero_frequency_is_plus_amplitude_contrast():
    # torch-ctf's sign convention: CTF(0) = +A (positive contrast transfer at low frequency).
    c = ctf_2d(CTFParams(pixel_size_A=1.5, defocus_um=2.0, amplitude_contrast=0.07), (16, 16))
    assert float(c[0, 0]) == pytest.approx(0.07, abs=1e-6)
    c90 = ctf_2d(CTFParams(pixel_size_A=1.5, defocus_um=2.0, phase_shift_deg=90.0), (16, 16))
    assert float(c90[0, 0]) == pytest.approx(math.sqrt(1 - 0.07**2), abs=1e-6)


@pytest.mark.parametrize(
    ("shape", "rfft"), [((12, 16), True), ((13, 15), True), ((12, 15), False), ((11, 10), False)]
)
def test_ctf_matches_the_analytic_formula(shape, rfft):
    p = CTFParams(
        pixel_size_A=2.0,
        defocus_um=torch.tensor([1.0, 3.5]),
        voltage_kv=200.0,
        spherical_aberration_mm=2.0,
        amplitude_contrast=0.1,
        phase_shift_deg=20.0,
        b_factor=80.0,
    )
    c = ctf_2d(p, shape, rfft=rfft)
    k2 = _k2_grid(*shape, 2.0, rfft=rfft)
    assert c.shape == (2, *k2.shape)
    for t, df in enumerate([1.0, 3.5]):
        torch.testing.assert_close(c[t].double(), _reference_ctf(k2, p, df), atol=2e-5, rtol=0)


@pytest.mark.parametrize("defocus_um", [1.0, 2.5, 4.0])
def test_first_zero_matches_analytic_position(defocus_um):
    p = CTFParams(pixel_size_A=1.0, defocus_um=defocus_um)
    profile = ctf_2d(p, (1, 2048))[0].double()
    k = torch.fft.rfftfreq(2048, d=1.0, dtype=torch.float64)
    i = int(torch.nonzero(profile < 0)[0])
    k_zero = float(k[i - 1] + (k[i] - k[i - 1]) * profile[i - 1] / (profile[i - 1] - profile[i]))
    # First zero: pi lam df k^2 - pi/2 Cs lam^3 k^4 + asin(A) = pi, the smaller root in k^2.
    lam, df, cs = _wavelength_A(300.0), defocus_um * 1e4, 2.7e7
    a, b, c = math.pi / 2 * cs * lam**3, math.pi * lam * df, math.pi - math.asin(0.07)
    u = (b - math.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert k_zero == pytest.approx(math.sqrt(u), rel=1e-3)


def test_rfft_half_plane_is_part_of_full_plane():
    p = CTFParams(pixel_size_A=1.2, defocus_um=1.7, b_factor=30.0)
    for shape in [(10, 14), (9, 11)]:
        full = ctf_2d(p, shape, rfft=False)
        half = ctf_2d(p, shape, rfft=True)
        torch.testing.assert_close(half, full[:, : shape[1] // 2 + 1])


def test_apply_ctf_is_fourier_multiplication_per_tilt():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 10, 9, generator=g, dtype=torch.float64)
    defocus = torch.tensor([1.0, 2.0, 3.0])
    p = CTFParams(pixel_size_A=2.0, defocus_um=defocus)
    out = apply_ctf(x, p)
    assert out.shape == x.shape and out.dtype == torch.float64
    for t in range(3):
        pt = CTFParams(pixel_size_A=2.0, defocus_um=float(defocus[t]))
        full = ctf_2d(pt, (10, 9), rfft=False).double()
        ref = torch.fft.ifft2(torch.fft.fft2(x[:, t]) * full).real
        torch.testing.assert_close(out[:, t], ref, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(apply_ctf(x[:, t], pt), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(16, 16), (15, 17)])
def test_phase_flip_of_ctf_has_nonnegative_transfer(shape):
    p = CTFParams(pixel_size_A=1.0, defocus_um=1.5)
    delta = torch.zeros(shape, dtype=torch.float64)
    delta[0, 0] = 1.0  # FFT origin: its spectrum is 1 everywhere
    transfer = torch.fft.rfft2(phase_flip(apply_ctf(delta, p), p))
    assert float(transfer.imag.abs().max()) < 1e-12
    assert float(transfer.real.min()) > -1e-12
    torch.testing.assert_close(transfer.real, ctf_2d(p, shape).abs().double())
    # The CTF itself does change sign on this grid, so the test is not vacuous.
    assert float(ctf_2d(p, shape).min()) < -0.5


@pytest.mark.parametrize("defocus", [2.0, torch.tensor([0.5, 1.5, 3.0])])
def test_ctf_operator_adjoint_and_self_adjoint(defocus):
    p = CTFParams(pixel_size_A=1.0, defocus_um=defocus, b_factor=20.0)
    op = CTFOperator(params=p, image_shape=(12, 11))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, *op.domain_shape, generator=g, dtype=torch.float64)
    y = torch.randn(2, *op.range_shape, generator=g, dtype=torch.float64)
    lhs = float((op.forward(x) * y).sum())
    rhs = float((x * op.adjoint(y)).sum())
    scale = float(x.norm() * y.norm())
    assert abs(lhs - rhs) / scale < 1e-12
    # Not the identity and not zero.
    assert 0.05 < float(op.forward(x).norm() / x.norm()) < 0.99


def test_ctf_operator_gradcheck():
    p = CTFParams(pixel_size_A=1.0, defocus_um=torch.tensor([1.0, 2.0]))
    op = CTFOperator(params=p, image_shape=(4, 5))
    x = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op.forward, (x,))


def test_bad_parameters_raise_input_error():
    with pytest.raises(InputError, match="pixel_size_A"):
        CTFParams(pixel_size_A=0.0, defocus_um=1.0)
    with pytest.raises(InputError, match="amplitude_contrast"):
        CTFParams(pixel_size_A=1.0, defocus_um=1.0, amplitude_contrast=1.0)
    with pytest.raises(InputError, match="defocus_um"):
        CTFParams(pixel_size_A=1.0, defocus_um=torch.ones(2, 2))
    p = CTFParams(pixel_size_A=1.0, defocus_um=torch.tensor([1.0, 2.0]))
    with pytest.raises(InputError, match="tilts"):
        apply_ctf(torch.zeros(3, 8, 8), p)

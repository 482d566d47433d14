import math

import pytest
import torch

from inversa.core.noise import (
    ElectronNoise,
    GaussianNoise,
    PoissonNoise,
    TransmissionNoise,
    electron_dose_per_pixel,
    log_transform,
)

N = 200_000


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _check_moments(samples, mean, var):
    """Sample mean and variance within 6 standard errors (the variance's error uses the
    fourth moment of a Poisson/Gaussian variable, bounded by 3 var^2 + var)."""
    n = samples.shape[-1]
    m = samples.mean(-1)
    v = samples.var(-1)
    assert torch.all((m - mean).abs() <= 6 * torch.sqrt(var / n))
    assert torch.all((v - var).abs() <= 6 * torch.sqrt((2 * var**2 + var) / n))


def test_poisson_moments_match_scaled_signal():
    x = torch.tensor([0.05, 1.0, 3.7, 40.0], dtype=torch.float64)
    noise = PoissonNoise(scale=2.0)
    y = noise(x[:, None].expand(4, N), generator=_gen(0))
    assert y.dtype == torch.float64 and y.shape == (4, N)
    assert torch.equal(y, y.round()) and bool((y >= 0).all())
    _check_moments(y, 2.0 * x, 2.0 * x)
    assert torch.equal(noise.expected(x), 2.0 * x)


def test_poisson_seeds_and_batches():
    x = torch.rand(2, 3, 5, generator=_gen(1)) * 10
    noise = PoissonNoise(scale=5.0)
    a = noise(x, generator=_gen(7))
    b = noise(x, generator=_gen(7))
    c = noise(x, generator=_gen(8))
    assert a.shape == (2, 3, 5) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_poisson_zero_dose_and_zero_signal():
    x = torch.rand(100, generator=_gen(2))
    assert torch.equal(PoissonNoise(scale=0.0)(x, generator=_gen(0)), torch.zeros(100))
    assert torch.equal(
        PoissonNoise(scale=10.0)(torch.zeros(100), generator=_gen(0)), torch.zeros(100)
    )


def test_poisson_rejects_negative_means_and_bad_scale():
    with pytest.raises(ValueError, match="non-negative"):
        PoissonNoise(scale=1.0)(torch.tensor([1.0, -0.5]))
    with pytest.raises(ValueError, match="scale"):
        PoissonNoise(scale=-1.0)
    with pytest.raises(TypeError):
        PoissonNoise(1.0)  # keyword-only configuration


def test_transmission_moments_and_log_round_trip():
    x = torch.tensor([0.0, 0.5, 2.0, 4.0], dtype=torch.float64)
    noise = TransmissionNoise(n0=100.0)
    mean = 100.0 * torch.exp(-x)
    y = noise(x[:, None].expand(4, N), generator=_gen(3))
    _check_moments(y, mean, mean)
    # Noise-free counts map back exactly.
    assert torch.allclose(log_transform(noise.expected(x), n0=100.0), x, atol=1e-12)
    # Log of the noisy counts estimates x with the delta-method bias 1 / (2 mean).
    est = log_transform(y, n0=100.0).mean(-1)
    assert torch.allclose(est[:3], x[:3] + 0.5 / mean[:3], atol=5e-3)


def test_log_transform_zero_count_rule():
    y = torch.tensor([0.0, 0.2, 1.0, 1000.0], dtype=torch.float64)
    out = log_transform(y, n0=1000.0)
    expected = [math.log(2000.0), math.log(2000.0), math.log(1000.0), 0.0]
    assert out.tolist() == pytest.approx(expected)
    assert log_transform(y, n0=1000.0, zero_count=1.0)[0] == pytest.approx(math.log(1000.0))
    with pytest.raises(ValueError, match="n0"):
        log_transform(y, n0=0.0)


def test_transmission_zero_dose_gives_no_counts():
    x = torch.rand(7, 3, generator=_gen(4))
    assert torch.equal(TransmissionNoise(n0=0.0)(x, generator=_gen(0)), torch.zeros(7, 3))


def test_gaussian_moments_seeds_and_zero_sigma():
    x = torch.tensor([-1.0, 0.0, 2.5], dtype=torch.float64)
    noise = GaussianNoise(sigma=0.3)
    y = noise(x[:, None].expand(3, N), generator=_gen(5))
    _check_moments(y, x, torch.full_like(x, 0.09))
    a = noise(x, generator=_gen(9))
    assert torch.equal(a, noise(x, generator=_gen(9)))
    assert not torch.equal(a, noise(x, generator=_gen(10)))
    assert torch.equal(GaussianNoise(sigma=0.0)(x, generator=_gen(0)), x)
    with pytest.raises(ValueError, match="sigma"):
        GaussianNoise(sigma=float("nan"))


def test_electron_dose_per_pixel():
    assert electron_dose_per_pixel(100.0, 2.0) == pytest.approx(400.0)
    assert electron_dose_per_pixel(0.0, 1.35) == 0.0
    with pytest.raises(ValueError, match="pixel_size_A"):
        electron_dose_per_pixel(1.0, 0.0)
    with pytest.raises(ValueError, match="dose"):
        electron_dose_per_pixel(-1.0, 1.0)


def test_electron_noise_mean_and_variance():
    p = torch.tensor([0.0, 0.5, 3.0], dtype=torch.float64)
    noise = ElectronNoise(dose_per_pixel=electron_dose_per_pixel(2.5, 2.0), contrast=0.2)
    mean = 10.0 * torch.exp(-0.2 * p)
    assert torch.allclose(noise.expected(p), mean, atol=1e-12)
    y = noise(p[:, None].expand(3, N), generator=_gen(6))
    _check_moments(y, mean, mean)
    assert torch.equal(noise(p, generator=_gen(1)), noise(p, generator=_gen(1)))


def test_electron_noise_zero_dose():
    p = torch.rand(4, 4, generator=_gen(0))
    noise = ElectronNoise(dose_per_pixel=0.0, contrast=1.0)
    assert torch.equal(noise.expected(p), torch.zeros(4, 4))
    assert torch.equal(noise(p, generator=_gen(0)), torch.zeros(4, 4))


def test_noise_without_generator_uses_global_rng():
    torch.manual_seed(123)
    a = PoissonNoise(scale=3.0)(torch.ones(50))
    torch.manual_seed(123)
    b = PoissonNoise(scale=3.0)(torch.ones(50))
    assert torch.equal(a, b)

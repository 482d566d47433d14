"""The local neural-field pieces: Fourier filter and ring/spoke sampling."""

import math

import pytest
import torch

from inversa.core.fields import (
    FourierFilter,
    FourierFilterConfig,
    RingSpokeConfig,
    RingSpokeSampler,
    grid_coordinates,
    sample_points,
)


def _ramp(n: int, *, ax: float = 0.7, ay: float = -0.3, c: float = 0.1) -> torch.Tensor:
    """A linear function of the [0, 1] coordinates sampled at pixel centres, (1, 1, n, n)."""
    xy = grid_coordinates((n, n), dtype=torch.float64)
    return (ax * xy[..., 0] + ay * xy[..., 1] + c)[None, None]


def test_filter_starts_as_identity():
    x = torch.randn(2, 1, 12, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    f = FourierFilter(FourierFilterConfig(grid=5, reference_size=12)).double()
    y = f(x).detach()
    assert y.shape == (2, 3, 12, 10)
    torch.testing.assert_close(y[:, 0], x[:, 0])
    torch.testing.assert_close(y[:, 1], x[:, 0])
    assert float(y[:, 2].abs().max()) < 1e-12


def test_filter_constant_complex_response():
    f = FourierFilter(FourierFilterConfig(channels=2, grid=3)).double()
    with torch.no_grad():
        f.weight.zero_()
        f.weight[:2] = 0.5  # Re A: the real part of the complex response
        f.weight[4:6] = -2.0  # Re B: its imaginary part
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = f(x).detach()
    torch.testing.assert_close(y[:, 2:4], 0.5 * x)
    torch.testing.assert_close(y[:, 4:6], -2.0 * x)


def test_filter_response_is_resolution_consistent():
    g = torch.Generator().manual_seed(2)
    f = FourierFilter(FourierFilterConfig(grid=9, reference_size=16)).double()
    with torch.no_grad():
        f.weight.copy_(torch.randn(f.weight.shape, generator=g, dtype=torch.float64))
    with torch.no_grad():
        coarse, fine = f.response((16, 16))[:, 0], f.response((64, 64))[:, 0]
    assert coarse.shape == (2, 16, 9) and fine.shape == (2, 64, 33)
    # Frequency index k of the 16-grid is k cycles per image, index k of the 64-grid too.
    for ky in range(-8, 8):
        for kx in range(9):
            assert torch.allclose(coarse[:, ky % 16, kx], fine[:, ky % 64, kx])
    # Beyond the reference band the response is held at its edge value.
    assert torch.allclose(fine[:, 0, 20], fine[:, 0, 32])


def test_filter_equals_the_complex_filter_it_stands_for():
    # Re and Im of ifft2(H fft2(x)) with H = A + iB, A and B Hermitian.
    g = torch.Generator().manual_seed(9)
    f = FourierFilter(FourierFilterConfig(grid=5, reference_size=12)).double()
    with torch.no_grad():
        f.weight.copy_(torch.randn(f.weight.shape, generator=g, dtype=torch.float64))
        a, b = f.response((12, 12))[:, 0]
        x = torch.randn(1, 1, 12, 12, generator=g, dtype=torch.float64)
        y = f(x)

    def full(half):  # the Hermitian response on the whole grid
        out = torch.zeros(12, 12, dtype=torch.complex128)
        for ky in range(12):
            for kx in range(12):
                if kx in (0, 6):  # self-conjugate columns: their Hermitian part
                    out[ky, kx] = (half[ky, kx] + half[(-ky) % 12, kx].conj()) / 2
                elif kx < 6:
                    out[ky, kx] = half[ky, kx]
                else:
                    out[ky, kx] = half[(-ky) % 12, (-kx) % 12].conj()
        return out

    h = full(a) + 1j * full(b)
    ref = torch.fft.ifft2(torch.fft.fft2(x[0, 0]) * h)
    torch.testing.assert_close(y[0, 1], ref.real, atol=1e-10, rtol=0)
    torch.testing.assert_close(y[0, 2], ref.imag, atol=1e-10, rtol=0)


def test_filter_gradients_reach_the_weights():
    f = FourierFilter(FourierFilterConfig(grid=4, reference_size=8))
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    f(x)[:, 1:].square().sum().backward()
    assert f.weight.grad is not None and float(f.weight.grad.abs().sum()) > 0


def test_filter_rejects_wrong_channels():
    with pytest.raises(ValueError, match="expects"):
        FourierFilter(FourierFilterConfig(channels=2))(torch.zeros(1, 1, 4, 4))


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_sample_points_at_pixel_centres_returns_pixels(mode):
    img = torch.randn(2, 3, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    pts = grid_coordinates((7, 9), dtype=torch.float64).reshape(1, -1, 2).expand(2, -1, -1)
    out = sample_points(img, pts, mode=mode)
    assert out.shape == (2, 63, 3)
    torch.testing.assert_close(out.reshape(2, 7, 9, 3).permute(0, 3, 1, 2), img)


def test_ring_spoke_pattern_geometry():
    cfg = RingSpokeConfig(n_spokes=4, n_radii=3, max_radius=4.0, reference_size=16)
    s = RingSpokeSampler(cfg)
    p = s.pattern().detach().double()
    assert p.shape == (4, 3, 2)
    torch.testing.assert_close(p[:, 0], torch.zeros(4, 2, dtype=torch.float64))
    radii = p.norm(dim=-1)
    torch.testing.assert_close(radii[:, 1], torch.full((4,), 1.0, dtype=torch.float64))
    torch.testing.assert_close(radii[:, 2], torch.full((4,), 4.0, dtype=torch.float64))
    angles = torch.atan2(p[:, 2, 1], p[:, 2, 0])
    expected = torch.tensor([0.0, 0.5, 1.0, -0.5], dtype=torch.float64) * math.pi
    torch.testing.assert_close(angles.abs(), expected.abs(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("n", [16, 40])
def test_ring_spoke_samples_a_linear_image_exactly_at_any_resolution(n):
    # Bilinear interpolation reproduces a linear function inside the image, so the samples
    # are the function at the pattern points: identical at every resolution (the pattern is
    # in reference pixels, not in pixels of the image).
    cfg = RingSpokeConfig(n_spokes=5, n_radii=3, max_radius=2.0, reference_size=16)
    s = RingSpokeSampler(cfg).double()
    s.config = RingSpokeConfig(**{**cfg.__dict__, "mode": "bilinear"})
    q = torch.tensor([[[0.5, 0.45], [0.4, 0.6]]], dtype=torch.float64)
    with torch.no_grad():
        out = s(_ramp(n), q)[..., 0]  # (1, Q, S, R)
        pts = s.points(q)
    expected = 0.7 * pts[..., 0] - 0.3 * pts[..., 1] + 0.1
    torch.testing.assert_close(out, expected)


def test_ring_spoke_scale_and_offsets_move_the_points_and_learn():
    s = RingSpokeSampler(RingSpokeConfig(n_spokes=3, n_radii=2, reference_size=10))
    q = torch.full((1, 1, 2), 0.5)
    with torch.no_grad():
        before = s.points(q).clone()
        s.log_scale.fill_(math.log(2.0))
        torch.testing.assert_close(s.points(q) - 0.5, 2.0 * (before - 0.5))
    img = torch.randn(1, 2, 10, 10, generator=torch.Generator().manual_seed(5))
    s(img, torch.rand(1, 8, 2, generator=torch.Generator().manual_seed(6))).sum().backward()
    assert float(s.offsets.grad.abs().sum()) > 0 and s.log_scale.grad is not None


def test_ring_spoke_frozen_pieces_and_bad_shapes():
    s = RingSpokeSampler(RingSpokeConfig(learn_offsets=False, learn_scale=False))
    assert not s.offsets.requires_grad and not s.log_scale.requires_grad
    with pytest.raises(ValueError, match="expected"):
        s(torch.zeros(1, 4, 4), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="mode"):
        RingSpokeConfig(mode="nearest")

"""Local neural-field pieces: a learnable Fourier filter and ring/spoke neighbourhood sampling.

Both are defined in *reference pixels*: lengths and frequencies are measured in units of a
pixel of an image of ``reference_size`` pixels across (the training resolution), and
image coordinates lie in ``[0, 1]^2`` (x first; pixel ``i`` of an axis of length ``n`` at
``(i + 0.5) / n``, as `grid_coordinates`). So the same module sees the same physical
neighbourhood and applies the same physical frequency response at any resolution, which
is what lets a local model trained at one resolution run at another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "FourierFilter",
    "FourierFilterConfig",
    "RingSpokeConfig",
    "RingSpokeSampler",
    "sample_points",
]


@dataclass(frozen=True, kw_only=True)
class FourierFilterConfig:
    """A learnable complex frequency response, smooth in the 2-D frequency plane.

    Attributes
    ----------
    channels
        Channels ``C`` of the images filtered (one response per channel).
    grid
        Control points per frequency axis; the response is bilinear between them over
        ``[-0.5, 0.5]`` cycles per reference pixel in ``kx`` and ``ky`` (constant beyond).
    reference_size
        Pixels across the reference (training) image; frequencies are in cycles per
        reference pixel.
    """

    channels: int = 1
    grid: int = 17
    reference_size: int = 128

    def __post_init__(self) -> None:
        if self.channels < 1 or self.grid < 2 or self.reference_size < 1:
            raise ValueError("channels >= 1, grid >= 2 and reference_size >= 1 are required")


def _interp_matrix(pos: torch.Tensor, g: int) -> torch.Tensor:
    """Linear-interpolation weights ``(len(pos), g)`` at fractional grid indices (clamped)."""
    pos = pos.clamp(0.0, g - 1.0)
    lo = pos.floor().clamp(max=g - 2).long()
    frac = (pos - lo).unsqueeze(1)
    w = torch.zeros(pos.shape[0], g, dtype=pos.dtype, device=pos.device)
    w.scatter_(1, lo[:, None], 1.0 - frac)
    w.scatter_add_(1, lo[:, None] + 1, frac)
    return w


class FourierFilter(nn.Module):
    """Learnable Fourier-domain filter, stacked with its input.

    ``y = ifft2(H(k) fft2(x))`` with a complex response ``H`` (initialised to 1, i.e. the
    identity); the output stacks ``x``, ``Re y`` and ``Im y`` along the channel axis:
    ``(B, C, H, W) -> (B, 3C, H, W)`` in the order ``[x, Re y, Im y]``. ``H`` is not
    constrained to be Hermitian, so ``Im y`` carries a second learned real filter.

    Any complex response splits uniquely as ``H = A + i B`` with ``A`` and ``B`` Hermitian
    (``A(-k) = conj(A(k))``), and for a real ``x`` then ``Re y = ifft2(A X)`` and
    ``Im y = ifft2(B X)``. The module learns ``A`` and ``B`` (complex; the weight holds
    ``Re A, Im A, Re B, Im B``, ``C`` channels each) on the half plane ``kx >= 0`` and
    applies them with ``rfft2``/``irfft2`` (which read the self-conjugate columns ``kx = 0``
    and Nyquist as their Hermitian part);
    the response is bilinear in the control grid, evaluated as two small matrix products, so
    beyond the image the memory is that of a few half-spectra.

    Parameters
    ----------
    config
        Channels, control grid and reference size.
    """

    def __init__(self, config: FourierFilterConfig) -> None:
        super().__init__()
        self.config = config
        g = config.grid
        weight = torch.zeros(4 * config.channels, g, g)
        weight[: config.channels] = 1.0  # A = 1, B = 0: the identity
        self.weight = nn.Parameter(weight)

    def response(self, shape: tuple[int, int]) -> torch.Tensor:
        """Return ``A`` and ``B`` on the ``rfft2`` grid of an ``(H, W)`` image.

        Returns
        -------
        torch.Tensor
            ``(2, C, H, W // 2 + 1)`` complex: ``A`` then ``B`` (``torch.fft.rfftfreq``
            order along x, ``fftfreq`` along y).
        """
        h, w = int(shape[0]), int(shape[1])
        g, ref = self.config.grid, self.config.reference_size
        dev, dt = self.weight.device, self.weight.dtype
        # Cycles per reference pixel in [-0.5, 0.5] -> control index in [0, g - 1].
        ky = torch.fft.fftfreq(h, device=dev, dtype=dt) * (h / ref)
        kx = torch.fft.rfftfreq(w, device=dev, dtype=dt) * (w / ref)
        wy = _interp_matrix((ky + 0.5) * (g - 1), g)  # (H, g)
        wx = _interp_matrix((kx + 0.5) * (g - 1), g)  # (W', g)
        vals = (wy @ self.weight @ wx.T).reshape(2, 2, self.config.channels, h, kx.shape[0])
        return torch.complex(vals[:, 0], vals[:, 1])

    def filtered(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``[Re y, Im y]``, ``(B, 2C, H, W)``, without the input (saves a copy)."""
        if x.ndim != 4 or x.shape[1] != self.config.channels:
            raise ValueError(
                f"FourierFilter expects (B, {self.config.channels}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        spectrum = torch.fft.rfft2(x)
        a, b = self.response((h, w))
        re = torch.fft.irfft2(spectrum * a, s=(h, w))
        im = torch.fft.irfft2(spectrum * b, s=(h, w))
        return torch.cat([re, im], dim=1).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Filter ``(B, C, H, W)`` images; returns ``(B, 3C, H, W)`` = ``[x, Re y, Im y]``."""
        return torch.cat([x, self.filtered(x)], dim=1)


@dataclass(frozen=True, kw_only=True)
class RingSpokeConfig:
    """A multi-scale ring/spoke pattern of sample points around each query coordinate.

    Spoke ``s`` points in direction ``2 pi s / n_spokes``; along it sit ``n_radii`` points at
    radii ``max_radius * (i / (n_radii - 1))**2`` reference pixels (the first at the query
    itself, spacing growing outwards). Each point gets a learned offset (reference pixels,
    initially 0) and the whole pattern a learned global scale (initially 1).

    Attributes
    ----------
    n_spokes, n_radii
        Pattern size: ``n_spokes * n_radii`` points per query (the LoFi paper uses 9 x 9).
    max_radius
        Radius of the outer ring in reference pixels.
    reference_size
        Pixels across the reference image (coordinates span ``[0, 1]``).
    learn_offsets, learn_scale
        Whether the offsets and the global scale are trained.
    mode
        Interpolation of the image at the points: ``"bicubic"`` or ``"bilinear"``.
    padding
        Values outside the image: ``"zeros"``, ``"border"`` or ``"reflection"``.
    """

    n_spokes: int = 9
    n_radii: int = 9
    max_radius: float = 8.0
    reference_size: int = 128
    learn_offsets: bool = True
    learn_scale: bool = True
    mode: Literal["bicubic", "bilinear"] = "bicubic"
    padding: Literal["zeros", "border", "reflection"] = "zeros"

    def __post_init__(self) -> None:
        if self.n_spokes < 1 or self.n_radii < 1 or self.reference_size < 1:
            raise ValueError("n_spokes, n_radii and reference_size must be >= 1")
        if not self.max_radius > 0:
            raise ValueError(f"max_radius must be positive, got {self.max_radius}")
        if self.mode not in ("bicubic", "bilinear"):
            raise ValueError(f"mode must be 'bicubic' or 'bilinear', got {self.mode!r}")
        if self.padding not in ("zeros", "border", "reflection"):
            raise ValueError(f"unknown padding {self.padding!r}")

    @property
    def n_points(self) -> int:
        """Points per query, ``n_spokes * n_radii``."""
        return self.n_spokes * self.n_radii


def sample_points(
    image: torch.Tensor,
    points: torch.Tensor,
    *,
    mode: str = "bilinear",
    padding: str = "zeros",
) -> torch.Tensor:
    """Interpolate images at coordinates in ``[0, 1]^2`` (x first, pixel centres at ``(i+.5)/n``).

    Parameters
    ----------
    image
        ``(B, C, H, W)``.
    points
        ``(B, ..., 2)`` coordinates (x, y).
    mode, padding
        As ``torch.nn.functional.grid_sample`` (``"bilinear"``/``"bicubic"``/``"nearest"``;
        ``"zeros"``/``"border"``/``"reflection"``).

    Returns
    -------
    torch.Tensor
        ``(B, ..., C)``.
    """
    b = image.shape[0]
    lead = points.shape[1:-1]
    grid = (2.0 * points - 1.0).reshape(b, 1, -1, 2).to(image.dtype)
    out = F.grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=False)
    return out[:, :, 0].transpose(1, 2).reshape(b, *lead, image.shape[1])


class RingSpokeSampler(nn.Module):
    """Sample an image on a learned ring/spoke pattern around query coordinates.

    ``(B, C, H, W)`` images and ``(B, Q, 2)`` queries in ``[0, 1]^2`` give
    ``(B, Q, n_spokes, n_radii, C)`` samples. Memory and work grow with ``Q`` and the
    pattern, not with ``H x W`` (beyond the image itself).

    Parameters
    ----------
    config
        The pattern.
    """

    def __init__(self, config: RingSpokeConfig) -> None:
        super().__init__()
        self.config = config
        s, r = config.n_spokes, config.n_radii
        angles = 2.0 * math.pi * torch.arange(s, dtype=torch.float64) / s
        frac = torch.arange(r, dtype=torch.float64) / max(r - 1, 1)
        radii = config.max_radius * frac.square() if r > 1 else torch.zeros(1, dtype=torch.float64)
        base = torch.stack(
            [torch.cos(angles)[:, None] * radii, torch.sin(angles)[:, None] * radii], dim=-1
        )
        self.register_buffer("base", base.float())  # (S, R, 2) reference pixels, (x, y)
        self.offsets = nn.Parameter(torch.zeros(s, r, 2), requires_grad=config.learn_offsets)
        self.log_scale = nn.Parameter(torch.zeros(()), requires_grad=config.learn_scale)

    def pattern(self) -> torch.Tensor:
        """Return the pattern in reference pixels, ``(n_spokes, n_radii, 2)`` as (x, y)."""
        return self.log_scale.exp() * (self.base + self.offsets)

    def points(self, coords: torch.Tensor) -> torch.Tensor:
        """Sample coordinates ``(..., 2) -> (..., n_spokes, n_radii, 2)`` in ``[0, 1]^2``."""
        step = self.pattern().to(coords.dtype) / self.config.reference_size
        return coords[..., None, None, :] + step

    def forward(self, image: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Sample ``(B, C, H, W)`` at ``(B, Q, 2)``; returns ``(B, Q, n_spokes, n_radii, C)``."""
        if image.ndim != 4 or coords.ndim != 3 or coords.shape[-1] != 2:
            raise ValueError(
                f"expected images (B, C, H, W) and coords (B, Q, 2), got "
                f"{tuple(image.shape)} and {tuple(coords.shape)}"
            )
        if coords.shape[0] != image.shape[0]:
            raise ValueError("images and coords must have the same batch size")
        cfg = self.config
        return sample_points(image, self.points(coords), mode=cfg.mode, padding=cfg.padding)

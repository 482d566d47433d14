"""Band-limited Gaussian random fields: the one input sampler of every model."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inversa.core.errors import InputError

__all__ = [
    "MAX_SAMPLES",
    "GRFConfig",
    "check_samples",
    "disk_window",
    "pixel_coordinates",
    "sample_grf",
]

MAX_SAMPLES = 100_000
"""Largest sample count accepted by the samplers and the command line."""


@dataclass(frozen=True, kw_only=True)
class GRFConfig:
    """A band-limited Gaussian random field on an ``(N, N)`` pixel grid.

    Every Fourier coefficient with ``|k| <= bandwidth`` (cycles per image width) is an
    independent complex Gaussian with standard deviation ``exp(-|k|^2 / bandwidth^2)``;
    all others are zero. The field is then multiplied by a smooth disk window (so that
    every transform of the benchmark sees all of it) and scaled to unit RMS.

    Parameters
    ----------
    size
        ``N`` (>= 8).
    bandwidth
        Cut-off frequency in cycles per image width, in ``(0, N / 2]``.
    support
        Radius of the window in normalised coordinates (the image spans ``[-1, 1)``),
        in ``(0, 1]``; the window falls from 1 to 0 by a cosine over the last 0.1.
    """

    size: int = 64
    bandwidth: float = 6.0
    support: float = 0.9

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 8:
            raise InputError(None, f"image size must be an integer >= 8, got {self.size!r}")
        bw = self.bandwidth
        if not (isinstance(bw, (int, float)) and math.isfinite(bw) and 0 < bw <= self.size / 2):
            raise InputError(
                None,
                f"bandwidth must be in (0, {self.size / 2:g}] cycles per image (Nyquist), "
                f"got {bw!r}",
            )
        if not 0.2 < self.support <= 1.0:
            raise InputError(None, f"support must be in (0.2, 1], got {self.support!r}")


def check_samples(n: int, *, what: str = "sample count") -> int:
    """Return ``n`` if it is an integer in ``[1, MAX_SAMPLES]``, else raise `InputError`."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise InputError(None, f"{what} must be an integer in [1, {MAX_SAMPLES}], got {n!r}")
    return n


def pixel_coordinates(size: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised pixel-centre coordinates of an ``(N, N)`` image.

    Pixel ``(i, j)`` sits at ``x = (j - N // 2) / (N / 2)``, ``y = (i - N // 2) / (N / 2)``
    (the project's centre convention, pixel size ``2 / N``).

    Returns
    -------
    torch.Tensor
        ``(N, N, 2)`` with ``(x, y)`` last.
    """
    axis = (torch.arange(size, dtype=dtype) - size // 2) / (size / 2)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def disk_window(size: int, support: float, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Smooth disk: 1 inside ``support - 0.1``, cosine taper to 0 at ``support``; ``(N, N)``."""
    r = pixel_coordinates(size, dtype=dtype).square().sum(-1).sqrt()
    t = ((support - r) / 0.1).clamp(0.0, 1.0)
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def sample_grf(
    n: int,
    config: GRFConfig,
    *,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw ``n`` independent band-limited fields.

    Parameters
    ----------
    n
        Number of fields, in ``[1, MAX_SAMPLES]``.
    config
        Size, bandwidth and window.
    generator
        Source of randomness (CPU generator; the result is moved to ``device``).
    dtype, device
        Of the result.

    Returns
    -------
    torch.Tensor
        ``(n, N, N)`` fields with unit RMS each.
    """
    check_samples(n)
    size = config.size
    k = torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64)
    kk = (k[:, None].square() + k[None, :].square()).sqrt()
    envelope = torch.exp(-(kk / config.bandwidth).square()) * (kk <= config.bandwidth)
    noise = torch.randn(n, 2, size, size, generator=generator, dtype=torch.float64)
    spectrum = torch.complex(noise[:, 0], noise[:, 1]) * envelope
    field = torch.fft.ifft2(spectrum).real * disk_window(size, config.support)
    field = field / field.square().mean(dim=(-2, -1), keepdim=True).sqrt().clamp_min(1e-30)
    return field.to(dtype=dtype, device=device)

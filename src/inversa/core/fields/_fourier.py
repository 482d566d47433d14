"""Fourier-feature encodings: random Gaussian and axis-aligned log-spaced frequencies."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inversa.core.fields._configured import ConfiguredModule

__all__ = [
    "FourierFeatures",
    "GaussianFourierConfig",
    "PositionalFourierConfig",
    "fourier_features",
]


@dataclass(frozen=True, kw_only=True)
class GaussianFourierConfig:
    """Random Fourier features (Tancik et al. 2020): ``m`` frequency vectors ``~ N(0, sigma^2 I)``.

    Parameters
    ----------
    dim
        Input dimension ``d``.
    n_frequencies
        Number ``m`` of frequency vectors; the encoding has ``2 m`` features.
    sigma
        Standard deviation of each frequency component, in cycles per unit length.
    """

    dim: int
    n_frequencies: int = 128
    sigma: float = 10.0

    def __post_init__(self) -> None:
        if self.dim < 1 or self.n_frequencies < 1:
            raise ValueError("dim and n_frequencies must be positive")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"sigma must be finite and > 0, got {self.sigma}")

    @property
    def out_features(self) -> int:
        """Width ``2 m`` of the encoding."""
        return 2 * self.n_frequencies


@dataclass(frozen=True, kw_only=True)
class PositionalFourierConfig:
    """Axis-aligned (NeRF-style) features: ``m`` log-spaced frequencies on every axis.

    Parameters
    ----------
    dim
        Input dimension ``d``.
    n_frequencies
        Number ``m`` of frequencies per axis; the encoding has ``2 m d`` features.
    min_frequency, max_frequency
        Lowest and highest frequency in cycles per unit length; the ``m`` frequencies are
        geometrically spaced between them (``min, 2 min, 4 min, ...`` when
        ``max = 2^(m-1) min``).
    """

    dim: int
    n_frequencies: int = 8
    min_frequency: float = 1.0
    max_frequency: float = 128.0

    def __post_init__(self) -> None:
        if self.dim < 1 or self.n_frequencies < 1:
            raise ValueError("dim and n_frequencies must be positive")
        if not 0 < self.min_frequency <= self.max_frequency < math.inf:
            raise ValueError("need 0 < min_frequency <= max_frequency < inf")
        if self.n_frequencies == 1 and self.min_frequency != self.max_frequency:
            raise ValueError("one frequency needs min_frequency == max_frequency")

    @property
    def out_features(self) -> int:
        """Width ``2 m d`` of the encoding."""
        return 2 * self.n_frequencies * self.dim


def fourier_features(coords: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
    """Sines and cosines of ``2 pi <f_j, x>``.

    Parameters
    ----------
    coords
        ``(..., d)`` points.
    frequencies
        ``(m, d)`` frequency vectors in cycles per unit length; cast to ``coords``' dtype
        and device.

    Returns
    -------
    torch.Tensor
        ``(..., 2 m)``: ``[sin(2 pi x f^T), cos(2 pi x f^T)]``.
    """
    if coords.shape[-1] != frequencies.shape[-1]:
        raise ValueError(
            f"coords end in {coords.shape[-1]} but frequencies are {tuple(frequencies.shape)}"
        )
    phase = (2 * math.pi) * (coords @ frequencies.to(coords).T)
    return torch.cat([phase.sin(), phase.cos()], dim=-1)


def _frequencies(
    config: GaussianFourierConfig | PositionalFourierConfig,
    generator: torch.Generator | None,
) -> torch.Tensor:
    if isinstance(config, GaussianFourierConfig):
        draw = torch.randn(config.n_frequencies, config.dim, generator=generator)
        return config.sigma * draw
    m, d = config.n_frequencies, config.dim
    ratio = config.max_frequency / config.min_frequency
    steps = torch.arange(m, dtype=torch.float64) / max(m - 1, 1)
    freqs = (config.min_frequency * ratio**steps).to(torch.get_default_dtype())
    # rows axis-major: all m frequencies along x, then along y, ...
    return (torch.eye(d)[:, None, :] * freqs[None, :, None]).reshape(d * m, d)


class FourierFeatures(ConfiguredModule):
    """Fixed Fourier-feature encoding, ``(..., d) -> (..., out_features)``.

    The frequencies are a buffer (saved in the state dict, not trained).

    Parameters
    ----------
    config
        `GaussianFourierConfig` (``2 m`` features, random frequencies) or
        `PositionalFourierConfig` (``2 m d`` features, deterministic).
    generator
        Source of randomness for the Gaussian frequencies (unused for positional ones).
    """

    def __init__(
        self,
        config: GaussianFourierConfig | PositionalFourierConfig,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.config = config
        self.register_buffer("frequencies", _frequencies(config, generator))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Encode ``(..., d)`` points; the result follows ``coords``' dtype and device."""
        return fourier_features(coords, self.frequencies)

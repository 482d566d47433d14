"""Measurement noise models, separate from the randomness that drives them.

A noise model is a small frozen object holding its parameters; calling it on a clean
measurement with an explicit ``generator`` draws one noisy sample, so a measurement reads
``noise(A(x), generator=g)``. Samples are drawn on the generator's device (on the input's
device when no generator is given) and returned on the input's device, so a seeded
generator gives the same sample wherever the data live. Every model accepts any
shape ``(...)`` and returns the same shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "ElectronNoise",
    "GaussianNoise",
    "PoissonNoise",
    "TransmissionNoise",
    "electron_dose_per_pixel",
    "log_transform",
]


def _floating(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _draw_device(x: torch.Tensor, generator: torch.Generator | None) -> torch.device:
    return x.device if generator is None else generator.device


def _poisson(rate: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Poisson counts of mean ``rate`` (non-negative), as floats on ``rate``'s device."""
    draw = rate.to(_draw_device(rate, generator))
    counts = torch.poisson(draw, generator=generator)
    return counts.to(rate.device)


def _check_non_negative(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value}")


@dataclass(frozen=True, kw_only=True)
class PoissonNoise:
    """Photon (or electron) counting noise: ``y ~ Poisson(scale * x)``.

    Parameters
    ----------
    scale
        Expected counts per unit of signal (counts per ray for a unit ray sum);
        ``scale = 0`` gives no counts at all.
    """

    scale: float

    def __post_init__(self) -> None:
        _check_non_negative("scale", self.scale)

    def expected(self, x: torch.Tensor) -> torch.Tensor:
        """Mean counts ``scale * x``, shape ``(...)`` as ``x``."""
        return self.scale * _floating(x)

    def __call__(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw counts for a non-negative signal.

        Parameters
        ----------
        x
            ``(...)`` non-negative signal.
        generator
            Source of randomness.

        Returns
        -------
        torch.Tensor
            ``(...)`` counts as floats of ``x``'s dtype.

        Raises
        ------
        ValueError
            If ``x`` has negative entries (no Poisson law has a negative mean).
        """
        x = _floating(x)
        if bool((x < 0).any()):
            raise ValueError("Poisson noise needs a non-negative signal; x has negative entries")
        return _poisson(self.expected(x), generator)


@dataclass(frozen=True, kw_only=True)
class TransmissionNoise:
    """X-ray transmission counts: ``y ~ Poisson(n0 * exp(-x))`` for line integrals ``x``.

    Use :func:`log_transform` to turn counts back into line-integral estimates.

    Parameters
    ----------
    n0
        Incident (blank-scan) counts per detector pixel.
    """

    n0: float

    def __post_init__(self) -> None:
        _check_non_negative("n0", self.n0)

    def expected(self, x: torch.Tensor) -> torch.Tensor:
        """Mean counts ``n0 * exp(-x)``, shape ``(...)`` as ``x``."""
        return self.n0 * torch.exp(-_floating(x))

    def __call__(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw transmitted counts.

        Parameters
        ----------
        x
            ``(...)`` attenuation line integrals (dimensionless).
        generator
            Source of randomness.

        Returns
        -------
        torch.Tensor
            ``(...)`` counts as floats of ``x``'s dtype.
        """
        return _poisson(self.expected(x), generator)


def log_transform(y: torch.Tensor, *, n0: float, zero_count: float = 0.5) -> torch.Tensor:
    """Line-integral estimates ``-log(max(y, zero_count) / n0)`` from transmitted counts.

    A zero count carries no finite log; it is read as ``zero_count`` counts (half a count
    by default, the usual choice in low-dose CT), which caps the estimate at
    ``log(n0 / zero_count)``. Noise-free means ``n0 * exp(-x)`` at or above
    ``zero_count`` are mapped back to ``x`` exactly.

    Parameters
    ----------
    y
        ``(...)`` counts (or noise-free mean counts).
    n0
        Incident counts, as in :class:`TransmissionNoise`; must be positive.
    zero_count
        Positive floor applied to the counts before the logarithm.

    Returns
    -------
    torch.Tensor
        ``(...)`` estimated line integrals.
    """
    if not n0 > 0:
        raise ValueError(f"n0 must be positive, got {n0}")
    if not zero_count > 0:
        raise ValueError(f"zero_count must be positive, got {zero_count}")
    y = _floating(y)
    return -torch.log(y.clamp_min(zero_count) / n0)


@dataclass(frozen=True, kw_only=True)
class GaussianNoise:
    """Additive white Gaussian noise: ``y = x + sigma * n`` with ``n ~ N(0, 1)``.

    Parameters
    ----------
    sigma
        Standard deviation, in the units of the signal.
    """

    sigma: float

    def __post_init__(self) -> None:
        _check_non_negative("sigma", self.sigma)

    def __call__(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Add noise to ``x``.

        Parameters
        ----------
        x
            ``(...)`` clean signal.
        generator
            Source of randomness.

        Returns
        -------
        torch.Tensor
            ``(...)`` noisy signal of ``x``'s dtype.
        """
        x = _floating(x)
        n = torch.randn(
            x.shape, generator=generator, dtype=x.dtype, device=_draw_device(x, generator)
        )
        return x + self.sigma * n.to(x.device)


def electron_dose_per_pixel(dose_e_per_A2: float, pixel_size_A: float) -> float:
    """Electrons per detector pixel from a dose in electrons per square Angstrom.

    Parameters
    ----------
    dose_e_per_A2
        Dose (e/A^2) of one image.
    pixel_size_A
        Pixel edge in Angstrom (at the specimen).

    Returns
    -------
    float
        ``dose_e_per_A2 * pixel_size_A ** 2``.
    """
    _check_non_negative("dose_e_per_A2", dose_e_per_A2)
    if not pixel_size_A > 0:
        raise ValueError(f"pixel_size_A must be positive, got {pixel_size_A}")
    return float(dose_e_per_A2) * float(pixel_size_A) ** 2


@dataclass(frozen=True, kw_only=True)
class ElectronNoise:
    """Electron counts of a cryo-EM/ET image: ``y ~ Poisson(dose * exp(-contrast * p))``.

    ``p`` is the projected density (a line integral of the specimen's potential). The
    mean counts follow a simplified amplitude-contrast model: each pixel loses a fraction
    ``1 - exp(-contrast * p)`` of its electrons to scattering outside the aperture. Phase
    contrast and the CTF are left out; apply them to ``p`` (or the mean) beforehand where
    they matter.

    Parameters
    ----------
    dose_per_pixel
        Incident electrons per pixel (see :func:`electron_dose_per_pixel`).
    contrast
        Attenuation per unit of projected density.
    """

    dose_per_pixel: float
    contrast: float

    def __post_init__(self) -> None:
        _check_non_negative("dose_per_pixel", self.dose_per_pixel)
        if not math.isfinite(self.contrast):
            raise ValueError(f"contrast must be finite, got {self.contrast}")

    def expected(self, p: torch.Tensor) -> torch.Tensor:
        """Mean counts ``dose_per_pixel * exp(-contrast * p)``, shape ``(...)`` as ``p``."""
        return self.dose_per_pixel * torch.exp(-self.contrast * _floating(p))

    def __call__(
        self, p: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw electron counts.

        Parameters
        ----------
        p
            ``(...)`` projected density.
        generator
            Source of randomness.

        Returns
        -------
        torch.Tensor
            ``(...)`` counts as floats of ``p``'s dtype.
        """
        return _poisson(self.expected(p), generator)

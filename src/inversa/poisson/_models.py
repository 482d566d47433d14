"""Measurement models with a dose knob: linear Poisson and X-ray transmission."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inversa.core.errors import InputError
from inversa.core.noise import PoissonNoise, TransmissionNoise
from inversa.core.operators import LinearOperator

__all__ = ["LinearPoissonModel", "TransmissionModel", "check_counts"]


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise InputError(None, f"{name} must be a finite positive number, got {value}")
    return value


def check_counts(y: torch.Tensor, operator: LinearOperator) -> torch.Tensor:
    """Validate photon counts against an operator's range and return them as floats.

    Parameters
    ----------
    y
        ``(..., *operator.range_shape)`` counts: finite, non-negative whole numbers.
    operator
        The forward model whose range the counts must match.

    Returns
    -------
    torch.Tensor
        ``y`` as a floating-point tensor (same shape and device).

    Raises
    ------
    InputError
        On a shape mismatch, or on negative, non-integer or non-finite counts.
    """
    if not isinstance(y, torch.Tensor):
        raise InputError(None, f"counts must be a tensor, got {type(y).__name__}")
    rs = tuple(operator.range_shape)
    if y.ndim < len(rs) or tuple(y.shape[y.ndim - len(rs) :]) != rs:
        raise InputError(
            None,
            f"counts of shape {tuple(y.shape)} do not end with the operator's range shape {rs}",
        )
    if not y.is_floating_point():
        y = y.to(torch.get_default_dtype())
    if not bool(torch.isfinite(y).all()):
        raise InputError(None, "counts contain NaN or infinite values")
    if bool((y < 0).any()):
        raise InputError(None, "counts must be non-negative; the data have negative entries")
    if bool((y != torch.round(y)).any()):
        raise InputError(None, "counts must be whole numbers; the data have fractional entries")
    return y


def _check_signal(x: torch.Tensor, operator: LinearOperator) -> None:
    ds = tuple(operator.domain_shape)
    if x.ndim < len(ds) or tuple(x.shape[x.ndim - len(ds) :]) != ds:
        raise InputError(
            None,
            f"signal of shape {tuple(x.shape)} does not end with the operator's domain shape {ds}",
        )


@dataclass(frozen=True, eq=False, kw_only=True)
class LinearPoissonModel:
    """Linear Poisson measurements ``y ~ Poisson(dose * A x + background)``.

    Parameters
    ----------
    operator
        The forward model ``A`` with non-negative entries (e.g. ``Radon2D``,
        ``DiagonalOperator`` with a positive diagonal): ``(..., *domain) -> (..., *range)``.
    dose
        Expected counts per unit of ``A x`` (the dose knob ``s``); must be positive.
    background
        Known non-negative mean counts added to every measurement (dark current,
        scatter); ``0`` by default.
    """

    operator: LinearOperator
    dose: float
    background: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "dose", _positive("dose", self.dose))
        b = float(self.background)
        if not (math.isfinite(b) and b >= 0):
            raise InputError(None, f"background must be finite and non-negative, got {b}")
        object.__setattr__(self, "background", b)

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """Return the mean counts ``dose * A x + b``: ``(..., *domain) -> (..., *range)``."""
        _check_signal(x, self.operator)
        return self.dose * self.operator.forward(x) + self.background

    def sample(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw counts for a non-negative signal ``x`` of shape ``(..., *domain)``.

        Returns
        -------
        torch.Tensor
            ``(..., *range)`` counts as floats of ``x``'s dtype.

        Raises
        ------
        InputError
            If ``x`` has the wrong shape or a negative expected count.
        """
        mean = self.mean(x)
        if bool((mean < 0).any()):
            raise InputError(None, "the signal gives negative expected counts (x must be >= 0)")
        return PoissonNoise(scale=1.0)(mean, generator=generator)


@dataclass(frozen=True, eq=False, kw_only=True)
class TransmissionModel:
    """X-ray transmission measurements ``y ~ Poisson(n0 * exp(-A x))``.

    Parameters
    ----------
    operator
        The forward model ``A`` (line integrals of the attenuation ``x``).
    n0
        Incident (blank-scan) counts per detector pixel, the dose knob; must be positive.
    """

    operator: LinearOperator
    n0: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n0", _positive("n0", self.n0))

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """Return the expected counts ``n0 * exp(-A x)``: ``(..., *domain) -> (..., *range)``."""
        _check_signal(x, self.operator)
        return self.n0 * torch.exp(-self.operator.forward(x))

    def sample(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw transmitted counts for an attenuation map ``x`` of shape ``(..., *domain)``.

        Returns
        -------
        torch.Tensor
            ``(..., *range)`` counts as floats of ``x``'s dtype.
        """
        _check_signal(x, self.operator)
        return TransmissionNoise(n0=self.n0)(self.operator.forward(x), generator=generator)

"""Smooth data terms ``f(z)`` of the projections ``z = A x``, summed per batch item.

Each term knows its value (in float64, for line searches that compare sums of many terms
to a small decrease) and its gradient with respect to ``z``; the optimisers combine them
with the operator and a :class:`~inversa.poisson.Penalty`.
"""

from __future__ import annotations

import math

import torch

__all__ = ["Fidelity", "PoissonFidelity", "QuadraticFidelity", "TransmissionFidelity"]


class Fidelity:
    """A smooth data term ``f(z)`` of ``z = A x``, ``(*batch, *range) -> (*batch,)``.

    ``nr`` is the number of range dims; ``scale`` is the constant part of the gradient's
    curvature used by the EM-scaled gradient (the dose for Poisson data).
    """

    nr: int
    scale: float = 1.0

    def value(self, z: torch.Tensor) -> torch.Tensor:
        """``(*batch, *range) -> (*batch,)`` float64 values."""
        raise NotImplementedError

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        """``(*batch, *range)`` gradient with respect to ``z``."""
        raise NotImplementedError

    def _sum(self, t: torch.Tensor) -> torch.Tensor:
        return t.sum(dim=tuple(range(t.ndim - self.nr, t.ndim)), dtype=torch.float64)


class PoissonFidelity(Fidelity):
    """``sum(m - y log m)``, ``m = dose z + background``: the Poisson negative log-likelihood."""

    def __init__(
        self, y: torch.Tensor, dose: float, background: float, nr: int, *, guard: bool = True
    ) -> None:
        self.y, self.dose, self.background, self.nr = y, dose, background, nr
        self.seen = y > 0
        # Without x >= 0 a negative mean must be refused (the objective would be unbounded
        # below); with x >= 0 it is impossible, and round-off in z = A x must not trip it.
        self.guard = guard
        self.scale = dose

    def value(self, z: torch.Tensor) -> torch.Tensor:
        m = self.dose * z.double() + self.background
        bad = self.seen & (m <= 0)
        if self.guard:
            bad = bad | (m < 0)
        logm = torch.log(torch.where(self.seen, m, torch.ones_like(m)).clamp_min(1e-300))
        term = torch.where(bad, torch.full_like(m, math.inf), m - self.y * logm)
        return self._sum(term)

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        m = self.dose * z + self.background
        ratio = torch.where(self.seen, self.y / torch.where(self.seen, m, 1.0), 0.0)
        return self.dose * (1.0 - ratio)


class QuadraticFidelity(Fidelity):
    """``sum(w (t - c z)^2) / 2``: a (weighted) least-squares data term."""

    def __init__(self, target: torch.Tensor, c: float, w: torch.Tensor | float, nr: int) -> None:
        self.t, self.c, self.w, self.nr = target, c, w, nr

    def value(self, z: torch.Tensor) -> torch.Tensor:
        return 0.5 * self._sum(self.w * (self.t.double() - self.c * z.double()).square())

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        return -self.c * self.w * (self.t - self.c * z)


class TransmissionFidelity(Fidelity):
    """``sum(n0 exp(-z) + y z)``: the negative transmission log-likelihood."""

    def __init__(self, y: torch.Tensor, n0: float, nr: int) -> None:
        self.y, self.n0, self.nr = y, n0, nr

    def value(self, z: torch.Tensor) -> torch.Tensor:
        z = z.double()
        return self._sum(self.n0 * torch.exp(-z) + self.y * z)

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        return self.y - self.n0 * torch.exp(-z)

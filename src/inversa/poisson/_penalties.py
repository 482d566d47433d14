"""Regularisers on the trailing ``ndim`` dimensions: Tikhonov (identity, gradient) and TV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from inversa.core.errors import InputError

__all__ = ["Penalty", "PenaltyKind"]

PenaltyKind = Literal["identity", "gradient", "tv"]


def _diff(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Forward difference along ``dim`` with a zero last entry (Neumann boundary)."""
    d = torch.diff(x, dim=dim)
    pad = torch.zeros_like(x.narrow(dim, 0, 1))
    return torch.cat([d, pad], dim=dim)


def _diff_adjoint(g: torch.Tensor, dim: int) -> torch.Tensor:
    """Exact transpose of :func:`_diff` along ``dim``."""
    n = g.shape[dim]
    core = g.narrow(dim, 0, n - 1)
    zero = torch.zeros_like(g.narrow(dim, 0, 1))
    return torch.cat([zero, core], dim=dim) - torch.cat([core, zero], dim=dim)


@dataclass(frozen=True, kw_only=True)
class Penalty:
    """A convex regulariser ``weight * R(x)`` over the trailing ``ndim`` dimensions.

    ``identity``: ``R = ||x||^2 / 2`` (Tikhonov); ``gradient``: ``R = ||D x||^2 / 2``
    with forward differences along every one of the ``ndim`` axes (Tikhonov on the
    gradient); ``tv``: ``R = sum sqrt(|D x|^2 + eps^2) - eps`` (isotropic total variation,
    smoothed by ``tv_epsilon`` so that it is differentiable).

    Parameters
    ----------
    kind
        ``"identity"``, ``"gradient"`` or ``"tv"``.
    weight
        Non-negative regularisation weight ``lambda``.
    ndim
        Number of trailing dimensions the penalty acts on (2 for images).
    tv_epsilon
        Smoothing of TV, in the units of ``x``.
    """

    kind: PenaltyKind = "identity"
    weight: float = 0.0
    ndim: int = 2
    tv_epsilon: float = 1e-2

    def __post_init__(self) -> None:
        if self.kind not in ("identity", "gradient", "tv"):
            raise InputError(None, f"penalty must be identity, gradient or tv, got {self.kind!r}")
        if not (float(self.weight) >= 0 and float(self.weight) < float("inf")):
            raise InputError(
                None, f"regularisation weight must be finite and >= 0, got {self.weight}"
            )
        if not self.tv_epsilon > 0:
            raise InputError(None, f"tv_epsilon must be positive, got {self.tv_epsilon}")

    def _dims(self, x: torch.Tensor) -> tuple[int, ...]:
        return tuple(range(x.ndim - self.ndim, x.ndim))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """``weight * R(x)`` per item: ``(..., *s) -> (...)`` with ``len(s) == ndim``."""
        dims = self._dims(x)
        if self.weight == 0:
            return torch.zeros(x.shape[: x.ndim - self.ndim], dtype=x.dtype, device=x.device)
        if self.kind == "identity":
            return 0.5 * self.weight * x.square().sum(dim=dims)
        sq = sum(_diff(x, d).square() for d in dims)
        if self.kind == "gradient":
            return 0.5 * self.weight * sq.sum(dim=dims)
        eps = self.tv_epsilon
        return self.weight * (torch.sqrt(sq + eps * eps) - eps).sum(dim=dims)

    def gradient(self, x: torch.Tensor) -> torch.Tensor:
        """Gradient of :meth:`value` with respect to ``x``, shape of ``x``."""
        if self.weight == 0:
            return torch.zeros_like(x)
        if self.kind == "identity":
            return self.weight * x
        dims = self._dims(x)
        grads = [_diff(x, d) for d in dims]
        if self.kind == "tv":
            norm = torch.sqrt(sum(g.square() for g in grads) + self.tv_epsilon**2)
            grads = [g / norm for g in grads]
        return self.weight * sum(_diff_adjoint(g, d) for g, d in zip(grads, dims, strict=True))

    def hessian_apply(self, x: torch.Tensor) -> torch.Tensor:
        """``weight * L^T L x`` for the quadratic kinds (used by conjugate gradients)."""
        if self.kind == "tv":
            raise InputError(None, "total variation is not quadratic")
        return self.gradient(x)

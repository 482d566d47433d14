"""Helpers shared by the batched iterative solvers (tomography, poisson).

Every solver iterates on ``(*batch, *domain_shape)`` tensors, stops each batch item on
its own relative change and must agree on how the start point is formed; these helpers
are that agreement.
"""

from __future__ import annotations

import torch

from inversa.core.errors import InputError
from inversa.core.operators import LinearOperator

__all__ = ["check_iterations", "expand", "item_sq_norm", "item_sum", "relative_change", "start"]


def item_sum(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Sum over the trailing ``ndim`` dims: ``(..., *s) -> (...)``."""
    return x.sum(dim=tuple(range(x.ndim - ndim, x.ndim)))


def item_sq_norm(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Squared norm over the trailing ``ndim`` dims: ``(..., *s) -> (...)``."""
    return item_sum(x.square(), ndim)


def expand(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append ``ndim`` singleton dims so a per-item value broadcasts over an item."""
    return v.reshape(*v.shape, *([1] * ndim))


def relative_change(step: torch.Tensor, x_new: torch.Tensor, ndim: int) -> torch.Tensor:
    """Per item ``||step|| / ||x_new||``; a zero iterate that did not move changed by 0."""
    diff = item_sq_norm(step, ndim).sqrt()
    norm = item_sq_norm(x_new, ndim).sqrt()
    return torch.where(norm > 0, diff / torch.where(norm > 0, norm, 1.0), diff)


def check_iterations(n_iter: int, tol: float) -> None:
    """Refuse a non-positive iteration count or a negative (or NaN) tolerance."""
    if n_iter < 1:
        raise InputError(None, f"n_iter must be at least 1, got {n_iter}")
    if not tol >= 0.0:
        raise InputError(None, f"tol must be non-negative, got {tol}")


def start(
    operator: LinearOperator,
    y: torch.Tensor,
    x0: torch.Tensor | None,
    fill: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """Start point ``(*batch, *domain_shape)`` for data ``y``: ``x0`` broadcast, or ``fill``.

    ``fill`` is a scalar or a per-item ``(*batch,)`` value; the result is a new tensor
    with ``y``'s dtype and device.
    """
    batch = y.shape[: y.ndim - len(operator.range_shape)]
    shape = (*batch, *operator.domain_shape)
    if x0 is None:
        fill_t = torch.as_tensor(fill, dtype=y.dtype, device=y.device)
        return torch.broadcast_to(expand(fill_t, len(operator.domain_shape)), shape).clone()
    try:
        return torch.broadcast_to(x0.to(dtype=y.dtype, device=y.device), shape).clone()
    except RuntimeError as err:
        raise InputError(
            None, f"x0 of shape {tuple(x0.shape)} does not broadcast to {shape}"
        ) from err

"""Pieces every batched iterative solver shares (tomography, poisson).

Every solver iterates on ``(*batch, *domain_shape)`` tensors: the leading ``batch`` dims
index independent problems, each stopped on its own when the relative change of its
iterate falls below a tolerance. These helpers are that agreement (per-item reductions,
the start point, the stopping rule), and :class:`SolveInfo` is what every solver reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from inversa.core.errors import InputError
from inversa.core.operators import LinearOperator

__all__ = [
    "SolveInfo",
    "check_iterations",
    "expand",
    "finish",
    "item_sq_norm",
    "item_sum",
    "relative_change",
    "start_point",
]


@dataclass(frozen=True, kw_only=True)
class SolveInfo:
    """What an iterative solve did.

    Attributes
    ----------
    n_iter
        Iterations performed (the largest over the batch items).
    converged
        True when every batch item met the stopping rule before ``n_iter`` ran out.
    relative_change
        The last relative change ``||x_k+1 - x_k|| / ||x_k+1||`` (largest over the batch
        items still iterating at that step).
    objective
        For solvers of an explicit objective (the Poisson estimators): the objective
        summed over the batch at the start and after every iteration, constants dropped;
        empty otherwise.
    residual_norms
        For least-squares solvers (SIRT, CGLS): ``||y - A x_k||`` over the whole batch for
        ``k = 0, ..., n_iter`` (the start point first); empty otherwise.
    """

    n_iter: int
    converged: bool
    relative_change: float
    objective: tuple[float, ...] = ()
    residual_norms: tuple[float, ...] = ()


def finish(
    n_iter: int,
    active: torch.Tensor,
    change: float,
    *,
    objective: Sequence[float] = (),
    residual_norms: Sequence[float] = (),
) -> SolveInfo:
    """Report a batched solve that ran ``n_iter`` iterations as a :class:`SolveInfo`.

    Parameters
    ----------
    n_iter
        Iterations performed.
    active
        ``(*batch,)`` bool: the items that have not met the stopping rule.
    change
        The last relative change (largest over the items still iterating).
    objective, residual_norms
        The histories the solver kept (see :class:`SolveInfo`).

    Returns
    -------
    SolveInfo
        Converged when no item is still active.
    """
    return SolveInfo(
        n_iter=n_iter,
        converged=not bool(active.any()),
        relative_change=change,
        objective=tuple(objective),
        residual_norms=tuple(residual_norms),
    )


def item_sum(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Sum over the trailing ``ndim`` dims of each item.

    Parameters
    ----------
    x
        ``(*batch, *item)`` tensor with ``len(item) == ndim``.
    ndim
        Number of trailing dims that form one item.

    Returns
    -------
    torch.Tensor
        ``(*batch,)`` sums.
    """
    return x.sum(dim=tuple(range(x.ndim - ndim, x.ndim)))


def item_sq_norm(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Squared Euclidean norm of each item: ``(*batch, *item) -> (*batch,)``."""
    return item_sum(x.square(), ndim)


def expand(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """Append ``ndim`` singleton dims so a per-item value broadcasts over its item.

    ``(*batch,) -> (*batch, 1, ..., 1)``.
    """
    return v.reshape(*v.shape, *([1] * ndim))


def relative_change(step: torch.Tensor, x_new: torch.Tensor, ndim: int) -> torch.Tensor:
    """Per-item relative change ``||step|| / ||x_new||``.

    Parameters
    ----------
    step
        ``(*batch, *item)`` update ``x_new - x``.
    x_new
        ``(*batch, *item)`` new iterate.
    ndim
        Number of trailing dims that form one item.

    Returns
    -------
    torch.Tensor
        ``(*batch,)``; an item whose new iterate is zero reports ``||step||`` (so a zero
        iterate that did not move changed by 0).
    """
    diff = item_sq_norm(step, ndim).sqrt()
    norm = item_sq_norm(x_new, ndim).sqrt()
    return torch.where(norm > 0, diff / torch.where(norm > 0, norm, 1.0), diff)


def check_iterations(n_iter: int, tol: float) -> None:
    """Refuse a non-positive iteration count or a negative (or NaN) tolerance.

    Raises
    ------
    InputError
        When ``n_iter < 1`` or ``tol`` is not ``>= 0``.
    """
    if n_iter < 1:
        raise InputError(None, f"n_iter must be at least 1, got {n_iter}")
    if not tol >= 0.0:
        raise InputError(None, f"tol must be non-negative, got {tol}")


def start_point(
    operator: LinearOperator,
    y: torch.Tensor,
    x0: torch.Tensor | None,
    fill: torch.Tensor | float = 0.0,
) -> torch.Tensor:
    """Start point of a batched solve of ``operator x = y``.

    Parameters
    ----------
    operator
        The operator; its ``range_shape`` splits ``y`` into batch and item dims.
    y
        ``(*batch, *range_shape)`` data.
    x0
        Start point broadcastable to ``(*batch, *domain_shape)``, or ``None``.
    fill
        Used when ``x0`` is ``None``: a scalar or a per-item ``(*batch,)`` value.

    Returns
    -------
    torch.Tensor
        A new ``(*batch, *domain_shape)`` tensor with ``y``'s dtype and device.

    Raises
    ------
    InputError
        When ``x0`` does not broadcast to that shape.
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

"""Iterative least-squares solvers for any linear operator: SIRT and CGLS.

Both solvers are generic over :class:`inversa.core.operators.LinearOperator` and batched:
the leading dimensions of ``y`` (before ``operator.range_shape``) index independent
problems. Each problem stops on its own (its iterate is frozen once it meets the
stopping rule), so a batched solve gives exactly the per-item results.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import torch

from inversa.core.errors import InputError
from inversa.core.operators import LinearOperator
from inversa.core.solve import SolveInfo, check_iterations, finish, relative_change
from inversa.core.solve import expand as _expand
from inversa.core.solve import item_sq_norm as _sq_norm
from inversa.core.solve import start_point as _start

__all__ = ["SolveInfo", "cgls", "sirt"]

Callback = Callable[[int, torch.Tensor], None]


def _check_inputs(
    operator: LinearOperator, y: torch.Tensor, n_iter: int, tol: float, damping: float = 0.0
) -> None:
    nr = len(operator.range_shape)
    if tuple(y.shape[y.ndim - nr :]) != tuple(operator.range_shape) or y.ndim < nr:
        raise InputError(
            None,
            f"data of shape {tuple(y.shape)} does not end with the operator's range shape "
            f"{tuple(operator.range_shape)}",
        )
    check_iterations(n_iter, tol)
    if not damping >= 0.0:
        raise InputError(None, f"damping must be non-negative, got {damping}")


def _safe_reciprocal(s: torch.Tensor) -> torch.Tensor:
    # Sums that are zero up to round-off (rays missing the object, voxels no ray sees)
    # get weight 0 instead of a huge or infinite one.
    floor = torch.finfo(s.dtype).eps * s.abs().max()
    return torch.where(s.abs() > floor, 1.0 / s, torch.zeros_like(s))


@contextlib.contextmanager
def _progress(enabled: bool, total: int, name: str) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(name, total=total)
        yield lambda: bar.advance(task)


def sirt(
    operator: LinearOperator,
    y: torch.Tensor,
    *,
    n_iter: int = 100,
    tol: float = 1e-4,
    nonneg: bool = False,
    x0: torch.Tensor | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> tuple[torch.Tensor, SolveInfo]:
    """Simultaneous iterative reconstruction technique.

    Iterates ``x <- x + C A^T R (y - A x)`` with ``R = 1 / (A 1)`` (inverse row sums)
    and ``C = 1 / (A^T 1)`` (inverse column sums); rows or columns whose sum is zero
    (to round-off) get weight 0. For a non-negative ``A`` this converges to the
    minimiser of ``||A x - y||_R^2`` closest to ``x0`` in the ``C^-1``-norm; for a
    consistent system, to a solution of ``A x = y``.

    Parameters
    ----------
    operator
        The forward model ``A``, normally with non-negative entries (projectors).
    y
        Data, ``(..., *range_shape)``; leading dims are independent problems.
    n_iter
        Maximum number of iterations.
    tol
        Stop an item when ``||x_k+1 - x_k|| / ||x_k+1|| < tol``.
    nonneg
        Project each iterate onto ``x >= 0``.
    x0
        Start point, broadcastable to ``(..., *domain_shape)``; zeros by default.
    progress
        Show a ``rich`` progress bar.
    callback
        Called as ``callback(k, x)`` after iteration ``k`` (counted from 1).

    Returns
    -------
    x : torch.Tensor
        The solution, ``(..., *domain_shape)``, dtype and device of ``y``.
    info : SolveInfo
        Iterations, convergence flag, last relative change and residual norms.
    """
    _check_inputs(operator, y, n_iter, tol)
    nd = len(operator.domain_shape)
    x = _start(operator, y, x0)
    if nonneg:
        x = x.clamp_min(0.0)
    ones = torch.ones(operator.domain_shape, dtype=y.dtype, device=y.device)
    row_w = _safe_reciprocal(operator.forward(ones))
    col_w = _safe_reciprocal(
        operator.adjoint(torch.ones(operator.range_shape, dtype=y.dtype, device=y.device))
    )
    active = torch.ones(x.shape[: x.ndim - nd], dtype=torch.bool, device=y.device)
    residual = y - operator.forward(x)
    residual_norms = [math.sqrt(float(_sq_norm(residual, residual.ndim)))]
    change = math.inf
    k = 0
    with _progress(progress, n_iter, "SIRT") as advance:
        while k < n_iter and bool(active.any()):
            k += 1
            x_new = x + col_w * operator.adjoint(row_w * residual)
            if nonneg:
                x_new = x_new.clamp_min(0.0)
            rel = relative_change(x_new - x, x_new, nd)
            change = float(rel[active].max())
            x = torch.where(_expand(active, nd), x_new, x)
            active = active & ~(rel < tol)
            residual = y - operator.forward(x)
            residual_norms.append(math.sqrt(float(_sq_norm(residual, residual.ndim))))
            if callback is not None:
                callback(k, x)
            advance()
    return x, finish(k, active, change, residual_norms=residual_norms)


def cgls(
    operator: LinearOperator,
    y: torch.Tensor,
    *,
    n_iter: int = 50,
    tol: float = 1e-4,
    damping: float = 0.0,
    x0: torch.Tensor | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> tuple[torch.Tensor, SolveInfo]:
    """Conjugate gradients on the normal equations (CGLS), optionally damped.

    Minimises ``||A x - y||^2 + damping ||x||^2``, i.e. solves
    ``(A^T A + damping I) x = A^T y`` without forming ``A^T A``, with the residual
    ``r = y - A x`` updated by recurrence (one ``forward`` and one ``adjoint`` per
    iteration). Without damping, ``||y - A x_k||`` decreases monotonically.

    Parameters
    ----------
    operator
        The forward model ``A``.
    y
        Data, ``(..., *range_shape)``; leading dims are independent problems.
    n_iter
        Maximum number of iterations.
    tol
        Stop an item when ``||x_k+1 - x_k|| / ||x_k+1|| < tol``, or when the
        normal-equation residual ``||A^T r - damping x||`` has fallen below
        ``100 eps`` times its start value (solved to working precision).
    damping
        Tikhonov weight ``>= 0``.
    x0, progress, callback
        As in :func:`sirt`.

    Returns
    -------
    x : torch.Tensor
        The solution, ``(..., *domain_shape)``, dtype and device of ``y``.
    info : SolveInfo
        Iterations, convergence flag, last relative change and residual norms.
    """
    _check_inputs(operator, y, n_iter, tol, damping)
    nd, nr = len(operator.domain_shape), len(operator.range_shape)
    x = _start(operator, y, x0)
    r = y - operator.forward(x)
    s = operator.adjoint(r) - damping * x
    p = s
    gamma = _sq_norm(s, nd)
    # Solved to working precision: further steps only amplify round-off.
    gamma_floor = (100.0 * torch.finfo(y.dtype).eps) ** 2 * gamma
    active = gamma > gamma_floor
    residual_norms = [math.sqrt(float(_sq_norm(r, r.ndim)))]
    change = 0.0 if not bool(active.any()) else math.inf
    k = 0
    with _progress(progress, n_iter, "CGLS") as advance:
        while k < n_iter and bool(active.any()):
            k += 1
            q = operator.forward(p)
            delta = _sq_norm(q, nr) + damping * _sq_norm(p, nd)
            # Inactive items take a zero step; guard their 0/0.
            alpha = torch.where(active, gamma / torch.where(active, delta, 1.0), 0.0)
            x_new = x + _expand(alpha, nd) * p
            r = r - _expand(alpha, nr) * q
            rel = relative_change(x_new - x, x_new, nd)
            change = float(rel[active].max())
            x = x_new
            s = operator.adjoint(r) - damping * x
            gamma_new = _sq_norm(s, nd)
            beta = torch.where(active, gamma_new / torch.where(active, gamma, 1.0), 0.0)
            p = s + _expand(beta, nd) * p
            gamma = gamma_new
            active = active & ~(rel < tol) & (gamma > gamma_floor)
            residual_norms.append(math.sqrt(float(_sq_norm(r, r.ndim))))
            if callback is not None:
                callback(k, x)
            advance()
    return x, finish(k, active, change, residual_norms=residual_norms)

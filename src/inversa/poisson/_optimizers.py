"""The three iterations behind every Poisson-study estimator, and how they are run.

All are batched: leading dimensions of the iterate (before the operator's domain shape)
index independent problems, each stopped on its own when the relative change of its
iterate ``||x_k+1 - x_k|| / ||x_k+1||`` falls below ``tol``.

- MLEM for Poisson maximum likelihood (multiplicative, non-negative by construction);
- scaled spectral projected gradient (SGP / SPG: Barzilai-Borwein steps, projection onto
  ``x >= 0`` when asked, non-monotone Armijo backtracking along the projected direction)
  for any smooth convex objective; the Poisson log-likelihood's barrier is respected
  because a trial point with a non-positive mean where counts were seen has infinite
  objective and is backtracked;
- conjugate gradients on the normal equations for the quadratic objectives without
  constraint (then HG and OG are linear in their data-dependent right-hand side).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from inversa.core.errors import InputError
from inversa.core.operators import LinearOperator
from inversa.core.solve import SolveInfo, check_iterations, finish
from inversa.core.solve import expand as _expand
from inversa.core.solve import item_sum as _item_sum
from inversa.core.solve import relative_change as _rel_change
from inversa.poisson._fidelities import Fidelity, PoissonFidelity, QuadraticFidelity
from inversa.poisson._models import LinearPoissonModel
from inversa.poisson._penalties import Penalty

__all__ = ["Callback", "SolverConfig", "cg_quadratic", "mlem", "spg"]

Callback = Callable[[int, torch.Tensor], None]


@dataclass(frozen=True, kw_only=True)
class SolverConfig:
    """How an estimator iterates: the settings every Poisson-study estimator shares.

    Attributes
    ----------
    n_iter
        Iteration cap (>= 1).
    tol
        Stopping threshold (>= 0) on each batch item's relative change
        ``||x_k+1 - x_k|| / ||x_k+1||``.
    callback
        Called as ``callback(k, x)`` with the ``(*batch, *domain)`` iterate after
        iteration ``k`` (1-based), or ``None``.
    """

    n_iter: int = 500
    tol: float = 1e-4
    callback: Callback | None = None

    def __post_init__(self) -> None:
        check_iterations(self.n_iter, self.tol)


def spg(
    operator: LinearOperator,
    data: Fidelity,
    penalty: Penalty,
    x: torch.Tensor,
    *,
    nonneg: bool,
    config: SolverConfig,
    scaled: bool = False,
    memory: int = 5,
) -> tuple[torch.Tensor, SolveInfo]:
    """Minimise ``data(A x) + penalty(x)`` by scaled spectral projected gradient.

    With ``scaled`` (SGP), the direction is ``P(x - alpha D grad) - x`` with the EM scaling
    ``D = x / (A^T grad_z f's constant part)``: at ``alpha = 1`` on a Poisson term this is
    the MLEM step, and the Barzilai-Borwein ``alpha`` extrapolates it; without it, plain
    SPG. An item stops when a full (not backtracked) step changes it by less than ``tol``
    relatively, or when backtracking can no longer decrease the objective (then it is not
    ``converged``).

    Parameters
    ----------
    operator
        ``A``, ``(*domain) -> (*range)``.
    data
        The data term of ``z = A x``.
    penalty
        The regulariser of ``x``.
    x
        ``(*batch, *domain)`` start point.
    nonneg
        Project onto ``x >= 0``.
    config
        Iteration cap, tolerance, callback.
    scaled
        Use the EM scaling (needs ``data.scale``).
    memory
        Number of past objectives the non-monotone line search compares against.

    Returns
    -------
    x : torch.Tensor
        ``(*batch, *domain)`` iterate.
    info : SolveInfo
        With the objective history.
    """
    n_iter, tol, callback = config.n_iter, config.tol, config.callback
    nd, nr = len(operator.domain_shape), len(operator.range_shape)
    dims = tuple(range(x.ndim - nd, x.ndim))
    if nonneg:
        x = x.clamp_min(0.0)
    z = operator.forward(x)
    f = data.value(z) + penalty.value(x).double()
    if not bool(torch.isfinite(f).all()):
        raise InputError(
            None, "the start point has an infinite objective (zero mean where counts>0)"
        )
    g = operator.adjoint(data.grad(z)) + penalty.gradient(x)
    sens = None
    if scaled:
        ones = torch.ones(operator.range_shape, dtype=x.dtype, device=x.device)
        sens = operator.adjoint(ones * data.scale)
        sens = torch.where(sens > 1e-12 * sens.max(), sens, sens.max())

    def scaling(v: torch.Tensor) -> torch.Tensor | float:
        if sens is None:
            return 1.0
        # A floor keeps pixels at zero movable (pure EM scaling would freeze them).
        floor = 1e-3 * _expand(v.abs().mean(dim=dims).clamp_min(1e-12), nd)
        return v.abs().clamp_min(floor) / sens

    def project(v: torch.Tensor) -> torch.Tensor:
        return v.clamp_min(0.0) if nonneg else v

    scale = scaling(x)
    if scaled:
        alpha = torch.ones(f.shape, dtype=torch.float64, device=x.device)
    else:
        pg = project(x - g) - x
        pg_max = pg.abs().amax(dim=dims).double()
        alpha = torch.where(pg_max > 0, 1.0 / torch.where(pg_max > 0, pg_max, 1.0), 1.0)
    history = [f]
    objective = [float(f.sum())]
    active = torch.ones(f.shape, dtype=torch.bool, device=x.device)
    converged = torch.zeros_like(active)
    change, k = math.inf, 0
    while k < n_iter and bool(active.any()):
        k += 1
        d = project(x - _expand(alpha, nd).to(x) * scale * g) - x
        ad = operator.forward(d)
        gd = _item_sum((g * d).double(), nd)
        f_ref = torch.stack(history[-memory:]).amax(dim=0)
        t = torch.ones_like(f)
        for _ in range(50):
            f_try = data.value(z + _expand(t, nr).to(z) * ad)
            f_try = f_try + penalty.value(x + _expand(t, nd).to(x) * d).double()
            ok = torch.isfinite(f_try) & (f_try <= f_ref + 1e-4 * t * gd)
            if bool((ok | ~active).all()):
                break
            t = torch.where(ok | ~active, t, 0.5 * t)
        moved = active & ok
        t = torch.where(moved, t, 0.0)
        step = _expand(t, nd).to(x) * d
        x_new = x + step
        z = z + _expand(t, nr).to(z) * ad
        f = torch.where(moved, f_try, f)
        g_new = operator.adjoint(data.grad(z)) + penalty.gradient(x_new)
        scale_new = scaling(x_new)
        yv = g_new - g
        if scaled:
            sy = _item_sum((step / scale_new * yv).double(), nd)
            ss = _item_sum((step / scale_new).double().square(), nd)
        else:
            sy = _item_sum((step * yv).double(), nd)
            ss = _item_sum(step.double().square(), nd)
        bb = torch.where(sy > 0, ss / torch.where(sy > 0, sy, 1.0), 1e5 if scaled else 1e10)
        # Scaled: never below the EM step (alpha = 1), which always makes progress.
        bb = bb.clamp(1.0, 1e5) if scaled else bb.clamp(1e-10, 1e10)
        alpha = torch.where(moved, bb, alpha)
        rel = _rel_change(step, x_new, nd)
        change = float(rel[active].max())
        x, g, scale = x_new, g_new, scale_new
        history.append(f)
        objective.append(float(f.sum()))
        done = active & (rel < tol) & (t == 1.0)
        converged = converged | done
        # Backtracking exhausted: no decrease left at working precision.
        active = active & ~done & ok
        if callback is not None:
            callback(k, x)
    return x, finish(k, ~converged, change, objective=objective)


def cg_quadratic(
    operator: LinearOperator,
    data: QuadraticFidelity,
    penalty: Penalty,
    x: torch.Tensor,
    *,
    config: SolverConfig,
) -> tuple[torch.Tensor, SolveInfo]:
    """Conjugate gradients on ``(c^2 A^T W A + lambda L^T L) x = c A^T W t``.

    Parameters
    ----------
    operator
        ``A``, ``(*domain) -> (*range)``.
    data
        The quadratic data term (target ``t``, factor ``c``, weights ``W``).
    penalty
        A quadratic regulariser (identity or gradient Tikhonov).
    x
        ``(*batch, *domain)`` start point.
    config
        Iteration cap, tolerance, callback.

    Returns
    -------
    x : torch.Tensor
        ``(*batch, *domain)`` iterate.
    info : SolveInfo
        With the objective history.
    """
    n_iter, tol, callback = config.n_iter, config.tol, config.callback
    nd = len(operator.domain_shape)
    c, w = data.c, data.w

    def hess(v: torch.Tensor) -> torch.Tensor:
        return c * c * operator.adjoint(w * operator.forward(v)) + penalty.hessian_apply(v)

    rhs = c * operator.adjoint(w * data.t)
    const = float(data.value(torch.zeros_like(data.t)).sum())

    def objective(v: torch.Tensor, res: torch.Tensor) -> float:
        # With res = rhs - H v: v^T H v / 2 - rhs^T v = -(rhs + res)^T v / 2 (no extra A v).
        return const - 0.5 * float(((rhs + res) * v).double().sum())

    r = rhs - hess(x)
    p = r
    rr = _item_sum(r.square(), nd)
    floor = (100.0 * torch.finfo(x.dtype).eps) ** 2 * rr
    active = rr > floor
    objectives = [objective(x, r)]
    change, k = (0.0 if not bool(active.any()) else math.inf), 0
    while k < n_iter and bool(active.any()):
        k += 1
        hp = hess(p)
        php = _item_sum(p * hp, nd)
        alpha = torch.where(active, rr / torch.where(active & (php > 0), php, 1.0), 0.0)
        alpha = torch.where(php > 0, alpha, 0.0)
        step = _expand(alpha, nd) * p
        x = x + step
        r = r - _expand(alpha, nd) * hp
        rr_new = _item_sum(r.square(), nd)
        beta = torch.where(active, rr_new / torch.where(active, rr, 1.0), 0.0)
        p = r + _expand(beta, nd) * p
        rr = rr_new
        rel = _rel_change(step, x, nd)
        change = float(rel[active].max())
        active = active & ~(rel < tol) & (rr > floor)
        objectives.append(objective(x, r))
        if callback is not None:
            callback(k, x)
    return x, finish(k, active, change, objective=objectives)


def mlem(
    model: LinearPoissonModel,
    y: torch.Tensor,
    x: torch.Tensor,
    *,
    config: SolverConfig,
) -> tuple[torch.Tensor, SolveInfo]:
    """Maximum-likelihood expectation maximisation for ``y ~ Poisson(s A x + b)``.

    Parameters
    ----------
    model
        The linear Poisson model.
    y
        ``(*batch, *range)`` counts.
    x
        ``(*batch, *domain)`` positive start point.
    config
        Iteration cap, tolerance, callback.

    Returns
    -------
    x : torch.Tensor
        ``(*batch, *domain)`` iterate (non-negative).
    info : SolveInfo
        With the objective history.
    """
    n_iter, tol, callback = config.n_iter, config.tol, config.callback
    op, s, b = model.operator, model.dose, model.background
    nd = len(op.domain_shape)
    data = PoissonFidelity(y, s, b, len(op.range_shape))
    sens = s * op.adjoint(torch.ones(op.range_shape, dtype=y.dtype, device=y.device))
    # Pixels no ray sees stay where they are (weight 0) instead of dividing by zero.
    inv_sens = torch.where(sens > 1e-12 * sens.max(), 1.0 / sens, torch.zeros_like(sens))
    z = op.forward(x)
    objective = [float(data.value(z).sum())]
    active = torch.ones(y.shape[: y.ndim - len(op.range_shape)], dtype=torch.bool, device=y.device)
    change, k = math.inf, 0
    while k < n_iter and bool(active.any()):
        k += 1
        m = s * z + b
        ratio = torch.where(data.seen, y / m.clamp_min(1e-30), 0.0)
        x_new = x * (s * op.adjoint(ratio)) * inv_sens
        x_new = torch.where(_expand(active, nd), x_new, x)
        rel = _rel_change(x_new - x, x_new, nd)
        change = float(rel[active].max())
        x = x_new
        z = op.forward(x)
        objective.append(float(data.value(z).sum()))
        active = active & ~(rel < tol)
        if callback is not None:
            callback(k, x)
    return x, finish(k, active, change, objective=objective)

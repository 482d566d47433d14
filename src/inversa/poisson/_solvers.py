"""Estimators for Poisson data: ML (MLEM), MAP, HG, OG and the transmission counterparts.

All solvers are batched: leading dimensions of the counts (before the operator's range
shape) index independent problems, each stopped on its own when the relative change of
its iterate ``||x_k+1 - x_k|| / ||x_k+1||`` falls below ``tol``.

Three iterations serve every objective:

- MLEM for Poisson maximum likelihood (multiplicative, non-negative by construction);
- projected spectral gradient (SPG: Barzilai-Borwein steps, projection onto ``x >= 0``
  when asked, non-monotone Armijo backtracking along the projected direction) for any
  smooth convex objective; the Poisson log-likelihood's barrier is respected because a
  trial point with a non-positive mean where counts were seen has infinite objective and
  is backtracked;
- conjugate gradients on the normal equations for the quadratic objectives without
  constraint (then HG and OG are linear in their data-dependent right-hand side).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from inversa.core._solve import check_iterations as _check_run
from inversa.core._solve import expand as _expand
from inversa.core._solve import item_sum as _item_sum
from inversa.core._solve import relative_change as _rel_change
from inversa.core._solve import start as _start
from inversa.core.errors import InputError
from inversa.core.noise import log_transform
from inversa.core.operators import LinearOperator
from inversa.poisson._models import LinearPoissonModel, TransmissionModel, check_counts
from inversa.poisson._penalties import Penalty, PenaltyKind

__all__ = [
    "EstimatorName",
    "SolverInfo",
    "estimate",
    "heteroscedastic_ls",
    "homoscedastic_ls",
    "poisson_map",
    "poisson_ml",
    "transmission_pl",
    "transmission_pwls",
]

EstimatorName = Literal["ml", "map", "hg", "og"]
Callback = Callable[[int, torch.Tensor], None]


@dataclass(frozen=True)
class SolverInfo:
    """What an iterative solve did.

    Attributes
    ----------
    n_iter
        Iterations performed (the largest over the batch items).
    converged
        True when every batch item met the stopping rule within ``n_iter``.
    relative_change
        Last relative change of the iterate (largest over the items still iterating).
    objective
        The objective summed over the batch, at the start and after every iteration
        (constants of the likelihood dropped).
    """

    n_iter: int
    converged: bool
    relative_change: float
    objective: tuple[float, ...]


# --- data-fidelity terms of z = A x -------------------------------------------------------


class _Fidelity:
    """A smooth data term ``f(z)`` of the projections ``z = A x``, summed per item."""

    nr: int

    def value(self, z: torch.Tensor) -> torch.Tensor:  # (..., *range) -> (...) float64
        raise NotImplementedError

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _sum(self, t: torch.Tensor) -> torch.Tensor:
        return t.sum(dim=tuple(range(t.ndim - self.nr, t.ndim)), dtype=torch.float64)


class _PoissonFidelity(_Fidelity):
    """``sum(m - y log m)`` with ``m = dose z + background``."""

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
        # float64: the line search compares sums of many terms to a small decrease.
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


class _QuadraticFidelity(_Fidelity):
    """``sum(w (t - c z)^2) / 2``: a (weighted) least-squares data term."""

    def __init__(self, target: torch.Tensor, c: float, w: torch.Tensor | float, nr: int) -> None:
        self.t, self.c, self.w, self.nr = target, c, w, nr

    def value(self, z: torch.Tensor) -> torch.Tensor:
        return 0.5 * self._sum(self.w * (self.t.double() - self.c * z.double()).square())

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        return -self.c * self.w * (self.t - self.c * z)


class _TransmissionFidelity(_Fidelity):
    """``sum(n0 exp(-z) + y z)``: the negative transmission log-likelihood."""

    def __init__(self, y: torch.Tensor, n0: float, nr: int) -> None:
        self.y, self.n0, self.nr = y, n0, nr

    def value(self, z: torch.Tensor) -> torch.Tensor:
        z = z.double()
        return self._sum(self.n0 * torch.exp(-z) + self.y * z)

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        return self.y - self.n0 * torch.exp(-z)


# --- helpers -------------------------------------------------------------------------------


def _flat_level(model: LinearPoissonModel, y: torch.Tensor) -> torch.Tensor:
    """Per-item constant image whose expected total count matches the data (>= tiny)."""
    op = model.operator
    nr = len(op.range_shape)
    ones = torch.ones(op.domain_shape, dtype=y.dtype, device=y.device)
    total_a = float(op.forward(ones).sum())
    level = (_item_sum(y - model.background, nr) / (model.dose * max(total_a, 1e-30))).clamp_min(
        1e-6
    )
    return level


# --- the three iterations --------------------------------------------------------------------


def _spg(
    operator: LinearOperator,
    data: _Fidelity,
    penalty: Penalty,
    x: torch.Tensor,
    *,
    nonneg: bool,
    n_iter: int,
    tol: float,
    callback: Callback | None,
    scaled: bool = False,
    memory: int = 5,
) -> tuple[torch.Tensor, SolverInfo]:
    """Scaled spectral projected gradient (SGP; plain SPG when ``scaled`` is false).

    With ``scaled``, the direction is ``P(x - alpha D grad) - x`` with the EM scaling
    ``D = x / (A^T grad_z f's constant part)``: at ``alpha = 1`` on a Poisson term this is
    the MLEM step, and the Barzilai-Borwein ``alpha`` extrapolates it. An item stops when
    a full (not backtracked) step changes it by less than ``tol`` relatively, or when
    backtracking can no longer decrease the objective (then it is not ``converged``).
    """
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
    return x, SolverInfo(k, bool(converged.all()), change, tuple(objective))


def _cg_quadratic(
    operator: LinearOperator,
    data: _QuadraticFidelity,
    penalty: Penalty,
    x: torch.Tensor,
    *,
    n_iter: int,
    tol: float,
    callback: Callback | None,
) -> tuple[torch.Tensor, SolverInfo]:
    """Conjugate gradients on ``(c^2 A^T W A + lambda L^T L) x = c A^T W t``."""
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
    return x, SolverInfo(k, not bool(active.any()), change, tuple(objectives))


def _mlem(
    model: LinearPoissonModel,
    y: torch.Tensor,
    x: torch.Tensor,
    *,
    n_iter: int,
    tol: float,
    callback: Callback | None,
) -> tuple[torch.Tensor, SolverInfo]:
    op, s, b = model.operator, model.dose, model.background
    nd = len(op.domain_shape)
    data = _PoissonFidelity(y, s, b, len(op.range_shape))
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
    return x, SolverInfo(k, not bool(active.any()), change, tuple(objective))


# --- public estimators ---------------------------------------------------------------------


def _penalty(op: LinearOperator, reg: float, penalty: PenaltyKind, tv_epsilon: float) -> Penalty:
    return Penalty(kind=penalty, weight=reg, ndim=len(op.domain_shape), tv_epsilon=tv_epsilon)


def poisson_ml(
    model: LinearPoissonModel,
    y: torch.Tensor,
    *,
    method: Literal["mlem", "spg"] = "mlem",
    nonneg: bool = True,
    n_iter: int = 500,
    tol: float = 1e-4,
    x0: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> tuple[torch.Tensor, SolverInfo]:
    """Poisson maximum likelihood: minimise ``sum(m - y log m)``, ``m = s A x + b``.

    Parameters
    ----------
    model
        The linear Poisson model (operator, dose ``s``, background ``b``).
    y
        ``(..., *range)`` counts; leading dims are independent problems.
    method
        ``"mlem"`` (expectation maximisation, monotone, non-negative by construction) or
        ``"spg"`` (projected spectral gradient; usually far fewer iterations).
    nonneg
        Constrain ``x >= 0``. MLEM is non-negative by construction, so ``False`` needs
        ``method="spg"`` (then only ``m > 0`` where counts were seen is kept).
    n_iter, tol
        Iteration cap and relative-change stopping threshold.
    x0
        Start point broadcastable to ``(..., *domain)``; default the flat image whose
        expected total count matches the data. MLEM needs it positive.
    callback
        Called as ``callback(k, x)`` after iteration ``k``.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` estimate.
    info : SolverInfo
        Iterations, convergence, last relative change, objective history.
    """
    y = check_counts(y, model.operator)
    _check_run(n_iter, tol)
    x = _start(model.operator, y, x0, _flat_level(model, y))
    if method == "mlem":
        if not nonneg:
            raise InputError(None, "MLEM is non-negative by construction; use method='spg'")
        if bool((x <= 0).any()):
            raise InputError(None, "MLEM needs a positive start point x0")
        return _mlem(model, y, x, n_iter=n_iter, tol=tol, callback=callback)
    if method != "spg":
        raise InputError(None, f"method must be 'mlem' or 'spg', got {method!r}")
    return poisson_map(
        model, y, reg=0.0, nonneg=nonneg, n_iter=n_iter, tol=tol, x0=x, callback=callback
    )


def poisson_map(
    model: LinearPoissonModel,
    y: torch.Tensor,
    *,
    reg: float,
    penalty: PenaltyKind = "identity",
    tv_epsilon: float = 1e-2,
    nonneg: bool = True,
    n_iter: int = 500,
    tol: float = 1e-4,
    x0: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> tuple[torch.Tensor, SolverInfo]:
    """Poisson MAP: minimise ``sum(m - y log m) + reg * R(x)``, ``m = s A x + b``.

    ``R`` is Tikhonov (``penalty="identity"``: ``||x||^2/2``; ``"gradient"``:
    ``||D x||^2/2``) or smoothed total variation (``"tv"``), see :class:`Penalty`.
    Solved by projected spectral gradient.

    Parameters
    ----------
    model
        The linear Poisson model.
    y
        ``(..., *range)`` counts.
    reg
        Regularisation weight ``>= 0``.
    penalty, tv_epsilon
        The regulariser and the TV smoothing.
    nonneg
        Constrain ``x >= 0`` (otherwise only ``m > 0`` where counts were seen).
    n_iter, tol, x0, callback
        As in :func:`poisson_ml`.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` estimate.
    info : SolverInfo
        Iterations, convergence, last relative change, objective history.
    """
    op = model.operator
    y = check_counts(y, op)
    _check_run(n_iter, tol)
    pen = _penalty(op, reg, penalty, tv_epsilon)
    x = _start(op, y, x0, _flat_level(model, y))
    data = _PoissonFidelity(y, model.dose, model.background, len(op.range_shape), guard=not nonneg)
    return _spg(
        op, data, pen, x, nonneg=nonneg, n_iter=n_iter, tol=tol, callback=callback, scaled=True
    )


def _least_squares(
    op: LinearOperator,
    data: _QuadraticFidelity,
    pen: Penalty,
    x: torch.Tensor,
    *,
    nonneg: bool,
    n_iter: int,
    tol: float,
    callback: Callback | None,
) -> tuple[torch.Tensor, SolverInfo]:
    if nonneg or pen.kind == "tv":
        return _spg(op, data, pen, x, nonneg=nonneg, n_iter=n_iter, tol=tol, callback=callback)
    return _cg_quadratic(op, data, pen, x, n_iter=n_iter, tol=tol, callback=callback)


def heteroscedastic_ls(
    model: LinearPoissonModel,
    y: torch.Tensor,
    *,
    reg: float,
    penalty: PenaltyKind = "identity",
    tv_epsilon: float = 1e-2,
    variance_floor: float = 1.0,
    nonneg: bool = False,
    n_iter: int = 500,
    tol: float = 1e-4,
    x0: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> tuple[torch.Tensor, SolverInfo]:
    """HG: the normal approximation of Poisson data with variances from the counts.

    Minimises ``sum((y - s A x - b)^2 / (2 v)) + reg * R(x)`` with
    ``v = max(y, variance_floor)``: a zero count gets the variance of ``variance_floor``
    counts instead of an infinite weight. Without ``nonneg`` (and for the quadratic
    penalties) it is solved by conjugate gradients.

    Parameters
    ----------
    model
        The linear Poisson model.
    y
        ``(..., *range)`` counts.
    reg, penalty, tv_epsilon
        Regularisation weight and regulariser (see :class:`Penalty`).
    variance_floor
        Smallest variance assigned to a measurement (counts), positive.
    nonneg
        Constrain ``x >= 0`` (then solved by projected spectral gradient).
    n_iter, tol, x0, callback
        As in :func:`poisson_ml`; the default start is zero.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` estimate.
    info : SolverInfo
        Iterations, convergence, last relative change, objective history.
    """
    op = model.operator
    y = check_counts(y, op)
    _check_run(n_iter, tol)
    if not variance_floor > 0:
        raise InputError(None, f"variance_floor must be positive, got {variance_floor}")
    pen = _penalty(op, reg, penalty, tv_epsilon)
    w = 1.0 / y.clamp_min(variance_floor)
    data = _QuadraticFidelity(y - model.background, model.dose, w, len(op.range_shape))
    x = _start(op, y, x0, 0.0)
    return _least_squares(
        op, data, pen, x, nonneg=nonneg, n_iter=n_iter, tol=tol, callback=callback
    )


def homoscedastic_ls(
    model: LinearPoissonModel,
    y: torch.Tensor,
    *,
    reg: float,
    penalty: PenaltyKind = "identity",
    tv_epsilon: float = 1e-2,
    nonneg: bool = False,
    n_iter: int = 500,
    tol: float = 1e-4,
    x0: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> tuple[torch.Tensor, SolverInfo]:
    """OG: homoscedastic least squares, a linear estimator of the counts.

    Minimises ``||y - s A x - b||^2 / (2 s) + reg * R(x)``: the variance is taken as the
    dose ``s`` everywhere, which keeps the estimator linear in ``y`` and puts ``reg`` on
    the same scale as for HG and Poisson MAP (all data terms have curvature ~ ``s``).
    With a quadratic penalty and no constraint it is solved by conjugate gradients.

    Parameters
    ----------
    model
        The linear Poisson model.
    y
        ``(..., *range)`` counts.
    reg, penalty, tv_epsilon
        Regularisation weight and regulariser (see :class:`Penalty`).
    nonneg
        Constrain ``x >= 0`` (the estimator is then no longer linear).
    n_iter, tol, x0, callback
        As in :func:`poisson_ml`; the default start is zero.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` estimate.
    info : SolverInfo
        Iterations, convergence, last relative change, objective history.
    """
    op = model.operator
    y = check_counts(y, op)
    _check_run(n_iter, tol)
    pen = _penalty(op, reg, penalty, tv_epsilon)
    data = _QuadraticFidelity(
        y - model.background, model.dose, 1.0 / model.dose, len(op.range_shape)
    )
    x = _start(op, y, x0, 0.0)
    return _least_squares(
        op, data, pen, x, nonneg=nonneg, n_iter=n_iter, tol=tol, callback=callback
    )


def transmission_pwls(
    model: TransmissionModel,
    y: torch.Tensor,
    *,
    reg: float,
    penalty: PenaltyKind = "identity",
    tv_epsilon: float = 1e-2,
    variance_floor: float = 1.0,
    zero_count: float = 0.5,
    nonneg: bool = False,
    n_iter: int = 500,
    tol: float = 1e-4,
    x0: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> tuple[torch.Tensor, SolverInfo]:
    """Penalised weighted least squares on log-transformed transmission data.

    With ``l = -log(max(y, zero_count) / n0)`` (see :func:`inversa.core.noise.log_transform`)
    and weights ``max(y, variance_floor)`` (the inverse variance of ``l`` to first
    order), minimises ``sum(w (A x - l)^2) / 2 + reg * R(x)``: the log-domain
    counterpart of HG.

    Parameters
    ----------
    model
        The transmission model (operator, ``n0``).
    y
        ``(..., *range)`` transmitted counts.
    reg, penalty, tv_epsilon
        Regularisation weight and regulariser (see :class:`Penalty`).
    variance_floor
        Smallest weight (counts), positive.
    zero_count
        Count substituted for a zero before the logarithm.
    nonneg
        Constrain ``x >= 0``.
    n_iter, tol, x0, callback
        As in :func:`poisson_ml`; the default start is zero.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` attenuation estimate.
    info : SolverInfo
        Iterations, convergence, last relative change, objective history.
    """
    op = model.operator
    y = check_counts(y, op)
    _check_run(n_iter, tol)
    if not variance_floor > 0:
        raise InputError(None, f"variance_floor must be positive, got {variance_floor}")
    pen = _penalty(op, reg, penalty, tv_epsilon)
    target = log_transform(y, n0=model.n0, zero_count=zero_count)
    data = _QuadraticFidelity(target, 1.0, y.clamp_min(variance_floor), len(op.range_shape))
    x = _start(op, y, x0, 0.0)
    return _least_squares(
        op, data, pen, x, nonneg=nonneg, n_iter=n_iter, tol=tol, callback=callback
    )


def transmission_pl(
    model: TransmissionModel,
    y: torch.Tensor,
    *,
    reg: float,
    penalty: PenaltyKind = "identity",
    tv_epsilon: float = 1e-2,
    nonneg: bool = True,
    n_iter: int = 500,
    tol: float = 1e-4,
    x0: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> tuple[torch.Tensor, SolverInfo]:
    """Penalised likelihood for transmission data: the counterpart of Poisson MAP.

    Minimises ``sum(n0 exp(-A x) + y A x) + reg * R(x)`` by projected spectral gradient.

    Parameters
    ----------
    model
        The transmission model.
    y
        ``(..., *range)`` transmitted counts.
    reg, penalty, tv_epsilon
        Regularisation weight and regulariser (``reg=0``: maximum likelihood).
    nonneg
        Constrain ``x >= 0`` (attenuation is non-negative).
    n_iter, tol, x0, callback
        As in :func:`poisson_ml`; the default start is zero.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` attenuation estimate.
    info : SolverInfo
        Iterations, convergence, last relative change, objective history.
    """
    op = model.operator
    y = check_counts(y, op)
    _check_run(n_iter, tol)
    pen = _penalty(op, reg, penalty, tv_epsilon)
    data = _TransmissionFidelity(y, model.n0, len(op.range_shape))
    x = _start(op, y, x0, 0.0)
    return _spg(op, data, pen, x, nonneg=nonneg, n_iter=n_iter, tol=tol, callback=callback)


def estimate(
    name: EstimatorName,
    model: LinearPoissonModel,
    y: torch.Tensor,
    *,
    reg: float = 0.0,
    penalty: PenaltyKind = "identity",
    nonneg: bool = True,
    n_iter: int = 500,
    tol: float = 1e-4,
    x0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, SolverInfo]:
    """Run one of the four estimators of the study by name.

    ``"ml"``: :func:`poisson_ml` (SPG, ``reg`` ignored); ``"map"``: :func:`poisson_map`;
    ``"hg"``: :func:`heteroscedastic_ls`; ``"og"``: :func:`homoscedastic_ls`.

    Parameters
    ----------
    name
        Estimator name.
    model, y
        The linear Poisson model and ``(..., *range)`` counts.
    reg, penalty
        Regularisation weight and regulariser (not used by ``"ml"``).
    nonneg, n_iter, tol, x0
        As in the individual solvers.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` estimate.
    info : SolverInfo
        What the solver did.
    """
    common = {"nonneg": nonneg, "n_iter": n_iter, "tol": tol, "x0": x0}
    if name == "ml":
        return poisson_ml(model, y, method="spg", **common)
    if name == "map":
        return poisson_map(model, y, reg=reg, penalty=penalty, **common)
    if name == "hg":
        return heteroscedastic_ls(model, y, reg=reg, penalty=penalty, **common)
    if name == "og":
        return homoscedastic_ls(model, y, reg=reg, penalty=penalty, **common)
    raise InputError(None, f"estimator must be ml, map, hg or og, got {name!r}")

"""Estimators for Poisson data: ML, MAP, HG, OG and the transmission counterparts.

Each estimator builds its objective (a data term of ``z = A x`` from
:mod:`inversa.poisson._fidelities` plus a :class:`Penalty`) and its start point, then
runs one of the iterations of :mod:`inversa.poisson._optimizers` as ``solver`` says.
The names of the study:

- ML: Poisson maximum likelihood;
- MAP: Poisson maximum a posteriori (likelihood plus a penalty);
- HG: *heteroscedastic Gaussian*, the normal approximation of Poisson data with the
  variance (= mean) estimated by the counts, i.e. weighted least squares;
- OG: *homoscedastic Gaussian*, one variance (the dose) for every measurement, i.e.
  ordinary least squares, an estimator linear in the counts.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from inversa.core.errors import InputError
from inversa.core.noise import log_transform
from inversa.core.operators import LinearOperator
from inversa.core.solve import SolveInfo, item_sum, start_point
from inversa.poisson._fidelities import (
    PoissonFidelity,
    QuadraticFidelity,
    TransmissionFidelity,
)
from inversa.poisson._models import LinearPoissonModel, TransmissionModel, check_counts
from inversa.poisson._optimizers import SolverConfig, cg_quadratic, mlem, spg
from inversa.poisson._penalties import Penalty, PenaltyKind

__all__ = [
    "ESTIMATOR_ALIASES",
    "EstimatorName",
    "canonical_estimator",
    "estimate",
    "heteroscedastic_ls",
    "homoscedastic_ls",
    "poisson_map",
    "poisson_ml",
    "transmission_pl",
    "transmission_pwls",
]

#: Short name of each estimator of the study, or a readable alias of one.
EstimatorName = Literal[
    "ml",
    "map",
    "hg",
    "og",
    "poisson_ml",
    "poisson_map",
    "heteroscedastic_gaussian",
    "homoscedastic_gaussian",
]

#: Readable alias -> short name (the short names are the keys of study results).
ESTIMATOR_ALIASES: dict[str, str] = {
    "poisson_ml": "ml",
    "poisson_map": "map",
    "heteroscedastic_gaussian": "hg",
    "homoscedastic_gaussian": "og",
}

_DEFAULT = SolverConfig()


def canonical_estimator(name: str) -> str:
    """Short name (``"ml"``, ``"map"``, ``"hg"`` or ``"og"``) of an estimator or its alias.

    Raises
    ------
    InputError
        When ``name`` is neither.
    """
    if name not in get_args(EstimatorName):
        raise InputError(
            None, f"estimator must be one of {', '.join(get_args(EstimatorName))}, got {name!r}"
        )
    return ESTIMATOR_ALIASES.get(name, name)


def _flat_level(model: LinearPoissonModel, y: torch.Tensor) -> torch.Tensor:
    """Per-item constant image whose expected total count matches the data (>= tiny)."""
    op = model.operator
    nr = len(op.range_shape)
    ones = torch.ones(op.domain_shape, dtype=y.dtype, device=y.device)
    total_a = float(op.forward(ones).sum())
    level = (item_sum(y - model.background, nr) / (model.dose * max(total_a, 1e-30))).clamp_min(
        1e-6
    )
    return level


def _setup(
    model: LinearPoissonModel | TransmissionModel,
    y: torch.Tensor,
    *,
    reg: float,
    penalty: PenaltyKind,
    tv_epsilon: float,
    variance_floor: float = 1.0,
) -> tuple[LinearOperator, torch.Tensor, Penalty]:
    """Check the counts and build the penalty: ``(operator, counts, penalty)``."""
    op = model.operator
    y = check_counts(y, op)
    if not variance_floor > 0:
        raise InputError(None, f"variance_floor must be positive, got {variance_floor}")
    pen = Penalty(kind=penalty, weight=reg, ndim=len(op.domain_shape), tv_epsilon=tv_epsilon)
    return op, y, pen


def _least_squares(
    op: LinearOperator,
    data: QuadraticFidelity,
    pen: Penalty,
    y: torch.Tensor,
    *,
    x0: torch.Tensor | None,
    nonneg: bool,
    solver: SolverConfig,
) -> tuple[torch.Tensor, SolveInfo]:
    x = start_point(op, y, x0, 0.0)
    # CG needs a quadratic objective without constraint; otherwise projected gradient.
    if nonneg or pen.kind == "tv":
        return spg(op, data, pen, x, nonneg=nonneg, config=solver)
    return cg_quadratic(op, data, pen, x, config=solver)


def poisson_ml(
    model: LinearPoissonModel,
    y: torch.Tensor,
    *,
    method: Literal["mlem", "spg"] = "mlem",
    nonneg: bool = True,
    x0: torch.Tensor | None = None,
    solver: SolverConfig = _DEFAULT,
) -> tuple[torch.Tensor, SolveInfo]:
    """Poisson maximum likelihood: minimise ``sum(m - y log m)``, ``m = s A x + b``.

    Parameters
    ----------
    model
        The linear Poisson model (operator, dose ``s``, background ``b``).
    y
        ``(..., *range)`` counts; leading dims are independent problems.
    method
        ``"mlem"`` (expectation maximisation, monotone, non-negative by construction) or
        ``"spg"`` (EM-scaled projected spectral gradient; usually far fewer iterations).
    nonneg
        Constrain ``x >= 0``. MLEM is non-negative by construction, so ``False`` needs
        ``method="spg"`` (then only ``m > 0`` where counts were seen is kept).
    x0
        Start point broadcastable to ``(..., *domain)``; default the flat image whose
        expected total count matches the data. MLEM needs it positive.
    solver
        Iteration cap, relative-change tolerance and callback.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` estimate.
    info : SolveInfo
        Iterations, convergence, last relative change, objective history.
    """
    y = check_counts(y, model.operator)
    x = start_point(model.operator, y, x0, _flat_level(model, y))
    if method == "mlem":
        if not nonneg:
            raise InputError(None, "MLEM is non-negative by construction; use method='spg'")
        if bool((x <= 0).any()):
            raise InputError(None, "MLEM needs a positive start point x0")
        return mlem(model, y, x, config=solver)
    if method != "spg":
        raise InputError(None, f"method must be 'mlem' or 'spg', got {method!r}")
    return poisson_map(model, y, reg=0.0, nonneg=nonneg, x0=x, solver=solver)


def poisson_map(
    model: LinearPoissonModel,
    y: torch.Tensor,
    *,
    reg: float,
    penalty: PenaltyKind = "identity",
    tv_epsilon: float = 1e-2,
    nonneg: bool = True,
    x0: torch.Tensor | None = None,
    solver: SolverConfig = _DEFAULT,
) -> tuple[torch.Tensor, SolveInfo]:
    """Poisson MAP: minimise ``sum(m - y log m) + reg * R(x)``, ``m = s A x + b``.

    ``R`` is Tikhonov (``penalty="identity"``: ``||x||^2/2``; ``"gradient"``:
    ``||D x||^2/2``) or smoothed total variation (``"tv"``), see :class:`Penalty`.
    Solved by EM-scaled projected spectral gradient.

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
    x0
        As in :func:`poisson_ml`.
    solver
        Iteration cap, relative-change tolerance and callback.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` estimate.
    info : SolveInfo
        Iterations, convergence, last relative change, objective history.
    """
    op, y, pen = _setup(model, y, reg=reg, penalty=penalty, tv_epsilon=tv_epsilon)
    x = start_point(op, y, x0, _flat_level(model, y))
    data = PoissonFidelity(y, model.dose, model.background, len(op.range_shape), guard=not nonneg)
    return spg(op, data, pen, x, nonneg=nonneg, config=solver, scaled=True)


def heteroscedastic_ls(
    model: LinearPoissonModel,
    y: torch.Tensor,
    *,
    reg: float,
    penalty: PenaltyKind = "identity",
    tv_epsilon: float = 1e-2,
    variance_floor: float = 1.0,
    nonneg: bool = False,
    x0: torch.Tensor | None = None,
    solver: SolverConfig = _DEFAULT,
) -> tuple[torch.Tensor, SolveInfo]:
    """HG (heteroscedastic Gaussian): the normal approximation with variances from the counts.

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
    x0
        Start point broadcastable to ``(..., *domain)``; default zero.
    solver
        Iteration cap, relative-change tolerance and callback.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` estimate.
    info : SolveInfo
        Iterations, convergence, last relative change, objective history.
    """
    op, y, pen = _setup(
        model, y, reg=reg, penalty=penalty, tv_epsilon=tv_epsilon, variance_floor=variance_floor
    )
    w = 1.0 / y.clamp_min(variance_floor)
    data = QuadraticFidelity(y - model.background, model.dose, w, len(op.range_shape))
    return _least_squares(op, data, pen, y, x0=x0, nonneg=nonneg, solver=solver)


def homoscedastic_ls(
    model: LinearPoissonModel,
    y: torch.Tensor,
    *,
    reg: float,
    penalty: PenaltyKind = "identity",
    tv_epsilon: float = 1e-2,
    nonneg: bool = False,
    x0: torch.Tensor | None = None,
    solver: SolverConfig = _DEFAULT,
) -> tuple[torch.Tensor, SolveInfo]:
    """OG (homoscedastic Gaussian): ordinary least squares, a linear estimator of the counts.

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
    x0
        Start point broadcastable to ``(..., *domain)``; default zero.
    solver
        Iteration cap, relative-change tolerance and callback.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` estimate.
    info : SolveInfo
        Iterations, convergence, last relative change, objective history.
    """
    op, y, pen = _setup(model, y, reg=reg, penalty=penalty, tv_epsilon=tv_epsilon)
    data = QuadraticFidelity(
        y - model.background, model.dose, 1.0 / model.dose, len(op.range_shape)
    )
    return _least_squares(op, data, pen, y, x0=x0, nonneg=nonneg, solver=solver)


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
    x0: torch.Tensor | None = None,
    solver: SolverConfig = _DEFAULT,
) -> tuple[torch.Tensor, SolveInfo]:
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
    x0
        Start point broadcastable to ``(..., *domain)``; default zero.
    solver
        Iteration cap, relative-change tolerance and callback.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` attenuation estimate.
    info : SolveInfo
        Iterations, convergence, last relative change, objective history.
    """
    op, y, pen = _setup(
        model, y, reg=reg, penalty=penalty, tv_epsilon=tv_epsilon, variance_floor=variance_floor
    )
    target = log_transform(y, n0=model.n0, zero_count=zero_count)
    data = QuadraticFidelity(target, 1.0, y.clamp_min(variance_floor), len(op.range_shape))
    return _least_squares(op, data, pen, y, x0=x0, nonneg=nonneg, solver=solver)


def transmission_pl(
    model: TransmissionModel,
    y: torch.Tensor,
    *,
    reg: float,
    penalty: PenaltyKind = "identity",
    tv_epsilon: float = 1e-2,
    nonneg: bool = True,
    x0: torch.Tensor | None = None,
    solver: SolverConfig = _DEFAULT,
) -> tuple[torch.Tensor, SolveInfo]:
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
    x0
        Start point broadcastable to ``(..., *domain)``; default zero.
    solver
        Iteration cap, relative-change tolerance and callback.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` attenuation estimate.
    info : SolveInfo
        Iterations, convergence, last relative change, objective history.
    """
    op, y, pen = _setup(model, y, reg=reg, penalty=penalty, tv_epsilon=tv_epsilon)
    data = TransmissionFidelity(y, model.n0, len(op.range_shape))
    x = start_point(op, y, x0, 0.0)
    return spg(op, data, pen, x, nonneg=nonneg, config=solver)


def estimate(
    name: EstimatorName,
    model: LinearPoissonModel,
    y: torch.Tensor,
    *,
    reg: float = 0.0,
    penalty: PenaltyKind = "identity",
    nonneg: bool = True,
    x0: torch.Tensor | None = None,
    solver: SolverConfig = _DEFAULT,
) -> tuple[torch.Tensor, SolveInfo]:
    """Run one of the four estimators of the study by name.

    ``"ml"`` / ``"poisson_ml"``: :func:`poisson_ml` (SPG, ``reg`` ignored);
    ``"map"`` / ``"poisson_map"``: :func:`poisson_map`;
    ``"hg"`` / ``"heteroscedastic_gaussian"``: :func:`heteroscedastic_ls`;
    ``"og"`` / ``"homoscedastic_gaussian"``: :func:`homoscedastic_ls`.

    Parameters
    ----------
    name
        Estimator name or alias (see :data:`ESTIMATOR_ALIASES`).
    model, y
        The linear Poisson model and ``(..., *range)`` counts.
    reg, penalty
        Regularisation weight and regulariser (not used by ``"ml"``).
    nonneg, x0
        As in the individual estimators.
    solver
        Iteration cap, relative-change tolerance and callback.

    Returns
    -------
    x : torch.Tensor
        ``(..., *domain)`` estimate.
    info : SolveInfo
        What the solver did.
    """
    key = canonical_estimator(name)
    if key == "ml":
        return poisson_ml(model, y, method="spg", nonneg=nonneg, x0=x0, solver=solver)
    common = {"reg": reg, "penalty": penalty, "nonneg": nonneg, "x0": x0, "solver": solver}
    if key == "map":
        return poisson_map(model, y, **common)
    if key == "hg":
        return heteroscedastic_ls(model, y, **common)
    return homoscedastic_ls(model, y, **common)

"""The diagonal model ``y_j ~ Poisson(s a_j x_j)``: estimators in closed form, exact MSE.

With an identity Tikhonov penalty ``reg * x^2 / 2`` every objective separates into one
scalar problem per mode, whose minimiser is a closed-form function of the count ``k``:

- ML: ``k / (s a)``;
- MAP: the non-negative root of ``reg x^2 + s a x - k = 0``;
- HG: ``s a k / (s^2 a^2 + reg max(k, floor))``;
- OG: ``a k / (s a^2 + reg)`` (the objective ``(k - s a x)^2 / (2 s)``), linear in ``k``.

The exact MSE ``E (xhat(k) - x)^2`` is a sum over the Poisson distribution, truncated
where the remaining tail mass is below ``1e-16`` of the total.
"""

from __future__ import annotations

import math

import torch

from inversa.core.errors import InputError
from inversa.core.noise import PoissonNoise
from inversa.poisson._estimators import EstimatorName, canonical_estimator

__all__ = ["best_regularisation", "diagonal_estimate", "diagonal_mse", "diagonal_mse_mc"]


def _check(name: str, dose: float, reg: float) -> str:
    """Validate the arguments; return the estimator's short name."""
    key = canonical_estimator(name)
    if not (math.isfinite(dose) and dose > 0):
        raise InputError(None, f"dose must be a finite positive number, got {dose}")
    if not (math.isfinite(reg) and reg >= 0):
        raise InputError(None, f"reg must be finite and non-negative, got {reg}")
    return key


def diagonal_estimate(
    name: EstimatorName,
    k: torch.Tensor,
    a: torch.Tensor,
    *,
    dose: float,
    reg: float,
    variance_floor: float = 1.0,
) -> torch.Tensor:
    """Closed-form estimate of ``x`` from counts ``k`` in the diagonal model.

    Parameters
    ----------
    name
        ``"ml"``, ``"map"``, ``"hg"`` or ``"og"``, or an alias (see
        :func:`~inversa.poisson.canonical_estimator`).
    k
        ``(..., J)`` counts.
    a
        ``(J,)`` positive mode gains.
    dose
        The dose ``s``.
    reg
        Identity-Tikhonov weight (ignored by ML).
    variance_floor
        HG's smallest variance.

    Returns
    -------
    torch.Tensor
        ``(..., J)`` estimates.
    """
    name = _check(name, dose, reg)
    sa = dose * a
    if name == "ml":
        return k / sa
    if name == "map":
        if reg == 0:
            return k / sa
        return (torch.sqrt(sa * sa + 4.0 * reg * k) - sa) / (2.0 * reg)
    if name == "hg":
        return sa * k / (sa * sa + reg * k.clamp_min(variance_floor))
    return a * k / (dose * a * a + reg)


def diagonal_mse(
    name: EstimatorName,
    x: torch.Tensor,
    a: torch.Tensor,
    *,
    dose: float,
    reg: float,
    variance_floor: float = 1.0,
) -> torch.Tensor:
    """Exact per-mode MSE ``E (xhat_j - x_j)^2`` in the diagonal model.

    Parameters
    ----------
    name
        Estimator (see :func:`diagonal_estimate`).
    x
        ``(J,)`` non-negative true coefficients.
    a
        ``(J,)`` positive mode gains.
    dose, reg, variance_floor
        As in :func:`diagonal_estimate`.

    Returns
    -------
    torch.Tensor
        ``(J,)`` MSE per mode (float64): the Poisson sum up to a tail mass ``< 1e-16``,
        or the closed forms ``x / (s a)`` (ML) and bias^2 + variance (OG).
    """
    name = _check(name, dose, reg)
    x, a = x.double(), a.double()
    if bool((x < 0).any()) or bool((a <= 0).any()):
        raise InputError(None, "the diagonal model needs x >= 0 and a > 0")
    mean = dose * a * x
    if name == "ml":
        return x / (dose * a)
    if name == "og":
        den = dose * a * a + reg
        return (reg * x / den).square() + a * a * mean / den.square()
    kmax = int(float((mean + 12.0 * mean.sqrt() + 40.0).max()))
    k = torch.arange(kmax + 1, dtype=torch.float64).unsqueeze(-1)
    safe = mean.clamp_min(1e-300)
    logp = k * torch.log(safe) - mean - torch.lgamma(k + 1.0)
    p = torch.where(mean > 0, torch.exp(logp), (k == 0).double())
    est = diagonal_estimate(name, k, a, dose=dose, reg=reg, variance_floor=variance_floor)
    return (p * (est - x).square()).sum(dim=0)


def diagonal_mse_mc(
    name: EstimatorName,
    x: torch.Tensor,
    a: torch.Tensor,
    *,
    dose: float,
    reg: float,
    n_samples: int,
    generator: torch.Generator,
    variance_floor: float = 1.0,
) -> torch.Tensor:
    """Monte Carlo per-mode MSE from ``n_samples`` Poisson draws (for checking the theory).

    Parameters
    ----------
    name, x, a, dose, reg, variance_floor
        As in :func:`diagonal_mse`.
    n_samples
        Number of independent draws per mode.
    generator
        Source of randomness.

    Returns
    -------
    torch.Tensor
        ``(J,)`` sample MSE per mode (float64).
    """
    name = _check(name, dose, reg)
    if n_samples < 1:
        raise InputError(None, f"n_samples must be at least 1, got {n_samples}")
    x, a = x.double(), a.double()
    total = torch.zeros_like(x)
    chunk = max(1, 2_000_000 // max(1, x.numel()))
    done = 0
    noise = PoissonNoise(scale=dose)
    while done < n_samples:
        m = min(chunk, n_samples - done)
        k = noise((a * x).expand(m, -1), generator=generator)
        est = diagonal_estimate(name, k, a, dose=dose, reg=reg, variance_floor=variance_floor)
        total += (est - x).square().sum(dim=0)
        done += m
    return total / n_samples


def best_regularisation(
    name: EstimatorName,
    x: torch.Tensor,
    a: torch.Tensor,
    *,
    dose: float,
    reg_grid: torch.Tensor,
    variance_floor: float = 1.0,
) -> tuple[float, float]:
    """Find the weight minimising the exact total MSE ``sum_j E (xhat_j - x_j)^2`` on a grid.

    The grid minimum is refined by a golden-section search in ``log(reg)`` between its
    neighbours.

    Parameters
    ----------
    name, x, a, dose, variance_floor
        As in :func:`diagonal_mse`.
    reg_grid
        ``(G,)`` increasing positive candidate weights.

    Returns
    -------
    reg : float
        The best weight (``0.0`` for ML).
    mse : float
        The total MSE there.
    """
    name = canonical_estimator(name)
    if name == "ml":
        return 0.0, float(diagonal_mse("ml", x, a, dose=dose, reg=0.0).sum())
    grid = [float(r) for r in reg_grid]
    if not grid or any(not r > 0 for r in grid):
        raise InputError(None, "reg_grid must hold positive weights")

    def total(log_r: float) -> float:
        r = math.exp(log_r)
        return float(
            diagonal_mse(name, x, a, dose=dose, reg=r, variance_floor=variance_floor).sum()
        )

    logs = [math.log(r) for r in grid]
    values = [total(v) for v in logs]
    i = min(range(len(values)), key=values.__getitem__)
    lo, hi = logs[max(i - 1, 0)], logs[min(i + 1, len(logs) - 1)]
    phi = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = hi - phi * (hi - lo), lo + phi * (hi - lo)
    fc, fd = total(c), total(d)
    for _ in range(40):
        if fc < fd:
            hi, d, fd = d, c, fc
            c = hi - phi * (hi - lo)
            fc = total(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + phi * (hi - lo)
            fd = total(d)
    best_log, best = (c, fc) if fc < fd else (d, fd)
    if values[i] < best:
        best_log, best = logs[i], values[i]
    return math.exp(best_log), best

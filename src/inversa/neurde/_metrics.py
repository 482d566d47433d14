"""Errors against the exact Riemann solution, shock positions and the bow-shock stand-off."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inversa.core.errors import InputError
from inversa.neurde._cases import Case

__all__ = ["RiemannErrors", "riemann_errors", "shock_position", "standoff_distance"]


def shock_position(profile: torch.Tensor, *, level: float, from_right: bool) -> float:
    """Position where a 1-D profile first crosses ``level``, scanning from one end.

    Parameters
    ----------
    profile
        ``(W,)`` values on cells ``0 .. W-1``.
    level
        Crossing level (e.g. the mean of the pre- and post-shock densities).
    from_right
        Scan from the right end (a right-moving shock) or from the left.

    Returns
    -------
    float
        Sub-cell position by linear interpolation between the two cells around the crossing.
    """
    p = profile.detach().double().cpu()
    if from_right:
        p = p.flip(0)
    side = (p - level) > 0
    changed = (side != side[0]).nonzero()
    if len(changed) == 0:
        raise InputError(None, f"the profile never crosses the level {level:.4g}")
    i = int(changed[0])
    frac = float((level - p[i - 1]) / (p[i] - p[i - 1]))
    pos = i - 1 + frac
    return (len(p) - 1 - pos) if from_right else pos


@dataclass(frozen=True)
class RiemannErrors:
    """Errors of a shock-tube density profile against the exact solution.

    Attributes
    ----------
    density_l1
        ``sum |rho - rho_exact| / sum |rho_exact|`` over all cells.
    shock_offset_cells
        Measured minus exact shock position, positive when the shock runs ahead.
    shock_position, exact_shock_position
        The two positions (cells).
    """

    density_l1: float
    shock_offset_cells: float
    shock_position: float
    exact_shock_position: float


def riemann_errors(rho: torch.Tensor, *, case: Case, t: float) -> RiemannErrors:
    """Compare a shock-tube density ``(W,)`` or ``(H, W)`` (rows averaged) at time ``t``.

    The shock is located where the density crosses the mean of its pre- and post-shock
    values, scanning from the undisturbed side.
    """
    line = rho.detach().double().cpu()
    if line.dim() == 2:
        line = line.mean(dim=0)
    sol = case.exact()
    x = torch.arange(line.shape[0], dtype=torch.float64)
    exact_rho, _, _ = sol.sample(x, t, x0=case.x0)
    l1 = float((line - exact_rho).abs().sum() / exact_rho.abs().sum())
    right = sol.right_is_shock
    side = "right" if right else "left"
    state = sol.right if right else sol.left
    post = sol.rho_star_right if right else sol.rho_star_left
    exact_pos = case.x0 + sol.shock_speed(side) * t
    pos = shock_position(line, level=(state.rho + post) / 2, from_right=right)
    offset = (pos - exact_pos) if right else (exact_pos - pos)
    return RiemannErrors(
        density_l1=l1,
        shock_offset_cells=offset,
        shock_position=pos,
        exact_shock_position=exact_pos,
    )


def standoff_distance(rho: torch.Tensor, *, case: Case) -> float:
    """Bow-shock stand-off of the cylinder case in radii, from the density ``(H, W)``.

    The shock is where the centre-line density, scanned from the inflow, first crosses
    the mean of the free-stream and the normal-shock (Rankine-Hugoniot) densities; the
    stand-off is its distance to the cylinder's front point.
    """
    if case.inflow is None:
        raise InputError(None, f"case {case.name!r} has no cylinder")
    g, m = case.config.gamma, case.mach
    rho_inf = case.inflow[0]
    rho_post = rho_inf * (g + 1) * m * m / ((g - 1) * m * m + 2)
    cy = case.centre[1]
    lo, hi = int(cy), int(cy) + (0 if cy == int(cy) else 1)
    line = 0.5 * (rho[..., lo, :] + rho[..., hi, :]).detach().double().cpu()
    front = case.centre[0] - case.radius
    line = line[: int(front)]
    pos = shock_position(line, level=(rho_inf + rho_post) / 2, from_right=False)
    return (front - pos) / case.radius

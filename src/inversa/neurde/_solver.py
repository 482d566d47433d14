"""The compressible two-population lattice-Boltzmann step on the shifted D2Q9 lattice.

One step: macroscopic fields -> equilibria -> BGK collision of F and G with the
quasi-equilibrium (Prandtl) term -> streaming (shift interpolation along x, then the
integer lattice hop) -> boundary conditions. Everything is torch and differentiable
with respect to the populations and any learned equilibrium.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from inversa.core.errors import InputError
from inversa.neurde._lattice import (
    CX,
    CY,
    contract,
    feq,
    geq_closed_form,
    geq_newton,
    lattice_weights,
    macroscopic,
    validate_state,
)

__all__ = [
    "Boundary",
    "ClosedFormEquilibrium",
    "Equilibrium",
    "LBConfig",
    "LBState",
    "NewtonEquilibrium",
    "collide",
    "initial_state",
    "lb_step",
    "simulate",
    "stream",
]


@dataclass(frozen=True, kw_only=True)
class LBConfig:
    """Gas and lattice parameters.

    Attributes
    ----------
    gamma
        Ratio of specific heats (``c_v = 1 / (gamma - 1)``, gas constant 1).
    viscosity
        Dynamic viscosity ``mu``; ``tau = mu / (rho T) + 1/2``.
    shift
        Lattice shift ``U`` along x, in ``[0, 1)``.
    prandtl
        Prandtl number of the quasi-equilibrium term.
    tau_factor
        Multiplies ``tau`` (the public code's ``alpha1``: a little extra viscosity that
        keeps near-inviscid shocks stable).
    limiter_threshold
        Cells whose mean relative non-equilibrium ``mean_i |F_i - F_eq,i| / |F_eq,i|``
        reaches this value relax fully (``tau = 1``); ``None`` turns the limiter off.
    """

    gamma: float
    viscosity: float
    shift: float = 0.0
    prandtl: float = 0.71
    tau_factor: float = 1.0
    limiter_threshold: float | None = None

    def __post_init__(self) -> None:
        if not self.gamma > 1:
            raise InputError(None, f"gamma must be > 1, got {self.gamma}")
        if not self.viscosity > 0:
            raise InputError(None, f"viscosity must be positive, got {self.viscosity}")
        if not 0 <= self.shift < 1:
            raise InputError(None, f"lattice shift must lie in [0, 1), got {self.shift}")
        if not self.tau_factor > 0:
            raise InputError(None, f"tau_factor must be positive, got {self.tau_factor}")
        if not self.prandtl > 0:
            raise InputError(None, f"Prandtl number must be positive, got {self.prandtl}")


@dataclass(frozen=True, kw_only=True)
class Boundary:
    """Boundary conditions of a case.

    Attributes
    ----------
    x
        ``"periodic"``, ``"outflow"`` (zero gradient at both ends) or ``"inflow"``
        (fixed equilibrium state in the first column, zero gradient at the last).
    y
        ``"periodic"`` or ``"outflow"`` (zero gradient at top and bottom).
    inflow
        ``(rho, ux, uy, T)`` of the inflow, for ``x="inflow"``.
    obstacle
        Solid cells ``(H, W)`` (bool) or ``None``. Each step they are relaxed fully to
        the equilibrium at rest with the wall temperature and their local density (a
        no-slip, isothermal immersed wall).
    wall_temperature
        Temperature of the obstacle.
    """

    x: str = "outflow"
    y: str = "periodic"
    inflow: tuple[float, float, float, float] | None = None
    obstacle: torch.Tensor | None = None
    wall_temperature: float | None = None

    def __post_init__(self) -> None:
        if self.x not in ("periodic", "outflow", "inflow"):
            raise InputError(None, f"x boundary must be periodic, outflow or inflow: {self.x!r}")
        if self.y not in ("periodic", "outflow"):
            raise InputError(None, f"y boundary must be periodic or outflow: {self.y!r}")
        if (self.x == "inflow") != (self.inflow is not None):
            raise InputError(None, "an inflow state is needed exactly when x='inflow'")
        if (self.obstacle is None) != (self.wall_temperature is None):
            raise InputError(None, "an obstacle needs a wall temperature (and vice versa)")


@dataclass(frozen=True)
class LBState:
    """Populations after a number of steps.

    Attributes
    ----------
    F, G
        Populations ``(..., 9, H, W)``.
    step
        Steps taken.
    multipliers
        Lagrange multipliers ``(..., 3, H, W)`` of the last Newton solve (warm start),
        or ``None``.
    """

    F: torch.Tensor
    G: torch.Tensor
    step: int = 0
    multipliers: torch.Tensor | None = None


class Equilibrium(Protocol):
    """A G equilibrium: ``(rho, ux, uy, T) -> (G_eq (..., 9, H, W), multipliers or None)``."""

    def __call__(
        self,
        rho: torch.Tensor,
        ux: torch.Tensor,
        uy: torch.Tensor,
        T: torch.Tensor,
        *,
        config: LBConfig,
        guess: torch.Tensor | None,
        step: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``G_eq`` and (optionally) the multipliers for the next warm start."""
        ...


@dataclass(frozen=True, kw_only=True)
class NewtonEquilibrium:
    """The reference maximum-entropy equilibrium by Newton's method (see `geq_newton`).

    Attributes
    ----------
    tol, max_iter
        Newton tolerance (relative moment residual) and iteration limit.
    """

    tol: float = 1e-10
    max_iter: int = 20

    def __call__(self, rho, ux, uy, T, *, config, guess, step):
        G, lam, _ = geq_newton(
            rho,
            ux,
            uy,
            T,
            gamma=config.gamma,
            shift=config.shift,
            guess=guess,
            tol=self.tol,
            max_iter=self.max_iter,
            step=step,
        )
        return G, lam


@dataclass(frozen=True)
class ClosedFormEquilibrium:
    """The same maximum-entropy equilibrium from its exact per-axis solution."""

    def __call__(self, rho, ux, uy, T, *, config, guess, step):
        G, lam = geq_closed_form(rho, ux, uy, T, gamma=config.gamma, shift=config.shift)
        return G, lam


def _velocities(ref: torch.Tensor, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    cx = torch.tensor(CX, dtype=ref.dtype, device=ref.device)
    cy = torch.tensor(CY, dtype=ref.dtype, device=ref.device)
    return cx + shift, cy


def collide(
    F: torch.Tensor,
    G: torch.Tensor,
    *,
    config: LBConfig,
    equilibrium: Equilibrium,
    boundary: Boundary | None = None,
    guess: torch.Tensor | None = None,
    step: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """BGK collision of both populations with the quasi-equilibrium Prandtl term.

    ``F* = F - omega (F - F_eq)`` and ``G* = G - omega (G - G_eq) + (omega - omega_T) G_qs``
    with ``omega = 1 / tau``, ``tau = mu / (rho T) + 1/2``, ``tau_T = 1/2 + (tau - 1/2) / Pr``.
    ``G_qs,i = w_i(T) (q_s . c_i) / T`` with ``q_s = 2 (P - P_eq) . u`` built on the
    *unshifted* velocities ``c_i``: its zeroth moment is exactly 0 and its first moment
    on the shifted lattice is exactly ``q_s``, so mass, momentum and energy are
    conserved for any shift (using ``v_i = c_i + U`` instead adds ``U . q_s / T`` to the
    energy every step).

    Parameters
    ----------
    F, G
        Populations ``(..., 9, H, W)``.
    config
        Gas and lattice parameters.
    equilibrium
        The G equilibrium.
    boundary
        Only its obstacle is used here (solid cells relax fully to the wall state).
    guess
        Multipliers to warm-start a Newton equilibrium.
    step
        Time step, to name it in errors.

    Returns
    -------
    tuple
        ``(F*, G*, multipliers or None)``.
    """
    rho, ux, uy, T = macroscopic(F, G, gamma=config.gamma, shift=config.shift)
    solid = None if boundary is None else boundary.obstacle
    if solid is not None:
        zero = torch.zeros_like(ux)
        ux_eq = torch.where(solid, zero, ux)
        uy_eq = torch.where(solid, zero, uy)
        T_eq = torch.where(solid, torch.full_like(T, boundary.wall_temperature), T)
    else:
        ux_eq, uy_eq, T_eq = ux, uy, T
    F_eq = feq(rho, ux_eq, uy_eq, T_eq, shift=config.shift)
    G_eq, lam = equilibrium(rho, ux_eq, uy_eq, T_eq, config=config, guess=guess, step=step)
    tau = config.tau_factor * (config.viscosity / (rho * T) + 0.5)
    if config.limiter_threshold is not None:
        deviation = ((F - F_eq).abs() / F_eq.abs()).mean(dim=-3)
        tau = torch.where(deviation >= config.limiter_threshold, torch.ones_like(tau), tau)
    tau_t = 0.5 + (tau - 0.5) / config.prandtl
    omega = (1 / tau).unsqueeze(-3)
    omega_t = (1 / tau_t).unsqueeze(-3)
    vx, vy = _velocities(F, config.shift)
    pxx, pxy, pyy = contract(torch.stack((vx * vx, vx * vy, vy * vy)), F).unbind(dim=-3)
    pxx = pxx - rho * (ux * ux + T)
    pxy = pxy - rho * ux * uy
    pyy = pyy - rho * (uy * uy + T)
    qx = 2 * (ux * pxx + uy * pxy)
    qy = 2 * (uy * pyy + ux * pxy)
    cx, cy = _velocities(F, 0.0)
    g_qs = (
        lattice_weights(T)
        * (qx.unsqueeze(-3) * cx[:, None, None] + qy.unsqueeze(-3) * cy[:, None, None])
        / T.unsqueeze(-3)
    )
    F_post = F - omega * (F - F_eq)
    G_post = G - omega * (G - G_eq) + (omega - omega_t) * g_qs
    if solid is not None:
        F_post = torch.where(solid, F_eq, F_post)
        G_post = torch.where(solid, G_eq, G_post)
    return F_post, G_post, lam


def _hop(P: torch.Tensor) -> torch.Tensor:
    """Integer streaming ``P_i(y, x) <- P_i(y - cy, x - cx)`` (periodic wrap, fixed later)."""
    q = P.reshape(*P.shape[:-3], -1, 3, 3, *P.shape[-2:])  # [population, cy, cx]
    rows = [torch.roll(q[..., j, :, :, :], shifts=j - 1, dims=-2) for j in range(3)]
    q = torch.stack(rows, dim=-4)
    cols = [torch.roll(q[..., :, k, :, :], shifts=k - 1, dims=-1) for k in range(3)]
    q = torch.stack(cols, dim=-3)
    return q.reshape(P.shape)


def stream(
    F: torch.Tensor,
    G: torch.Tensor,
    *,
    config: LBConfig,
    boundary: Boundary,
    inflow_populations: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stream both populations on the shifted lattice and apply the boundary conditions.

    The shift ``U`` is a linear (upwind) interpolation ``P(x) <- (1 - U) P(x) + U P(x - 1)``,
    then each population hops by its integer velocity ``c_i``. Both steps keep the sum
    of every population over a periodic domain.

    Parameters
    ----------
    F, G
        Post-collision populations ``(..., 9, H, W)``.
    config
        Gas and lattice parameters.
    boundary
        Boundary conditions.
    inflow_populations
        ``(F_in, G_in)``, each ``(..., 9, H, 1)`` or broadcastable, for ``x="inflow"``.

    Returns
    -------
    tuple of torch.Tensor
        Streamed ``(F, G)``.
    """
    periodic_x = boundary.x == "periodic"
    U = config.shift
    P = torch.cat((F, G), dim=-3)  # stream both populations in one pass
    # Zero-gradient sides get two ghost cells copying the edge (the reach of one step).
    if not periodic_x:
        left = P[..., :1].expand(*P.shape[:-1], 2)
        right = P[..., -1:].expand(*P.shape[:-1], 2)
        P = torch.cat((left, P, right), dim=-1)
    if boundary.y == "outflow":
        top = P[..., :1, :].expand(*P.shape[:-2], 2, P.shape[-1])
        bottom = P[..., -1:, :].expand(*P.shape[:-2], 2, P.shape[-1])
        P = torch.cat((top, P, bottom), dim=-2)
    if U != 0:
        P = (1 - U) * P + U * torch.roll(P, shifts=1, dims=-1)
    P = _hop(P)
    if not periodic_x:
        P = P[..., 2:-2]
    if boundary.y == "outflow":
        P = P[..., 2:-2, :]
    F, G = P[..., :9, :, :], P[..., 9:, :, :]
    if boundary.x == "inflow":
        if inflow_populations is None:
            raise InputError(None, "x='inflow' needs the inflow populations")
        F_in, G_in = inflow_populations
        F = torch.cat((F_in.expand_as(F[..., :, :1]), F[..., :, 1:]), dim=-1)
        G = torch.cat((G_in.expand_as(G[..., :, :1]), G[..., :, 1:]), dim=-1)
    return F, G


def _inflow_populations(
    ref: torch.Tensor, *, config: LBConfig, boundary: Boundary, equilibrium: Equilibrium
) -> tuple[torch.Tensor, torch.Tensor] | None:
    if boundary.inflow is None:
        return None
    H = ref.shape[-2]
    fields = [torch.full((H, 1), v, dtype=ref.dtype, device=ref.device) for v in boundary.inflow]
    F_in = feq(*fields, shift=config.shift)
    G_in, _ = equilibrium(*fields, config=config, guess=None, step=None)
    return F_in, G_in


def lb_step(
    state: LBState,
    *,
    config: LBConfig,
    equilibrium: Equilibrium,
    boundary: Boundary,
    inflow_populations: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LBState:
    """One collide-and-stream step.

    Parameters
    ----------
    state
        Current populations.
    config, equilibrium, boundary
        Gas, G equilibrium and boundary conditions.
    inflow_populations
        Precomputed inflow populations (see `stream`); computed when needed and omitted.

    Returns
    -------
    LBState
        The state one step later.
    """
    F, G, lam = collide(
        state.F,
        state.G,
        config=config,
        equilibrium=equilibrium,
        boundary=boundary,
        guess=state.multipliers,
        step=state.step,
    )
    if boundary.x == "inflow" and inflow_populations is None:
        inflow_populations = _inflow_populations(
            F, config=config, boundary=boundary, equilibrium=equilibrium
        )
    F, G = stream(F, G, config=config, boundary=boundary, inflow_populations=inflow_populations)
    return LBState(F=F, G=G, step=state.step + 1, multipliers=lam)


def initial_state(
    rho: torch.Tensor,
    ux: torch.Tensor,
    uy: torch.Tensor,
    T: torch.Tensor,
    *,
    config: LBConfig,
) -> LBState:
    """Equilibrium populations for given fields (reference equilibrium, validated).

    Parameters
    ----------
    rho, ux, uy, T
        Initial fields ``(..., H, W)``.
    config
        Gas and lattice parameters.

    Returns
    -------
    LBState
        Step 0 with ``F = F_eq`` and ``G = G_eq`` (Newton).

    Raises
    ------
    InputError
        Unphysical fields or a state outside the lattice's range, naming the cell.
    """
    validate_state(rho, ux, uy, T, gamma=config.gamma, shift=config.shift)
    F = feq(rho, ux, uy, T, shift=config.shift)
    G, lam, _ = geq_newton(rho, ux, uy, T, gamma=config.gamma, shift=config.shift)
    return LBState(F=F, G=G, step=0, multipliers=lam)


def simulate(
    state: LBState,
    *,
    steps: int,
    config: LBConfig,
    equilibrium: Equilibrium,
    boundary: Boundary,
    record_every: int = 0,
    check_every: int = 1,
) -> tuple[LBState, list[tuple[int, torch.Tensor]]]:
    """Run ``steps`` steps, checking the state and optionally recording the fields.

    Parameters
    ----------
    state
        Start state.
    steps
        Number of steps.
    config, equilibrium, boundary
        Gas, G equilibrium and boundary conditions.
    record_every
        Record ``(step, fields (..., 4, H, W) = rho, ux, uy, T)`` every this many steps
        (and the last); 0 records nothing.
    check_every
        Validate the fields every this many steps.

    Returns
    -------
    tuple
        ``(final state, records)``.

    Raises
    ------
    ConvergenceError
        A non-finite or unphysical state (or a failed Newton solve), naming the step
        and the cell, instead of carrying on with NaNs.
    """
    if steps < 0:
        raise InputError(None, f"steps must be non-negative, got {steps}")
    inflow = (
        _inflow_populations(state.F, config=config, boundary=boundary, equilibrium=equilibrium)
        if boundary.x == "inflow"
        else None
    )
    records: list[tuple[int, torch.Tensor]] = []
    for k in range(steps):
        state = lb_step(
            state,
            config=config,
            equilibrium=equilibrium,
            boundary=boundary,
            inflow_populations=inflow,
        )
        last = k == steps - 1
        if check_every and (state.step % check_every == 0 or last):
            fields = macroscopic(state.F, state.G, gamma=config.gamma, shift=config.shift)
            validate_state(*fields, gamma=config.gamma, shift=config.shift, step=state.step)
        if record_every and (state.step % record_every == 0 or last):
            fields = macroscopic(state.F, state.G, gamma=config.gamma, shift=config.shift)
            records.append((state.step, torch.stack(fields, dim=-3).detach()))
    return state, records

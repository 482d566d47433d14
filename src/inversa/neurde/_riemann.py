"""Exact solution of the Riemann problem for the 1-D Euler equations (ideal gas, any gamma).

Toro, *Riemann Solvers and Numerical Methods for Fluid Dynamics*, chapter 4: the star
pressure solves ``f_L(p) + f_R(p) + u_R - u_L = 0`` by Newton's method from the
primitive-variable guess; the solution is then sampled on ``S = (x - x0) / t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inversa.core.errors import InputError

__all__ = ["GasState", "RiemannSolution", "exact_riemann"]


@dataclass(frozen=True)
class GasState:
    """A uniform ideal-gas state.

    Attributes
    ----------
    rho
        Density (> 0).
    u
        Velocity along x.
    p
        Pressure (> 0).
    """

    rho: float
    u: float
    p: float


@dataclass(frozen=True)
class RiemannSolution:
    """The exact Riemann solution; call `sample` for the fields.

    Attributes
    ----------
    left, right
        The initial states.
    gamma
        Ratio of specific heats.
    p_star, u_star
        Pressure and velocity of the star region.
    rho_star_left, rho_star_right
        Densities left and right of the contact.
    """

    left: GasState
    right: GasState
    gamma: float
    p_star: float
    u_star: float
    rho_star_left: float
    rho_star_right: float

    def _sound(self, s: GasState) -> float:
        return math.sqrt(self.gamma * s.p / s.rho)

    @property
    def left_is_shock(self) -> bool:
        """Whether the left wave is a shock (else a rarefaction)."""
        return self.p_star > self.left.p

    @property
    def right_is_shock(self) -> bool:
        """Whether the right wave is a shock (else a rarefaction)."""
        return self.p_star > self.right.p

    def shock_speed(self, side: str) -> float:
        """Speed of the shock on ``side`` (``"left"`` or ``"right"``).

        Raises
        ------
        InputError
            The wave on that side is a rarefaction.
        """
        g = self.gamma
        s = self.left if side == "left" else self.right
        if self.p_star <= s.p:
            raise InputError(None, f"the {side} wave is a rarefaction, not a shock")
        a = self._sound(s)
        factor = math.sqrt((g + 1) / (2 * g) * self.p_star / s.p + (g - 1) / (2 * g))
        return s.u - a * factor if side == "left" else s.u + a * factor

    def sample(
        self, x: torch.Tensor, t: float, *, x0: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Density, velocity and pressure at positions ``x`` and time ``t``.

        Parameters
        ----------
        x
            Positions, any shape ``(...)``.
        t
            Time (> 0).
        x0
            Position of the initial discontinuity.

        Returns
        -------
        tuple of torch.Tensor
            ``(rho, u, p)``, each of the shape and dtype of ``x``.
        """
        if t <= 0:
            raise InputError(None, f"sampling time must be positive, got {t}")
        g = self.gamma
        s = (x - x0) / t
        L, R = self.left, self.right
        aL, aR = self._sound(L), self._sound(R)
        ps, us = self.p_star, self.u_star
        rho = torch.empty_like(s)
        u = torch.empty_like(s)
        p = torch.empty_like(s)
        left_side = s <= us

        def full(value: float) -> torch.Tensor:
            return torch.full_like(s, value)

        for side, mask in (("left", left_side), ("right", ~left_side)):
            st, a = (L, aL) if side == "left" else (R, aR)
            sign = -1.0 if side == "left" else 1.0  # outward direction of the wave
            rho_star = self.rho_star_left if side == "left" else self.rho_star_right
            if ps > st.p:  # shock: one jump at the shock speed
                speed = self.shock_speed(side)
                outside = (s < speed) if side == "left" else (s > speed)
                r = torch.where(outside, full(st.rho), full(rho_star))
                uu = torch.where(outside, full(st.u), full(us))
                pp = torch.where(outside, full(st.p), full(ps))
            else:  # rarefaction fan between head and tail
                a_star = a * (ps / st.p) ** ((g - 1) / (2 * g))
                head = st.u + sign * a
                tail = us + sign * a_star
                outside = (s < head) if side == "left" else (s > head)
                inside_star = (s > tail) if side == "left" else (s < tail)
                # Inside the fan (Toro eq. 4.56 / 4.63).
                fan_u = 2 / (g + 1) * (-sign * a + (g - 1) / 2 * st.u + s)
                c = 2 / (g + 1) - sign * (g - 1) / ((g + 1) * a) * (st.u - s)
                c = c.clamp_min(0.0)
                fan_rho = st.rho * c ** (2 / (g - 1))
                fan_p = st.p * c ** (2 * g / (g - 1))
                r = torch.where(
                    outside, full(st.rho), torch.where(inside_star, full(rho_star), fan_rho)
                )
                uu = torch.where(outside, full(st.u), torch.where(inside_star, full(us), fan_u))
                pp = torch.where(outside, full(st.p), torch.where(inside_star, full(ps), fan_p))
            rho[mask], u[mask], p[mask] = r[mask], uu[mask], pp[mask]
        return rho, u, p


def _pressure_function(p: float, s: GasState, gamma: float) -> tuple[float, float]:
    """Toro's f_K(p) and its derivative for one side."""
    a = math.sqrt(gamma * s.p / s.rho)
    if p > s.p:  # shock
        A = 2 / ((gamma + 1) * s.rho)
        B = (gamma - 1) / (gamma + 1) * s.p
        root = math.sqrt(A / (p + B))
        return (p - s.p) * root, root * (1 - (p - s.p) / (2 * (B + p)))
    ratio = p / s.p  # rarefaction
    f = 2 * a / (gamma - 1) * (ratio ** ((gamma - 1) / (2 * gamma)) - 1)
    return f, ratio ** (-(gamma + 1) / (2 * gamma)) / (s.rho * a)


def exact_riemann(
    left: GasState, right: GasState, *, gamma: float, tol: float = 1e-14
) -> RiemannSolution:
    """Solve the Riemann problem of the Euler equations exactly.

    Parameters
    ----------
    left, right
        States left and right of the initial discontinuity.
    gamma
        Ratio of specific heats (> 1).
    tol
        Relative change of the star pressure at which Newton's iteration stops.

    Returns
    -------
    RiemannSolution
        Star-region values; ``sample`` gives the fields.

    Raises
    ------
    InputError
        Non-positive density or pressure, ``gamma <= 1``, or data that create a vacuum.
    """
    if not gamma > 1:
        raise InputError(None, f"gamma must be > 1, got {gamma}")
    for name, s in (("left", left), ("right", right)):
        if not (s.rho > 0 and s.p > 0):
            raise InputError(None, f"{name} state needs positive density and pressure: {s}")
    aL = math.sqrt(gamma * left.p / left.rho)
    aR = math.sqrt(gamma * right.p / right.rho)
    du = right.u - left.u
    if 2 * (aL + aR) / (gamma - 1) <= du:
        raise InputError(None, "the initial data generate a vacuum; no star region exists")
    # Primitive-variable (PVRS) guess, Toro eq. 4.47.
    p = max(
        tol,
        0.5 * (left.p + right.p) - 0.125 * du * (left.rho + right.rho) * (aL + aR),
    )
    for _ in range(100):
        fL, dL = _pressure_function(p, left, gamma)
        fR, dR = _pressure_function(p, right, gamma)
        p_new = max(p - (fL + fR + du) / (dL + dR), tol)
        change = 2 * abs(p_new - p) / (p_new + p)
        p = p_new
        if change < tol:
            break
    else:  # pragma: no cover - Toro's function is monotone and concave: Newton converges
        raise RuntimeError("exact Riemann solver: Newton iteration did not converge")
    fL, _ = _pressure_function(p, left, gamma)
    fR, _ = _pressure_function(p, right, gamma)
    u = 0.5 * (left.u + right.u) + 0.5 * (fR - fL)

    def star_density(s: GasState) -> float:
        ratio = p / s.p
        if ratio > 1:  # Rankine-Hugoniot
            k = (gamma - 1) / (gamma + 1)
            return s.rho * (ratio + k) / (k * ratio + 1)
        return s.rho * ratio ** (1 / gamma)  # isentropic

    return RiemannSolution(
        left=left,
        right=right,
        gamma=gamma,
        p_star=p,
        u_star=u,
        rho_star_left=star_density(left),
        rho_star_right=star_density(right),
    )

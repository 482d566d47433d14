"""The benchmark cases.

Two Sod shock tubes, an out-of-distribution Riemann problem (Lax's problem, rescaled
into the lattice's range) and supersonic flow past a cylinder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inversa.core.errors import InputError
from inversa.neurde._riemann import GasState, RiemannSolution, exact_riemann
from inversa.neurde._solver import Boundary, LBConfig, LBState, initial_state

__all__ = ["CASES", "Case", "billig_standoff", "make_case"]

CASES = ("sod1", "sod2", "lax", "cylinder")


@dataclass(frozen=True, kw_only=True)
class Case:
    """A flow problem: gas and lattice, boundaries, grid and initial fields.

    Attributes
    ----------
    name
        Case name (one of `CASES`).
    config
        Gas and lattice parameters.
    boundary
        Boundary conditions (cylinder: inflow, outflow, solid obstacle).
    shape
        Grid ``(H, W)``.
    left, right
        Riemann data (shock tubes) or ``None``.
    x0
        Position of the initial discontinuity (shock tubes): cells ``x <= x0`` are left.
    inflow
        Free stream ``(rho, ux, uy, T)`` (cylinder) or ``None``.
    radius, centre
        Cylinder radius and centre ``(x, y)`` in cells (cylinder).
    mach
        Free-stream Mach number (cylinder).
    """

    name: str
    config: LBConfig
    boundary: Boundary
    shape: tuple[int, int]
    left: GasState | None = None
    right: GasState | None = None
    x0: float = 0.0
    inflow: tuple[float, float, float, float] | None = None
    radius: float = 0.0
    centre: tuple[float, float] = (0.0, 0.0)
    mach: float = 0.0

    def initial_fields(
        self, *, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the initial ``(rho, ux, uy, T)``, each ``(H, W)``."""
        H, W = self.shape
        x = torch.arange(W, dtype=dtype, device=device).expand(H, W)
        if self.left is not None and self.right is not None:
            is_left = x <= self.x0
            fields = []
            for a, b in (
                (self.left.rho, self.right.rho),
                (self.left.u, self.right.u),
                (0.0, 0.0),
                (self.left.p / self.left.rho, self.right.p / self.right.rho),
            ):
                fields.append(torch.where(is_left, torch.full_like(x, a), torch.full_like(x, b)))
            return tuple(f.contiguous() for f in fields)
        assert self.inflow is not None
        return tuple(torch.full((H, W), v, dtype=dtype, device=device) for v in self.inflow)

    def initial_state(
        self, *, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> LBState:
        """Equilibrium populations of the initial fields (Newton G equilibrium)."""
        return initial_state(*self.initial_fields(dtype=dtype, device=device), config=self.config)

    def exact(self) -> RiemannSolution:
        """Return the exact Riemann solution of a shock tube."""
        if self.left is None or self.right is None:
            raise InputError(None, f"case {self.name!r} is not a Riemann problem")
        return exact_riemann(self.left, self.right, gamma=self.config.gamma)


def billig_standoff(mach: float) -> float:
    """Billig's correlation for the bow-shock stand-off of a cylinder, in radii.

    ``delta / r = 0.386 exp(4.67 / M^2)`` (Billig 1967).
    """
    if not mach > 1:
        raise InputError(None, f"a bow shock needs a supersonic Mach number, got {mach}")
    return 0.386 * math.exp(4.67 / mach**2)


def make_case(name: str, *, scale: float = 1.0, rows: int | None = None) -> Case:
    """Build a named case.

    Parameters
    ----------
    name
        ``"sod1"``, ``"sod2"``: the paper's shock tubes (3001 cells, one row);
        ``"lax"``: Lax's problem rescaled (velocities by ``k``, pressures by ``k^2``,
        which the Euler equations allow) so that it fits sod2's lattice, as an
        out-of-distribution test; ``"cylinder"``: Mach 1.8, Re 300 past a cylinder.
    scale
        Grid scale: shock tubes use ``round(3000 scale) + 1`` cells; the cylinder uses
        radius ``r = 20 scale`` on a ``(12 r) x (14 r)`` grid with its centre ``5 r``
        from the inflow (the paper: r = 20 on 300 x 500). Re is based on the diameter.
    rows
        Grid rows of a shock tube (default 1). The tubes are uniform in y with periodic
        rows, so one row is the same flow as the paper's five in exact arithmetic. With
        more rows, round-off makes the rows differ and, at Sod 2's viscosity, the
        lattice amplifies those transverse modes about 100x per 100 steps: on 3001 x 5
        even Newton in float64 is off y-uniform by 0.4 in density at step 800, and the
        float32 network reaches a negative temperature at step 947 (docs/neurde.md).
        Use ``rows=5`` only for timings on the paper's grid. Not for the cylinder.

    Returns
    -------
    Case
    """
    if not scale > 0:
        raise InputError(None, f"scale must be positive, got {scale}")
    if rows is not None and name == "cylinder":
        raise InputError(None, "the cylinder's grid follows from its scale; rows is for tubes")
    if rows is not None and rows < 1:
        raise InputError(None, f"rows must be at least 1, got {rows}")
    if name in ("sod1", "sod2", "lax"):
        W = round(3000 * scale) + 1
        x0 = (W - 1) / 2 + 0.5
        if name == "sod1":
            config = LBConfig(gamma=2.0, viscosity=0.025, shift=0.057)
            left, right = GasState(0.5, 0.0, 0.1), GasState(2.0, 0.0, 0.05)
        else:
            config = LBConfig(
                gamma=1.4, viscosity=1e-4, shift=0.4, tau_factor=1.1, limiter_threshold=1.0
            )
            if name == "sod2":
                left, right = GasState(1.0, 0.0, 0.2), GasState(0.125, 0.0, 0.02)
            else:
                k = math.sqrt(0.2 / (3.528 / 0.445))  # left temperature 0.2
                left = GasState(0.445, 0.698 * k, 3.528 * k * k)
                right = GasState(0.5, 0.0, 0.571 * k * k)
        return Case(
            name=name,
            config=config,
            boundary=Boundary(x="outflow", y="periodic"),
            shape=(rows or 1, W),
            left=left,
            right=right,
            x0=x0,
        )
    if name == "cylinder":
        gamma, T0, mach, reynolds = 1.4, 0.2, 1.8, 300.0
        radius = 20.0 * scale
        H, W = round(12 * radius), round(14 * radius)
        u0 = mach * math.sqrt(gamma * T0)
        config = LBConfig(
            gamma=gamma,
            viscosity=u0 * 2 * radius / reynolds,
            shift=0.6 * u0,
            tau_factor=1.08,
            limiter_threshold=1.0,
        )
        centre = (round(5 * radius), (H - 1) / 2)
        yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        solid = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2
        inflow = (1.0, u0, 0.0, T0)
        return Case(
            name=name,
            config=config,
            boundary=Boundary(
                x="inflow", y="outflow", inflow=inflow, obstacle=solid, wall_temperature=T0
            ),
            shape=(H, W),
            inflow=inflow,
            radius=radius,
            centre=centre,
            mach=mach,
        )
    raise InputError(None, f"unknown case {name!r}; choose one of {', '.join(CASES)}")

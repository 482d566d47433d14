"""The shifted D2Q9 lattice and its equilibria.

Velocities, the product-form F equilibrium, and the maximum-entropy G equilibrium
(Newton with closed-form 3x3 solves, and its exact closed form as an independent check).

Populations are stored as ``(..., 9, H, W)``; velocity ``i`` is ``c_i = (cx, cy)`` with
``i = 3 (cy + 1) + (cx + 1)``, so ``reshape(..., 3, 3, H, W)`` gives ``[cy, cx]``. The
lattice is shifted by ``U`` along x: population ``i`` moves with ``v_i = c_i + (U, 0)``.
The gas is ideal with gas constant 1: ``p = rho T``, ``E = T / (gamma - 1) + |u|^2 / 2``.
"""

from __future__ import annotations

import torch

from inversa.core.errors import InputError

__all__ = [
    "CX",
    "CY",
    "ConvergenceError",
    "energy_targets",
    "feq",
    "geq_closed_form",
    "geq_from_multipliers",
    "geq_newton",
    "lattice_weights",
    "macroscopic",
    "validate_state",
]

CX = (-1, 0, 1, -1, 0, 1, -1, 0, 1)
CY = (-1, -1, -1, 0, 0, 0, 1, 1, 1)


class ConvergenceError(InputError):
    """A solve or a rollout failed at a known step and cell.

    Attributes
    ----------
    step
        Time step at which it failed (``None`` outside a simulation).
    cell
        ``(batch..., y, x)`` index of the first failing cell.
    """

    def __init__(self, problem: str, *, step: int | None, cell: tuple[int, ...]) -> None:
        where = f"cell (y, x) = {cell}" + ("" if step is None else f" at step {step}")
        super().__init__(None, f"{problem} ({where})")
        self.step = step
        self.cell = cell


def _velocities(ref: torch.Tensor, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Shifted velocities ``(vx, vy)``, each ``(9,)`` on ``ref``'s device and dtype."""
    vx = torch.tensor(CX, dtype=ref.dtype, device=ref.device) + shift
    vy = torch.tensor(CY, dtype=ref.dtype, device=ref.device)
    return vx, vy


def contract(M: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """Moments ``sum_q M[k, q] P[..., q, h, w]`` by one batched matrix product.

    Returns ``(..., k, H, W)``.
    """
    return torch.matmul(M, P.flatten(-2)).unflatten(-1, P.shape[-2:])


def _outer(ay: torch.Tensor, ax: torch.Tensor) -> torch.Tensor:
    """Product of per-axis factors ``(..., 3, H, W)`` into ``(..., 9, H, W)``."""
    out = ay.unsqueeze(-3) * ax.unsqueeze(-4)
    return out.reshape(*out.shape[:-4], 9, *out.shape[-2:])


def _axis_phi(du: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Per-axis factors for c = -1, 0, 1 with mean ``du`` and variance ``T``: ``(..., 3, H, W)``."""
    second = du * du + T
    return torch.stack(((second - du) / 2, 1 - second, (second + du) / 2), dim=-3)


def feq(
    rho: torch.Tensor, ux: torch.Tensor, uy: torch.Tensor, T: torch.Tensor, *, shift: float
) -> torch.Tensor:
    """Product-form equilibrium of the F populations.

    ``F_eq,i = rho Phi(cx; ux - U) Phi(cy; uy)`` with ``Phi(+-1) = (+-d + d^2 + T) / 2`` and
    ``Phi(0) = 1 - d^2 - T``; its moments on the shifted lattice are exactly ``rho``,
    ``rho u`` and ``rho (u u + T I)``.

    Parameters
    ----------
    rho, ux, uy, T
        Density, velocity and temperature, ``(..., H, W)``.
    shift
        Lattice shift ``U`` along x.

    Returns
    -------
    torch.Tensor
        ``(..., 9, H, W)``.
    """
    return rho.unsqueeze(-3) * _outer(_axis_phi(uy, T), _axis_phi(ux - shift, T))


def lattice_weights(T: torch.Tensor) -> torch.Tensor:
    """Temperature-dependent weights ``w_i(T) = W(cx) W(cy)``, ``W(0) = 1 - T``, ``W(+-1) = T / 2``.

    Parameters
    ----------
    T
        Temperature, ``(..., H, W)``.

    Returns
    -------
    torch.Tensor
        ``(..., 9, H, W)``; they sum to 1 with zero mean and covariance ``T I``.
    """
    axis = torch.stack((T / 2, 1 - T, T / 2), dim=-3)
    return _outer(axis, axis)


def energy_targets(
    rho: torch.Tensor, ux: torch.Tensor, uy: torch.Tensor, T: torch.Tensor, *, gamma: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Moments the G equilibrium must carry: ``2 rho E`` and the flux ``2 rho H u``.

    Returns
    -------
    tuple of torch.Tensor
        ``(2 rho E, 2 rho H ux, 2 rho H uy)``, each ``(..., H, W)``.
    """
    energy = T / (gamma - 1) + (ux * ux + uy * uy) / 2
    enthalpy = energy + T
    return 2 * rho * energy, 2 * rho * enthalpy * ux, 2 * rho * enthalpy * uy


def macroscopic(
    F: torch.Tensor, G: torch.Tensor, *, gamma: float, shift: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Density, velocity and temperature from the populations.

    Parameters
    ----------
    F, G
        Populations ``(..., 9, H, W)``.
    gamma
        Ratio of specific heats.
    shift
        Lattice shift ``U`` along x.

    Returns
    -------
    tuple of torch.Tensor
        ``(rho, ux, uy, T)``, each ``(..., H, W)``.
    """
    vx, vy = _velocities(F, shift)
    rho, jx, jy = contract(torch.stack((torch.ones_like(vx), vx, vy)), F).unbind(dim=-3)
    ux = jx / rho
    uy = jy / rho
    energy = G.sum(dim=-3) / (2 * rho)
    T = (gamma - 1) * (energy - (ux * ux + uy * uy) / 2)
    return rho, ux, uy, T


def validate_state(
    rho: torch.Tensor,
    ux: torch.Tensor,
    uy: torch.Tensor,
    T: torch.Tensor,
    *,
    gamma: float,
    shift: float,
    step: int | None = None,
) -> None:
    """Raise if a state is unphysical or outside the range the shifted lattice represents.

    Checks, per cell: finite values, ``rho > 0``, ``T > 0``, a positive rest factor of
    the F equilibrium (``(ux - U)^2 + T < 1``, ``uy^2 + T < 1``), and a realisable G
    equilibrium (its mean lattice velocity ``H u / E - U`` inside ``(-1, 1)`` per axis).

    Raises
    ------
    ConvergenceError
        Naming the check, the step (if given) and the first failing cell.
    """
    _, fx, fy = energy_targets(torch.ones_like(rho), ux, uy, T, gamma=gamma)
    two_e = 2 * (T / (gamma - 1) + (ux * ux + uy * uy) / 2)
    checks = (
        ("non-finite field", ~(rho.isfinite() & ux.isfinite() & uy.isfinite() & T.isfinite())),
        ("non-positive density", rho <= 0),
        ("non-positive temperature", T <= 0),
        (
            "velocity beyond the lattice range ((u - U)^2 + T >= 1)",
            ((ux - shift) ** 2 + T >= 1) | (uy * uy + T >= 1),
        ),
        (
            "energy flux beyond the lattice range (|H u / E - U| >= 1)",
            ((fx / two_e - shift).abs() >= 1) | ((fy / two_e).abs() >= 1),
        ),
    )
    for problem, bad in checks:
        if bool(bad.any()):
            cell = tuple(int(i) for i in bad.nonzero()[0])
            raise ConvergenceError(problem, step=step, cell=cell)


def geq_from_multipliers(
    rho: torch.Tensor, T: torch.Tensor, lam: torch.Tensor, *, shift: float
) -> torch.Tensor:
    """``G_eq,i = rho w_i(T) exp(chi + zeta . v_i)`` from the multipliers.

    Parameters
    ----------
    rho, T
        ``(..., H, W)``.
    lam
        ``(chi, zeta_x, zeta_y)`` stacked as ``(..., 3, H, W)``.
    shift
        Lattice shift ``U`` along x.

    Returns
    -------
    torch.Tensor
        ``(..., 9, H, W)``.
    """
    vx, vy = _velocities(T, shift)
    exponent = contract(torch.stack((torch.ones_like(vx), vx, vy), dim=1), lam)
    return rho.unsqueeze(-3) * lattice_weights(T) * torch.exp(exponent)


def _initial_multipliers(
    T: torch.Tensor, mean_x: torch.Tensor, mean_y: torch.Tensor, two_e: torch.Tensor, shift: float
) -> torch.Tensor:
    """Linearised guess: ``zeta ~ (mean lattice velocity) / T``, ``chi`` from the mass."""
    zx = mean_x / T
    zy = mean_y / T
    chi = torch.log(two_e) - zx * shift
    return torch.stack((chi, zx, zy), dim=-3)


def geq_newton(
    rho: torch.Tensor,
    ux: torch.Tensor,
    uy: torch.Tensor,
    T: torch.Tensor,
    *,
    gamma: float,
    shift: float,
    guess: torch.Tensor | None = None,
    tol: float = 1e-10,
    max_iter: int = 20,
    step: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Maximum-entropy G equilibrium by Newton's method on the Lagrange multipliers.

    Finds ``(chi, zeta)`` per cell so that ``sum_i w_i(T) exp(chi + zeta . v_i)`` has
    zeroth moment ``2 E`` and first moment ``2 H u``. Each iteration forms the 3x3
    moment matrix (the Jacobian, symmetric positive definite) for all cells at once and
    solves it in closed form (cofactors), so there are no sparse or looped solves.

    Parameters
    ----------
    rho, ux, uy, T
        Macroscopic fields ``(..., H, W)``.
    gamma
        Ratio of specific heats.
    shift
        Lattice shift ``U`` along x.
    guess
        Multipliers ``(..., 3, H, W)`` to start from (the previous step's), or ``None``
        for the linearised guess.
    tol
        Convergence when the relative moment residual of every cell is below ``tol``.
    max_iter
        Iterations before giving up.
    step
        Time step, only to name it in errors.

    Returns
    -------
    tuple
        ``(G_eq (..., 9, H, W), multipliers (..., 3, H, W), Newton updates made)``.

    Raises
    ------
    ConvergenceError
        A cell did not converge (names the step and the cell).
    """
    two_e, fx, fy = energy_targets(torch.ones_like(rho), ux, uy, T, gamma=gamma)
    target = torch.stack((two_e, fx, fy), dim=-3)
    vx, vy = _velocities(T, shift)
    one = torch.ones_like(vx)
    # Work on flattened cells (..., q, N) so that every moment is one matrix product.
    V = torch.stack((one, vx, vy), dim=1)  # (9, 3): exponent = V @ lam
    basis = torch.stack((one, vx, vy, vx * vx, vx * vy, vy * vy))  # (6, 9)
    w = lattice_weights(T).flatten(-2)
    target = target.flatten(-2)
    if guess is None:
        lam = _initial_multipliers(T, fx / two_e - shift, fy / two_e, two_e, shift)
    else:
        lam = guess.detach().clone()
    lam = lam.flatten(-2)
    scale = (two_e.abs() + fx.abs() + fy.abs()).flatten(-2)
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is returned
        m = torch.matmul(basis, w * torch.exp(torch.matmul(V, lam)))
        s0, sx, sy, sxx, sxy, syy = m.unbind(dim=-2)
        r0, rx, ry = (m[..., :3, :] - target).unbind(dim=-2)
        residual = (r0.abs() + rx.abs() + ry.abs()) / scale
        if bool((residual < tol).all()):
            break
        # Cofactors of the symmetric Jacobian [[s0, sx, sy], [sx, sxx, sxy], [sy, sxy, syy]].
        c00 = sxx * syy - sxy * sxy
        c01 = sy * sxy - sx * syy
        c02 = sx * sxy - sy * sxx
        c11 = s0 * syy - sy * sy
        c12 = sx * sy - s0 * sxy
        c22 = s0 * sxx - sx * sx
        inv_det = 1 / (s0 * c00 + sx * c01 + sy * c02)
        step_ = torch.stack(
            (
                c00 * r0 + c01 * rx + c02 * ry,
                c01 * r0 + c11 * rx + c12 * ry,
                c02 * r0 + c12 * rx + c22 * ry,
            ),
            dim=-2,
        )
        lam = lam - step_ * inv_det.unsqueeze(-2)
    else:
        bad = ~(residual < tol)
        cell = tuple(int(i) for i in bad.unflatten(-1, T.shape[-2:]).nonzero()[0])
        raise ConvergenceError(
            f"Newton solve of the G equilibrium did not converge in {max_iter} iterations "
            f"(relative residual {float(residual[bad].max()):.3g})",
            step=step,
            cell=cell,
        )
    lam = lam.unflatten(-1, T.shape[-2:])
    return geq_from_multipliers(rho, T, lam, shift=shift), lam, it - 1


def _axis_multiplier(mean: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Root ``z`` of ``T sinh z / (1 - T + T cosh z) = mean`` (the per-axis moment ratio)."""
    a = mean * (1 - T)
    s = (a + torch.sqrt(a * a + T * T * (1 - mean * mean))) / (T * (1 - mean))
    return torch.log(s)


def geq_closed_form(
    rho: torch.Tensor,
    ux: torch.Tensor,
    uy: torch.Tensor,
    T: torch.Tensor,
    *,
    gamma: float,
    shift: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve the same maximum-entropy G equilibrium exactly.

    Because the weights are a product ``W(cx) W(cy)`` and only the zeroth and first
    moments are constrained, ``exp(chi + zeta . v)`` factorises per axis and each
    ``zeta`` solves a quadratic in ``exp(zeta)``; ``chi`` then follows from the mass.
    Used as an independent check of `geq_newton` (they agree to round-off).

    Returns
    -------
    tuple of torch.Tensor
        ``(G_eq (..., 9, H, W), multipliers (..., 3, H, W))``.
    """
    two_e, fx, fy = energy_targets(torch.ones_like(rho), ux, uy, T, gamma=gamma)
    zx = _axis_multiplier(fx / two_e - shift, T)
    zy = _axis_multiplier(fy / two_e, T)
    ax = 1 - T + T * torch.cosh(zx)
    ay = 1 - T + T * torch.cosh(zy)
    chi = torch.log(two_e / (ax * ay)) - zx * shift
    lam = torch.stack((chi, zx, zy), dim=-3)
    return geq_from_multipliers(rho, T, lam, shift=shift), lam

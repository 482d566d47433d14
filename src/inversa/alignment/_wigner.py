"""Wigner small-d and D matrices, batched over angles, stable in float64 up to high degree.

Convention (pinned by ``tests/alignment/test_wigner.py``). Complex spherical harmonics
``Y_lm`` carry the Condon-Shortley phase. A rotation ``R`` acts on functions on the sphere
by ``(Lambda_R f)(u) = f(R^T u)`` (the active rotation of :mod:`inversa.core.rotations`);
``D^l_{mm'}(R) = <Y_lm, Lambda_R Y_lm'>`` so that the coefficients of ``Lambda_R f`` are
``D^l(R) a^l``, and ``D(R1 R2) = D(R1) D(R2)``. For the active ZYZ factorisation
``R = Rz(alpha) Ry(beta) Rz(gamma)`` (angles in radians, rotating counter-clockwise),

    D^l_{mm'}(alpha, beta, gamma) = exp(-i m alpha) d^l_{mm'}(beta) exp(-i m' gamma),

with Wigner's ``d^l_{mm'}(beta) = <lm| exp(-i beta J_y) |lm'>`` (the quantum-mechanics
convention of Sakurai / Wikipedia). Matrices are stored on a common ``(2 L + 1)`` grid
indexed by ``m + L`` and are zero where ``|m| > l``.

The small-d matrices come from the three-term recursion in ``l`` (Blanco, Florez and
Bermejo 1997) started from the closed-form seeds at ``l = max(|m|, |m'|)``; it is stable
in float64 well beyond ``l = 64`` (checked against the ``spherical`` package).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import torch

__all__ = [
    "euler_zyz_to_matrix",
    "generators",
    "matrix_to_euler_zyz",
    "wigner_D",
    "wigner_d",
    "wigner_d_sequence",
]


def euler_zyz_to_matrix(
    alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor
) -> torch.Tensor:
    """Active rotation ``Rz(alpha) Ry(beta) Rz(gamma)`` (radians) as ``(..., 3, 3)`` matrices.

    These are the Euler angles of the D convention above (not RELION's angles: RELION's
    matrix of ``(rot, tilt, psi)`` is this one at ``(-psi, -tilt, -rot)``).
    """
    ca, sa = torch.cos(alpha), torch.sin(alpha)
    cb, sb = torch.cos(beta), torch.sin(beta)
    cg, sg = torch.cos(gamma), torch.sin(gamma)
    rows = [
        [ca * cb * cg - sa * sg, -ca * cb * sg - sa * cg, ca * sb],
        [sa * cb * cg + ca * sg, -sa * cb * sg + ca * cg, sa * sb],
        [-sb * cg, sb * sg, cb],
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def matrix_to_euler_zyz(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of :func:`euler_zyz_to_matrix`: ``(alpha, beta, gamma)`` in radians.

    ``beta`` lies in ``[0, pi]``; at the gimbal-lock points (``sin beta = 0``) only
    ``alpha +- gamma`` is defined and ``gamma = 0`` is returned.
    """
    r = matrix
    sb = torch.sqrt(r[..., 0, 2] ** 2 + r[..., 1, 2] ** 2)
    beta = torch.atan2(sb, r[..., 2, 2])
    locked = sb < 1e-12
    alpha = torch.where(
        locked, torch.atan2(-r[..., 0, 1], r[..., 1, 1]), torch.atan2(r[..., 1, 2], r[..., 0, 2])
    )
    gamma = torch.where(locked, torch.zeros_like(beta), torch.atan2(r[..., 2, 1], -r[..., 2, 0]))
    return alpha, beta, gamma


@lru_cache(maxsize=16)
def _tables(l_max: int, device: str) -> dict[str, torch.Tensor]:
    """Recursion coefficients and seed data on the ``(2 L + 1)^2`` grid (float64)."""
    dev = torch.device(device)
    f64 = torch.float64
    m = torch.arange(-l_max, l_max + 1, device=dev, dtype=f64)
    mr, mc = m[:, None], m[None, :]  # row index m, column index m'
    j = torch.maximum(mr.abs(), mc.abs())
    # Seed d^J_{m m'} (J = max(|m|, |m'|)): the single surviving term of Wigner's sum.
    s = torch.clamp(mc - mr, min=0)
    lg = torch.lgamma
    log_coef = 0.5 * (lg(j + mr + 1) + lg(j - mr + 1) + lg(j + mc + 1) + lg(j - mc + 1)) - (
        lg(j + mc - s + 1) + lg(s + 1) + lg(mr - mc + s + 1) + lg(j - mr - s + 1)
    )
    sign = 1.0 - 2.0 * torch.remainder(mr - mc + s, 2)
    pow_cos = 2 * j + mc - mr - 2 * s
    pow_sin = mr - mc + 2 * s
    # d^{l+1} = A_l (cos b - Q_l) d^l - B_l d^{l-1}, valid where J <= l; zero elsewhere.
    ls = torch.arange(l_max + 1, device=dev, dtype=f64)[:, None, None]
    lp = ls + 1
    den = torch.sqrt(((lp**2 - mr**2) * (lp**2 - mc**2)).clamp_min(0))
    valid = j[None] <= ls
    safe_den = torch.where(valid, den, torch.ones_like(den))
    a = torch.where(valid, lp * (2 * ls + 1) / safe_den, 0.0)
    q = torch.where(ls > 0, (mr * mc) / (ls * lp).clamp_min(1), 0.0).expand_as(a)
    num_b = torch.sqrt(((ls**2 - mr**2) * (ls**2 - mc**2)).clamp_min(0))
    b = torch.where(valid & (ls > 0), lp * num_b / (ls.clamp_min(1) * safe_den), 0.0)
    return {
        "j": j,
        "log_coef": log_coef,
        "sign": sign,
        "pow_cos": pow_cos,
        "pow_sin": pow_sin,
        "a": a,
        "q": q,
        "b": b,
    }


def wigner_d_sequence(l_max: int, beta: torch.Tensor) -> Iterator[torch.Tensor]:
    """Yield ``d^l(beta)`` for ``l = 0, 1, ..., l_max`` on the common grid.

    Memory stays ``O(l_max^2)`` per angle, which lets callers contract each degree as it
    is produced.

    Parameters
    ----------
    l_max
        Largest degree.
    beta
        ``(...)`` angles in radians (any real values).

    Yields
    ------
    torch.Tensor
        ``(..., 2 l_max + 1, 2 l_max + 1)`` float64, ``[..., m + l_max, m' + l_max]``.
    """
    t = _tables(int(l_max), str(beta.device))
    beta = beta.to(torch.float64)[..., None, None]
    half_c, half_s = torch.cos(beta / 2), torch.sin(beta / 2)
    seed = (
        t["sign"]
        * torch.exp(
            t["log_coef"]
            + torch.xlogy(t["pow_cos"], half_c.abs())
            + torch.xlogy(t["pow_sin"], half_s.abs())
        )
        # cos/sin(beta/2) may be negative for beta outside [0, 2 pi): restore their signs.
        * torch.where(half_c < 0, 1.0 - 2.0 * torch.remainder(t["pow_cos"], 2), 1.0)
        * torch.where(half_s < 0, 1.0 - 2.0 * torch.remainder(t["pow_sin"], 2), 1.0)
    )
    cb = torch.cos(beta)
    prev = torch.zeros_like(seed)
    cur = torch.where(t["j"] == 0, seed, 0.0)
    yield cur
    for ell in range(l_max):
        nxt = t["a"][ell] * (cb - t["q"][ell]) * cur - t["b"][ell] * prev
        nxt = torch.where(t["j"] == ell + 1, seed, nxt)
        prev, cur = cur, nxt
        yield cur


def wigner_d(l_max: int, beta: torch.Tensor) -> torch.Tensor:
    """All small-d matrices up to ``l_max``.

    Parameters
    ----------
    l_max
        Largest degree.
    beta
        ``(...)`` angles in radians.

    Returns
    -------
    torch.Tensor
        ``(..., l_max + 1, 2 l_max + 1, 2 l_max + 1)`` float64, ``[..., l, m + l_max,
        m' + l_max]``, zero where ``|m| > l`` or ``|m'| > l``.
    """
    return torch.stack(list(wigner_d_sequence(l_max, beta)), dim=-3)


def wigner_D(
    l_max: int, alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor
) -> torch.Tensor:
    """All Wigner D matrices up to ``l_max`` of ``Rz(alpha) Ry(beta) Rz(gamma)``.

    Parameters
    ----------
    l_max
        Largest degree.
    alpha, beta, gamma
        ``(...)`` broadcastable angles in radians (active ZYZ, see the module docstring).

    Returns
    -------
    torch.Tensor
        ``(..., l_max + 1, 2 l_max + 1, 2 l_max + 1)`` complex128.
    """
    alpha, beta, gamma = torch.broadcast_tensors(
        *(torch.as_tensor(x, dtype=torch.float64) for x in (alpha, beta, gamma))
    )
    d = wigner_d(l_max, beta)
    m = torch.arange(-l_max, l_max + 1, device=d.device, dtype=torch.float64)
    ea = torch.exp(-1j * m * alpha[..., None])[..., None, :, None]
    eg = torch.exp(-1j * m * gamma[..., None])[..., None, None, :]
    return ea * d * eg


@lru_cache(maxsize=16)
def generators(l_max: int, device: str) -> torch.Tensor:
    """Return the generators ``X_a = d D^l(exp(t [e_a]_x)) / dt`` at ``t = 0`` as diagonals.

    Each generator ``X_a`` is tridiagonal; it is returned as three diagonals so that
    products with it cost ``O(l^2)``.

    Returns
    -------
    torch.Tensor
        ``(3, 3, l_max + 1, 2 l_max + 1)`` complex128: ``[a, k, l, j]`` is
        ``X_a[j, j - 1]`` (k = 0), ``X_a[j, j]`` (k = 1), ``X_a[j, j + 1]`` (k = 2), at
        ``j = m + l_max``.
    """
    dev = torch.device(device)
    m = torch.arange(-l_max, l_max + 1, device=dev, dtype=torch.float64)[None, :]
    ls = torch.arange(l_max + 1, device=dev, dtype=torch.float64)[:, None]
    inside = (m.abs() <= ls).to(torch.float64)
    # -i J_y: X[m+1, m] = -sqrt((l-m)(l+m+1)) / 2, X[m-1, m] = +sqrt((l+m)(l-m+1)) / 2.
    # Row j = m: lower entry X[j, j-1] (from column m-1 raised), upper X[j, j+1].
    low_y = -0.5 * torch.sqrt(((ls - (m - 1)) * (ls + m)).clamp_min(0)) * inside
    up_y = 0.5 * torch.sqrt(((ls + (m + 1)) * (ls - m)).clamp_min(0)) * inside
    zero = torch.zeros_like(low_y)
    gy = torch.stack([low_y, zero, up_y]).to(torch.complex128)
    # Rx(t) = Rz(-pi/2) Ry(t) Rz(pi/2), so X_x[j, j'] = i^(j - j') X_y[j, j'].
    gx = torch.stack([1j * gy[0], gy[1], -1j * gy[2]])
    gz = torch.stack([zero, -1j * m * inside, zero]).to(torch.complex128)
    return torch.stack([gx, gy, gz])

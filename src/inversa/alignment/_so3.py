"""Rotational correlations on SO(3): coarse SO(3) FFT search and Newton refinement.

A rotational correlation is ``C(R) = Re sum_{l <= L} sum_{m m'} sigma^l_{mm'} D^l_{mm'}(R)``
(``D`` of :mod:`inversa.alignment._wigner`). With ``R = Rz(alpha) Ry(beta) Rz(gamma)`` and
``d^l_{mm'}(beta) = i^(m - m') sum_k Delta^l_{km} Delta^l_{km'} exp(-i k beta)``
(``Delta = d(pi / 2)``), ``C`` is a 3-D trigonometric polynomial

    C = Re sum_{m, k, m'} T_{m k m'} exp(-i (m alpha + k beta + m' gamma)),
    T_{m k m'} = sum_l sigma^l_{mm'} i^(m - m') Delta^l_{km} Delta^l_{km'},

so its values on an ``n^3`` grid of Euler angles are one 3-D FFT (n >= 2 L + 1).

Newton works in the chart ``R = R0 exp([v]_x)`` around the current estimate, which has no
gimbal lock: ``D(R0 exp([v]_x)) = D(R0) exp(sum_a v_a X_a)`` with the tridiagonal
generators ``X_a``, so the gradient and Hessian at ``v = 0`` are
``Re sum sigma o (D(R0) X_a)`` and ``Re sum sigma o (D(R0) (X_a X_b + X_b X_a) / 2)``;
both are written ``Re sum D(R0) o K`` with kernels ``K = sigma Y^T`` computed once per
band limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from inversa.alignment._wigner import (
    euler_zyz_to_matrix,
    generators,
    matrix_to_euler_zyz,
    wigner_d,
    wigner_d_sequence,
)
from inversa.core.rotations import axis_angle_to_matrix, geodesic_distance

__all__ = [
    "correlation_kernels",
    "evaluate_kernels",
    "grid_candidates",
    "newton_maximise",
    "ratio_derivatives",
    "so3_fft_grid",
]

# Order of the kernels: value, gradient (x, y, z), Hessian (xx, xy, xz, yy, yz, zz).
_PAIRS = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]


def _apply_xt(sigma: torch.Tensor, band: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``sigma X^T`` into ``out`` for a tridiagonal ``X`` given as ``(3, L + 1, M)`` diagonals."""
    lo, di, up = band[0], band[1], band[2]  # X[j, j-1], X[j, j], X[j, j+1]
    torch.mul(sigma, di[:, None, :], out=out)
    out[..., 1:] += sigma[..., :-1] * lo[:, None, 1:]
    out[..., :-1] += sigma[..., 1:] * up[:, None, :-1]
    return out


def correlation_kernels(sigma: torch.Tensor) -> torch.Tensor:
    """Build the ten kernels giving value, gradient and Hessian of ``C`` in the local chart.

    Parameters
    ----------
    sigma
        ``(..., L + 1, M, M)`` complex, ``M = 2 L + 1``.

    Returns
    -------
    torch.Tensor
        ``(..., 10, L + 1, M, M)``: ``sigma``, ``sigma X_a^T`` (a = x, y, z), and
        ``sigma sym(X_a X_b)^T`` for (a, b) in xx, xy, xz, yy, yz, zz.
    """
    l_max = sigma.shape[-3] - 1
    gen = generators(l_max, str(sigma.device)).to(sigma.dtype)
    # Written in place into one tensor: no stacked copies of ten large kernels.
    out = sigma.new_empty(*sigma.shape[:-3], 10, *sigma.shape[-3:])
    out[..., 0, :, :, :] = sigma
    first = [_apply_xt(sigma, gen[a], out[..., 1 + a, :, :, :]) for a in range(3)]
    scratch = torch.empty_like(sigma)
    for i, (a, b) in enumerate(_PAIRS):
        # sigma (X_a X_b)^T = (sigma X_b^T) X_a^T; on the diagonal both orders agree.
        target = out[..., 4 + i, :, :, :]
        _apply_xt(first[b], gen[a], target)
        if a != b:
            target += _apply_xt(first[a], gen[b], scratch)
            target *= 0.5
    return out


def evaluate_kernels(kernels: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """``Re sum_l sum_{m m'} D^l_{mm'}(R) K^l_{mm'}`` for every kernel and rotation.

    Parameters
    ----------
    kernels
        ``(B, Y, L + 1, M, M)`` complex128.
    rotations
        ``(B, c, 3, 3)`` (c rotations per batch item).

    Returns
    -------
    torch.Tensor
        ``(B, c, Y)`` float64.
    """
    l_max = kernels.shape[-3] - 1
    alpha, beta, gamma = matrix_to_euler_zyz(rotations.to(torch.float64))
    m = torch.arange(-l_max, l_max + 1, device=kernels.device, dtype=torch.float64)
    ea = torch.exp(-1j * m * alpha[..., None])  # (B, c, M)
    eg = torch.exp(-1j * m * gamma[..., None])
    out = torch.zeros(
        *rotations.shape[:2], kernels.shape[1], dtype=torch.float64, device=kernels.device
    )
    for ell, d in enumerate(wigner_d_sequence(l_max, beta)):
        w = slice(l_max - ell, l_max + ell + 1)
        dl = ea[..., w, None] * d[..., w, w] * eg[..., None, w]  # (B, c, 2l+1, 2l+1)
        out += torch.einsum("bcmn,bymn->bcy", dl, kernels[:, :, ell, w, w]).real
    return out


def ratio_derivatives(
    c: torch.Tensor, n: torch.Tensor | None, energy: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Value, gradient and Hessian of ``S = C / sqrt(N * energy)`` (quotient rule).

    Parameters
    ----------
    c, n
        ``(..., 10)`` value/gradient/Hessian entries of ``C`` and ``N`` (kernel order of
        :func:`correlation_kernels`); ``n = None`` means ``N`` is constant (no wedge) and
        ``energy`` then holds ``N * ||P||^2``.
    energy
        ``(...)`` the particle's energy ``||W P||^2`` (or the full constant, see above).

    Returns
    -------
    value, grad, hess
        ``(...)``, ``(..., 3)``, ``(..., 3, 3)``.
    """

    def unpack(x):
        h = torch.empty(*x.shape[:-1], 3, 3, dtype=x.dtype, device=x.device)
        for i, (a, b) in enumerate(_PAIRS):
            h[..., a, b] = x[..., 4 + i]
            h[..., b, a] = x[..., 4 + i]
        return x[..., 0], x[..., 1:4], h

    cv, cg, ch = unpack(c)
    e = energy.clamp_min(torch.finfo(torch.float64).tiny)
    if n is None:
        s = e.rsqrt()
        return cv * s, cg * s[..., None], ch * s[..., None, None]
    nv, ng, nh = unpack(n)
    nv = nv.clamp_min(1e-12 * nv.abs().max().clamp_min(torch.finfo(torch.float64).tiny))
    # S = C N^(-1/2) e^(-1/2).
    r = nv.rsqrt()
    value = cv * r
    grad = cg * r[..., None] - 0.5 * cv[..., None] * ng * (r**3)[..., None]
    outer = lambda a, b: a[..., :, None] * b[..., None, :]  # noqa: E731
    hess = (
        ch * r[..., None, None]
        - 0.5 * (outer(cg, ng) + outer(ng, cg)) * (r**3)[..., None, None]
        - 0.5 * cv[..., None, None] * nh * (r**3)[..., None, None]
        + 0.75 * cv[..., None, None] * outer(ng, ng) * (r**5)[..., None, None]
    )
    s = e.rsqrt()
    return value * s, grad * s[..., None], hess * s[..., None, None]


def so3_fft_grid(sigma: torch.Tensor, n: int) -> torch.Tensor:
    """``C`` on the Euler grid ``alpha, beta, gamma = 2 pi (i, j, k) / n`` by one 3-D FFT.

    Parameters
    ----------
    sigma
        ``(B, L + 1, M, M)`` complex128.
    n
        Grid points per angle, ``>= 2 L + 1``.

    Returns
    -------
    torch.Tensor
        ``(B, n, n, n)`` float64 indexed ``[alpha, beta, gamma]``. Points with
        ``beta > pi`` repeat rotations of the ``beta < pi`` half.
    """
    l_max = sigma.shape[-3] - 1
    size = 2 * l_max + 1
    if n < size:
        raise ValueError(f"grid of {n} points cannot resolve band {l_max}")
    dev = sigma.device
    delta = wigner_d(l_max, torch.tensor(math.pi / 2, dtype=torch.float64, device=dev))
    m = torch.arange(-l_max, l_max + 1, device=dev)
    phase = (1j) ** (m[:, None] - m[None, :]).to(torch.complex128)
    s = sigma * phase  # (B, L+1, M, M)
    dc = delta.to(torch.complex128)  # (L+1, K, M)
    # T[b, m, k, m'] = sum_l s[b, l, m, m'] Delta[l, k, m] Delta[l, k, m'].
    t = torch.einsum("blmn,lkm,lkn->bmkn", s, dc, dc)
    full = sigma.new_zeros(sigma.shape[0], n, n, n)
    idx = m % n
    full[:, idx[:, None, None], idx[None, :, None], idx[None, None, :]] = t
    return torch.fft.fftn(full, dim=(-3, -2, -1)).real


def grid_candidates(values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best ``k`` local maxima (periodic 3x3x3 neighbourhood) of Euler-grid values.

    Parameters
    ----------
    values
        ``(B, n, n, n)`` on the grid of :func:`so3_fft_grid`.
    k
        Candidates per batch item.

    Returns
    -------
    rotations : torch.Tensor
        ``(B, k, 3, 3)`` float64.
    scores : torch.Tensor
        ``(B, k)``.
    """
    b, n = values.shape[0], values.shape[-1]
    padded = F.pad(values[:, None], (1, 1, 1, 1, 1, 1), mode="circular")
    peak = F.max_pool3d(padded, 3, stride=1)[:, 0]
    # beta > pi duplicates the other half; keep beta in [0, pi].
    j = torch.arange(n, device=values.device)
    half = (2 * j <= n)[None, None, :, None]
    masked = torch.where((values >= peak) & half, values, -torch.inf).reshape(b, -1)
    k = min(k, masked.shape[1])
    scores, flat = torch.topk(masked, k, dim=1)
    ia, rem = flat // (n * n), flat % (n * n)
    ib, ig = rem // n, rem % n
    step = 2 * math.pi / n
    rots = euler_zyz_to_matrix(ia * step, ib * step, ig * step).to(torch.float64)
    return rots, scores


def newton_maximise(
    score: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    rotations: torch.Tensor,
    *,
    steps: int,
    max_step: float,
    prior: torch.Tensor | None = None,
    max_angle_deg: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise a score over rotations by safeguarded Newton steps in the local chart.

    Each step solves with the Hessian made negative definite (eigenvalues clipped), caps
    the step norm at ``max_step`` radians, scales it by a per-rotation step size (x1.1
    after an accepted step, x0.5 after a rejected one) and accepts it only if the score
    increases (and, with a prior, if the result stays within ``max_angle_deg``).

    Parameters
    ----------
    score
        Maps ``(B, c, 3, 3)`` rotations to value ``(B, c)``, gradient ``(B, c, 3)`` and
        Hessian ``(B, c, 3, 3)`` in the chart ``R exp([v]_x)`` at ``v = 0``.
    rotations
        ``(B, c, 3, 3)`` starting points.
    steps
        Number of Newton steps.
    max_step
        Largest step (radians).
    prior, max_angle_deg
        ``(B, 3, 3)`` prior rotations and the largest allowed distance from them.

    Returns
    -------
    rotations : torch.Tensor
        ``(B, c, 3, 3)``.
    values : torch.Tensor
        ``(B, c)``.
    """
    rot = rotations.to(torch.float64)
    value, grad, hess = score(rot)
    mu = torch.ones_like(value)
    for _ in range(steps):
        evals, evecs = torch.linalg.eigh(-hess)
        floor = 1e-3 * evals.abs().amax(-1, keepdim=True).clamp_min(1e-30)
        evals = torch.maximum(evals, floor)
        v = evecs @ ((evecs.mT @ grad[..., None])[..., 0] / evals)[..., None]
        v = v[..., 0]
        norm = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        v = v * torch.clamp(max_step / norm.clamp_min(1e-30), max=1.0) * mu[..., None]
        trial = rot @ axis_angle_to_matrix(v)
        t_value, t_grad, t_hess = score(trial)
        ok = t_value > value
        if prior is not None and max_angle_deg is not None:
            ok &= geodesic_distance(prior[:, None].to(trial.dtype), trial) <= max_angle_deg
        rot = torch.where(ok[..., None, None], trial, rot)
        value = torch.where(ok, t_value, value)
        grad = torch.where(ok[..., None], t_grad, grad)
        hess = torch.where(ok[..., None, None], t_hess, hess)
        mu = torch.where(ok, torch.clamp(mu * 1.1, max=1.0), mu * 0.5)
    return rot, value

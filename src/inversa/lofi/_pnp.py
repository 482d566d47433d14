"""Plug-and-play ADMM with any denoiser, a TV denoiser, and TV-regularised reconstruction.

For ``y = A x + noise`` with a `LinearOperator` ``A``:

- `pnp_admm`: ``x = argmin ||A x - y||^2 / 2 + rho ||x - (z - u)||^2 / 2`` (conjugate
  gradients, warm started), ``z = D(x + u)``, ``u = u + x - z``; ``rho`` is given relative to
  ``||A^T A||`` (power iteration) so one value suits every image size and angle count.
- `tv_denoise`: the proximal map of ``weight * TV`` (isotropic, forward differences,
  Neumann boundary), by the fast gradient projection on the dual (Beck & Teboulle 2009).
- `tv_reconstruct`: ``argmin ||A x - y||^2 / 2 + lam TV(x)`` by FISTA with `tv_denoise` as
  the proximal step (clipped at 0 after each step), ``lam`` relative to ``||A^T A||``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from inversa.core.errors import InputError
from inversa.core.operators import LinearOperator

__all__ = ["PnPConfig", "operator_norm_sq", "pnp_admm", "tv_denoise", "tv_reconstruct"]


def _grad(x: torch.Tensor) -> torch.Tensor:
    """Forward differences ``(..., H, W) -> (..., 2, H, W)`` (zero at the far edge)."""
    gy = torch.zeros_like(x)
    gx = torch.zeros_like(x)
    gy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    gx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack([gy, gx], dim=-3)


def _div(p: torch.Tensor) -> torch.Tensor:
    """Minus the adjoint of `_grad`: ``(..., 2, H, W) -> (..., H, W)``."""
    py, px = p[..., 0, :, :], p[..., 1, :, :]
    dy = torch.zeros_like(py)
    dx = torch.zeros_like(px)
    dy[..., 0, :] = py[..., 0, :]
    dy[..., 1:-1, :] = py[..., 1:-1, :] - py[..., :-2, :]
    dy[..., -1, :] = -py[..., -2, :]
    dx[..., :, 0] = px[..., :, 0]
    dx[..., :, 1:-1] = px[..., :, 1:-1] - px[..., :, :-2]
    dx[..., :, -1] = -px[..., :, -2]
    return dy + dx


def tv_denoise(b: torch.Tensor, weight: float, *, n_iter: int = 50) -> torch.Tensor:
    """``argmin_x ||x - b||^2 / 2 + weight * TV(x)`` (isotropic TV), ``(..., H, W)``.

    Parameters
    ----------
    b
        ``(..., H, W)`` images.
    weight
        Non-negative TV weight (0 returns ``b``).
    n_iter
        Dual FGP iterations.

    Returns
    -------
    torch.Tensor
        ``(..., H, W)``.
    """
    if weight < 0:
        raise InputError(None, f"TV weight must be non-negative, got {weight}")
    if weight == 0:
        return b.clone()
    p = torch.zeros(*b.shape[:-2], 2, *b.shape[-2:], dtype=b.dtype, device=b.device)
    r, t = p.clone(), 1.0
    step = 1.0 / (8.0 * weight)
    for _ in range(n_iter):
        q = r + step * _grad(b + weight * _div(r))
        p_new = q / q.norm(dim=-3, keepdim=True).clamp_min(1.0)  # project on |p| <= 1
        t_new = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        r = p_new + ((t - 1.0) / t_new) * (p_new - p)
        p, t = p_new, t_new
    return b + weight * _div(p)


def operator_norm_sq(op: LinearOperator, *, n_iter: int = 30, seed: int = 0) -> float:
    """``||A^T A||`` (largest eigenvalue) by power iteration from a random start."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(op.domain_shape, generator=g, dtype=torch.float32)
    lam = 0.0
    for _ in range(n_iter):
        y = op.adjoint(op.forward(x))
        lam = float(y.norm())
        x = y / lam
    return lam


@dataclass(frozen=True, kw_only=True)
class PnPConfig:
    """Settings of `pnp_admm`.

    Attributes
    ----------
    rho
        ADMM penalty relative to ``||A^T A||``.
    n_iter
        ADMM iterations.
    cg_iter
        Conjugate-gradient iterations per data step (warm started).
    """

    rho: float = 0.05
    n_iter: int = 30
    cg_iter: int = 8

    def __post_init__(self) -> None:
        if not self.rho > 0 or self.n_iter < 1 or self.cg_iter < 1:
            raise InputError(None, "rho must be positive, n_iter and cg_iter >= 1")


def _cg(apply: Callable, rhs: torch.Tensor, x: torch.Tensor, n_iter: int) -> torch.Tensor:
    r = rhs - apply(x)
    p = r.clone()
    rs = float((r * r).sum())
    for _ in range(n_iter):
        if rs == 0.0:
            break
        ap = apply(p)
        alpha = rs / float((p * ap).sum())
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = float((r * r).sum())
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


def pnp_admm(
    op: LinearOperator,
    y: torch.Tensor,
    denoiser: Callable[[torch.Tensor], torch.Tensor],
    *,
    x0: torch.Tensor,
    config: PnPConfig = PnPConfig(),
    norm_sq: float | None = None,
) -> torch.Tensor:
    """Plug-and-play ADMM for ``y = A x``.

    Parameters
    ----------
    op
        ``A``, domain ``(H, W)``.
    y
        Measurement of ``A``'s range shape.
    denoiser
        ``(H, W) -> (H, W)``, applied to ``x + u`` every iteration.
    x0
        Starting image ``(H, W)`` (e.g. the FBP).
    config
        Penalty and iterations.
    norm_sq
        ``||A^T A||`` if known (else computed).

    Returns
    -------
    torch.Tensor
        ``(H, W)``: the last ``z`` (the denoiser's output).
    """
    lip = operator_norm_sq(op) if norm_sq is None else norm_sq
    rho = config.rho * lip
    aty = op.adjoint(y)

    def normal(v: torch.Tensor) -> torch.Tensor:
        return op.adjoint(op.forward(v)) + rho * v

    x, z = x0.clone(), x0.clone()
    u = torch.zeros_like(x0)
    for _ in range(config.n_iter):
        x = _cg(normal, aty + rho * (z - u), x, config.cg_iter)
        z = denoiser(x + u)
        u = u + x - z
    return z


def tv_reconstruct(
    op: LinearOperator,
    y: torch.Tensor,
    *,
    lam: float,
    n_iter: int = 100,
    inner: int = 20,
    x0: torch.Tensor | None = None,
    norm_sq: float | None = None,
) -> torch.Tensor:
    """``argmin_{x >= 0} ||A x - y||^2 / 2 + lam ||A^T A|| TV(x)`` by FISTA.

    Parameters
    ----------
    op, y
        The operator and the measurement.
    lam
        TV weight relative to ``||A^T A||`` (so it is a weight per unit step).
    n_iter, inner
        FISTA iterations and dual iterations of each TV proximal step.
    x0
        Start (zeros when ``None``).
    norm_sq
        ``||A^T A||`` if known.

    Returns
    -------
    torch.Tensor
        ``(H, W)``.
    """
    lip = operator_norm_sq(op) if norm_sq is None else norm_sq
    x = torch.zeros(op.domain_shape, dtype=y.dtype) if x0 is None else x0.clone()
    v, t = x.clone(), 1.0
    for _ in range(n_iter):
        g = op.adjoint(op.forward(v) - y)
        x_new = tv_denoise(v - g / lip, lam, n_iter=inner).clamp_min(0.0)
        t_new = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        v = x_new + ((t - 1.0) / t_new) * (x_new - x)
        x, t = x_new, t_new
    return x

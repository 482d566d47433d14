"""Geometry read-out: the codimension of the learned fibration and the speed of the medium.

- :func:`codimension`: on the learned level set of each sampled output ``y`` (points
  weighted by the kernel), the singular values ``s_1 >= s_2 >= ...`` of the Jacobian
  ``d phi / d x`` (``channels x 2``) are measured in delta widths across the domain,
  ``rho_i = s_i * 2 / sigma`` (``sigma``: standard deviation of the delta); a direction
  counts when its weighted median ``rho_i`` is at least :data:`CUT` (the level-set
  function changes by several delta widths across the image, so the delta localises
  along it; the network starts with one such direction and the others at about half a
  width).
- :func:`speed_from_level_sets`: the rays of the metric ``c^-2 |dx|^2`` bend with Euclidean
  curvature ``div(nu) = nu . grad log c`` (``nu`` the unit normal of the ray; see
  ``trace_rays``); with ``nu`` and ``div nu`` read from level sets on the pixel grid, this is
  linear in ``log c``, fitted by least squares on Gaussian radial basis functions with
  ``log c = 0`` on the circle of radius 0.95 (the rays enter in a known medium: curves alone
  fix ``c`` only up to a factor).
"""

from __future__ import annotations

import math

import torch

from inversa.fibration._data import pixel_coordinates
from inversa.fibration._models import LevelSetNet

__all__ = [
    "CUT",
    "amplitude_grid",
    "codimension",
    "curve_level_set",
    "jacobian_singular_values",
    "level_set_grid",
    "speed_from_level_sets",
]

CUT = 3.0
"""Delta widths across the domain from which a direction of ``phi`` counts as cutting."""


@torch.no_grad()
def level_set_grid(model: LevelSetNet, index: torch.Tensor) -> torch.Tensor:
    """Learned level-set functions on the input grid: ``(channels, R, N, N)``.

    Parameters
    ----------
    model
        A trained level-set network.
    index
        ``(R,)`` flat output indices.
    """
    n = model.size
    phi = model.phi(model.x_coords, model.y_coords[index])  # (c, R, X)
    return phi.reshape(phi.shape[0], phi.shape[1], n, n)


@torch.no_grad()
def amplitude_grid(model: LevelSetNet, index: torch.Tensor) -> torch.Tensor:
    """Learned amplitudes ``a(x, y)`` on the input grid: ``(R, N, N)``."""
    n = model.size
    _, _, u, v = model.features(model.x_coords, model.y_coords[index])
    amp = torch.exp(u @ v.T / math.sqrt(model.config.amplitude_rank) + model.log_gain)
    return amp.reshape(-1, n, n)


def jacobian_singular_values(
    model: LevelSetNet, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values of ``d phi / d x`` on the grid and the kernel weights there.

    Returns
    -------
    (sv, weight)
        ``(R, X, min(c, 2))`` singular values (descending, per normalised unit) and
        ``(R, X)`` kernel weights ``K(x, y)`` of the sampled outputs.
    """
    x = model.x_coords.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        phi = model.phi(x, model.y_coords[index])  # (c, R, X)
        rows = []
        for c in range(phi.shape[0]):
            grads = []
            for r in range(phi.shape[1]):
                (g,) = torch.autograd.grad(phi[c, r].sum(), x, retain_graph=True)
                grads.append(g)
            rows.append(torch.stack(grads))  # (R, X, 2)
    jac = torch.stack(rows, dim=-2)  # (R, X, c, 2)
    sv = torch.linalg.svdvals(jac.double())
    with torch.no_grad():
        model.anneal(1.0)
        weight = model.kernel(index).double()
    return sv, weight


def codimension(
    model: LevelSetNet, *, n_outputs: int = 32, generator: torch.Generator | None = None
) -> tuple[int, list[float]]:
    """Codimension of the learned level sets (see the module docstring).

    Parameters
    ----------
    model
        A trained level-set network.
    n_outputs
        Outputs sampled at random.
    generator
        Source of the sample.

    Returns
    -------
    (codim, rho)
        The codimension and the weighted median of every ``rho_i``.
    """
    n_y = model.y_coords.shape[0]
    g = generator or torch.Generator().manual_seed(0)
    index = torch.randperm(n_y, generator=g)[: min(n_outputs, n_y)]
    sv, weight = jacobian_singular_values(model, index)
    w = weight.abs().flatten()
    rho = []
    for i in range(sv.shape[-1]):
        rho.append(_weighted_median(sv[..., i].flatten() * 2.0 / model.sigma, w))
    codim = sum(1 for r in rho if r >= CUT)
    return codim, rho


def _weighted_median(values: torch.Tensor, weights: torch.Tensor) -> float:
    order = torch.argsort(values)
    cum = torch.cumsum(weights[order], 0)
    k = int(torch.searchsorted(cum, 0.5 * cum[-1]))
    return float(values[order][min(k, values.numel() - 1)])


def _rbf_basis(points: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian RBFs on an ``n x n`` grid over [-0.9, 0.9]^2: values and gradients."""
    axis = torch.linspace(-0.9, 0.9, n, dtype=torch.float64)
    cy, cx = torch.meshgrid(axis, axis, indexing="ij")
    centres = torch.stack([cx.flatten(), cy.flatten()], -1)  # (B, 2)
    width = 1.8 / (n - 1)
    diff = points[:, None, :] - centres[None]  # (P, B, 2)
    val = torch.exp(-0.5 * diff.square().sum(-1) / width**2)
    grad = -diff / width**2 * val[..., None]
    return val, grad


def speed_from_level_sets(
    phi: torch.Tensor,
    *,
    band: float,
    weights: torch.Tensor | None = None,
    radius: float = 0.8,
    n_basis: int = 9,
    regularization: float = 1e-3,
) -> torch.Tensor:
    """Recover a speed map from ray-shaped level sets (see the module docstring).

    Parameters
    ----------
    phi
        ``(R, N, N)`` level-set functions on the pixel grid, one ray each (its zero set).
    band
        Pixels with ``|phi| < band`` count as on the ray.
    weights
        ``(R, N, N)`` non-negative confidence of each pixel (e.g. the learned amplitude);
        ``None`` weighs all alike. After a first fit, points whose residual exceeds three
        times the median absolute residual are dropped and the fit is repeated.
    radius
        Only points within this normalised radius are used (where the data probe the rays).
    n_basis
        RBFs per axis of ``log c``.
    regularization
        Tikhonov weight on the RBF coefficients (relative to the mean diagonal).

    Returns
    -------
    torch.Tensor
        ``(N, N)`` speed map with ``c = 1`` on the circle of radius 0.95.
    """
    phi = phi.double()
    size = phi.shape[-1]
    h = 2.0 / size
    gy, gx = torch.gradient(phi, spacing=h, dim=(-2, -1))
    norm = (gx.square() + gy.square()).sqrt().clamp_min(1e-12)
    nx, ny = gx / norm, gy / norm
    div = torch.gradient(nx, spacing=h, dim=-1)[0] + torch.gradient(ny, spacing=h, dim=-2)[0]
    xy = pixel_coordinates(size)
    r = xy.square().sum(-1).sqrt()
    inner = (r < radius)[None].expand_as(phi)
    inner = inner & (r > 0)[None]
    on = (phi.abs() < band) & inner
    # stay a pixel away from the grid border (one-sided differences there)
    on[..., :2, :] = on[..., -2:, :] = on[..., :, :2] = on[..., :, -2:] = False
    pts = xy[None].expand(phi.shape[0], -1, -1, -1)[on]  # (P, 2)
    nu = torch.stack([nx[on], ny[on]], -1)
    kappa = div[on]
    _, grad = _rbf_basis(pts, n_basis)
    a = (grad * nu[:, None, :]).sum(-1)  # (P, B)
    phis = torch.linspace(0, 2 * math.pi, 4 * n_basis * n_basis, dtype=torch.float64)
    ring = 0.95 * torch.stack([phis.cos(), phis.sin()], -1)
    ring_val, _ = _rbf_basis(ring, n_basis)
    weight = math.sqrt(max(a.shape[0], 1) / ring.shape[0])
    lhs = torch.cat([a, weight * ring_val])
    rhs = torch.cat([kappa, torch.zeros(ring.shape[0], dtype=torch.float64)])
    w = torch.ones(a.shape[0], dtype=torch.float64)
    if weights is not None:
        w = weights.double()[on].clamp_min(0)
        w = w / w.mean().clamp_min(1e-30)
    sw = torch.cat([w.sqrt(), torch.ones(ring.shape[0], dtype=torch.float64)])
    keep = torch.ones(lhs.shape[0], dtype=torch.bool)
    for _ in range(2):
        lw, rw = lhs[keep] * sw[keep, None], rhs[keep] * sw[keep]
        gram = lw.T @ lw
        lam = regularization * float(gram.diagonal().mean())
        eye = torch.eye(gram.shape[0], dtype=gram.dtype)
        coef = torch.linalg.solve(gram + lam * eye, lw.T @ rw)
        resid = (lhs @ coef - rhs).abs()
        keep = resid <= 3 * resid[: a.shape[0]].median()
        keep[a.shape[0] :] = True
    val, _ = _rbf_basis(xy.reshape(-1, 2), n_basis)
    return torch.exp(val @ coef).reshape(size, size)


def curve_level_set(curve: torch.Tensor, size: int) -> torch.Tensor:
    """Signed distance to a polyline on the pixel grid: a level-set function of the curve.

    Parameters
    ----------
    curve
        ``(P, 2)`` normalised points, densely sampled along the curve.
    size
        ``N``.

    Returns
    -------
    torch.Tensor
        ``(N, N)``: distance to the nearest curve point, signed by the side of the local
        tangent.
    """
    curve = curve.double()
    xy = pixel_coordinates(size).reshape(-1, 2)
    d = torch.cdist(xy, curve)  # (X, P)
    near = d.argmin(dim=1)
    tangent = torch.gradient(curve, dim=0)[0][near]
    rel = xy - curve[near]
    side = torch.sign(tangent[:, 0] * rel[:, 1] - tangent[:, 1] * rel[:, 0])
    return (side * d.gather(1, near[:, None])[:, 0]).reshape(size, size)

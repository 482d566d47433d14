"""Ground-truth double fibration transforms on an ``(N, N)`` grid, with exact adjoints.

- Radon: :class:`inversa.tomography.Radon2D` with ``N`` angles over 180 degrees and ``N``
  detector bins of one pixel.
- Circular means: centres ``R (cos a, sin a)`` on the circle of radius ``R = 1``
  (normalised units, the image spans ``[-1, 1)``), ``N`` centres and ``N`` radii in
  ``[0.1, 1.9]``; each mean is an equal-weight sum over points spaced half a pixel along
  the circle, bilinearly interpolated.
- Geodesic rays: the rays of the metric ``c(x)^-2 |dx|^2`` of a positive speed map ``c``
  entering as the parallel beams of the Radon transform (angle ``theta``, offset ``t``),
  traced by :func:`trace_rays` (RK4), integrated with the Riemannian length ``ds / c``
  (trapezoid rule, bilinear interpolation).

The circular and geodesic transforms are sparse matrices (:class:`SparseIntegralOperator`):
the forward map gathers and the adjoint scatters the same entries, so the adjoint is
exact by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inversa.core.errors import InputError
from inversa.core.operators import LinearOperator
from inversa.fibration._data import pixel_coordinates
from inversa.tomography import Radon2D

__all__ = [
    "TRANSFORMS",
    "SparseIntegralOperator",
    "Transform",
    "bilinear_entries",
    "check_speed",
    "circular_means",
    "default_speed_map",
    "geodesic_ray_transform",
    "make_transform",
    "radon_transform",
    "ray_starts",
    "trace_rays",
]

TRANSFORMS = ("radon", "circular", "geodesic")
"""Names of the transforms of the benchmark."""

CIRCLE_RADIUS = 1.0
RADII = (0.1, 1.9)


@dataclass(frozen=True, eq=False, kw_only=True)
class SparseIntegralOperator(LinearOperator):
    """A sparse linear map ``(..., H, W) -> (..., *out_shape)`` with its exact adjoint.

    ``out[r] = sum_e weights[e] * x[cols[e]]`` over the entries ``e`` with ``rows[e] = r``
    (flat indices); the adjoint scatters the same entries back.

    Parameters
    ----------
    image_shape
        ``(H, W)``.
    out_shape
        Trailing shape of the outputs.
    rows, cols
        ``(nnz,)`` int64 flat output and input indices.
    weights
        ``(nnz,)`` float64 values.
    """

    image_shape: tuple[int, int]
    out_shape: tuple[int, ...]
    rows: torch.Tensor
    cols: torch.Tensor
    weights: torch.Tensor

    @property
    def domain_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(H, W)``."""
        return tuple(self.image_shape)

    @property
    def range_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``out_shape``."""
        return tuple(self.out_shape)

    def _apply(self, x: torch.Tensor, src, dst, shape_in, shape_out) -> torch.Tensor:
        n_in, n_out = math.prod(shape_in), math.prod(shape_out)
        if tuple(x.shape[x.ndim - len(shape_in) :]) != tuple(shape_in):
            raise InputError(None, f"expected a tensor ending in {tuple(shape_in)}, got {x.shape}")
        batch = x.shape[: x.ndim - len(shape_in)]
        flat = x.reshape(*batch, n_in)
        vals = flat[..., src.to(x.device)] * self.weights.to(device=x.device, dtype=x.dtype)
        out = torch.zeros(*batch, n_out, dtype=x.dtype, device=x.device)
        out = out.index_add(out.ndim - 1, dst.to(x.device), vals)
        return out.reshape(*batch, *shape_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Integrate: ``(..., H, W) -> (..., *out_shape)``."""
        return self._apply(x, self.cols, self.rows, self.image_shape, self.out_shape)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Scatter back (exact adjoint): ``(..., *out_shape) -> (..., H, W)``."""
        return self._apply(y, self.rows, self.cols, self.out_shape, self.image_shape)


def bilinear_entries(
    points: torch.Tensor, weights: torch.Tensor, owners: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sparse entries of ``sum_p weights[p] f(points[p])`` for bilinear ``f`` on a grid.

    Parameters
    ----------
    points
        ``(P, 2)`` normalised ``(x, y)`` points.
    weights
        ``(P,)`` quadrature weights.
    owners
        ``(P,)`` output index of each point.
    size
        ``N`` of the ``(N, N)`` grid; neighbours outside the grid are dropped (``f = 0``).

    Returns
    -------
    (rows, cols, values)
        Coalesced: one entry per (output, pixel) pair.
    """
    pix = points.double() * (size / 2) + size // 2  # (P, 2): column, row
    base = pix.floor()
    frac = pix - base
    base = base.long()
    rows, cols, vals = [], [], []
    for dx in (0, 1):
        for dy in (0, 1):
            wx = frac[:, 0] if dx else 1 - frac[:, 0]
            wy = frac[:, 1] if dy else 1 - frac[:, 1]
            j, i = base[:, 0] + dx, base[:, 1] + dy
            inside = (j >= 0) & (j < size) & (i >= 0) & (i < size)
            rows.append(owners[inside])
            cols.append((i * size + j)[inside])
            vals.append((weights * wx * wy)[inside])
    n_pix = size * size
    keys, inverse = torch.unique(torch.cat(rows) * n_pix + torch.cat(cols), return_inverse=True)
    values = torch.zeros(keys.numel(), dtype=torch.float64).index_add(0, inverse, torch.cat(vals))
    return (keys // n_pix).contiguous(), (keys % n_pix).contiguous(), values


def radon_transform(size: int) -> Radon2D:
    """Radon transform ``(..., N, N) -> (..., N, N)``: ``N`` angles in [0, 180), ``N`` bins."""
    angles = torch.arange(size, dtype=torch.float64) * (180.0 / size)
    return Radon2D(image_shape=(size, size), angles=angles, n_detector=size)


def circular_means(size: int, *, n_centres: int | None = None, n_radii: int | None = None):
    """Circular means ``(..., N, N) -> (..., n_centres, n_radii)``.

    Centre ``a`` sits at ``(cos 2 pi a / n, sin 2 pi a / n)`` (normalised units), radius
    ``k`` is ``0.1 + 1.8 (k + 1/2) / n_radii``; the mean samples the circle every half
    pixel (at least 8 points) with bilinear interpolation (zero outside the image).
    """
    n_c = n_centres or size
    n_r = n_radii or size
    alpha, radius = _circle_parameters(n_c, n_r)
    pts, wts, own = [], [], []
    for k in range(n_r):
        r = float(radius[k])
        m = max(8, math.ceil(2 * math.pi * r * (size / 2) * 2))
        phi = torch.arange(m, dtype=torch.float64) * (2 * math.pi / m)
        circle = r * torch.stack([phi.cos(), phi.sin()], -1)  # (m, 2)
        centres = CIRCLE_RADIUS * torch.stack([alpha.cos(), alpha.sin()], -1)  # (n_c, 2)
        p = centres[:, None, :] + circle[None, :, :]  # (n_c, m, 2)
        pts.append(p.reshape(-1, 2))
        wts.append(torch.full((n_c * m,), 1.0 / m, dtype=torch.float64))
        own.append((torch.arange(n_c)[:, None] * n_r + k).expand(n_c, m).reshape(-1))
    rows, cols, vals = bilinear_entries(torch.cat(pts), torch.cat(wts), torch.cat(own), size)
    return SparseIntegralOperator(
        image_shape=(size, size), out_shape=(n_c, n_r), rows=rows, cols=cols, weights=vals
    )


def _circle_parameters(n_c: int, n_r: int) -> tuple[torch.Tensor, torch.Tensor]:
    alpha = torch.arange(n_c, dtype=torch.float64) * (2 * math.pi / n_c)
    lo, hi = RADII
    radius = lo + (hi - lo) * (torch.arange(n_r, dtype=torch.float64) + 0.5) / n_r
    return alpha, radius


def default_speed_map(size: int, *, contrast: float = 0.3) -> torch.Tensor:
    """Return the benchmark's medium ``c = 1 + contrast exp(-|x - m|^2 / (2 0.25^2))``, ``(N, N)``.

    A smooth fast lens centred at ``m = (0.15, -0.1)`` (normalised units); ``c`` is within
    1 % of 1 beyond radius 0.9, where the rays enter.
    """
    xy = pixel_coordinates(size)
    d2 = (xy[..., 0] - 0.15).square() + (xy[..., 1] + 0.1).square()
    return 1.0 + contrast * torch.exp(-d2 / (2 * 0.25**2))


def check_speed(speed: torch.Tensor) -> torch.Tensor:
    """Return a square speed map as float64, or raise `InputError` (non-positive, NaN)."""
    if not isinstance(speed, torch.Tensor) or speed.ndim != 2 or speed.shape[0] != speed.shape[1]:
        got = tuple(speed.shape) if isinstance(speed, torch.Tensor) else type(speed).__name__
        raise InputError(None, f"speed map must be a square (N, N) tensor, got {got}")
    speed = speed.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(speed).all()):
        raise InputError(None, "speed map holds NaN or infinite values")
    if not bool((speed > 0).all()):
        raise InputError(None, f"speed map must be positive everywhere (min {float(speed.min())})")
    return speed


def _sample(grid: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Bilinear values of ``(C, N, N)`` grids at ``(P, 2)`` normalised points, clamped."""
    size = grid.shape[-1]
    pix = (pts * (size / 2) + size // 2).clamp(0, size - 1 - 1e-9)
    base = pix.floor()
    f = pix - base
    j, i = base[:, 0].long(), base[:, 1].long()
    j1, i1 = (j + 1).clamp(max=size - 1), (i + 1).clamp(max=size - 1)
    fx, fy = f[:, 0], f[:, 1]
    return (
        grid[:, i, j] * (1 - fx) * (1 - fy)
        + grid[:, i, j1] * fx * (1 - fy)
        + grid[:, i1, j] * (1 - fx) * fy
        + grid[:, i1, j1] * fx * fy
    )


def trace_rays(
    speed: torch.Tensor,
    starts: torch.Tensor,
    directions: torch.Tensor,
    *,
    step: float,
    n_steps: int,
) -> torch.Tensor:
    """Trace rays of the metric ``c^-2 |dx|^2`` by the classical RK4 scheme.

    With Euclidean arc length ``s`` and unit direction ``u`` the ray equations are
    ``dx/ds = u``, ``du/ds = -(g - (g . u) u)`` with ``g = grad log c`` (Fermat's
    principle). ``log c`` is sampled on the grid, ``g`` by central differences, both read
    bilinearly (clamped at the border); ``u`` is renormalised after every step.

    Parameters
    ----------
    speed
        ``(N, N)`` positive speed map (pixel ``(i, j)`` at the normalised point of
        :func:`pixel_coordinates`).
    starts, directions
        ``(R, 2)`` normalised start points and directions.
    step
        Arc-length step in normalised units.
    n_steps
        Number of steps.

    Returns
    -------
    torch.Tensor
        ``(n_steps + 1, R, 2)`` float64 points along every ray.
    """
    speed = check_speed(speed)
    size = speed.shape[-1]
    log_c = speed.log()
    gy, gx = torch.gradient(log_c, spacing=2.0 / size)
    grad = torch.stack([gx, gy])  # (2, N, N): d/dx, d/dy

    def rhs(x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = _sample(grad, x).T  # (R, 2)
        return u, -(g - (g * u).sum(-1, keepdim=True) * u)

    x = starts.double().clone()
    u = directions.double()
    u = u / u.norm(dim=-1, keepdim=True)
    path = [x]
    h = float(step)
    for _ in range(n_steps):
        k1x, k1u = rhs(x, u)
        k2x, k2u = rhs(x + 0.5 * h * k1x, u + 0.5 * h * k1u)
        k3x, k3u = rhs(x + 0.5 * h * k2x, u + 0.5 * h * k2u)
        k4x, k4u = rhs(x + h * k3x, u + h * k3u)
        x = x + (h / 6) * (k1x + 2 * k2x + 2 * k3x + k4x)
        u = u + (h / 6) * (k1u + 2 * k2u + 2 * k3u + k4u)
        u = u / u.norm(dim=-1, keepdim=True)
        path.append(x)
    return torch.stack(path)


def _beam_parameters(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    theta = torch.arange(size, dtype=torch.float64) * (math.pi / size)
    offset = (torch.arange(size, dtype=torch.float64) - size // 2) / (size / 2)
    return theta, offset


def ray_starts(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Start points and directions of the ``N x N`` rays, ``(N * N, 2)`` each.

    Ray ``(a, k)`` follows the Radon line ``x cos theta_a + y sin theta_a = t_k`` until it
    meets the medium: it starts at ``t n - 1.0 d`` with ``n = (cos, sin)``,
    ``d = (-sin, cos)``, heading along ``d``.
    """
    theta, offset = _beam_parameters(size)
    th = theta[:, None].expand(size, size).reshape(-1)
    t = offset[None, :].expand(size, size).reshape(-1)
    n = torch.stack([th.cos(), th.sin()], -1)
    d = torch.stack([-th.sin(), th.cos()], -1)
    return t[:, None] * n - 1.0 * d, d


def geodesic_ray_transform(speed: torch.Tensor, *, step_px: float = 0.25) -> SparseIntegralOperator:
    """Geodesic ray transform of a speed map ``(N, N)``: ``(..., N, N) -> (..., N, N)``.

    Output ``(a, k)`` is ``int f ds / c`` (``ds`` in pixels) along the ray entering as the
    Radon line ``(theta_a, t_k)`` (:func:`ray_starts`), traced over a Euclidean length
    of 2.0 (normalised) by :func:`trace_rays` with ``step_px`` pixels per step; trapezoid
    rule, bilinear interpolation. With ``c = 1`` the rays are the Radon lines.

    Raises
    ------
    InputError
        A speed map that is not square, not finite or not positive.
    """
    speed = check_speed(speed)
    size = speed.shape[-1]
    if not 0 < step_px <= 2:
        raise InputError(None, f"step_px must be in (0, 2], got {step_px}")
    h = step_px * 2.0 / size
    n_steps = math.ceil(2.0 / h)
    x0, d0 = ray_starts(size)
    path = trace_rays(speed, x0, d0, step=h, n_steps=n_steps)  # (S, R, 2)
    s, r = path.shape[0], path.shape[1]
    c = _sample(speed[None], path.reshape(-1, 2))[0].reshape(s, r)
    quad = torch.full((s, 1), step_px, dtype=torch.float64)
    quad[0] = quad[-1] = step_px / 2
    w = quad / c
    owners = torch.arange(r)[None, :].expand(s, r).reshape(-1)
    rows, cols, vals = bilinear_entries(path.reshape(-1, 2), w.reshape(-1), owners, size)
    return SparseIntegralOperator(
        image_shape=(size, size), out_shape=(size, size), rows=rows, cols=cols, weights=vals
    )


@dataclass(frozen=True, eq=False, kw_only=True)
class Transform:
    """One ground-truth transform with the output coordinates the models see.

    Attributes
    ----------
    name
        ``"radon"``, ``"circular"`` or ``"geodesic"``.
    operator
        ``(..., N, N) -> (..., N, N)``.
    out_coords
        ``(N * N, 3)`` coordinates of the outputs in row-major order: ``(cos theta,
        sin theta, t)`` for the rays (``t`` normalised), ``(cos a, sin a, r)`` for the
        circles.
    speed
        ``(N, N)`` speed map of the geodesic transform, else ``None``.
    """

    name: str
    operator: LinearOperator
    out_coords: torch.Tensor
    speed: torch.Tensor | None = None

    @property
    def size(self) -> int:
        """``N``."""
        return int(self.operator.domain_shape[-1])

    def true_curve(self, index: int, *, n_points: int = 200) -> torch.Tensor:
        """``(P, 2)`` normalised points of the curve behind flat output ``index``."""
        return self.true_curves(torch.tensor([int(index)]), n_points=n_points)[0]

    def true_curves(self, index: torch.Tensor, *, n_points: int = 200) -> torch.Tensor:
        """``(R, P, 2)`` normalised points of the curves behind flat outputs ``index (R,)``.

        Circles and lines get ``n_points`` points; geodesic rays are traced (RK4, a
        quarter pixel per step) over their whole length.
        """
        size = self.size
        index = torch.as_tensor(index).long().reshape(-1)
        if self.name == "circular":
            alpha, radius = _circle_parameters(size, size)
            a, k = index // size, index % size
            phi = torch.linspace(0, 2 * math.pi, n_points, dtype=torch.float64)
            centre = CIRCLE_RADIUS * torch.stack([alpha[a].cos(), alpha[a].sin()], -1)
            ring = torch.stack([phi.cos(), phi.sin()], -1)
            return centre[:, None, :] + radius[k][:, None, None] * ring[None]
        x0, d0 = ray_starts(size)
        x0, d0 = x0[index], d0[index]
        if self.name == "radon":
            s = torch.linspace(0, 2.0, n_points, dtype=torch.float64)[None, :, None]
            return x0[:, None, :] + s * d0[:, None, :]
        h = 0.25 * 2.0 / size
        path = trace_rays(self.speed, x0, d0, step=h, n_steps=math.ceil(2.0 / h))
        return path.transpose(0, 1)


def make_transform(name: str, size: int, *, speed: torch.Tensor | None = None) -> Transform:
    """Build transform ``name`` (one of :data:`TRANSFORMS`) on an ``(N, N)`` grid.

    Parameters
    ----------
    name
        ``"radon"``, ``"circular"`` or ``"geodesic"``.
    size
        ``N`` (>= 8).
    speed
        Speed map of the geodesic transform; ``None`` gives :func:`default_speed_map`.
        Must be ``(N, N)``, finite and positive.

    Raises
    ------
    InputError
        An unknown name, a bad size or a bad speed map.
    """
    if name not in TRANSFORMS:
        raise InputError(None, f"unknown transform {name!r}; choose from {', '.join(TRANSFORMS)}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise InputError(None, f"image size must be an integer >= 8, got {size!r}")
    if name == "circular":
        alpha, radius = _circle_parameters(size, size)
        aa = alpha[:, None].expand(size, size).reshape(-1)
        rr = radius[None, :].expand(size, size).reshape(-1)
        coords = torch.stack([aa.cos(), aa.sin(), rr], -1)
        return Transform(name=name, operator=circular_means(size), out_coords=coords)
    theta, offset = _beam_parameters(size)
    th = theta[:, None].expand(size, size).reshape(-1)
    t = offset[None, :].expand(size, size).reshape(-1)
    coords = torch.stack([th.cos(), th.sin(), t], -1)
    if name == "radon":
        return Transform(name=name, operator=radon_transform(size), out_coords=coords)
    speed = default_speed_map(size) if speed is None else check_speed(speed)
    if speed.shape != (size, size):
        raise InputError(None, f"speed map is {tuple(speed.shape)}, expected ({size}, {size})")
    op = geodesic_ray_transform(speed)
    return Transform(name=name, operator=op, out_coords=coords, speed=speed)

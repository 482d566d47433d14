"""Random-ellipse phantoms, evaluated exactly at pixel centres (training images).

Each phantom is drawn in the continuous frame of :mod:`._shepp_logan` (coordinates in
[-1, 1], y up, pixel ``(row, col)`` of an ``n``-sized image at
``x = (col - n // 2) / (n / 2)``, ``y = -(row - n // 2) / (n / 2)``), so the same generator
state gives the same object at every resolution: only the sampling changes.
"""

from __future__ import annotations

import math

import torch

from inversa.core.errors import InputError

__all__ = ["random_ellipses"]


def _ellipse_params(n_inner: int, generator: torch.Generator) -> list[tuple[float, ...]]:
    """``(x0, y0, a, b, phi, value)`` of the body and ``n_inner`` ellipses inside it."""

    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))

    ax, ay = u(0.55, 0.85), u(0.65, 0.9)
    body = (u(-0.05, 0.05), u(-0.05, 0.05), ax, ay, u(-20.0, 20.0), u(0.25, 0.5))
    params = [body]
    for _ in range(n_inner):
        r, t = math.sqrt(u(0.0, 1.0)), u(0.0, 2.0 * math.pi)
        x0 = body[0] + 0.75 * ax * r * math.cos(t)
        y0 = body[1] + 0.75 * ay * r * math.sin(t)
        a, b = u(0.02, 0.3), u(0.02, 0.3)
        params.append((x0, y0, a, b, u(0.0, 180.0), u(-0.4, 0.6)))
    return params


def random_ellipses(
    size: int,
    *,
    count: int,
    generator: torch.Generator,
    min_ellipses: int = 6,
    max_ellipses: int = 14,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Random ellipse phantoms with values in [0, 1], exact at pixel centres.

    Each image is a body ellipse (semi-axes 0.55-0.9, value 0.25-0.5, tilted up to 20
    degrees) plus ``min_ellipses`` to ``max_ellipses`` ellipses centred inside it (semi-axes
    0.02-0.3, any angle, additive value in [-0.4, 0.6]), all restricted to the body; the
    sum is clipped at 0 and divided by its maximum. The parameters are continuous, so the
    same generator state gives the same object at any ``size``.

    Parameters
    ----------
    size
        Image edge in pixels.
    count
        Number of phantoms.
    generator
        Source of every random draw (a CPU generator).
    min_ellipses, max_ellipses
        Range of the number of inner ellipses per image (inclusive).
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        ``(count, size, size)`` images indexed ``[y, x]``, each with maximum 1.
    """
    for name, value in (("size", size), ("count", count)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(None, f"{name} must be a positive integer, got {value!r}")
    if not 0 <= min_ellipses <= max_ellipses:
        raise InputError(None, "need 0 <= min_ellipses <= max_ellipses")
    c = (torch.arange(size, dtype=torch.float64, device=device) - size // 2) / (size / 2)
    y, x = -c[:, None], c[None, :]
    out = []
    for _ in range(count):
        k = int(torch.randint(min_ellipses, max_ellipses + 1, (), generator=generator))
        params = _ellipse_params(k, generator)
        img = torch.zeros(size, size, dtype=torch.float64, device=device)
        body = None
        for x0, y0, a, b, phi, value in params:
            cs, sn = math.cos(math.radians(phi)), math.sin(math.radians(phi))
            uu = (x - x0) * cs + (y - y0) * sn
            vv = -(x - x0) * sn + (y - y0) * cs
            inside = (uu / a) ** 2 + (vv / b) ** 2 <= 1.0
            body = inside if body is None else body
            img += value * (inside & body).to(img.dtype)
        img = img.clamp_min(0.0)
        peak = img.max()
        out.append(img / peak if peak > 0 else img)
    return torch.stack(out).to(dtype)

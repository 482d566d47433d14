"""Per-tilt deformation model: shift, in-plane rotation and a B-spline local field.

The model is the simulator's (:mod:`inversa.tomography`): raw pixel ``r`` of tilt ``t``
(pixels about the image centre, components ``(x, y)``) shows the ideal projection at

``s = R(phi_t) r + d_t + D_t(r)``

with ``R(phi_t)`` the in-plane rotation about the image centre, ``d_t`` the shift and
``D_t`` a uniform cubic B-spline over a ``G x G`` control grid spanning the image (the
parameterisation of :func:`inversa.tomography.bspline_field`). ``[R | d]`` is exactly an
IMOD ``.xf`` transform, so a fitted model is written as one.

A cubic B-spline reproduces constant and linear fields, so a free ``D_t`` could take over
any part of the shift or (small) rotation and the split between ``.xf`` and local field
would be arbitrary. The model removes both from the local field (:func:`rigid_free`):
``D_t`` has zero mean and zero rotational moment over the image, and all rigid motion is
in ``[R | d]``.
"""

from __future__ import annotations

import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.tomography import bspline_at, bspline_field

__all__ = ["TiltDeformation", "rigid_free", "rigid_xf", "xf_to_rigid"]


def rigid_xf(rotation_deg: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """IMOD transforms ``(T, 2, 3)`` from rotations ``(T,)`` (degrees) and shifts ``(T, 2)``."""
    phi = torch.deg2rad(rotation_deg)
    c, s = torch.cos(phi), torch.sin(phi)
    a = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    return torch.cat([a, shift[..., None]], dim=-1)


def xf_to_rigid(xf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation ``(T,)`` in degrees and shift ``(T, 2)`` of IMOD transforms ``(T, 2, 3)``.

    The rotation is that of the matrix's rotational part (its polar factor's angle);
    a scale or skew in the matrix is dropped.
    """
    a = xf[:, :, :2]
    phi = torch.atan2(a[:, 1, 0] - a[:, 0, 1], a[:, 0, 0] + a[:, 1, 1])
    return torch.rad2deg(phi), xf[:, :, 2].clone()


def _axis_basis(n: int, g: int) -> torch.Tensor:
    """``(g, n)``: the 1-D B-spline weight of control ``k`` at pixel ``i`` of an axis of ``n``."""
    eye = torch.eye(g, dtype=torch.float64)
    # Controls constant along x and a delta along y: the field is the y basis at every x.
    return bspline_field(eye[:, :, None, None].expand(g, g, g, 1), (n, 1))[:, :, 0, 0]


def rigid_free(control: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Remove the mean and the rotational part from B-spline local fields, exactly.

    The field ``D`` of ``control`` (:func:`inversa.tomography.bspline_field` on
    ``shape``) is replaced by ``D - m - w J (r - c)``: ``m`` its mean over the image
    pixels, ``c`` their centroid, ``J (x, y) = (-y, x)`` and ``w`` the least-squares
    rotation ``sum(x' D_y - y' D_x) / sum(x'^2 + y'^2)`` (``(x', y') = r - c``). Both are
    subtracted in control space: a uniform cubic B-spline reproduces constant and linear
    fields, the linear one with controls at their Greville abscissae. The result has zero
    mean and zero rotational moment on the pixel grid.

    Parameters
    ----------
    control
        ``(T, G, G, 2)`` control vectors ``(x, y)`` in pixels.
    shape
        ``(H, W)`` of the images.

    Returns
    -------
    torch.Tensor
        ``(T, G, G, 2)``, linear (and differentiable) in ``control``.
    """
    g = control.shape[1]
    h, w = shape
    my = _axis_basis(h, g).to(control)  # (G, H)
    mx = _axis_basis(w, g).to(control)  # (G, W)
    yc = torch.arange(h, dtype=control.dtype, device=control.device)
    xc = torch.arange(w, dtype=control.dtype, device=control.device)
    yc, xc = yc - yc.mean(), xc - xc.mean()
    mean = torch.einsum("i,j,tijc->tc", my.mean(1), mx.mean(1), control)
    x_dy = torch.einsum("i,j,tij->t", my.sum(1), mx @ xc, control[..., 1])
    y_dx = torch.einsum("i,j,tij->t", my @ yc, mx.sum(1), control[..., 0])
    rotation = (x_dy - y_dx) / (w * yc.square().sum() + h * xc.square().sum())  # (T,)
    # Greville abscissae: control k sits at pixel (k - 1)(n - 1)/(G - 3), centred like r.
    k = torch.arange(g, dtype=control.dtype, device=control.device) - 1
    gy = k * (h - 1) / (g - 3) - (h - 1) / 2
    gx = k * (w - 1) / (g - 3) - (w - 1) / 2
    linear = torch.stack(
        [-gy[:, None].expand(g, g), gx[None, :].expand(g, g)], dim=-1
    )  # (G, G, 2) = J (r - c)
    return control - mean[:, None, None, :] - rotation[:, None, None, None] * linear


class TiltDeformation(nn.Module):
    """Learnable deformation of every tilt image: ``s = R r + d + D(r)``.

    Parameters
    ----------
    n_tilts
        Number of tilt images ``T``.
    image_shape
        ``(H, W)`` of the tilt images.
    grid
        Control points per image axis of the local field (>= 4), or 0 for none.
    xf
        Optional ``(T, 2, 3)`` starting IMOD transforms (rotation and shift are taken
        from them); ``None`` starts at the identity.

    Attributes
    ----------
    shift
        ``(T, 2)`` pixels, ``(x, y)``.
    rotation
        ``(T,)`` degrees, counter-clockwise in ``(x, y)``.
    control
        ``(T, G, G, 2)`` free local control vectors in pixels (``(T, 0, 0, 2)`` when
        ``grid`` is 0); the field used is that of :meth:`local_control`, their rigid-free
        part.
    """

    def __init__(
        self,
        n_tilts: int,
        image_shape: tuple[int, int],
        *,
        grid: int = 10,
        xf: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if grid != 0 and grid < 4:
            raise InputError(None, f"local grid needs 0 (off) or >= 4 control points, got {grid}")
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        rotation = torch.zeros(n_tilts, dtype=torch.float64)
        shift = torch.zeros(n_tilts, 2, dtype=torch.float64)
        if xf is not None:
            if tuple(xf.shape) != (n_tilts, 2, 3):
                raise InputError(None, f"xf must be ({n_tilts}, 2, 3), got {tuple(xf.shape)}")
            rotation, shift = xf_to_rigid(xf.to(torch.float64))
        self.shift = nn.Parameter(shift.float())
        self.rotation = nn.Parameter(rotation.float())
        self.control = nn.Parameter(torch.zeros(n_tilts, grid, grid, 2))

    def local_control(self) -> torch.Tensor:
        """``(T, G, G, 2)`` control vectors of the local fields (:func:`rigid_free` part)."""
        if self.grid == 0:
            return self.control
        return rigid_free(self.control, self.image_shape)

    @property
    def grid(self) -> int:
        """Control points per axis of the local field (0: none)."""
        return int(self.control.shape[1])

    def forward(
        self,
        points: torch.Tensor,
        tilts: torch.Tensor | None = None,
        *,
        rotate: bool = True,
        local: bool = True,
    ) -> torch.Tensor:
        """Map raw-image points to ideal detector positions.

        Parameters
        ----------
        points
            ``(T', N, 2)`` raw-image positions ``(x, y)`` about the image centre.
        tilts
            ``(T',)`` indices of the tilts the rows of ``points`` belong to; ``None``: all.
        rotate, local
            Whether the rotation and the local field take part (and get gradients); the
            coarse-to-fine schedule switches them on in turn.

        Returns
        -------
        torch.Tensor
            ``(T', N, 2)`` ideal detector positions ``(u, v)``.
        """
        idx = slice(None) if tilts is None else tilts
        shift = self.shift[idx].to(points.dtype)
        rotation = self.rotation[idx].to(points.dtype)
        if not rotate:
            rotation = rotation.detach()
        phi = torch.deg2rad(rotation)
        c, s = torch.cos(phi)[:, None], torch.sin(phi)[:, None]
        x, y = points[..., 0], points[..., 1]
        out = torch.stack([c * x - s * y, s * x + c * y], dim=-1) + shift[:, None, :]
        if self.grid > 0:
            control = self.local_control()[idx].to(points.dtype)
            if not local:
                control = control.detach()
            out = out + bspline_at(control, points, self.image_shape)
        return out

    def xf(self) -> torch.Tensor:
        """Return the rigid part as IMOD transforms ``(T, 2, 3)``, float64, detached."""
        return rigid_xf(self.rotation.detach().double(), self.shift.detach().double())

    def displacement(self) -> torch.Tensor:
        """Local fields on the pixel grid, ``(T, H, W, 2)`` float64 (zeros when off)."""
        h, w = self.image_shape
        t = self.shift.shape[0]
        if self.grid == 0:
            return torch.zeros(t, h, w, 2, dtype=torch.float64)
        return bspline_field(self.local_control().detach().double(), self.image_shape)

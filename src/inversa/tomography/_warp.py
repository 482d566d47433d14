"""Per-image affine warps (IMOD ``.xf`` transforms) by bilinear interpolation, and adjoints.

An ``xf`` tensor ``(T, 2, 3)`` holds for every image ``t`` a matrix ``A = xf[t, :, :2]``
and a shift ``d = xf[t, :, 2]`` (IMOD's ``A11 A12 A21 A22 DX DY``). Coordinates
``r = (x, y)`` are in pixels about the image centre: pixel ``(i, j)`` of an ``(H, W)``
image sits at ``x = j - W // 2``, ``y = i - H // 2``. ``xf`` maps raw-image coordinates to
aligned ones, ``r' = A r + d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inversa.core.errors import InputError
from inversa.core.operators import LinearOperator

__all__ = ["Warp2D", "align_images", "invert_xf", "warp_images", "warp_images_adjoint"]


def _check_xf(xf: torch.Tensor, n_images: int | None = None) -> None:
    if not isinstance(xf, torch.Tensor) or xf.ndim != 3 or tuple(xf.shape[1:]) != (2, 3):
        got = tuple(xf.shape) if isinstance(xf, torch.Tensor) else type(xf).__name__
        raise InputError(None, f"xf must be a (T, 2, 3) tensor, got {got}")
    if n_images is not None and xf.shape[0] != n_images:
        raise InputError(None, f"xf has {xf.shape[0]} transforms for {n_images} images")
    if not bool(torch.isfinite(xf).all()):
        raise InputError(None, "xf must be finite")


def _check_images(images: torch.Tensor, what: str) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim < 3:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InputError(None, f"{what} must be a (..., T, H, W) tensor, got {got}")
    if not images.is_floating_point():
        raise InputError(None, f"{what} must be floating point, got {images.dtype}")


def invert_xf(xf: torch.Tensor) -> torch.Tensor:
    """Inverse transforms: ``r = A^{-1} r' - A^{-1} d``.

    Parameters
    ----------
    xf
        ``(T, 2, 3)`` transforms ``r -> A r + d``.

    Returns
    -------
    torch.Tensor
        ``(T, 2, 3)`` transforms ``r' -> A^{-1} (r' - d)``.
    """
    _check_xf(xf)
    a_inv = torch.linalg.inv(xf[:, :, :2])
    return torch.cat([a_inv, -(a_inv @ xf[:, :, 2:])], dim=2)


def _taps(
    xf: torch.Tensor,
    shape: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
    displacement: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices and bilinear weights of the four neighbours of ``A r + d (+ D(r))``.

    Returns ``(index, weight)``, each ``(T, 4 * H * W)``; taps outside the image carry
    weight zero (their index is clamped into range).
    """
    h, w = shape
    xf64 = xf.to(device=device, dtype=torch.float64)
    y = torch.arange(h, device=device, dtype=torch.float64) - h // 2
    x = torch.arange(w, device=device, dtype=torch.float64) - w // 2
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    r = torch.stack([xx.reshape(-1), yy.reshape(-1)])  # (2, HW)
    s = xf64[:, :, :2] @ r + xf64[:, :, 2:]  # (T, 2, HW)
    if displacement is not None:
        s = s + displacement.to(device=device, dtype=torch.float64).reshape(-1, h * w, 2).mT
    fx = s[:, 0] + w // 2
    fy = s[:, 1] + h // 2
    x0 = torch.floor(fx)
    y0 = torch.floor(fy)
    wx = fx - x0
    wy = fy - y0
    x0 = x0.to(torch.int64)
    y0 = y0.to(torch.int64)
    index = []
    weight = []
    for dy, wgt_y in ((0, 1 - wy), (1, wy)):
        for dx, wgt_x in ((0, 1 - wx), (1, wx)):
            xi = x0 + dx
            yi = y0 + dy
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            index.append(yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1))
            weight.append(torch.where(inside, wgt_x * wgt_y, 0.0).to(dtype))
    return torch.cat(index, dim=1), torch.cat(weight, dim=1)


def _check_displacement(displacement: torch.Tensor | None, shape: tuple[int, ...]) -> None:
    if displacement is not None and tuple(displacement.shape) != (*shape, 2):
        raise InputError(
            None, f"displacement must have shape {(*shape, 2)}, got {tuple(displacement.shape)}"
        )


def _flat_taps(
    images: torch.Tensor, xf: torch.Tensor, displacement: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Check a warp's inputs; return ``(B, T, H*W)`` flat images and their taps."""
    _check_images(images, "images")
    _check_xf(xf, images.shape[-3])
    t, h, w = images.shape[-3:]
    _check_displacement(displacement, (t, h, w))
    index, weight = _taps(xf, (h, w), images.dtype, images.device, displacement)
    return images.reshape(-1, t, h * w), index, weight


def warp_images(
    images: torch.Tensor, xf: torch.Tensor, *, displacement: torch.Tensor | None = None
) -> torch.Tensor:
    """Sample each image at ``A r + d``: ``out(r) = image(A r + d)``, bilinear, zero outside.

    This is the raw-image model of a tilt series: ``raw = warp_images(ideal, xf)``.

    Parameters
    ----------
    images
        ``(..., T, H, W)`` floating-point tensor.
    xf
        ``(T, 2, 3)`` transforms (see the module docstring).
    displacement
        Optional ``(T, H, W, 2)`` local displacements ``D(r)`` in pixels, components
        ``(x, y)``, added to the sample position: ``out(r) = image(A r + d + D(r))``.

    Returns
    -------
    torch.Tensor
        ``(..., T, H, W)`` warped images; differentiable in ``images``.
    """
    flat, index, weight = _flat_taps(images, xf, displacement)
    vals = torch.gather(flat, 2, index.expand(flat.shape[0], -1, -1)) * weight
    out = vals.reshape(*flat.shape[:2], 4, flat.shape[2]).sum(dim=2)
    return out.reshape(images.shape)


def warp_images_adjoint(
    images: torch.Tensor, xf: torch.Tensor, *, displacement: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact adjoint of :func:`warp_images` (scatter of the bilinear weights).

    Parameters
    ----------
    images
        ``(..., T, H, W)`` floating-point tensor.
    xf
        ``(T, 2, 3)`` transforms.
    displacement
        Optional ``(T, H, W, 2)`` local displacements, as in :func:`warp_images`.

    Returns
    -------
    torch.Tensor
        ``(..., T, H, W)``; ``<warp_images(x), y> == <x, warp_images_adjoint(y)>``.
    """
    flat, index, weight = _flat_taps(images, xf, displacement)
    src = (flat.repeat(1, 1, 4) * weight).to(images.dtype)
    out = flat.new_zeros(flat.shape).scatter_add(2, index.expand(flat.shape[0], -1, -1), src)
    return out.reshape(images.shape)


def align_images(raw: torch.Tensor, xf: torch.Tensor) -> torch.Tensor:
    """Resample raw images into the aligned frame, as IMOD's ``newstack -xform`` does.

    ``aligned(r') = raw(A^{-1} (r' - d))``: it undoes :func:`warp_images` (up to the
    interpolation and the border) but is not its adjoint.

    Parameters
    ----------
    raw
        ``(..., T, H, W)`` raw images.
    xf
        ``(T, 2, 3)`` transforms from raw to aligned coordinates.

    Returns
    -------
    torch.Tensor
        ``(..., T, H, W)`` aligned images.
    """
    return warp_images(raw, invert_xf(xf))


@dataclass(frozen=True, eq=False, kw_only=True)
class Warp2D(LinearOperator):
    """Per-image affine warp ``(..., T, H, W) -> (..., T, H, W)``, ``out(r) = x(A r + d)``.

    Parameters
    ----------
    image_shape
        ``(H, W)``.
    xf
        ``(T, 2, 3)`` transforms.
    """

    image_shape: tuple[int, int]
    xf: torch.Tensor

    def __post_init__(self) -> None:
        _check_xf(self.xf)
        if len(self.image_shape) != 2 or min(self.image_shape) < 1:
            raise InputError(None, f"image_shape must be two positive sizes: {self.image_shape}")
        object.__setattr__(self, "image_shape", tuple(int(n) for n in self.image_shape))

    @property
    def domain_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(T, H, W)``."""
        return (self.xf.shape[0], *self.image_shape)

    @property
    def range_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(T, H, W)``."""
        return self.domain_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Warp: ``(..., T, H, W) -> (..., T, H, W)``."""
        return warp_images(x, self.xf)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Exact adjoint of :meth:`forward`."""
        return warp_images_adjoint(y, self.xf)

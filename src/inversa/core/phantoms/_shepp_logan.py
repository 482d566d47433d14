"""Shepp-Logan head phantoms in 2-D (ellipses) and 3-D (ellipsoids), evaluated exactly.

Each phantom is a sum of constant-intensity ellipses (ellipsoids); a pixel (voxel) takes
the sum of the intensities of every ellipse containing its centre. The tables are in the
textbook frame: coordinates in [-1, 1] with the y axis pointing *up*. The array is laid
out as the phantom is conventionally displayed (row 0 at the top, the three small
ellipses at the bottom), so for pixel ``(row, col)`` of an ``n``-sized image

    x = (col - n // 2) / (n / 2),        y = -(row - n // 2) / (n / 2)

and in 3-D, for voxel ``(k, row, col)``, additionally ``z = (k - n // 2) / (n / 2)``.
"""

from __future__ import annotations

import math

import torch

from inversa.core.errors import InputError

__all__ = ["shepp_logan_2d", "shepp_logan_3d"]

# Shepp & Logan (1974) ellipses: (x0, y0, a, b, phi in degrees), a along x before rotation.
_ELLIPSES_2D = (
    (0.0, 0.0, 0.69, 0.92, 0.0),
    (0.0, -0.0184, 0.6624, 0.874, 0.0),
    (0.22, 0.0, 0.11, 0.31, -18.0),
    (-0.22, 0.0, 0.16, 0.41, 18.0),
    (0.0, 0.35, 0.21, 0.25, 0.0),
    (0.0, 0.1, 0.046, 0.046, 0.0),
    (0.0, -0.1, 0.046, 0.046, 0.0),
    (-0.08, -0.605, 0.046, 0.023, 0.0),
    (0.0, -0.606, 0.023, 0.023, 0.0),
    (0.06, -0.605, 0.023, 0.046, 0.0),
)
_CLASSIC_2D = (2.0, -0.98, -0.02, -0.02, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01)
# Toft (1996) contrast-enhanced intensities (MATLAB's and scikit-image's default).
_MODIFIED_2D = (1.0, -0.8, -0.2, -0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1)

# Kak & Slaney (1988, p. 102, with the published errata) ellipsoids:
# (x0, y0, z0, a, b, c, phi in degrees about z).
_ELLIPSOIDS_3D = (
    (0.0, 0.0, 0.0, 0.69, 0.92, 0.9, 0.0),
    (0.0, 0.0, 0.0, 0.6624, 0.874, 0.88, 0.0),
    (-0.22, 0.0, -0.25, 0.41, 0.16, 0.21, 108.0),
    (0.22, 0.0, -0.25, 0.31, 0.11, 0.22, 72.0),
    (0.0, 0.35, -0.25, 0.21, 0.25, 0.5, 0.0),
    (0.0, 0.1, -0.25, 0.046, 0.046, 0.046, 0.0),
    (-0.08, -0.65, -0.25, 0.046, 0.023, 0.02, 0.0),
    (0.06, -0.65, -0.25, 0.046, 0.023, 0.02, 90.0),
    (0.06, -0.105, 0.625, 0.056, 0.04, 0.1, 90.0),
    (0.0, 0.1, 0.625, 0.056, 0.056, 0.1, 0.0),
)
_CLASSIC_3D = (2.0, -0.98, -0.02, -0.02, 0.02, 0.02, 0.01, 0.01, 0.02, -0.02)
# Yu, Ye & Wang (2004) contrast-enhanced intensities for the Kak-Slaney geometry.
_MODIFIED_3D = (1.0, -0.8, -0.2, -0.2, 0.2, 0.2, 0.1, 0.1, 0.2, -0.2)


def _axis(n: int, *, flip: bool, device: torch.device | str | None) -> torch.Tensor:
    coords = (torch.arange(n, dtype=torch.float64, device=device) - n // 2) / (n / 2)
    return -coords if flip else coords


def _check_size(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(None, f"phantom size must be a positive integer, got {n!r}")


def shepp_logan_2d(
    n: int,
    *,
    modified: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Return the 2-D Shepp-Logan phantom sampled at pixel centres.

    Parameters
    ----------
    n
        Image size in pixels.
    modified
        Use Toft's contrast-enhanced intensities (outer ellipse 1.0, brain 0.2);
        ``False`` gives the original Shepp-Logan intensities (2.0, 1.02, ...).
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        ``(n, n)`` image indexed ``[y, x]``; row 0 is the top of the head (see the module
        docstring for the coordinate mapping). Outside the head the value is 0.
    """
    _check_size(n)
    y = _axis(n, flip=True, device=device)[:, None]
    x = _axis(n, flip=False, device=device)[None, :]
    intensities = _MODIFIED_2D if modified else _CLASSIC_2D
    image = torch.zeros(n, n, dtype=torch.float64, device=device)
    for (x0, y0, a, b, phi), value in zip(_ELLIPSES_2D, intensities, strict=True):
        c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
        # Coordinates in the ellipse's own (rotated) frame.
        u = (x - x0) * c + (y - y0) * s
        v = -(x - x0) * s + (y - y0) * c
        image += value * ((u / a) ** 2 + (v / b) ** 2 <= 1.0).to(image.dtype)
    return image.to(dtype)


def shepp_logan_3d(
    n: int,
    *,
    modified: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Return the 3-D Shepp-Logan phantom of Kak & Slaney sampled at voxel centres.

    Parameters
    ----------
    n
        Volume size in voxels along each axis.
    modified
        Use the contrast-enhanced intensities of Yu, Ye & Wang (2004) (outer shell 1.0,
        brain 0.2, as Toft's 2-D ones); ``False`` gives the original Kak-Slaney
        intensities (2.0, 1.02, ...).
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        ``(n, n, n)`` volume indexed ``[z, y, x]``; each z-slice is laid out as the 2-D
        phantom (row 0 at the top of the head). Outside the head the value is 0.
    """
    _check_size(n)
    z = _axis(n, flip=False, device=device)[:, None, None]
    y = _axis(n, flip=True, device=device)[None, :, None]
    x = _axis(n, flip=False, device=device)[None, None, :]
    intensities = _MODIFIED_3D if modified else _CLASSIC_3D
    volume = torch.zeros(n, n, n, dtype=torch.float64, device=device)
    for (x0, y0, z0, a, b, c_axis, phi), value in zip(_ELLIPSOIDS_3D, intensities, strict=True):
        c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
        u = (x - x0) * c + (y - y0) * s
        v = -(x - x0) * s + (y - y0) * c
        inside = (u / a) ** 2 + (v / b) ** 2 + ((z - z0) / c_axis) ** 2 <= 1.0
        volume += value * inside.to(volume.dtype)
    return volume.to(dtype)

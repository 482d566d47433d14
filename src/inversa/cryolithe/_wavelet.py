"""One-level 3-D Haar wavelet (bior1.1), an exact orthonormal filter bank.

Haar is the member of the biorthogonal family whose filters have length 2, so one level
maps each ``2 x 2 x 2`` block of voxels to its own 8 coefficients and nothing else: the
network's 8 outputs for one block are a whole block of the volume, blocks never overlap,
and streaming inference needs no halo. (bior3.1, the paper's choice, has length-4
analysis filters whose blocks overlap, which would tie neighbouring points together.)
"""

from __future__ import annotations

import math

import torch

from inversa.core.errors import InputError

__all__ = ["haar3d_forward", "haar3d_inverse", "haar_matrix"]


def haar_matrix(
    *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Return the ``8 x 8`` orthonormal matrix from a block's voxels to its coefficients.

    Voxel index ``4 dz + 2 dy + dx``; coefficient index ``4 bz + 2 by + bx`` with ``b = 0``
    the low-pass (sum) and ``b = 1`` the high-pass (difference) band on that axis; the
    coefficient 0 is the approximation (``sum / sqrt 8``).
    """
    h = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64) / math.sqrt(2.0)
    m = torch.kron(torch.kron(h, h), h)
    return m.to(dtype=dtype, device=device)


def _blocks(volume: torch.Tensor) -> torch.Tensor:
    *lead, d, h, w = volume.shape
    if d % 2 or h % 2 or w % 2:
        raise InputError(None, f"a one-level wavelet needs even sizes, got {(d, h, w)}")
    v = volume.reshape(*lead, d // 2, 2, h // 2, 2, w // 2, 2)
    n = len(lead)
    # (..., D/2, H/2, W/2, dz, dy, dx) -> (..., 8, D/2, H/2, W/2)
    order = [*range(n), n + 1, n + 3, n + 5, n, n + 2, n + 4]
    return v.permute(order).reshape(*lead, 8, d // 2, h // 2, w // 2)


def haar3d_forward(volume: torch.Tensor) -> torch.Tensor:
    """Coefficients of a one-level 3-D Haar transform.

    Parameters
    ----------
    volume
        ``(..., D, H, W)`` with even sizes.

    Returns
    -------
    torch.Tensor
        ``(..., 8, D/2, H/2, W/2)``; see :func:`haar_matrix` for the band order.
    """
    blocks = _blocks(volume)
    m = haar_matrix(dtype=volume.dtype, device=volume.device)
    return torch.einsum("cv,...vdhw->...cdhw", m, blocks)


def haar3d_inverse(coefficients: torch.Tensor) -> torch.Tensor:
    """Invert :func:`haar3d_forward` exactly (the matrix is orthogonal).

    Parameters
    ----------
    coefficients
        ``(..., 8, d, h, w)``.

    Returns
    -------
    torch.Tensor
        ``(..., 2d, 2h, 2w)``.
    """
    *lead, eight, d, h, w = coefficients.shape
    if eight != 8:
        raise InputError(None, f"expected 8 coefficients per block, got {eight}")
    m = haar_matrix(dtype=coefficients.dtype, device=coefficients.device)
    v = torch.einsum("cv,...cdhw->...vdhw", m, coefficients)
    v = v.reshape(*lead, 2, 2, 2, d, h, w)
    n = len(lead)
    # (..., dz, dy, dx, D, H, W) -> (..., D, dz, H, dy, W, dx)
    order = [*range(n), n + 3, n, n + 4, n + 1, n + 5, n + 2]
    return v.permute(order).reshape(*lead, 2 * d, 2 * h, 2 * w)

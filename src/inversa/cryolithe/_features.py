"""Point features: a P x P patch around every point's projection in every tilt image."""

from __future__ import annotations

import torch

from inversa.core.errors import InputError
from inversa.core.fourier import apply_ramp_filter
from inversa.tomography import TiltGeometry, invert_xf

__all__ = ["extract_patches", "normalize_counts", "prepare_projections", "voxel_points"]


def normalize_counts(stack: torch.Tensor) -> torch.Tensor:
    """Raw counts to unitless contrast, per tilt ``(mean - x) / mean`` (density bright).

    The same rule as ``inversa reconstruct --preprocess normalize``, so a model trained on
    simulated counts sees what the command gives it.

    Parameters
    ----------
    stack
        ``(..., T, H, W)`` raw images.

    Returns
    -------
    torch.Tensor
        ``(..., T, H, W)``.
    """
    mean = stack.mean(dim=(-2, -1), keepdim=True)
    return (mean - stack) / mean.abs().clamp_min(torch.finfo(stack.dtype).tiny)


def prepare_projections(data: torch.Tensor, *, cutoff: float = 1.0) -> torch.Tensor:
    """Ramp-filter (cosine window, along x) and normalise line-integral tilt images.

    Each tilt is made zero-mean, filtered, and the stack is divided by its standard
    deviation, so dose, contrast and sample thickness do not change the input scale.

    Parameters
    ----------
    data
        ``(T, H, W)`` preprocessed images (e.g. :func:`normalize_counts`).
    cutoff
        Filter cutoff as a fraction of Nyquist.

    Returns
    -------
    torch.Tensor
        ``(T, H, W)`` float32, unit standard deviation.
    """
    if data.ndim != 3:
        raise InputError(None, f"a tilt series must be (T, H, W); got {tuple(data.shape)}")
    x = data.to(torch.float32)
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    x = apply_ramp_filter(x, dim=-1, name="cosine", cutoff=cutoff)
    return x / x.std().clamp_min(1e-12)


def voxel_points(
    shape: tuple[int, int, int],
    *,
    block: int = 1,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Coordinates ``(x, y, z)`` about the volume centre of every voxel (or block centre).

    Parameters
    ----------
    shape
        ``(D, H, W)``; with ``block = 2`` each axis must be even.
    block
        1: voxel centres; 2: centres of the ``2 x 2 x 2`` blocks (wavelet head).

    Returns
    -------
    torch.Tensor
        ``(D // block, H // block, W // block, 3)`` float32, voxel ``[k, j, i]`` at
        ``(i - W//2, j - H//2, k - D//2)`` as everywhere in inversa.
    """
    axes = [
        torch.arange(n // block, dtype=torch.float32, device=device) * block
        + (block - 1) / 2
        - n // 2
        for n in shape
    ]
    z, y, x = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def extract_patches(
    images: torch.Tensor,
    geometry: TiltGeometry,
    points: torch.Tensor,
    *,
    patch_size: int,
) -> torch.Tensor:
    """Sample a ``P x P`` patch around each point's projection in every tilt, bilinearly.

    The patch centre honours the ``.xf`` (``TiltGeometry.project_points``) and the patch
    axes are those of the aligned image (u along rows, v across), mapped into the raw
    image by the inverse ``.xf``; samples outside an image are 0.

    Parameters
    ----------
    images
        ``(T, H, W)`` prepared projections (:func:`prepare_projections`).
    geometry
        The tilt geometry of ``images``.
    points
        ``(N, 3)`` coordinates ``(x, y, z)`` in voxels about the volume centre.
    patch_size
        ``P`` (odd).

    Returns
    -------
    torch.Tensor
        ``(N, T, P, P)``: ``[n, t, r, c]`` is at aligned offset ``(c - P//2, r - P//2)``.
    """
    n_tilts, height, width = images.shape
    if geometry.n_tilts != n_tilts:
        raise InputError(None, f"{geometry.n_tilts} tilt angles for a stack of {n_tilts} images")
    half = patch_size // 2
    dtype = images.dtype
    geo = geometry.to(device=images.device, dtype=dtype)
    centre = geo.project_points(points.to(device=images.device, dtype=dtype))  # (T, N, 2)
    off = torch.arange(-half, half + 1, device=images.device, dtype=dtype)
    dv, du = torch.meshgrid(off, off, indexing="ij")
    offsets = torch.stack([du, dv], dim=-1).reshape(-1, 2)  # (P*P, 2) aligned (u, v)
    if geo.xf is not None:
        lin = invert_xf(geo.xf)[:, :, :2]  # aligned -> raw, linear part
        offsets = torch.einsum("tij,kj->tki", lin, offsets)  # (T, P*P, 2)
    else:
        offsets = offsets.expand(n_tilts, -1, -1)
    where = centre[:, :, None, :] + offsets[:, None, :, :]  # (T, N, P*P, 2)
    # align_corners=True: normalised -1 and 1 are the centres of the first and last pixel.
    scale = torch.tensor(
        [2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], device=images.device, dtype=dtype
    )
    shift = torch.tensor([width // 2, height // 2], device=images.device, dtype=dtype)
    grid = (where + shift) * scale - 1.0
    n = points.shape[0]
    out = torch.nn.functional.grid_sample(
        images[:, None],
        grid.reshape(n_tilts, 1, -1, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )  # (T, 1, 1, N*P*P)
    return out.reshape(n_tilts, n, patch_size, patch_size).transpose(0, 1)

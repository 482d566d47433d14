"""Cut subtomogram boxes out of a tomogram around particle positions."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inversa.core.errors import InputError

__all__ = ["Extraction", "extract_subtomograms"]


@dataclass(frozen=True)
class Extraction:
    """Boxes cut from one tomogram.

    Attributes
    ----------
    volumes
        ``(N, B, B, B)`` subtomograms; box voxel ``B // 2`` is tomogram voxel ``centres``.
    centres
        ``(N, 3)`` int64 (x, y, z) tomogram voxel at each box centre (the rounded position).
    residuals
        ``(N, 3)`` float64 ``position - centre`` in voxels (within +-0.5): how far the
        particle sits from its box centre, to be kept as ``rlnOrigin = -residual * pixel``.
    inside
        ``(N,)`` bool: the position lies within the tomogram. Boxes of particles outside
        are all zero.
    clipped
        ``(N,)`` bool: part of the box lies outside the tomogram; those voxels hold the
        mean of the voxels inside.
    """

    volumes: torch.Tensor
    centres: torch.Tensor
    residuals: torch.Tensor
    inside: torch.Tensor
    clipped: torch.Tensor


def extract_subtomograms(
    tomogram: torch.Tensor, positions: torch.Tensor, *, box: int
) -> Extraction:
    """Cut ``box^3`` subtomograms centred on the voxels nearest to each position.

    Integer cuts (no interpolation): the sub-voxel remainder is returned as
    ``residuals`` so that it can go into ``rlnOrigin`` instead of blurring the data.

    Parameters
    ----------
    tomogram
        ``(D, H, W)`` volume (a memory-mapped one is read box by box).
    positions
        ``(N, 3)`` (x, y, z) voxel indices, sub-voxel allowed.
    box
        Edge of the cubic box in voxels (>= 2).

    Returns
    -------
    Extraction

    Raises
    ------
    InputError
        ``box`` is too small or ``positions`` is not ``(N, 3)`` and finite.
    """
    if box < 2:
        raise InputError(None, f"box must be at least 2 voxels, got {box}")
    if tomogram.ndim != 3:
        raise InputError(None, f"tomogram must be (D, H, W), got {tuple(tomogram.shape)}")
    pos = positions.to(torch.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or not torch.isfinite(pos).all():
        raise InputError(None, "positions must be a finite (N, 3) tensor of (x, y, z) voxels")
    n = pos.shape[0]
    size = torch.tensor(tomogram.shape[::-1], dtype=torch.float64)  # (W, H, D)
    centres = torch.floor(pos + 0.5).to(torch.int64)
    residuals = pos - centres.to(torch.float64)
    inside = ((pos >= -0.5) & (pos <= size - 0.5)).all(dim=1)
    volumes = torch.zeros(n, box, box, box, dtype=torch.float32)
    clipped = torch.zeros(n, dtype=torch.bool)
    half = box // 2
    limits = tomogram.shape[::-1]
    for i in range(n):
        if not bool(inside[i]):
            continue
        src, dst = [], []
        for axis in range(3):  # x, y, z
            lo = int(centres[i, axis]) - half
            a, b = max(lo, 0), min(lo + box, limits[axis])
            src.append(slice(a, b))
            dst.append(slice(a - lo, b - lo))
        cut = tomogram[src[2], src[1], src[0]].to(torch.float32)
        if cut.shape != (box, box, box):
            clipped[i] = True
            volumes[i] = cut.mean()
        volumes[i, dst[2], dst[1], dst[0]] = cut
    return Extraction(
        volumes=volumes, centres=centres, residuals=residuals, inside=inside, clipped=clipped
    )

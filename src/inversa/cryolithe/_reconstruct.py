"""Streaming inference: the volume point by point, in chunks, with flat memory."""

from __future__ import annotations

from pathlib import Path

import torch

from inversa.core.errors import InputError
from inversa.cryolithe._features import (
    _is_shift_only,
    align_images,
    extract_patches,
    prepare_projections,
)
from inversa.cryolithe._model import SliceSet
from inversa.cryolithe._wavelet import haar_matrix
from inversa.tomography import TiltGeometry

__all__ = ["default_model_path", "reconstruct"]


def default_model_path(head: str = "wavelet") -> Path:
    """Return the path of the shipped model of ``head`` (``"pixel"`` or ``"wavelet"``)."""
    if head not in ("pixel", "wavelet"):
        raise InputError(None, f"head must be 'pixel' or 'wavelet', got {head!r}")
    return Path(__file__).parent / "data" / f"cryolithe_{head}.safetensors"


def _chunk_points(start: int, stop: int, grid: tuple[int, int, int], block: int, device):
    # Coordinates are made per chunk from flat indices, so no (N, 3) array of the whole
    # volume ever exists (256^3 points would be 200 MB by themselves).
    idx = torch.arange(start, stop, device=device)
    d, h, w = grid
    k, rem = idx // (h * w), idx % (h * w)
    j, i = rem // w, rem % w
    full = (d * block, h * block, w * block)
    off = (block - 1) / 2
    pts = torch.stack(
        [
            i * block + off - full[2] // 2,
            j * block + off - full[1] // 2,
            k * block + off - full[0] // 2,
        ],
        dim=-1,
    )
    return pts.to(torch.float32)


@torch.no_grad()
def reconstruct(
    data: torch.Tensor,
    geometry: TiltGeometry,
    *,
    model: SliceSet,
    shape: tuple[int, int, int],
    chunk: int = 2048,
    device: str | torch.device = "cpu",
    progress: bool = False,
    exact_xf: bool = False,
) -> torch.Tensor:
    """Reconstruct a tomogram with a trained SliceSet network, ``chunk`` points at a time.

    Parameters
    ----------
    data
        ``(T, H, W)`` line-integral tilt images (e.g. ``normalize_counts(raw)``).
    geometry
        Angles in degrees and, when set, the ``.xf`` of the raw images.
    model
        A trained :class:`SliceSet` (pixel or wavelet head).
    shape
        ``(D, H, W)`` of the tomogram; ``H`` and ``W`` must be the image size.
    chunk
        Points evaluated at once (the wavelet head does 8 voxels per point); memory is
        the output volume plus a per-chunk working set independent of the volume size.
    device
        Where the network runs.
    progress
        Show a progress bar.
    exact_xf
        With an ``.xf`` that rotates: sample every patch along the aligned axes in the
        raw images (one interpolation, about 4x slower) instead of resampling the images
        into the aligned frame first (:func:`align_images`; two interpolations).

    Returns
    -------
    torch.Tensor
        ``(D, H, W)`` float32 on the CPU, in the units of the normalised training target.
    """
    if data.ndim != 3:
        raise InputError(None, f"a tilt series must be (T, H, W); got {tuple(data.shape)}")
    n_tilts, height, width = data.shape
    if geometry.n_tilts != n_tilts:
        raise InputError(None, f"{geometry.n_tilts} tilt angles for a stack of {n_tilts} images")
    if len(shape) != 3 or min(shape) < 1 or tuple(shape[1:]) != (height, width):
        raise InputError(
            None, f"volume shape {tuple(shape)} does not fit images of {(height, width)}"
        )
    device = torch.device(device)
    model = model.to(device).eval()
    images = prepare_projections(data.to(device))
    geo = geometry.to(device=device, dtype=torch.float32).replace(detector_shape=None)
    if geo.xf is not None and not exact_xf and not _is_shift_only(geo.xf):
        # In-plane rotations would turn every patch: resample the images into the aligned
        # frame once, so patches are axis-aligned (the fast sampling path).
        images, geo = align_images(images, geo), geo.replace(xf=None)
    angles = geo.angles
    block = model.config.block
    # Odd sizes are padded by one voxel at the start: padded index - (n + 1) // 2 is the
    # original index - n // 2, so the block centres need no shift.
    pad = tuple((block - n % block) % block for n in shape)
    full = tuple(n + p for n, p in zip(shape, pad, strict=True))
    grid = tuple(n // block for n in full)
    total = grid[0] * grid[1] * grid[2]
    # Each chunk is written straight into the output volume (the wavelet head's 8
    # coefficients become their 2x2x2 block at once), so besides the volume only one
    # chunk's working set is ever held.
    volume = torch.empty(full, dtype=torch.float32)
    flat = volume.view(-1)
    if block == 2:
        synth = haar_matrix(dtype=torch.float32, device=device)  # voxel = coefficients @ synth
        dz, dy, dx = torch.meshgrid(*[torch.arange(2)] * 3, indexing="ij")  # haar's order
        corner = (dz * full[1] * full[2] + dy * full[2] + dx).reshape(1, 8)
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("cryolithe", total=total)
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            pts = _chunk_points(start, stop, grid, block, device)
            patches = extract_patches(images, geo, pts, patch_size=model.config.patch_size)
            values = model(patches, angles)  # (n, n_out)
            if block == 1:
                flat[start:stop] = values[:, 0].to("cpu", torch.float32)
            else:
                idx = torch.arange(start, stop)
                k, rem = idx // (grid[1] * grid[2]), idx % (grid[1] * grid[2])
                j, i = rem // grid[2], rem % grid[2]
                base = 2 * (k * full[1] * full[2] + j * full[2] + i)
                flat[base[:, None] + corner] = (values @ synth).to("cpu", torch.float32)
            bar.update(task, completed=stop)
    if not any(pad):
        return volume
    return volume[pad[0] :, pad[1] :, pad[2] :].contiguous()

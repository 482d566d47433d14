"""Streaming inference: the volume point by point, in chunks, with flat memory."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from inversa.core.errors import InputError
from inversa.cryolithe._features import (
    _band_rows,
    _is_shift_only,
    _pad_images,
    _projection_stats,
    _window_patches,
    align_images,
    extract_patches,
    prepare_projections,
)
from inversa.cryolithe._model import GROUP_BYTES, SliceSet, pooled_set_sum
from inversa.cryolithe._wavelet import haar_matrix
from inversa.tomography import TiltGeometry

__all__ = ["default_model_path", "reconstruct"]


def default_model_path(head: str = "wavelet") -> Path:
    """Return the path of the shipped model of ``head`` (``"pixel"`` or ``"wavelet"``)."""
    if head not in ("pixel", "wavelet"):
        raise InputError(None, f"head must be 'pixel' or 'wavelet', got {head!r}")
    return Path(__file__).parent / "data" / f"cryolithe_{head}.safetensors"


def _tile_points(
    k: tuple[int, int], j: tuple[int, int], grid: tuple[int, int, int], block: int, device
) -> torch.Tensor:
    """``(N, 3)`` block centres ``(x, y, z)`` of grid slabs ``k`` x rows ``j`` x every column.

    Made per tile, so no ``(N, 3)`` array of the whole volume ever exists (256^3 points
    would be 200 MB by themselves); ordered ``[k, j, i]``.
    """
    full = tuple(n * block for n in grid)
    off = (block - 1) / 2
    kk, jj, ii = torch.meshgrid(
        torch.arange(*k, device=device),
        torch.arange(*j, device=device),
        torch.arange(grid[2], device=device),
        indexing="ij",
    )
    pts = torch.stack(
        [
            ii * block + off - full[2] // 2,
            jj * block + off - full[1] // 2,
            kk * block + off - full[0] // 2,
        ],
        dim=-1,
    )
    return pts.reshape(-1, 3).to(torch.float32)


# Bytes of patches (and their sampling temporaries) that one tilt group of a chunk may make;
# the set layer's product has its own budget (GROUP_BYTES in _model).
_SAMPLE_BYTES = 32 * 2**20
# Default points per chunk: cache-sized on a CPU (one chunk per worker thread); on a GPU
# large enough to fill it (H200, 41 tilts, 256^3 wavelet head: 4.07 s with 2,048, 1.13 s
# with 65,536 at about 400 MiB of device memory; docs/cryolithe.md "On a GPU").
_CHUNK_CPU, _CHUNK_GPU = 2048, 65536


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    # One pool per size for the process: new threads per call would each start a fresh
    # malloc arena, which shows as a different resident size on every call.
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="cryolithe")
        return _POOLS[workers]


@contextlib.contextmanager
def _one_thread_per_worker(workers: int) -> Iterator[None]:
    if workers <= 1:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def reconstruct(
    data: torch.Tensor,
    geometry: TiltGeometry,
    *,
    model: SliceSet,
    shape: tuple[int, int, int],
    chunk: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    exact_xf: bool = False,
    out: Any = None,
    workers: int | None = None,
    images_dtype: torch.dtype = torch.float16,
) -> Any:
    """Reconstruct a tomogram with a trained SliceSet network, ``chunk`` points at a time.

    The volume goes in tiles of whole x rows, band of y rows after band of y rows: the
    tilt axis is y, so the points of a band project onto a band of image rows (per tilt,
    displaced by its ``.xf`` shift), and only those rows of the ramp-filtered images are
    made and held (filtered for the band; the filter runs along x). Every tile is
    written to ``out`` as soon as it is done. Besides ``out``, the input and the tilts'
    means, only one band of image rows per worker, the tiles being evaluated and their
    voxels are held: with a memory map or :func:`inversa.core.io.stream_mrc` as ``out``,
    memory grows neither with the volume nor with the image height. With an ``.xf``
    that rotates, rows mix: the whole aligned stack is held (``images_dtype``).

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
        Points evaluated at once (the wavelet head does 8 voxels per point); a tile is
        ``chunk // row`` rows of points (a row: ``W / block`` points; a row wider than
        ``chunk`` is evaluated in pieces), or whole slabs when a band is the full
        height. Within a chunk, patch sampling and the set layer go tilt by tilt on a
        CPU (and in tilt groups of a fixed memory budget on a GPU), so the working set is
        bounded whatever the number of tilts. ``None``: 2,048 on a CPU, 65,536 on a GPU
        (3.6x faster there than 2,048, measured). The result does not depend on it.
    device
        Where the network runs.
    progress
        Show a progress bar.
    exact_xf
        With an ``.xf`` that rotates: sample every patch along the aligned axes in the
        raw images (one interpolation, about 4x slower) instead of resampling the images
        into the aligned frame first (:func:`align_images`; two interpolations).
    out
        Where to write the ``(D, H, W)`` tomogram: a float32 tensor, a numpy array or
        memory map, or anything that takes ``out[z0:z1, y0:y1] = box`` (e.g. the writer
        of :func:`inversa.core.io.stream_mrc`). ``None``: a new CPU tensor.
    workers
        Chunks evaluated at once, each on one thread (``None``: ``torch.get_num_threads()``
        on the CPU, 1 on a GPU). Torch runs single-threaded operations meanwhile (its
        thread count is restored afterwards): many small multi-threaded operations per
        chunk stall whenever one of their threads is descheduled on a busy machine,
        whole chunks per thread do not. The result does not depend on it.
    images_dtype
        How the padded, ramp-filtered image rows are stored: ``torch.float16``
        (default) halves them (the whole aligned stack with a rotating ``.xf``: 41
        tilts of 256^2, 6 MiB instead of 12 MiB); every window of samples is upcast to
        float32 before interpolation, so only the stored samples are rounded (relative
        ``2**-11``; the tomogram is equal to the float32 one within about 1e-3 of its
        standard deviation, tested). ``torch.float32``: the training path's values (to
        float32 rounding: the rows are filtered in float64, so a stored value does not
        depend on the band or the thread count).

    Returns
    -------
    torch.Tensor or the given ``out``
        ``(D, H, W)`` float32, in the units of the normalised training target.
    """
    if data.ndim != 3:
        raise InputError(None, f"a tilt series must be (T, H, W); got {tuple(data.shape)}")
    n_tilts, height, width = data.shape
    if geometry.n_tilts != n_tilts:
        raise InputError(None, f"{geometry.n_tilts} tilt angles for a stack of {n_tilts} images")
    if images_dtype not in (torch.float16, torch.float32):
        raise InputError(None, f"images_dtype must be torch.float16 or float32, not {images_dtype}")
    if len(shape) != 3 or min(shape) < 1 or tuple(shape[1:]) != (height, width):
        raise InputError(
            None, f"volume shape {tuple(shape)} does not fit images of {(height, width)}"
        )
    shape = tuple(int(n) for n in shape)
    if out is None:
        out = torch.empty(shape, dtype=torch.float32)
    elif tuple(getattr(out, "shape", ())) != shape:
        raise InputError(None, f"out has shape {tuple(getattr(out, 'shape', ()))}, not {shape}")
    device = torch.device(device)
    cpu = device.type == "cpu"
    if chunk is None:
        chunk = _CHUNK_CPU if cpu else _CHUNK_GPU
    if chunk < 1:
        raise InputError(None, f"chunk must be >= 1, got {chunk}")
    model = model.to(device).eval()
    patch_size = model.config.patch_size
    geo = geometry.to(device=device, dtype=torch.float32).replace(detector_shape=None)
    block = model.config.block
    # Odd sizes are padded by one voxel at the start: padded index - (n + 1) // 2 is the
    # original index - n // 2, so the block centres need no shift.
    pad = tuple((block - n % block) % block for n in shape)
    full = tuple(n + p for n, p in zip(shape, pad, strict=True))
    grid = tuple(n // block for n in full)
    # The volume goes in tiles of `rows` grid rows (y) x `depth` slabs (z) x every column,
    # band of rows after band: a band's points project (tilt about y) onto a band of
    # image rows, so only that band of the prepared images is needed at a time.
    rows = min(grid[1], max(1, chunk // grid[2]))
    depth = max(1, min(grid[0], chunk // (rows * grid[2])))
    p1 = patch_size + 1
    data = data.to(device)
    banded = geo.xf is None or _is_shift_only(geo.xf)
    padded = images = None
    if banded:
        # Image rows are ramp-filtered band by band (the filter runs along x); the mean
        # and scale of the whole stack come first, tilt by tilt.
        means, scale = _projection_stats(data)
    elif not exact_xf:
        # In-plane rotations would turn every patch: resample the images into the aligned
        # frame once, so patches are axis-aligned (the fast sampling path). Rotations mix
        # rows, so this path holds the whole aligned stack.
        aligned = align_images(prepare_projections(data), geo)
        padded = _pad_images(aligned.to(images_dtype), patch_size)
        del aligned
        geo = geo.replace(xf=None)
    else:
        images = prepare_projections(data)
    weights = bias = None
    if (banded or padded is not None) and hasattr(model, "fold_set_layer"):
        weights, bias = model.fold_set_layer(geo.angles)

    def band(j0: int, j1: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Return the padded image rows that grid rows ``j0:j1`` read, and each first row."""
        if not banded:
            return padded, None
        y = torch.tensor([j0, j1 - 1], dtype=torch.float32) * block + (block - 1) / 2
        ends = torch.zeros(2, 3, device=device)
        ends[:, 1] = (y - full[1] // 2).to(device)
        v = geo.project_points(ends)[..., 1]  # (T, 2); v does not depend on x or z
        top = (v + height // 2 - patch_size // 2).floor().long() + p1  # first window row
        # one row of margin each side: float rounding may floor a point's row either way
        first, last = top.amin(dim=1) - 1, top.amax(dim=1) + p1 + 1  # per tilt
        n_rows = int((last - first).max())
        return _band_rows(data, means, scale, first, n_rows, p1, dtype=images_dtype), first

    def evaluate(pts: torch.Tensor, src: torch.Tensor | None, start) -> torch.Tensor:
        if src is None:  # exact .xf: grid_sample along the rotated patch axes
            return model(extract_patches(images, geo, pts, patch_size=patch_size), geo.angles)
        n = pts.shape[0]
        centre = geo.project_points(pts)  # (T, N, 2)
        if weights is None:  # a network without the folded set layer: all tilts at once
            patches = _window_patches(src, centre, patch_size, height=height, start=start)
            return model(patches.transpose(0, 1), geo.angles)
        acc = torch.zeros(n, patch_size, weights.shape[-1], device=device)
        # Sampling fused with the set layer: on a CPU one tilt at a time (a small,
        # cache-friendly working set; each worker thread runs its own tile), on a GPU
        # as many tilts at once as fit in the budgets (few large operations).
        per_tilt = n * (patch_size + 1) ** 2 * 4 * 3  # the window and the two lerps
        group = 1 if cpu else max(1, min(n_tilts, _SAMPLE_BYTES // per_tilt))
        for g0 in range(0, n_tilts, group):
            g1 = min(n_tilts, g0 + group)
            sub = None if start is None else start[g0:g1]
            patches = _window_patches(
                src[g0:g1], centre[g0:g1], patch_size, height=height, start=sub
            )
            pooled_set_sum(
                patches, weights[g0:g1], bias[g0:g1], out=acc, group_bytes=0 if cpu else GROUP_BYTES
            )
        return model.from_pooled(acc / n_tilts)

    if block == 2:
        synth = haar_matrix(dtype=torch.float32, device=device)  # voxel = coefficients @ synth

    def run_tile(k: tuple[int, int], j: tuple[int, int], src, start) -> torch.Tensor:
        """Return a tile's voxels, ``(block * nk, block * nj, block * grid_w)`` on the CPU."""
        with torch.no_grad():  # grad mode is per thread
            pts = _tile_points(k, j, grid, block, device)
            # a row wider than `chunk` points is evaluated in pieces of `chunk`
            values = torch.cat([evaluate(p, src, start) for p in pts.split(chunk)])
        nk, nj = k[1] - k[0], j[1] - j[0]
        if block == 1:
            return values.reshape(nk, nj, grid[2]).to("cpu", torch.float32)
        # the 8 coefficients of a block -> its voxels [dz, dy, dx] (haar's order)
        vox = (values @ synth).reshape(nk, nj, grid[2], 2, 2, 2).permute(0, 3, 1, 4, 2, 5)
        return vox.reshape(2 * nk, 2 * nj, 2 * grid[2]).to("cpu", torch.float32)

    def write(k: tuple[int, int], j: tuple[int, int], voxels: torch.Tensor) -> None:
        z0, y0 = k[0] * block - pad[0], j[0] * block - pad[1]
        part = voxels[max(0, -z0) :, max(0, -y0) :, pad[2] :]
        z0, y0 = max(z0, 0), max(y0, 0)
        part = part if isinstance(out, torch.Tensor) else part.numpy()
        out[z0 : z0 + part.shape[0], y0 : y0 + part.shape[1]] = part

    tiles = (  # a generator: a list of every tile would grow with the volume
        ((k0, min(k0 + depth, grid[0])), (j0, min(j0 + rows, grid[1])))
        for j0 in range(0, grid[1], rows)
        for k0 in range(0, grid[0], depth)
    )
    if workers is None:
        workers = torch.get_num_threads() if cpu else 1
    workers = max(1, int(workers))
    from rich.progress import Progress

    with (
        Progress(disable=not progress, transient=True) as bar,
        _one_thread_per_worker(workers),
    ):
        pool = _pool(workers)
        task = bar.add_task("cryolithe", total=grid[0] * grid[1] * grid[2])
        pending: deque = deque()
        current: tuple = (None, None, None)  # (rows, band images, first rows)
        while True:
            # Tiles run `workers` at a time; a band's images are made when its first
            # tile is queued and dropped with its last; results are written in order.
            while len(pending) <= workers and (tile := next(tiles, None)) is not None:
                k, j = tile
                if current[0] != j:
                    current = (j, *band(*j))
                pending.append((k, j, pool.submit(run_tile, k, j, current[1], current[2])))
            if not pending:
                break
            k, j, job = pending.popleft()
            write(k, j, job.result())
            bar.update(task, advance=(k[1] - k[0]) * (j[1] - j[0]) * grid[2])
    return out

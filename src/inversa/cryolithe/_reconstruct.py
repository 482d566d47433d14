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
    _is_shift_only,
    _pad_images,
    _padded_projections,
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

    The volume is filled along z: every finished slab of ``block`` slices (1 for the
    pixel head, 2 for the wavelet head) is written to ``out`` at once, so besides
    ``out`` only one chunk's working set, the prepared images and two slabs are held.
    With a memory map or :func:`inversa.core.io.stream_mrc` as ``out``, memory does not
    grow with the volume.

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
        Points evaluated at once (the wavelet head does 8 voxels per point). Within a
        chunk, patch sampling and the set layer go tilt by tilt on a CPU (and in tilt
        groups of a fixed memory budget on a GPU), so the working set is bounded
        whatever the number of tilts. ``None``: 2,048 on a CPU, 65,536 on a GPU (3.6x
        faster there than 2,048, measured). The result does not depend on it.
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
        memory map, or anything that takes ``out[z0:z1] = slab`` (e.g. the writer of
        :func:`inversa.core.io.stream_mrc`). ``None``: a new CPU tensor.
    workers
        Chunks evaluated at once, each on one thread (``None``: ``torch.get_num_threads()``
        on the CPU, 1 on a GPU). Torch runs single-threaded operations meanwhile (its
        thread count is restored afterwards): many small multi-threaded operations per
        chunk stall whenever one of their threads is descheduled on a busy machine,
        whole chunks per thread do not. The result does not depend on it.
    images_dtype
        How the padded, ramp-filtered images that the whole run reads from are stored:
        ``torch.float16`` (default) halves the one array that grows with the image size
        (41 tilts of 256^2: 6 MiB instead of 12 MiB); every window of samples is upcast
        to float32 before interpolation, so only the stored samples are rounded (relative
        ``2**-11``; the tomogram is equal to the float32 one within about 1e-3 of its
        standard deviation, tested). ``torch.float32``: the training path's values.

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
    padded = images = None
    if geo.xf is None or _is_shift_only(geo.xf):
        # One zero-padded copy of the prepared images for the whole run (the fast,
        # axis-aligned sampling path).
        padded = _padded_projections(data.to(device), patch_size + 1, dtype=images_dtype)
    elif not exact_xf:
        # In-plane rotations would turn every patch: resample the images into the aligned
        # frame once, so patches are axis-aligned (the fast sampling path).
        aligned = align_images(prepare_projections(data.to(device)), geo)
        padded = _pad_images(aligned.to(images_dtype), patch_size)
        del aligned
        geo = geo.replace(xf=None)
    else:
        images = prepare_projections(data.to(device))
    weights = bias = None
    if padded is not None and hasattr(model, "fold_set_layer"):
        weights, bias = model.fold_set_layer(geo.angles)

    def evaluate(pts: torch.Tensor) -> torch.Tensor:
        if padded is None:  # exact .xf: grid_sample along the rotated patch axes
            return model(extract_patches(images, geo, pts, patch_size=patch_size), geo.angles)
        n = pts.shape[0]
        centre = geo.project_points(pts)  # (T, N, 2)
        if weights is None:  # a network without the folded set layer: all tilts at once
            return model(_window_patches(padded, centre, patch_size).transpose(0, 1), geo.angles)
        acc = torch.zeros(n, patch_size, weights.shape[-1], device=device)
        # Sampling fused with the set layer: on a CPU one tilt at a time (a small,
        # cache-friendly working set; each worker thread runs its own chunk), on a GPU
        # as many tilts at once as fit in the budgets (few large operations).
        per_tilt = n * (patch_size + 1) ** 2 * 4 * 3  # the window and the two lerps
        group = 1 if cpu else max(1, min(n_tilts, _SAMPLE_BYTES // per_tilt))
        for g0 in range(0, n_tilts, group):
            g1 = min(n_tilts, g0 + group)
            patches = _window_patches(padded[g0:g1], centre[g0:g1], patch_size)
            pooled_set_sum(
                patches, weights[g0:g1], bias[g0:g1], out=acc, group_bytes=0 if cpu else GROUP_BYTES
            )
        return model.from_pooled(acc / n_tilts)

    block = model.config.block
    # Odd sizes are padded by one voxel at the start: padded index - (n + 1) // 2 is the
    # original index - n // 2, so the block centres need no shift.
    pad = tuple((block - n % block) % block for n in shape)
    full = tuple(n + p for n, p in zip(shape, pad, strict=True))
    grid = tuple(n // block for n in full)
    layer = grid[1] * grid[2]  # points per slab of `block` slices
    total = grid[0] * layer
    # Chunks are written into a buffer of the slabs they touch; finished slabs go to
    # `out` at once and the unfinished one moves to the front.
    n_buf = chunk // layer + 2
    buf = torch.empty((n_buf * block, full[1], full[2]), dtype=torch.float32)
    flat = buf.view(-1)
    if block == 2:
        synth = haar_matrix(dtype=torch.float32, device=device)  # voxel = coefficients @ synth
        dz, dy, dx = torch.meshgrid(*[torch.arange(2)] * 3, indexing="ij")  # haar's order
        corner = (dz * full[1] * full[2] + dy * full[2] + dx).reshape(1, 8)
    to_out = (lambda x: x) if isinstance(out, torch.Tensor) else (lambda x: x.numpy())
    base = 0  # first slab held in the buffer

    def run_chunk(start: int, stop: int) -> torch.Tensor:
        with torch.no_grad():  # grad mode is per thread
            return evaluate(_chunk_points(start, stop, grid, block, device))  # (n, n_out)

    if workers is None:
        workers = torch.get_num_threads() if cpu else 1
    workers = max(1, int(workers))
    from rich.progress import Progress

    with (
        Progress(disable=not progress, transient=True) as bar,
        _one_thread_per_worker(workers),
    ):
        pool = _pool(workers)
        task = bar.add_task("cryolithe", total=total)
        pending: deque = deque()
        starts = iter(range(0, total, chunk))
        while True:
            # Chunks run `workers` at a time; results are written in order.
            while len(pending) <= workers and (start := next(starts, None)) is not None:
                stop = min(start + chunk, total)
                pending.append((start, stop, pool.submit(run_chunk, start, stop)))
            if not pending:
                break
            start, stop, job = pending.popleft()
            values = job.result()
            lo, hi = start - base * layer, stop - base * layer
            if block == 1:
                flat[lo:hi] = values[:, 0].to("cpu", torch.float32)
            else:
                idx = torch.arange(lo, hi)
                k, rem = idx // layer, idx % layer
                j, i = rem // grid[2], rem % grid[2]
                first = 2 * (k * full[1] * full[2] + j * full[2] + i)
                flat[first[:, None] + corner] = (values @ synth).to("cpu", torch.float32)
            done = stop // layer  # slabs finished
            if done > base:
                z0, z1 = base * block - pad[0], done * block - pad[0]
                slab = buf[(done - base) * block - (z1 - max(z0, 0)) : (done - base) * block]
                out[max(z0, 0) : z1] = to_out(slab[:, pad[1] :, pad[2] :])
                if stop % layer:  # the unfinished slab to the front
                    buf[:block] = buf[(done - base) * block : (done - base + 1) * block].clone()
                base = done
            bar.update(task, completed=stop)
    return out

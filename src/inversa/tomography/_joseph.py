"""Joseph's ray-driven line-integral kernels for 2-D parallel-beam geometry.

Geometry (pixel size 1): pixel ``(i, j)`` of an ``(H, W)`` image has its centre at
``x = j - W // 2``, ``y = i - H // 2``. A ray of the projection at angle ``theta`` is a line
``t = x cos(theta) + y sin(theta)``; detector bin ``k`` sits at
``t_k = (k - n_det // 2) * spacing + offset``.

Joseph's method: when ``|cos| >= |sin|`` the ray is followed row by row; it crosses row
``i`` at ``x = (t_k - y_i sin) / cos``, the image is linearly interpolated between the two
pixels of that row around ``x`` (zero outside the image) and each row contributes with
weight ``1 / |cos|``. Otherwise the roles of rows and columns swap (weight ``1 / |sin|``).
All weights are non-negative.

Both cases reduce to one *stepping* kernel on an ``(P, Q)`` array whose rows are stepped
through and whose columns are interpolated: with ``cq`` the cosine of the interpolated
axis and ``cp`` that of the stepped axis, row ``p`` is crossed at the fractional column

    ``qf = (t0 - (p - P // 2) * cp) / cq + Q // 2 + k * (spacing / cq)``,

``t0`` being the position of bin 0. Column-stepping angles run the same kernel on the
transposed image. Two implementations share these weights exactly: numba kernels on
CPU (float32/float64, batch axis last and contiguous so that a batch of slices is
vectorised), and a pure-torch path (gathers and ``index_add_``) for any device.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
import torch
from numba import int32, njit, prange, uint32

from inversa.core.errors import InputError

__all__ = [
    "Backend",
    "JosephPlan",
    "default_n_detector",
    "joseph_backproject",
    "joseph_project",
    "make_plan",
]

Backend = Literal["auto", "numba", "torch"]

# Elements of one gathered block in the torch path (bounds its temporary memory).
_TORCH_BLOCK = 1 << 24
# Below this many images the per-image kernels (parallel over angles or rows) beat the
# batched ones, whose innermost loop would be too short to vectorise.
_BATCHED_MIN = 4


# ----------------------------------------------------------------------------------------
# numba kernels
# ----------------------------------------------------------------------------------------


@njit(cache=True)
def _inside(base: float, step: float, k: int, jlo: int, jhi: int) -> bool:
    j = math.floor(base + k * step)
    return jlo <= j <= jhi


@njit(cache=True)
def _k_range(base: float, step: float, jlo: int, jhi: int, n: int) -> tuple[int, int]:
    """Bins ``k`` in ``[0, n)`` whose left neighbour ``floor(qf)`` lies in ``[jlo, jhi]``.

    ``qf = base + k * step`` is monotone in ``k`` even after rounding, so the set is an
    interval; the analytic guess is then corrected with the exact test used by the loops.
    """
    if step > 0.0:
        a = (jlo - base) / step
        b = (jhi + 1 - base) / step
    else:
        a = (jhi + 1 - base) / step
        b = (jlo - base) / step
    a = min(max(a, 0.0), float(n))
    b = min(max(b, 0.0), float(n))
    lo = math.ceil(a)
    hi = math.ceil(b)
    while lo > 0 and _inside(base, step, lo - 1, jlo, jhi):
        lo -= 1
    while lo < hi and not _inside(base, step, lo, jlo, jhi):
        lo += 1
    while hi < n and _inside(base, step, hi, jlo, jhi):
        hi += 1
    while hi > lo and not _inside(base, step, hi - 1, jlo, jhi):
        hi -= 1
    return lo, hi


@njit(cache=True)
def _row_ranges(base: float, step: float, q: int, n: int) -> tuple[int, int, int, int]:
    """Return ``(f_lo, n_lo, n_hi, f_hi)``: bins touching a row; bins with both neighbours in it."""
    f_lo, f_hi = _k_range(base, step, -1, q - 1, n)
    n_lo, n_hi = _k_range(base, step, 0, q - 2, n)
    if n_hi <= n_lo:
        n_lo = f_hi
        n_hi = f_hi
    return f_lo, n_lo, n_hi, f_hi


@njit(cache=True)
def _fwd_edge(acc, row, base, step, k, n_q, one):
    """One bin whose ray may leave the row: neighbours outside the image count as zero."""
    qf = base + k * step
    j = math.floor(qf)
    w = row.dtype.type(qf - j)
    if j >= 0:
        acc[k] += (one - w) * row[j]
    if j + 1 < n_q:
        acc[k] += w * row[j + 1]


@njit(cache=True)
def _adj_edge(left, right, v, base, step, k, n_q, one):
    """Transpose of :func:`_fwd_edge`, into the left- and right-neighbour accumulators."""
    qf = base + k * step
    j = math.floor(qf)
    w = left.dtype.type(qf - j)
    if j >= 0:
        left[j] += (one - w) * v[k]
    if j + 1 < n_q:
        right[j + 1] += w * v[k]


@njit(parallel=True, cache=True)
def _forward_2d(img, out, angle_index, cq, cp, scale, t0, spacing):
    """Project one image ``img (P, Q)`` into ``out[angle_index] (A, K)``; one task per angle."""
    n_p, n_q = img.shape
    n_k = out.shape[1]
    hp = n_p // 2
    hq = n_q // 2
    one = img.dtype.type(1.0)
    for m in prange(angle_index.shape[0]):
        acc = out[angle_index[m]]
        c = cq[m]
        step = spacing / c
        for i in range(n_p):
            row = img[i]
            base = (t0 - (i - hp) * cp[m]) / c + hq
            f_lo, n_lo, n_hi, f_hi = _row_ranges(base, step, n_q, n_k)
            for k in range(f_lo, n_lo):
                _fwd_edge(acc, row, base, step, k, n_q, one)
            for k in range(n_lo, n_hi):
                # interior: qf >= 0 so truncation is the floor; unsigned skips wraparound
                qf = base + k * step
                j = uint32(int32(qf))
                w = img.dtype.type(qf - j)
                acc[k] += (one - w) * row[j] + w * row[j + uint32(1)]
            for k in range(n_hi, f_hi):
                _fwd_edge(acc, row, base, step, k, n_q, one)
        g = img.dtype.type(scale[m])
        for k in range(n_k):
            acc[k] *= g


@njit(parallel=True, cache=True)
def _adjoint_2d(sino, img, angle_index, cq, cp, t0, spacing):
    """Scatter pre-scaled ``sino[angle_index] (A, K)`` into ``img (P, Q)``; one task per row.

    Left- and right-neighbour contributions go to separate accumulators: consecutive bins
    then never update the same address, which would serialise the loop on the store.
    """
    n_p, n_q = img.shape
    n_k = sino.shape[1]
    hp = n_p // 2
    hq = n_q // 2
    one = img.dtype.type(1.0)
    for i in prange(n_p):
        left = np.zeros(n_q, dtype=img.dtype)
        right = np.zeros(n_q, dtype=img.dtype)
        for m in range(angle_index.shape[0]):
            v = sino[angle_index[m]]
            c = cq[m]
            step = spacing / c
            base = (t0 - (i - hp) * cp[m]) / c + hq
            f_lo, n_lo, n_hi, f_hi = _row_ranges(base, step, n_q, n_k)
            for k in range(f_lo, n_lo):
                _adj_edge(left, right, v, base, step, k, n_q, one)
            for k in range(n_lo, n_hi):
                qf = base + k * step
                j = uint32(int32(qf))
                w = img.dtype.type(qf - j)
                left[j] += (one - w) * v[k]
                right[j + uint32(1)] += w * v[k]
            for k in range(n_hi, f_hi):
                _adj_edge(left, right, v, base, step, k, n_q, one)
        row = img[i]
        for q in range(n_q):
            row[q] += left[q] + right[q]


@njit(cache=True)
def _fwd_edge_b(acc, row, base, step, k, n_q, one):
    """Batched :func:`_fwd_edge`: ``acc (K, L)``, ``row (Q, L)``."""
    qf = base + k * step
    j = math.floor(qf)
    w = row.dtype.type(qf - j)
    if j >= 0:
        w0 = one - w
        for b in range(row.shape[1]):
            acc[k, b] += w0 * row[j, b]
    if j + 1 < n_q:
        for b in range(row.shape[1]):
            acc[k, b] += w * row[j + 1, b]


@njit(cache=True)
def _adj_edge_b(row, v, base, step, k, n_q, one):
    """Transpose of :func:`_fwd_edge_b`."""
    qf = base + k * step
    j = math.floor(qf)
    w = row.dtype.type(qf - j)
    if j >= 0:
        w0 = one - w
        for b in range(row.shape[1]):
            row[j, b] += w0 * v[k, b]
    if j + 1 < n_q:
        for b in range(row.shape[1]):
            row[j + 1, b] += w * v[k, b]


@njit(parallel=True, cache=True)
def _forward_batched(img, out, angle_index, cq, cp, scale, t0, spacing):
    """Project blocked images ``img (C, P, Q, L)`` into ``out[:, angle_index] (C, A, K, L)``.

    One task per (block, angle); tasks of one block are consecutive, so a thread keeps
    its block of images in cache across angles. The ``L`` loop is innermost and contiguous.
    """
    n_c, n_p, n_q, n_l = img.shape
    n_k = out.shape[2]
    hp = n_p // 2
    hq = n_q // 2
    one = img.dtype.type(1.0)
    n_a = angle_index.shape[0]
    for task in prange(n_c * n_a):
        ch = task // n_a
        m = task % n_a
        acc = out[ch, angle_index[m]]
        c = cq[m]
        step = spacing / c
        for i in range(n_p):
            row = img[ch, i]
            base = (t0 - (i - hp) * cp[m]) / c + hq
            f_lo, n_lo, n_hi, f_hi = _row_ranges(base, step, n_q, n_k)
            for k in range(f_lo, n_lo):
                _fwd_edge_b(acc, row, base, step, k, n_q, one)
            for k in range(n_lo, n_hi):
                qf = base + k * step
                j = uint32(int32(qf))
                w = img.dtype.type(qf - j)
                w0 = one - w
                for b in range(n_l):
                    acc[k, b] += w0 * row[j, b] + w * row[j + uint32(1), b]
            for k in range(n_hi, f_hi):
                _fwd_edge_b(acc, row, base, step, k, n_q, one)
        g = img.dtype.type(scale[m])
        for k in range(n_k):
            for b in range(n_l):
                acc[k, b] *= g


@njit(parallel=True, cache=True)
def _adjoint_batched(sino, img, angle_index, cq, cp, t0, spacing):
    """Scatter pre-scaled ``sino[:, angle_index] (C, A, K, L)`` into ``img (C, P, Q, L)``.

    One task per (block, row), so no two tasks write the same pixel.
    """
    n_c, n_p, n_q, n_l = img.shape
    n_k = sino.shape[2]
    hp = n_p // 2
    hq = n_q // 2
    one = img.dtype.type(1.0)
    for task in prange(n_c * n_p):
        ch = task // n_p
        i = task % n_p
        row = img[ch, i]
        for m in range(angle_index.shape[0]):
            v = sino[ch, angle_index[m]]
            c = cq[m]
            step = spacing / c
            base = (t0 - (i - hp) * cp[m]) / c + hq
            f_lo, n_lo, n_hi, f_hi = _row_ranges(base, step, n_q, n_k)
            for k in range(f_lo, n_lo):
                _adj_edge_b(row, v, base, step, k, n_q, one)
            for k in range(n_lo, n_hi):
                qf = base + k * step
                j = uint32(int32(qf))
                w = img.dtype.type(qf - j)
                w0 = one - w
                for b in range(n_l):
                    row[j, b] += w0 * v[k, b]
                    row[j + uint32(1), b] += w * v[k, b]
            for k in range(n_hi, f_hi):
                _adj_edge_b(row, v, base, step, k, n_q, one)


# ----------------------------------------------------------------------------------------
# geometry plan
# ----------------------------------------------------------------------------------------


def default_n_detector(image_shape: tuple[int, int]) -> int:
    """Default number of detector bins for an ``(H, W)`` image.

    ``ceil(sqrt(H^2 + W^2))``, rounded up to the parity of ``max(H, W)``, so that every
    pixel centre projects onto the detector at every angle.
    """
    h, w = image_shape
    n = math.ceil(math.sqrt(h * h + w * w))
    if n % 2 != max(h, w) % 2:
        n += 1
    return n


@dataclass(frozen=True, eq=False)
class JosephPlan:
    """Everything the kernels need about one 2-D geometry (host-side, float64).

    Attributes
    ----------
    image_shape
        ``(H, W)``.
    n_detector
        Number of detector bins ``K``.
    spacing, offset
        Detector bin spacing and offset of the centre bin ``K // 2``.
    cos, sin
        ``(A,)`` float64 cosines and sines of the angles.
    row_index, col_index
        Angles stepped along rows (``|cos| >= |sin|``) and along columns, as int64 arrays.
    backend
        ``"auto"`` (numba on CPU for float32/float64, torch otherwise), ``"numba"`` or ``"torch"``.
    """

    image_shape: tuple[int, int]
    n_detector: int
    spacing: float
    offset: float
    cos: np.ndarray
    sin: np.ndarray
    row_index: np.ndarray
    col_index: np.ndarray
    backend: Backend

    @property
    def scale(self) -> np.ndarray:
        """``(A,)`` Joseph weight ``1 / max(|cos|, |sin|)`` of each angle."""
        return 1.0 / np.maximum(np.abs(self.cos), np.abs(self.sin))

    @property
    def n_angles(self) -> int:
        """Number of projection angles ``A``."""
        return int(self.cos.shape[0])

    @property
    def range_tail(self) -> tuple[int, int]:
        """``(A, K)``: the trailing shape of a sinogram."""
        return (self.n_angles, self.n_detector)

    @property
    def t0(self) -> float:
        """Detector coordinate of bin 0."""
        return (0 - self.n_detector // 2) * self.spacing + self.offset


def make_plan(
    angles: torch.Tensor,
    *,
    image_shape: tuple[int, int],
    n_detector: int | None,
    detector_spacing: float,
    detector_offset: float,
    backend: Backend,
) -> JosephPlan:
    """Validate a 2-D geometry and precompute its trigonometry.

    Parameters
    ----------
    angles
        ``(A,)`` projection angles in degrees.
    image_shape
        ``(H, W)``, both positive.
    n_detector
        Number of detector bins, or ``None`` for :func:`default_n_detector`.
    detector_spacing
        Bin spacing in pixels, positive.
    detector_offset
        Detector coordinate of the centre bin ``n_detector // 2``.
    backend
        ``"auto"``, ``"numba"`` or ``"torch"``.

    Returns
    -------
    JosephPlan
        The validated geometry.
    """
    if len(image_shape) != 2 or min(int(n) for n in image_shape) < 1:
        raise InputError(None, f"image_shape must be two positive sizes, got {image_shape}")
    shape = (int(image_shape[0]), int(image_shape[1]))
    angles = torch.as_tensor(angles)
    if angles.ndim != 1:
        raise InputError(None, f"angles must be a 1-D tensor, got shape {tuple(angles.shape)}")
    if not math.isfinite(detector_spacing) or detector_spacing <= 0:
        raise InputError(None, f"detector_spacing must be positive, got {detector_spacing}")
    if not math.isfinite(detector_offset):
        raise InputError(None, f"detector_offset must be finite, got {detector_offset}")
    if backend not in ("auto", "numba", "torch"):
        raise InputError(None, f"backend must be 'auto', 'numba' or 'torch', got {backend!r}")
    n_det = default_n_detector(shape) if n_detector is None else int(n_detector)
    if n_det < 1:
        raise InputError(None, f"n_detector must be positive, got {n_detector}")
    theta = np.deg2rad(angles.detach().to("cpu", torch.float64).numpy())
    if not np.all(np.isfinite(theta)):
        raise InputError(None, "angles must be finite")
    cos = np.cos(theta)
    sin = np.sin(theta)
    rows = np.abs(cos) >= np.abs(sin)
    return JosephPlan(
        image_shape=shape,
        n_detector=n_det,
        spacing=float(detector_spacing),
        offset=float(detector_offset),
        cos=cos,
        sin=sin,
        row_index=np.flatnonzero(rows).astype(np.int64),
        col_index=np.flatnonzero(~rows).astype(np.int64),
        backend=backend,
    )


def _passes(
    plan: JosephPlan,
) -> list[tuple[bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """List the row- and column-stepping passes: ``(transposed, index, cq, cp, scale)``."""
    out = []
    if plan.row_index.size:
        idx = plan.row_index
        out.append((False, idx, plan.cos[idx], plan.sin[idx], plan.scale[idx]))
    if plan.col_index.size:
        idx = plan.col_index
        out.append((True, idx, plan.sin[idx], plan.cos[idx], plan.scale[idx]))
    return out


def _use_numba(plan: JosephPlan, x: torch.Tensor) -> bool:
    if plan.backend == "torch":
        return False
    ok = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
    if plan.backend == "numba" and not ok:
        raise InputError(None, "the numba backend needs a float32 or float64 CPU tensor")
    return ok


# ----------------------------------------------------------------------------------------
# numba drivers: (P, Q, B) numpy arrays
# ----------------------------------------------------------------------------------------


def _numba_project_single(x: np.ndarray, plan: JosephPlan) -> np.ndarray:
    """Map ``(N, H, W) -> (N, A, K)``, image by image (for small batches)."""
    out = np.zeros((x.shape[0], plan.n_angles, plan.n_detector), dtype=x.dtype)
    for transposed, idx, cq, cp, scale in _passes(plan):
        for n in range(x.shape[0]):
            src = np.ascontiguousarray(x[n].T) if transposed else x[n]
            _forward_2d(src, out[n], idx, cq, cp, scale, plan.t0, plan.spacing)
    return out


def _numba_backproject_single(y: np.ndarray, plan: JosephPlan) -> np.ndarray:
    """Map ``(N, A, K) -> (N, H, W)``, image by image (for small batches)."""
    h, w = plan.image_shape
    img = np.zeros((y.shape[0], h, w), dtype=y.dtype)
    # the adjoint scatters y * scale with the forward's interpolation weights
    v_all = y * plan.scale.astype(y.dtype)[:, None]
    for transposed, idx, cq, cp, _ in _passes(plan):
        for n in range(y.shape[0]):
            v = v_all[n]
            if transposed:
                buf = np.zeros((w, h), dtype=y.dtype)
                _adjoint_2d(v, buf, idx, cq, cp, plan.t0, plan.spacing)
                img[n] += buf.T
            else:
                _adjoint_2d(v, img[n], idx, cq, cp, plan.t0, plan.spacing)
    return img


def _block_size(n: int) -> int:
    """Images per block: at most 32, a multiple of 8 (SIMD width), little padding."""
    n_blocks = math.ceil(n / 32)
    return math.ceil(math.ceil(n / n_blocks) / 8) * 8


def _to_blocks(x: torch.Tensor, size: int) -> np.ndarray:
    """Copy ``(N, P, Q)`` into zero-padded blocks ``(C, P, Q, L)`` with ``L = size``."""
    n, n_p, n_q = x.shape
    n_blocks = math.ceil(n / size)
    blocks = torch.empty((n_blocks, n_p, n_q, size), dtype=x.dtype)
    for c in range(n_blocks):
        part = x[c * size : (c + 1) * size]
        blocks[c, :, :, : part.shape[0]].copy_(part.permute(1, 2, 0))
        blocks[c, :, :, part.shape[0] :] = 0
    return blocks.numpy()


def _from_blocks(blocks: np.ndarray, n: int) -> torch.Tensor:
    """Undo :func:`_to_blocks`: ``(C, P, Q, L) -> (N, P, Q)``."""
    n_blocks, n_p, n_q, size = blocks.shape
    out = torch.from_numpy(blocks).permute(0, 3, 1, 2).reshape(n_blocks * size, n_p, n_q)
    return out[:n]


def _numba_project_batched(x: np.ndarray, plan: JosephPlan) -> np.ndarray:
    """Map ``(C, H, W, L) -> (C, A, K, L)``: blocks of ``L`` images, innermost."""
    n_c, _, _, n_l = x.shape
    out = np.zeros((n_c, plan.n_angles, plan.n_detector, n_l), dtype=x.dtype)
    for transposed, idx, cq, cp, scale in _passes(plan):
        src = np.ascontiguousarray(x.transpose(0, 2, 1, 3)) if transposed else x
        _forward_batched(src, out, idx, cq, cp, scale, plan.t0, plan.spacing)
    return out


def _numba_backproject_batched(y: np.ndarray, plan: JosephPlan) -> np.ndarray:
    """Map ``(C, A, K, L) -> (C, H, W, L)``: blocks of ``L`` images, innermost."""
    h, w = plan.image_shape
    n_c, _, _, n_l = y.shape
    img = np.zeros((n_c, h, w, n_l), dtype=y.dtype)
    v = y * plan.scale.astype(y.dtype)[None, :, None, None]
    for transposed, idx, cq, cp, _ in _passes(plan):
        if transposed:
            buf = np.zeros((n_c, w, h, n_l), dtype=y.dtype)
            _adjoint_batched(v, buf, idx, cq, cp, plan.t0, plan.spacing)
            img += buf.transpose(0, 2, 1, 3)
        else:
            _adjoint_batched(v, img, idx, cq, cp, plan.t0, plan.spacing)
    return img


# ----------------------------------------------------------------------------------------
# torch path: (N, P, Q) tensors, same weights
# ----------------------------------------------------------------------------------------


def _torch_weights(
    plan: JosephPlan,
    cq: torch.Tensor,
    cp: torch.Tensor,
    n_p: int,
    n_q: int,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat pixel indices and interpolation weights of both neighbours, each ``(m, P, K)``.

    The same float64 arithmetic as the numba kernels; weights outside the image are zero.
    """
    dev = cq.device
    p = torch.arange(n_p, device=dev, dtype=torch.float64) - n_p // 2
    k = torch.arange(plan.n_detector, device=dev, dtype=torch.float64)
    base = (plan.t0 - p[None, :] * cp[:, None]) / cq[:, None] + n_q // 2
    step = plan.spacing / cq
    qf = base[:, :, None] + k[None, None, :] * step[:, None, None]
    j = torch.floor(qf)
    w1 = (qf - j).to(dtype)
    w0 = 1 - w1
    j = j.to(torch.int64)
    w0 = torch.where((j >= 0) & (j <= n_q - 1), w0, 0)
    w1 = torch.where((j >= -1) & (j <= n_q - 2), w1, 0)
    row = torch.arange(n_p, device=dev, dtype=torch.int64)[None, :, None] * n_q
    i0 = row + j.clamp(0, n_q - 1)
    i1 = row + (j + 1).clamp(0, n_q - 1)
    return i0, i1, w0, w1


def _chunk(plan: JosephPlan, n: int, n_p: int, size: int) -> int:
    """Angles per torch block, so that one gathered block stays below ``_TORCH_BLOCK``."""
    per_angle = max(1, n * n_p * plan.n_detector)
    return max(1, min(size, _TORCH_BLOCK // per_angle))


def _torch_project(x: torch.Tensor, plan: JosephPlan) -> torch.Tensor:
    """Map ``(N, H, W) -> (N, A, K)`` with gathers."""
    n = x.shape[0]
    dev = x.device
    out = x.new_zeros((n, plan.n_angles, plan.n_detector))
    for transposed, idx, cq_np, cp_np, scale_np in _passes(plan):
        src = x.transpose(1, 2) if transposed else x
        n_p, n_q = src.shape[1], src.shape[2]
        flat = src.reshape(n, n_p * n_q)
        step = _chunk(plan, n, n_p, idx.size)
        for s in range(0, idx.size, step):
            cut = slice(s, s + step)
            cq = torch.as_tensor(cq_np[cut], device=dev)
            cp = torch.as_tensor(cp_np[cut], device=dev)
            i0, i1, w0, w1 = _torch_weights(plan, cq, cp, n_p, n_q, x.dtype)
            shape = (n, *i0.shape)
            v = flat[:, i0.reshape(-1)].reshape(shape) * w0
            v = v + flat[:, i1.reshape(-1)].reshape(shape) * w1
            g = torch.as_tensor(scale_np[cut], device=dev).to(x.dtype)
            out[:, torch.as_tensor(idx[cut], device=dev)] = v.sum(dim=2) * g[:, None]
    return out


def _torch_backproject(y: torch.Tensor, plan: JosephPlan) -> torch.Tensor:
    """Map ``(N, A, K) -> (N, H, W)`` with ``index_add_``."""
    n = y.shape[0]
    dev = y.device
    h, w = plan.image_shape
    img = y.new_zeros((n, h, w))
    v_all = y * torch.as_tensor(plan.scale, device=dev).to(y.dtype)[:, None]
    for transposed, idx, cq_np, cp_np, _ in _passes(plan):
        n_p, n_q = (w, h) if transposed else (h, w)
        flat = y.new_zeros((n, n_p * n_q))
        step = _chunk(plan, n, n_p, idx.size)
        for s in range(0, idx.size, step):
            cut = slice(s, s + step)
            cq = torch.as_tensor(cq_np[cut], device=dev)
            cp = torch.as_tensor(cp_np[cut], device=dev)
            i0, i1, w0, w1 = _torch_weights(plan, cq, cp, n_p, n_q, y.dtype)
            v = v_all[:, torch.as_tensor(idx[cut], device=dev)][:, :, None, :]
            flat.index_add_(1, i0.reshape(-1), (v * w0).reshape(n, -1))
            flat.index_add_(1, i1.reshape(-1), (v * w1).reshape(n, -1))
        part = flat.reshape(n, n_p, n_q)
        img += part.transpose(1, 2) if transposed else part
    return img


# ----------------------------------------------------------------------------------------
# layout handling and autograd
# ----------------------------------------------------------------------------------------


_LAUNCH_LOCK = threading.Lock()


@contextmanager
def _numba_launch() -> Iterator[None]:
    """Run parallel kernels on torch's thread count; serialise them unless on OpenMP or TBB.

    numba's OpenMP layer shares libgomp with torch: a kernel launched with numba's own
    count (all cores by default) resets the process-wide OpenMP count and so overrides
    ``OMP_NUM_THREADS`` / ``torch.set_num_threads`` for every later torch operation. The
    kernels therefore use torch's count, which is restored afterwards.

    numba's fallback 'workqueue' threading layer (used where neither libgomp nor TBB is
    found) aborts the process when two threads launch parallel kernels at once, as Dask's
    threaded scheduler does with several tilt series.
    """
    threads = torch.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet, so no layer is chosen
        layer = None
    try:
        if layer in ("omp", "tbb"):
            yield
        else:
            with _LAUNCH_LOCK:
                yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def _project_raw(x: torch.Tensor, plan: JosephPlan) -> torch.Tensor:
    """Map ``(*batch, H, W) -> (*batch, A, K)``, possibly a non-contiguous view."""
    batch = x.shape[:-2]
    h, w = plan.image_shape
    n = math.prod(batch)
    if not _use_numba(plan, x):
        return _torch_project(x.reshape(n, h, w), plan).reshape(*batch, *plan.range_tail)
    if n < _BATCHED_MIN:
        arr = x.detach().reshape(n, h, w).contiguous().numpy()
        with _numba_launch():
            out = torch.from_numpy(_numba_project_single(arr, plan))
        return out.reshape(*batch, *plan.range_tail)
    blocks = _to_blocks(x.detach().reshape(n, h, w), _block_size(n))
    with _numba_launch():
        out = _from_blocks(_numba_project_batched(blocks, plan), n)
    return out.reshape(*batch, *plan.range_tail)


def _backproject_raw(y: torch.Tensor, plan: JosephPlan) -> torch.Tensor:
    """Map ``(*batch, A, K) -> (*batch, H, W)``, possibly a non-contiguous view."""
    batch = y.shape[:-2]
    h, w = plan.image_shape
    n = math.prod(batch)
    if not _use_numba(plan, y):
        return _torch_backproject(y.reshape(n, *plan.range_tail), plan).reshape(*batch, h, w)
    if n < _BATCHED_MIN:
        arr = y.detach().reshape(n, *plan.range_tail).contiguous().numpy()
        with _numba_launch():
            img = torch.from_numpy(_numba_backproject_single(arr, plan))
        return img.reshape(*batch, h, w)
    blocks = _to_blocks(y.detach().reshape(n, *plan.range_tail), _block_size(n))
    with _numba_launch():
        img = _from_blocks(_numba_backproject_batched(blocks, plan), n)
    return img.reshape(*batch, h, w)


class _Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, plan: JosephPlan) -> torch.Tensor:
        ctx.plan = plan
        return _project_raw(x, plan)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _Backproject.apply(grad, ctx.plan), None


class _Backproject(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: torch.Tensor, plan: JosephPlan) -> torch.Tensor:
        ctx.plan = plan
        return _backproject_raw(y, plan)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _Project.apply(grad, ctx.plan), None


def _check_input(x: torch.Tensor, trailing: tuple[int, ...], what: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise InputError(None, f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < len(trailing) or tuple(x.shape[-len(trailing) :]) != trailing:
        raise InputError(None, f"{what} must have trailing shape {trailing}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InputError(None, f"{what} must be a floating-point tensor, got {x.dtype}")


def joseph_project(x: torch.Tensor, plan: JosephPlan) -> torch.Tensor:
    """Differentiable Joseph projection ``(..., H, W) -> (..., A, K)``.

    The result may be a non-contiguous view; its backward is :func:`joseph_backproject`.
    """
    _check_input(x, plan.image_shape, "images")
    return _Project.apply(x, plan)


def joseph_backproject(y: torch.Tensor, plan: JosephPlan) -> torch.Tensor:
    """Differentiable exact adjoint ``(..., A, K) -> (..., H, W)`` of :func:`joseph_project`."""
    _check_input(y, plan.range_tail, "sinograms")
    return _Backproject.apply(y, plan)

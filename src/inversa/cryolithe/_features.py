"""Point features: a P x P patch around every point's projection in every tilt image."""

from __future__ import annotations

import torch

from inversa.core.errors import InputError
from inversa.core.fourier import apply_ramp_filter
from inversa.tomography import TiltGeometry, invert_xf

__all__ = [
    "align_images",
    "extract_patches",
    "normalize_counts",
    "prepare_projections",
    "voxel_points",
]


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
    # Tilt by tilt: the ramp filter's zero-padded FFT is made for one tilt at a time.
    out = torch.empty(data.shape, dtype=torch.float32, device=data.device)
    for t in range(data.shape[0]):
        x = data[t].to(torch.float32)
        out[t] = apply_ramp_filter(x - x.mean(), dim=-1, name="cosine", cutoff=cutoff)
    return out.div_(out.std().clamp_min(1e-12))


def _projection_stats(
    data: torch.Tensor, *, cutoff: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tilt means ``(T,)`` and the filtered stack's standard deviation (a 0-d tensor).

    What :func:`prepare_projections` subtracts and divides by, found in float64 a block of
    ``_STATS_ROWS`` rows at a time (the temporaries do not grow with the image), so rows
    of the prepared images can later be made a band at a time (:func:`_band_rows`)
    without the whole stack ever being held.
    """
    n_tilts, height, width = data.shape
    means = torch.empty(n_tilts, dtype=torch.float64, device=data.device)
    sums = torch.zeros(2, dtype=torch.float64, device=data.device)
    blocks = range(0, height, _STATS_ROWS)
    for t in range(n_tilts):
        rows = [data[t, r : r + _STATS_ROWS] for r in blocks]
        means[t] = sum(x.to(torch.float64).sum() for x in rows) / (height * width)
        for x in rows:
            f = apply_ramp_filter(
                x.to(torch.float64) - means[t], dim=-1, name="cosine", cutoff=cutoff
            )
            sums += torch.stack([f.sum(), f.square().sum()])
    n = n_tilts * height * width
    var = (sums[1] - sums[0].square() / n) / max(n - 1, 1)
    return means, var.clamp_min(0.0).sqrt().clamp_min(1e-12)


_STATS_ROWS = 32


def _band_rows(
    data: torch.Tensor,
    means: torch.Tensor,
    scale: torch.Tensor,
    start: torch.Tensor,
    n_rows: int,
    pad: int,
    *,
    cutoff: float = 1.0,
    dtype: torch.dtype = torch.float16,
) -> torch.Tensor:
    """Rows ``start[t] .. start[t] + n_rows`` of every tilt's zero-padded prepared image.

    Padded row ``r`` is image row ``r - pad`` (zero outside the image), columns are padded
    by ``pad`` on both sides. The ramp filter runs along x, row by row, so a band of rows
    is filtered on its own and equals those rows of the whole filtered image.

    Parameters
    ----------
    data
        ``(T, H, W)`` line-integral images.
    means, scale
        From :func:`_projection_stats` of ``data``.
    start
        ``(T,)`` first padded row of each tilt's band.
    n_rows
        Rows per band.
    pad
        Zero border (``P + 1`` for :func:`_window_patches`).

    Returns
    -------
    torch.Tensor
        ``(T, n_rows, W + 2 pad)`` in ``dtype``.
    """
    n_tilts, height, width = data.shape
    out = torch.zeros((n_tilts, n_rows, width + 2 * pad), dtype=dtype, device=data.device)
    for t in range(n_tilts):
        lo = int(start[t]) - pad  # image row of the band's first row
        a, b = max(lo, 0), min(lo + n_rows, height)
        if a >= b:
            continue
        # In float64: the FFT's rounding depends on how many rows it batches and on the
        # thread count; 1e-16 differences do not survive the rounding to float32/16, so
        # a row's stored value does not depend on the band or the threads.
        x = data[t, a:b].to(torch.float64) - means[t]
        f = apply_ramp_filter(x, dim=-1, name="cosine", cutoff=cutoff)
        out[t, a - lo : b - lo, pad : pad + width] = (f / scale).to(dtype)
    return out


def align_images(images: torch.Tensor, geometry: TiltGeometry) -> torch.Tensor:
    """Resample raw tilt images into the aligned frame of their ``.xf``, bilinearly.

    Aligned pixel ``q`` (about the image centre) takes the raw value at
    ``inverse_xf(q)``, where :meth:`TiltGeometry.project_points` puts it; samples outside
    the raw image are 0. The result goes with ``geometry.replace(xf=None)`` (what IMOD's
    ``newstack -xform`` does before a reconstruction).

    Parameters
    ----------
    images
        ``(T, H, W)`` raw images.
    geometry
        Their angles and ``.xf`` (``None``: the images are returned as they are).

    Returns
    -------
    torch.Tensor
        ``(T, H, W)`` in the aligned frame.
    """
    if geometry.xf is None:
        return images
    n_tilts, height, width = images.shape
    dtype = images.dtype
    inv = invert_xf(geometry.xf.to(device=images.device, dtype=torch.float64))
    y, x = torch.meshgrid(
        torch.arange(height, dtype=torch.float64, device=images.device) - height // 2,
        torch.arange(width, dtype=torch.float64, device=images.device) - width // 2,
        indexing="ij",
    )
    q = torch.stack([x, y], dim=-1).reshape(-1, 2)  # (H*W, 2) aligned (x, y)
    raw = q @ inv[:, :, :2].mT + inv[:, None, :, 2]  # (T, H*W, 2)
    scale = torch.tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], dtype=raw.dtype)
    shift = torch.tensor([width // 2, height // 2], dtype=raw.dtype)
    grid = ((raw + shift.to(raw.device)) * scale.to(raw.device) - 1.0).to(dtype)
    out = torch.nn.functional.grid_sample(
        images[:, None],
        grid.reshape(n_tilts, height, width, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )
    return out[:, 0]


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
    if geo.xf is None or _is_shift_only(geo.xf):
        return _axis_aligned_patches(images, centre, patch_size).transpose(0, 1)
    off = torch.arange(-half, half + 1, device=images.device, dtype=dtype)
    dv, du = torch.meshgrid(off, off, indexing="ij")
    offsets = torch.stack([du, dv], dim=-1).reshape(-1, 2)  # (P*P, 2) aligned (u, v)
    lin = invert_xf(geo.xf)[:, :, :2]  # aligned -> raw, linear part
    offsets = torch.einsum("tij,kj->tki", lin, offsets)  # (T, P*P, 2)
    # align_corners=True: normalised -1 and 1 are the centres of the first and last pixel.
    # The centres and the offsets are normalised apart and added once, so only one
    # (T, N, P*P, 2) array is made.
    scale = torch.tensor(
        [2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], device=images.device, dtype=dtype
    )
    shift = torch.tensor([width // 2, height // 2], device=images.device, dtype=dtype)
    grid = ((centre + shift) * scale - 1.0)[:, :, None, :] + (offsets * scale)[:, None, :, :]
    n = points.shape[0]
    out = torch.nn.functional.grid_sample(
        images[:, None],
        grid.reshape(n_tilts, 1, -1, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )  # (T, 1, 1, N*P*P)
    return out.reshape(n_tilts, n, patch_size, patch_size).transpose(0, 1)


def _is_shift_only(xf: torch.Tensor) -> bool:
    """Whether every ``(2, 3)`` transform's linear part is the identity (shifts only)."""
    eye = torch.eye(2, dtype=xf.dtype, device=xf.device)
    return bool((xf[:, :, :2] - eye).abs().max() <= 1e-6)


def _pad_images(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(T, H, W) -> (T, H + 2 (P + 1), W + 2 (P + 1))`` with a zero border for sampling."""
    p1 = patch_size + 1
    return torch.nn.functional.pad(images, (p1, p1, p1, p1))


def _axis_aligned_patches(
    images: torch.Tensor, centre: torch.Tensor, patch_size: int
) -> torch.Tensor:
    """Bilinear ``P x P`` patches whose axes are the image axes, ``(T, N, P, P)``.

    See :func:`_window_patches`; this pads ``images`` (``(T, H, W)``) first.
    """
    return _window_patches(_pad_images(images, patch_size), centre, patch_size)


def _window_patches(
    padded: torch.Tensor,
    centre: torch.Tensor,
    patch_size: int,
    *,
    height: int | None = None,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bilinear ``P x P`` patches from images padded by :func:`_pad_images`, ``(T, N, P, P)``.

    All pixels of one patch share the centre's fractional offset, so a patch is the
    bilinear blend of the ``(P + 1) x (P + 1)`` integer window at its top-left corner:
    one gather of ``P + 1`` row segments per patch (from a strided view of the
    zero-padded images), then a lerp along x and one along y. Equal to ``grid_sample``
    with zero padding (up to float rounding) at a fraction of its cost. The padded
    images can be made once for many calls (streaming inference), or only a band of
    their rows (:func:`_band_rows`; then ``height`` and ``start`` say which).

    Parameters
    ----------
    padded
        ``(T, R, W + 2 (P + 1))``: the ``(T, H, W)`` images in the middle of a zero border
        (``R = H + 2 (P + 1)``), or rows ``start[t] ..`` of that (float32, or float16
        upcast window by window). A band must hold every window of ``centre``.
    centre
        ``(T, N, 2)`` patch centres ``(x, y)`` in pixels about the image centre.
    patch_size
        ``P``.
    height
        ``H`` of the whole images (default: all rows are given).
    start
        ``(T,)`` padded row held in ``padded``'s first row (default 0).
    """
    p1 = patch_size + 1
    n_tilts = padded.shape[0]
    width = padded.shape[2] - 2 * p1
    if height is None:
        height = padded.shape[1] - 2 * p1
    segments = padded.unfold(2, p1, 1)  # (T, R, W + p1 + 1, P + 1), a view
    half = patch_size // 2
    shift = torch.tensor([width // 2 - half, height // 2 - half], dtype=centre.dtype)
    corner = centre + shift.to(centre.device)  # top-left sample, pixel index (x, y)
    first = corner.floor()
    frac = corner - first
    # a window entirely outside the image reads only padding, wherever it is clamped to
    x0 = first[..., 0].clamp(-p1, width).long() + p1
    y0 = first[..., 1] + p1
    if start is not None:
        y0 = y0 - start.to(device=y0.device, dtype=y0.dtype)[:, None]
    y0 = y0.clamp(0, padded.shape[1] - p1).long()
    rows = y0[..., None] + torch.arange(p1, device=padded.device)  # (T, N, P + 1)
    tilt = torch.arange(n_tilts, device=padded.device)[:, None, None]
    # (T, N, P + 1, P + 1): [t, n, row, col], upcast when the images are stored narrower
    window = segments[tilt, rows, x0[..., None]].to(frac.dtype)
    across = torch.lerp(window[..., :-1], window[..., 1:], frac[..., 0, None, None])
    del window
    return torch.lerp(across[:, :, :-1], across[:, :, 1:], frac[..., 1, None, None])

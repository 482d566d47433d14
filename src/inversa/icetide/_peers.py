"""Classical alignment peers on the tomography core, and the scores of an alignment.

- :func:`align_xcorr`: IMOD-like coarse alignment. Neighbouring tilts are cross-correlated
  after cosine stretching of the higher tilt perpendicular to the tilt axis, and the
  relative shifts are accumulated outwards from the tilt nearest 0 degrees. Shifts only.
- :func:`align_projmatch`: AreTomo-like projection matching. Reconstruct (WBP) with the
  current alignment, reproject, align each raw tilt to its reprojection over a grid of
  in-plane rotations by cross-correlation, iterate. Rigid shifts and rotations.

Both return IMOD ``.xf`` transforms in the convention of the simulator: raw pixel ``r``
shows the ideal projection at ``A r + d``.
"""

from __future__ import annotations

import torch

from inversa.core.fourier import frequency_grid
from inversa.icetide._deformation import rigid_xf, xf_to_rigid
from inversa.icetide._fit import check_stack, corrected_stack, normalise_stack
from inversa.tomography import TiltGeometry, TiltSeriesProjector, bspline_field, warp_images, wbp

__all__ = [
    "align_projmatch",
    "align_xcorr",
    "alignment_errors",
    "cross_correlation_shift",
    "split_rigid",
]


def _taper(h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
    # A cosine edge taper keeps the image borders from dominating the correlation.
    wy = torch.hann_window(h, periodic=False, dtype=dtype) ** 0.5
    wx = torch.hann_window(w, periodic=False, dtype=dtype) ** 0.5
    return wy[:, None] * wx[None, :]


def _bandpass(h: int, w: int, dtype: torch.dtype, low: float = 0.02, high: float = 0.25):
    f = frequency_grid((h, w), rfft=True, norm=True, dtype=dtype)
    return (1 - torch.exp(-((f / low) ** 2))) * torch.exp(-((f / high) ** 2))


def cross_correlation_shift(
    reference: torch.Tensor,
    moving: torch.Tensor,
    *,
    max_shift: float | None = None,
    lowpass: float = 0.25,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift ``s`` maximising ``sum_r moving(r) reference(r + s)``, with sub-pixel peak.

    Parameters
    ----------
    reference, moving
        ``(..., H, W)`` images.
    max_shift
        Search radius in pixels (``None``: the whole image).
    lowpass
        Gaussian low-pass of the band-pass filter, ``exp(-(k / lowpass)^2)`` with ``k``
        in cycles per pixel (IMOD's ``tiltxcorr`` default radius, 0.25); the high-pass is
        ``1 - exp(-(k / 0.02)^2)``.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``(..., 2)`` shifts ``(x, y)`` in pixels and ``(...)`` peak heights (normalised
        by the filtered images' energies).
    """
    h, w = reference.shape[-2:]
    dtype = torch.float64
    taper = _taper(h, w, dtype)
    band = _bandpass(h, w, dtype, high=lowpass)

    def prep(img: torch.Tensor) -> torch.Tensor:
        img = img.to(dtype)
        img = img - img.mean(dim=(-2, -1), keepdim=True)
        return torch.fft.rfft2(img * taper) * band

    fm, fr = prep(moving), prep(reference)
    cc = torch.fft.irfft2(fm.conj() * fr, s=(h, w))
    # Normalised, so that peaks of differently rotated references compare fairly.
    energy = (fm.abs().square().sum(dim=(-2, -1)) * fr.abs().square().sum(dim=(-2, -1))).sqrt()
    cc = cc * (h * w) / torch.where(energy > 0, energy, 1.0)[..., None, None]
    cc = torch.fft.fftshift(cc, dim=(-2, -1))  # zero shift at (h // 2, w // 2)
    if max_shift is not None:
        yy = torch.arange(h, dtype=dtype)[:, None] - h // 2
        xx = torch.arange(w, dtype=dtype)[None, :] - w // 2
        cc = torch.where(yy**2 + xx**2 <= max_shift**2, cc, cc.amin(dim=(-2, -1), keepdim=True))
    flat = cc.reshape(*cc.shape[:-2], -1)
    peak, arg = flat.max(dim=-1)
    iy, ix = arg // w, arg % w

    def parabola(minus: torch.Tensor, centre: torch.Tensor, plus: torch.Tensor) -> torch.Tensor:
        den = minus - 2 * centre + plus
        off = 0.5 * (minus - plus) / torch.where(den.abs() > 0, den, 1.0)
        return torch.where(den < 0, off.clamp(-0.5, 0.5), 0.0)

    def at(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        idx = ((y % h) * w + (x % w))[..., None]
        return torch.gather(flat, -1, idx)[..., 0]

    dx = parabola(at(iy, ix - 1), peak, at(iy, ix + 1))
    dy = parabola(at(iy - 1, ix), peak, at(iy + 1, ix))
    shift = torch.stack([ix - w // 2 + dx, iy - h // 2 + dy], dim=-1)
    return shift, peak


def align_xcorr(
    stack: torch.Tensor,
    angles: torch.Tensor,
    *,
    max_shift: float | None = None,
    lowpass: float = 0.25,
) -> torch.Tensor:
    """IMOD-like coarse alignment: cumulative neighbour cross-correlation with stretching.

    Parameters
    ----------
    stack
        ``(T, H, W)`` raw tilt series.
    angles
        ``(T,)`` tilt angles in degrees.
    max_shift
        Largest relative shift searched between neighbours (pixels); ``None``: H / 4.
    lowpass
        Low-pass of the correlation's filter in cycles per pixel
        (:func:`cross_correlation_shift`).

    Returns
    -------
    torch.Tensor
        ``(T, 2, 3)`` float64 transforms (identity matrices, shifts only).
    """
    check_stack(stack, len(angles))
    t, h, _w = stack.shape
    data = normalise_stack(stack).double()
    order = torch.argsort(angles.double())
    sorted_angles = angles.double()[order]
    zero = int(torch.argmin(sorted_angles.abs()))
    shifts = torch.zeros(t, 2, dtype=torch.float64)
    cos = torch.cos(torch.deg2rad(sorted_angles))
    radius = h / 4 if max_shift is None else max_shift
    for step in (1, -1):
        stop = t if step == 1 else -1
        for k in range(zero + step, stop, step):
            ref_i, mov_i = int(order[k - step]), int(order[k])
            # Stretch the new tilt to the previous one's foreshortening: out(r) = img(S r).
            stretch = torch.eye(2, 3, dtype=torch.float64)[None].clone()
            stretch[0, 0, 0] = cos[k] / cos[k - step]
            moved = warp_images(data[mov_i][None], stretch)[0]
            # raw_ref(r) = ideal(r + d_ref), stretched raw_mov(r) ~ ideal(r + d_mov / k):
            # sum_r moved(r) raw_ref(r + s) peaks at s = d_mov / k - d_ref.
            s, _ = cross_correlation_shift(data[ref_i], moved, max_shift=radius, lowpass=lowpass)
            scale = torch.tensor([float(stretch[0, 0, 0]), 1.0], dtype=torch.float64)
            shifts[mov_i] = (shifts[ref_i] + s) * scale
    return rigid_xf(torch.zeros(t, dtype=torch.float64), shifts)


def align_projmatch(
    stack: torch.Tensor,
    angles: torch.Tensor,
    *,
    thickness: int | None = None,
    iterations: int = 4,
    rotation_range: float = 3.0,
    rotation_step: float = 0.5,
    start: torch.Tensor | None = None,
    lowpass: float = 0.25,
) -> torch.Tensor:
    """AreTomo-like projection matching: reconstruct, reproject, align each tilt, iterate.

    Parameters
    ----------
    stack
        ``(T, H, W)`` raw tilt series.
    angles
        ``(T,)`` tilt angles in degrees.
    thickness
        Depth of the intermediate reconstructions (``None``: W // 2).
    iterations
        Reconstruct-reproject-align rounds.
    rotation_range, rotation_step
        In-plane rotations searched around the current one (degrees); the step halves
        every round.
    start
        ``(T, 2, 3)`` starting alignment; ``None`` runs :func:`align_xcorr` first.
    lowpass
        Low-pass of every cross-correlation in cycles per pixel
        (:func:`cross_correlation_shift`; also :func:`align_xcorr`'s when it starts).

    Returns
    -------
    torch.Tensor
        ``(T, 2, 3)`` float64 rigid transforms.
    """
    check_stack(stack, len(angles))
    t, h, w = stack.shape
    data = normalise_stack(stack).double()
    xf = align_xcorr(stack, angles, lowpass=lowpass) if start is None else start.double().clone()
    geom = TiltGeometry(angles=angles.double())
    projector = TiltSeriesProjector(volume_shape=(thickness or w // 2, h, w), geometry=geom)
    step = rotation_step
    for _ in range(iterations):
        rotation, _shift = xf_to_rigid(xf)
        volume = wbp(corrected_stack(data, xf), projector)
        reproj = projector.forward(volume)  # (T, H, W) ideal projections
        candidates = torch.arange(-rotation_range, rotation_range + 1e-9, step, dtype=torch.float64)
        peaks = torch.stack(
            [_match(reproj, data, rotation + delta, lowpass)[1] for delta in candidates]
        )
        best = peaks.argmax(dim=0).clamp(1, len(candidates) - 2)  # (T,)
        cols = torch.arange(t)
        minus, centre, plus = peaks[best - 1, cols], peaks[best, cols], peaks[best + 1, cols]
        den = minus - 2 * centre + plus
        off = torch.where(den < 0, 0.5 * (minus - plus) / torch.where(den < 0, den, 1.0), 0.0)
        new_rot = rotation + candidates[best] + off.clamp(-1, 1) * step
        new_shift = _match(reproj, data, new_rot, lowpass)[0]
        xf = rigid_xf(new_rot, new_shift)
        rotation_range, step = max(2 * step, 0.25), step / 2
    return xf


def _match(
    reproj: torch.Tensor, data: torch.Tensor, rotation: torch.Tensor, lowpass: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shifts ``(T, 2)`` and peaks ``(T,)`` of raw images against rotated reprojections."""
    t, h, _ = data.shape
    zero = torch.zeros(t, 2, dtype=torch.float64)
    # ideal_rot(r) = ideal(R r): raw(r) = ideal(R r + d) = ideal_rot(r + R^-1 d).
    rotated = warp_images(reproj, rigid_xf(rotation, zero))
    s, peak = cross_correlation_shift(rotated, data, max_shift=h / 4, lowpass=lowpass)
    return (rigid_xf(rotation, zero)[:, :, :2] @ s[:, :, None])[:, :, 0], peak


def _field_on_pixels(control: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    return bspline_field(control.double(), shape)


def split_rigid(field: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split local fields into their mean, their rotation and the rigid-free rest.

    Parameters
    ----------
    field
        ``(T, H, W, 2)`` displacements ``(x, y)`` in pixels on the pixel grid.

    Returns
    -------
    (torch.Tensor, torch.Tensor, torch.Tensor)
        ``(T, 2)`` mean (a shift), ``(T,)`` least-squares small rotation in degrees about
        the pixels' centroid, ``sum(x' D_y - y' D_x) / sum(x'^2 + y'^2)``, and the
        ``(T, H, W, 2)`` rest (zero mean and zero rotational moment).
    """
    _t, h, w, _ = field.shape
    y = torch.arange(h, dtype=field.dtype, device=field.device)
    x = torch.arange(w, dtype=field.dtype, device=field.device)
    yy, xx = torch.meshgrid(y - y.mean(), x - x.mean(), indexing="ij")
    mean = field.mean(dim=(1, 2))
    centred = field - mean[:, None, None, :]
    moment = (xx * centred[..., 1] - yy * centred[..., 0]).sum(dim=(1, 2))
    rotation = moment / (xx.square() + yy.square()).sum()  # radians
    rest = centred - rotation[:, None, None, None] * torch.stack([-yy, xx], dim=-1)
    return mean, torch.rad2deg(rotation), rest


def alignment_errors(
    xf: torch.Tensor,
    true_xf: torch.Tensor,
    *,
    control: torch.Tensor | None = None,
    true_displacement: torch.Tensor | None = None,
    angles: torch.Tensor | None = None,
) -> dict[str, float]:
    """Scores of a found alignment against the truth.

    A local field's mean over the image is a shift and its least-squares rotation is an
    in-plane rotation (:func:`split_rigid`; a cubic B-spline represents both exactly):
    they are moved into the shift and the rotation, found and true alike, so a rigid-only
    method that absorbs them is not penalised for it and the split between rigid and
    local parts does not matter. Shift errors are then per-tilt distances after removing
    the global offset: with ``angles``, the best (least-squares) translation
    ``(x0, y0, z0)`` of the volume, which moves tilt ``theta``'s image by
    ``(x0 cos(theta) + z0 sin(theta), y0)`` and which no method can (or needs to) tell
    from the data; without, the mean offset; the rotation error is the median absolute
    difference of the in-plane rotations; the local-field RMSE compares the rigid-free
    found fields (zero when ``control`` is ``None``) with the rigid-free true ones on the
    pixel grid.

    Parameters
    ----------
    xf, true_xf
        ``(T, 2, 3)`` found and true transforms.
    control
        ``(T, G, G, 2)`` found local control vectors, or ``None``.
    true_displacement
        ``(T, H, W, 2)`` true local fields, or ``None``.
    angles
        ``(T,)`` tilt angles in degrees, to remove a volume translation (see above).

    Returns
    -------
    dict
        ``shift_err_median_px``, ``shift_err_p90_px``, ``rotation_err_deg``; with
        ``angles`` also ``rotation_err_deg_volume_rotation_removed`` (the median after
        removing the least-squares ``a cos(theta) + b sin(theta)``, the in-plane part of a
        small rotation of the volume, which the data barely constrain); when
        ``true_displacement`` is given, ``local_field_rmse_px``.
    """
    rot, shift = xf_to_rigid(xf.double())
    true_rot, true_shift = xf_to_rigid(true_xf.double())
    found_rest = true_rest = None
    if true_displacement is not None:
        true_field = true_displacement.double()
        found_field = torch.zeros_like(true_field)
        if control is not None and control.shape[1] > 0:
            found_field = _field_on_pixels(control, tuple(true_field.shape[1:3]))
        mean, turn, true_rest = split_rigid(true_field)
        true_shift, true_rot = true_shift + mean, true_rot + turn
        mean, turn, found_rest = split_rigid(found_field)
        shift, rot = shift + mean, rot + turn
    diff = shift - true_shift
    if angles is None:
        diff = diff - diff.mean(dim=0)
    else:
        theta = torch.deg2rad(angles.double())
        basis = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)  # (T, 2)
        fit = torch.linalg.lstsq(basis, diff[:, :1]).solution
        diff = torch.stack([diff[:, 0] - (basis @ fit)[:, 0], diff[:, 1] - diff[:, 1].mean()], 1)
    err = diff.norm(dim=1)
    turn = rot - true_rot
    out = {
        "shift_err_median_px": float(err.median()),
        "shift_err_p90_px": float(torch.quantile(err, 0.9)),
        "rotation_err_deg": float(turn.abs().median()),
    }
    if angles is not None:
        # A small rotation (w_x, w_z) of the volume turns tilt theta's image in its plane by
        # w_z cos(theta) - w_x sin(theta); its out-of-plane rest is far below a pixel here.
        fit = torch.linalg.lstsq(basis, turn[:, None]).solution
        rest = turn - (basis @ fit)[:, 0]
        out["rotation_err_deg_volume_rotation_removed"] = float(rest.abs().median())
    if true_rest is not None and found_rest is not None:
        out["local_field_rmse_px"] = float((found_rest - true_rest).square().sum(-1).mean().sqrt())
    return out

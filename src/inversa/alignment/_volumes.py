"""Volume primitives shared by every aligner.

Rotate, shift, masks, the missing wedge, and the FFT translation search with a sub-voxel
peak.

Conventions (those of :mod:`inversa.core.rotations`): volumes ``(..., D, H, W)`` indexed
[z, y, x], coordinates (x, y, z) about the box centre ``n // 2``; a rotation ``R`` turns a
reference into a particle as ``particle(r) = reference(R^T r)``, and a shift ``s`` moves
it as ``particle(r) = reference(r - s)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from inversa.core.errors import InputError
from inversa.core.fourier import frequency_grid

if TYPE_CHECKING:
    from inversa.tomography import TiltGeometry

__all__ = [
    "find_shift",
    "fourier_frequencies",
    "rotate_volume",
    "shift_from_spectra",
    "shift_volume",
    "spherical_mask",
    "wedge_mask",
]


def _centred_coordinates(shape, *, device, dtype) -> torch.Tensor:
    """``(D, H, W, 3)`` voxel coordinates (x, y, z) relative to the centre ``n // 2``."""
    d, h, w = shape
    z = torch.arange(d, device=device, dtype=dtype) - d // 2
    y = torch.arange(h, device=device, dtype=dtype) - h // 2
    x = torch.arange(w, device=device, dtype=dtype) - w // 2
    zz, yy, xx = torch.meshgrid(z, y, x, indexing="ij")
    return torch.stack([xx, yy, zz], dim=-1)


def rotate_volume(volume: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate volumes actively about the box centre: ``out(r) = volume(R^T r)``.

    Trilinear interpolation, zero outside the box.

    Parameters
    ----------
    volume
        ``(D, H, W)`` or ``(N, D, H, W)``.
    rotation
        ``(3, 3)`` or ``(N, 3, 3)`` (broadcast against the volumes).

    Returns
    -------
    torch.Tensor
        ``(N, D, H, W)`` (or ``(D, H, W)`` when both inputs are unbatched).
    """
    single = volume.ndim == 3 and rotation.ndim == 2
    vol = volume if volume.ndim == 4 else volume[None]
    rot = rotation if rotation.ndim == 3 else rotation[None]
    n = max(vol.shape[0], rot.shape[0])
    vol = vol.expand(n, *vol.shape[1:])
    rot = rot.to(vol.dtype).expand(n, 3, 3)
    shape = vol.shape[1:]
    coords = _centred_coordinates(shape, device=vol.device, dtype=vol.dtype)
    # Row-vector form of s = R^T r is r @ R.
    src = torch.einsum("dhwi,nij->ndhwj", coords, rot)
    size = torch.tensor(shape[::-1], device=vol.device, dtype=vol.dtype)  # (W, H, D)
    centre = torch.div(size, 2, rounding_mode="floor")
    grid = 2.0 * (src + centre) / (size - 1).clamp_min(1) - 1.0
    out = F.grid_sample(
        vol[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True
    )[:, 0]
    return out[0] if single else out


def fourier_frequencies(shape, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """``(D, H, W, 3)`` frequencies (kx, ky, kz) in cycles/voxel, ``torch.fft.fftn`` layout."""
    d, h, w = shape
    return frequency_grid((d, h, w), fftshift=False, device=device, dtype=dtype)


def shift_volume(volume: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift volumes by sub-voxel amounts with a Fourier phase ramp: ``out(r) = v(r - s)``.

    Parameters
    ----------
    volume
        ``(..., D, H, W)`` real.
    shift
        ``(..., 3)`` shifts (x, y, z) in voxels, broadcast against the batch.

    Returns
    -------
    torch.Tensor
        ``(..., D, H, W)`` real (periodic boundary, as any Fourier shift).
    """
    k = fourier_frequencies(volume.shape[-3:], device=volume.device, dtype=volume.dtype)
    s = shift.to(volume.dtype)[..., None, None, None, :]
    phase = torch.exp(-2j * math.pi * (k * s).sum(-1))
    return torch.fft.ifftn(torch.fft.fftn(volume, dim=(-3, -2, -1)) * phase, dim=(-3, -2, -1)).real


def spherical_mask(
    shape,
    *,
    radius: float | None = None,
    soft_edge: float = 3.0,
    device=None,
    dtype=torch.float32,
) -> torch.Tensor:
    """Soft spherical mask about the box centre, 1 inside ``radius``, cosine edge.

    Parameters
    ----------
    shape
        ``(D, H, W)``.
    radius
        In voxels; default ``min(shape) // 2 - soft_edge``.
    soft_edge
        Width of the raised-cosine fall-off in voxels.

    Returns
    -------
    torch.Tensor
        ``(D, H, W)`` in [0, 1].
    """
    if radius is None:
        radius = min(shape) // 2 - soft_edge
    r = torch.linalg.vector_norm(_centred_coordinates(shape, device=device, dtype=dtype), dim=-1)
    if soft_edge <= 0:
        return (r <= radius).to(dtype)
    t = ((r - radius) / soft_edge).clamp(0.0, 1.0)
    return 0.5 * (1.0 + torch.cos(math.pi * t))


def wedge_mask(
    shape,
    *,
    tilt_min: float = -60.0,
    tilt_max: float = 60.0,
    geometry: TiltGeometry | None = None,
    device=None,
    dtype=torch.float32,
) -> torch.Tensor:
    """Fourier samples measured by a single-axis tilt series about y (1) or not (0).

    With the projector's convention (detector coordinate ``u = x cos t + z sin t``),
    the tilt ``t`` measures the central plane spanned by ``ky`` and ``(cos t, 0, sin t)``,
    so a frequency is measured when ``atan(kz / kx)`` lies in ``[tilt_min, tilt_max]``.
    The ``ky`` axis (``kx = kz = 0``) is always measured.

    Parameters
    ----------
    shape
        ``(D, H, W)`` of the particle box.
    tilt_min, tilt_max
        Tilt range in degrees, within [-90, 90].
    geometry
        A :class:`~inversa.tomography.TiltGeometry` whose measured range
        (``geometry.wedge``) replaces ``tilt_min`` and ``tilt_max``.

    Returns
    -------
    torch.Tensor
        ``(D, H, W)`` in ``torch.fft.fftn`` layout (not shifted).
    """
    if geometry is not None:
        tilt_min, tilt_max = geometry.wedge
    if not -90.0 <= tilt_min <= tilt_max <= 90.0:
        raise InputError(
            None, f"wedge tilt range must lie in [-90, 90]; got {tilt_min}, {tilt_max}"
        )
    k = fourier_frequencies(shape, device=device, dtype=torch.float64)
    kx, kz = k[..., 0], k[..., 2]
    angle = torch.rad2deg(torch.atan(kz / kx))  # kx = 0 gives +-90 (and nan at kz = 0)
    eps = 1e-9
    measured = (angle >= tilt_min - eps) & (angle <= tilt_max + eps)
    measured |= (kx == 0) & (kz == 0)
    if tilt_max >= 90.0 - eps or tilt_min <= -90.0 + eps:
        measured |= kx == 0
    return measured.to(dtype)


def _upsampled_peak(
    spectrum: torch.Tensor, peak: torch.Tensor, upsample: int, radius: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine integer peaks to ``1 / upsample`` voxel with a local upsampled DFT.

    The cross-correlation ``c(s) = sum_k X(k) exp(2 pi i k . s)`` is evaluated on a
    ``(m, m, m)`` grid of spacing ``1 / upsample`` within 1.5 voxels of the integer peak,
    separably (three small matrix products), after Guizar-Sicairos et al. (2008); points
    farther than ``radius`` from the origin are not candidates. Returns the refined
    peaks ``(N, 3)`` and ``c`` there ``(N,)``.
    """
    n_batch = spectrum.shape[0]
    shape = spectrum.shape[1:]
    dev, cdt = spectrum.device, spectrum.dtype
    rdt = spectrum.real.dtype
    half = math.ceil(1.5 * upsample)
    offs = torch.arange(-half, half + 1, device=dev, dtype=rdt) / upsample  # (m,)
    m = offs.numel()
    out = torch.empty(n_batch, 3, device=dev, dtype=rdt)
    value = torch.empty(n_batch, device=dev, dtype=rdt)
    for b in range(n_batch):
        x = spectrum[b]  # (D, H, W) over (kz, ky, kx)
        kernels, pos = [], []
        for component, n in enumerate(shape[::-1]):  # x (W), y (H), z (D)
            k = torch.fft.fftfreq(n, device=dev, dtype=rdt)
            pos.append(peak[b, component] + offs)  # (m,)
            kernels.append(torch.exp(2j * math.pi * pos[-1][:, None] * k[None, :]).to(cdt))
        ex, ey, ez = kernels  # (m, W), (m, H), (m, D)
        c = torch.einsum("zyx,ax->zya", x, ex)
        c = torch.einsum("zya,by->zba", c, ey)
        c = torch.einsum("zba,cz->cba", c, ez).real  # (m_z, m_y, m_x)
        px, py, pz = pos
        outside = pz[:, None, None] ** 2 + py[None, :, None] ** 2 + px[None, None, :] ** 2
        c = torch.where(outside <= radius**2 + 1e-9, c, torch.finfo(rdt).min)
        flat = int(torch.argmax(c))
        iz, rem = divmod(flat, m * m)
        iy, ix = divmod(rem, m)
        out[b] = torch.stack([px[ix], py[iy], pz[iz]])
        value[b] = c[iz, iy, ix]
    return out, value


def find_shift(
    reference: torch.Tensor,
    particles: torch.Tensor,
    *,
    max_shift: float | None = None,
    upsample: int = 8,
    weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Find the shifts that best move a reference onto particles (FFT cross-correlation).

    ``particle(r) ~ reference(r - s)``: the peak of
    ``c(s) = sum_k W(k) conj(R(k)) P(k) exp(2 pi i k . s)`` within ``|s| <= max_shift``,
    refined to ``1 / upsample`` voxel. The score is the peak normalised by
    ``sqrt(sum W |R|^2 * sum W |P|^2)`` (a normalised cross-correlation in [-1, 1]).

    Parameters
    ----------
    reference
        ``(D, H, W)`` or ``(N, D, H, W)`` (one reference per particle).
    particles
        ``(N, D, H, W)`` or ``(D, H, W)``.
    max_shift
        Largest shift norm searched, in voxels; default half the smallest box size.
    upsample
        Sub-voxel refinement factor (1 keeps integer shifts).
    weight
        Optional real Fourier weights ``(D, H, W)`` or ``(N, D, H, W)`` in ``fftn`` layout:
        a missing-wedge mask, a band-pass.

    Returns
    -------
    shifts : torch.Tensor
        ``(N, 3)`` (x, y, z) voxels (``(3,)`` for unbatched inputs).
    scores : torch.Tensor
        ``(N,)`` normalised correlation at the shift.
    """
    single = reference.ndim == 3 and particles.ndim == 3
    ref = reference if reference.ndim == 4 else reference[None]
    par = particles if particles.ndim == 4 else particles[None]
    dims = (-3, -2, -1)
    w = torch.ones((), device=par.device, dtype=par.dtype) if weight is None else weight
    fp = torch.fft.fftn(par, dim=dims)
    energy_p = (w * fp.abs() ** 2).sum(dim=dims)
    fr = torch.fft.fftn(ref, dim=dims)
    peak, scores = shift_from_spectra(
        fr, fp, energy_p, weight=w, max_shift=max_shift, upsample=upsample
    )
    return (peak[0], scores[0]) if single else (peak, scores)


def shift_from_spectra(
    reference_ft: torch.Tensor,
    particles_ft: torch.Tensor,
    particles_energy: torch.Tensor,
    *,
    weight: torch.Tensor,
    max_shift: float | None,
    upsample: int,
    energy_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`find_shift` on Fourier transforms the caller computed (and may reuse).

    Parameters
    ----------
    reference_ft, particles_ft
        ``(N or 1, D, H, W)`` complex ``fftn`` of the references and particles.
    particles_energy
        ``(N or 1,)`` ``sum_k W |P(k)|^2``.
    weight
        Real Fourier weights broadcasting against ``(N, D, H, W)`` (``fftn`` layout).
    max_shift, upsample
        As in :func:`find_shift`.
    energy_weight
        Weights of the reference energy ``sum_k E |R|^2`` of the normalisation (default
        ``weight``): with a 3-D CTF weight ``M`` as ``weight``, ``M^2`` makes the score
        ``Re sum M conj(R) P / sqrt(sum M^2 |R|^2 * particles_energy)``, at most 1 by
        Cauchy-Schwarz when ``particles_energy`` sums ``|P|^2`` over the support of ``M``.

    Returns
    -------
    shifts, scores : torch.Tensor
        ``(N, 3)`` (x, y, z) voxels and ``(N,)``.
    """
    fr, fp, w = reference_ft, particles_ft, weight
    n = max(fr.shape[0], fp.shape[0])
    shape = fp.shape[-3:]
    dims = (-3, -2, -1)
    rdt = fp.real.dtype
    spectrum = (w * fr.conj() * fp).expand(n, *shape)
    cc = torch.fft.ifftn(spectrum, dim=dims).real  # c(s) at integer s (wrapped)
    # Integer shifts of the wrapped correlation, per axis in fft order (0, 1, ..., -1).
    xx, yy, zz = frequency_grid(
        shape, fftshift=False, spacing=[1.0 / s for s in shape], device=fp.device, dtype=rdt
    ).unbind(-1)
    radius = min(shape) / 2 if max_shift is None else max_shift
    allowed = (xx**2 + yy**2 + zz**2) <= radius**2 + 1e-9
    masked = torch.where(allowed, cc, torch.finfo(cc.dtype).min).reshape(n, -1)
    numer, flat = torch.max(masked, dim=1)
    numer = numer * math.prod(shape)  # ifftn divides by the size; the score is the plain sum
    peak = torch.stack([xx.reshape(-1)[flat], yy.reshape(-1)[flat], zz.reshape(-1)[flat]], dim=1)
    if upsample > 1:
        peak, numer = _upsampled_peak(spectrum, peak, upsample, radius)
    ew = w if energy_weight is None else energy_weight
    energy_r = (ew * fr.abs() ** 2).sum(dim=dims).expand(n)
    denom = torch.sqrt(energy_r * particles_energy.expand(n)).clamp_min(torch.finfo(rdt).tiny)
    return peak, numer / denom

"""Fourier averaging of aligned particles, gold-standard half maps and FSC.

Wedge-weighted (``sum W P / max(sum W, 1)``), or CTF-corrected with per-particle 3-D CTF
weights ``M`` (``sum M P / (sum M^2 + c_s)``, the Wiener constant ``c_s`` of each shell
from the half sets' FSC).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inversa.alignment._ctfweight import ParticleCTF
from inversa.alignment._volumes import rotate_volume, shift_volume, spherical_mask, wedge_mask
from inversa.core.errors import InputError
from inversa.core.fourier import fourier_shell_correlation, fsc_resolution, shell_index

__all__ = ["AverageResult", "average_particles"]


@dataclass(frozen=True)
class AverageResult:
    """A subtomogram average with its gold-standard half maps.

    Attributes
    ----------
    map
        ``(D, H, W)`` average of all particles, in the reference frame.
    half1, half2
        ``(D, H, W)`` averages of the particles with ``rlnRandomSubset`` 1 and 2.
    fsc
        ``(n // 2 + 1,)`` Fourier shell correlation of the masked half maps, shell ``s``
        at ``s / n`` cycles per voxel.
    resolution
        Where the FSC first falls below 0.143, in the unit of ``pixel_size`` (Nyquist
        ``2 * pixel_size`` when it never does, ``inf`` when it starts below).
    """

    map: torch.Tensor
    half1: torch.Tensor
    half2: torch.Tensor
    fsc: torch.Tensor
    resolution: float


def _accumulate(
    volumes: torch.Tensor,
    rotations: torch.Tensor,
    shifts: torch.Tensor,
    wedge: torch.Tensor | None,
    batch_size: int,
    ctf: ParticleCTF | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum ``W_i FFT(aligned_i)`` and of ``W_i`` (both in the reference frame).

    With ``ctf``: ``sum M_i(R_i k) FFT(aligned_i)(k)`` and ``sum M_i(R_i k)^2``, the 3-D
    CTF weights evaluated exactly at the rotated frequencies.
    """
    shape = volumes.shape[-3:]
    dims = (-3, -2, -1)
    complex_dtype = torch.promote_types(volumes.dtype, torch.complex64)
    numer = torch.zeros(shape, device=volumes.device, dtype=complex_dtype)
    denom = torch.zeros(shape, device=volumes.device, dtype=volumes.dtype)
    for start in range(0, volumes.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        rot_t = rotations[sl].transpose(-1, -2)
        # aligned(r) = particle(R r + s): undo the shift, then the rotation.
        aligned = rotate_volume(shift_volume(volumes[sl], -shifts[sl]), rot_t)
        spectra = torch.fft.fftn(aligned, dim=dims)
        if ctf is not None:
            # aligned_i(r) = particle_i(R_i r): its spectrum at k is P_i(R_i k) ~ M_i(R_i k) F(k).
            weights = ctf.subset(sl).on_grid(
                tuple(shape), rotations=rotations[sl], device=volumes.device
            )
            weights = weights.to(volumes.dtype)
            numer += (weights * spectra).sum(0)
            denom += (weights**2).sum(0)
        elif wedge is None:
            numer += spectra.sum(0)
            denom += aligned.shape[0]
        else:
            # The particle measures k where W(k) = 1; aligned, it measures k where W(R k) = 1.
            centred = torch.fft.fftshift(wedge, dim=dims)
            weights = torch.fft.ifftshift(rotate_volume(centred, rot_t), dim=dims)
            numer += (weights * spectra).sum(0)
            denom += weights.sum(0)
    return numer, denom


def _finish(numer: torch.Tensor, denom: torch.Tensor, min_weight: float) -> torch.Tensor:
    # Where less than min_weight particles saw a frequency, damp it instead of amplifying noise.
    return torch.fft.ifftn(numer / denom.clamp_min(min_weight), dim=(-3, -2, -1)).real


def wiener_constants(
    numer1: torch.Tensor,
    numer2: torch.Tensor,
    denom: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Per-shell Wiener constants ``c_s`` of a CTF-corrected average, from the half sets.

    Model per shell: ``P_i = M_i F + n_i`` with noise power ``sigma_n^2`` and signal power
    ``sigma_F^2``; the optimal constant is ``sigma_n^2 / sigma_F^2``. The FSC of the half
    sets' CTF-weighted sums ``sum M_i P_i`` (masked in real space) gives their SNR
    ``FSC / (1 - FSC) = sigma_F^2 <sum M^2> / sigma_n^2``, so
    ``c_s = <sum M^2>_s (1 - FSC_s) / FSC_s`` with ``<.>_s`` the shell mean of one half
    set's ``sum M^2`` (``denom`` is that mean over both halves, per voxel). The FSC is
    clamped to ``[1e-3, 0.999]``.

    Parameters
    ----------
    numer1, numer2
        ``(D, H, W)`` complex ``sum M_i FFT(aligned_i)`` of each half set (fftn layout).
    denom
        ``(D, H, W)`` ``(sum_1 M^2 + sum_2 M^2) / 2``.
    mask
        ``(D, H, W)`` real-space mask applied before the FSC.

    Returns
    -------
    torch.Tensor
        ``(D, H, W)`` the constant of each voxel's shell.
    """
    dims = (-3, -2, -1)
    a = torch.fft.ifftn(numer1, dim=dims).real * mask
    b = torch.fft.ifftn(numer2, dim=dims).real * mask
    fsc = fourier_shell_correlation(a, b).clamp(1e-3, 0.999)
    shape = tuple(denom.shape)
    shells = shell_index(shape, fftshift=False, device=denom.device)  # the sums' fftn layout
    n_shells = fsc.shape[0]
    idx = shells.clamp_max(n_shells - 1).reshape(-1)
    total = torch.zeros(n_shells, dtype=denom.dtype, device=denom.device)
    count = torch.zeros_like(total)
    total.index_add_(0, idx, denom.reshape(-1))
    count.index_add_(0, idx, torch.ones_like(denom.reshape(-1)))
    mean = total / count.clamp_min(1)
    c = mean * (1 - fsc.to(denom.dtype)) / fsc.to(denom.dtype)
    c = c.clamp_min(1e-6 * float(mean.max().clamp_min(1e-30)))
    return c[idx].reshape(shape)


def average_particles(
    volumes: torch.Tensor,
    rotations: torch.Tensor,
    shifts: torch.Tensor,
    *,
    wedge: tuple[float, float] | None = None,
    subsets: torch.Tensor | None = None,
    pixel_size: float = 1.0,
    mask_radius: float | None = None,
    min_weight: float = 1.0,
    batch_size: int = 16,
    ctf: ParticleCTF | None = None,
) -> AverageResult:
    """Average aligned particles in Fourier space, weighting each by its missing wedge.

    Each particle is brought into the reference frame
    (``aligned_i(r) = particle_i(R_i r + s_i)``) and the average is
    ``F^-1[ sum_i W_i(R_i k) P_i(k) / max(sum_i W_i(R_i k), min_weight) ]`` with ``W`` the
    wedge of the tilt range (1 without a wedge): frequencies a particle did not measure
    do not dilute the average. Half maps use ``subsets``; their FSC is computed inside a
    soft spherical mask.

    Parameters
    ----------
    volumes
        ``(N, D, H, W)`` particles.
    rotations
        ``(N, 3, 3)``: particle ``i`` is the reference rotated by ``rotations[i]`` ...
    shifts
        ``(N, 3)`` ... and then shifted by ``shifts[i]`` voxels (x, y, z), the poses of
        :class:`~inversa.alignment.AlignmentResult`.
    wedge
        ``(tilt_min, tilt_max)`` in degrees of every particle's tilt range, or ``None``.
    subsets
        ``(N,)`` integers 1 or 2 (``rlnRandomSubset``); default alternates 1, 2, 1, ...
    pixel_size
        Unit of the returned resolution (e.g. Angstrom per voxel).
    mask_radius
        Radius in voxels of the soft mask used for the FSC; default ``box // 2 - 3``.
    min_weight
        Smallest weight sum divided by (in particles); below it frequencies are damped.
    batch_size
        Particles transformed at once.
    ctf
        Per-particle 3-D CTF weights ``M_i`` (one entry per particle): the average is
        CTF-corrected, ``F^-1[sum M_i(R_i k) P_i / (sum M_i(R_i k)^2 + c_s)]`` per half
        set and for the full map, with the Wiener constant ``c_s`` of each shell from the
        half sets' FSC (:func:`wiener_constants`); ``wedge`` and ``min_weight`` are then
        not used (the weights hold the tilt range).

    Returns
    -------
    AverageResult

    Raises
    ------
    InputError
        Shapes disagree, a subset is empty or not 1/2, or a value is not finite.
    """
    if volumes.ndim != 4:
        raise InputError(None, f"volumes must be (N, D, H, W), got {tuple(volumes.shape)}")
    n = volumes.shape[0]
    if rotations.shape != (n, 3, 3) or shifts.shape != (n, 3):
        raise InputError(
            None,
            f"{n} volumes need rotations (N, 3, 3) and shifts (N, 3); got "
            f"{tuple(rotations.shape)} and {tuple(shifts.shape)}",
        )
    if not torch.isfinite(volumes).all():
        raise InputError(None, "volumes contain NaN or infinite values")
    if min_weight <= 0:
        raise InputError(None, f"min_weight must be positive, got {min_weight}")
    if subsets is None:
        subsets = torch.arange(n, device=volumes.device) % 2 + 1
    subsets = torch.as_tensor(subsets, device=volumes.device)
    if subsets.shape != (n,) or not bool(((subsets == 1) | (subsets == 2)).all()):
        raise InputError(None, "subsets must hold one value, 1 or 2, per particle")
    if int((subsets == 1).sum()) == 0 or int((subsets == 2).sum()) == 0:
        raise InputError(None, "both half sets (rlnRandomSubset 1 and 2) need particles")
    if ctf is not None and len(ctf) != n:
        raise InputError(None, f"ctf holds {len(ctf)} particles for {n} volumes")
    rotations = rotations.to(volumes.dtype)
    shifts = shifts.to(volumes.dtype)
    shape = tuple(volumes.shape[-3:])
    wedge_volume = None
    if wedge is not None:
        wedge_volume = wedge_mask(
            shape, tilt_min=wedge[0], tilt_max=wedge[1], device=volumes.device, dtype=volumes.dtype
        )
    sums = {}
    for half in (1, 2):
        pick = subsets == half
        sums[half] = _accumulate(
            volumes[pick],
            rotations[pick],
            shifts[pick],
            wedge_volume,
            batch_size,
            None if ctf is None else ctf.subset(pick),
        )
    mask = spherical_mask(shape, radius=mask_radius, device=volumes.device, dtype=volumes.dtype)
    if ctf is None:
        half1 = _finish(*sums[1], min_weight)
        half2 = _finish(*sums[2], min_weight)
        full = _finish(sums[1][0] + sums[2][0], sums[1][1] + sums[2][1], min_weight)
    else:
        (n1, d1), (n2, d2) = sums[1], sums[2]
        c = wiener_constants(n1, n2, 0.5 * (d1 + d2), mask)
        dims = (-3, -2, -1)
        # Beyond Nyquist (the cube's corners) no FSC shell measures the SNR: the corners
        # would inherit the last shell's constant and amplify interpolation noise there
        # (measured: 10x the signal shells' power in the demo's average), so they are 0.
        inside = shell_index(shape, fftshift=False, device=c.device) <= max(shape) // 2
        inside = inside.to(c.dtype)
        half1 = torch.fft.ifftn(n1 * inside / (d1 + c), dim=dims).real
        half2 = torch.fft.ifftn(n2 * inside / (d2 + c), dim=dims).real
        full = torch.fft.ifftn((n1 + n2) * inside / (d1 + d2 + c), dim=dims).real
    fsc = fourier_shell_correlation(half1 * mask, half2 * mask)
    resolution = fsc_resolution(fsc, threshold=0.143, pixel_size=pixel_size, box_size=max(shape))
    return AverageResult(map=full, half1=half1, half2=half2, fsc=fsc, resolution=resolution)

"""Exhaustive matched filtering over an SO(3) grid: the baseline aligner.

For every orientation of a grid the reference is rotated, and the wedge-weighted
cross-correlation with the particle is evaluated at every shift at once by FFT; the
score at the best shift is normalised as ``C / sqrt(sum W |R ref|^2 sum W |P|^2)`` (the
score of :func:`inversa.alignment.find_shift`). A coarse global grid
(:func:`~inversa.core.rotations.so3_grid`) gives candidates; finer local grids
(:func:`~inversa.core.rotations.local_so3_grid`) around the best ones refine them, as
RELION's auto-refine does. The particle is then re-centred on its sub-voxel shift and the
last levels are searched again around it.

Global searches share the rotated references between particles: each grid rotation is
interpolated and Fourier transformed once per batch of particles.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from inversa.alignment._ctfweight import ParticleCTF
from inversa.alignment._result import AlignmentResult
from inversa.alignment._volumes import (
    find_shift,
    fourier_frequencies,
    rotate_volume,
    shift_from_spectra,
    shift_volume,
    spherical_mask,
    wedge_mask,
)
from inversa.core.errors import InputError
from inversa.core.fourier import frequency_grid
from inversa.core.rotations import geodesic_distance, local_so3_grid, so3_grid

__all__ = ["ExhaustiveConfig", "align_exhaustive"]

# Frequencies kept at a level are those where a rotation error of one grid step moves the
# mask radius by at most this fraction of a period: beyond it the score of the nearest grid
# point no longer reflects the true orientation, and a coarse grid would miss it.
_BAND_PER_STEP = 0.5


@dataclass(frozen=True, kw_only=True)
class ExhaustiveConfig:
    """Settings of :func:`align_exhaustive`.

    Attributes
    ----------
    coarse_step
        Angular spacing of the global grid in degrees (``so3_grid``; 15 gives 3,301
        orientations, 7.5 gives 26,406).
    refine_steps
        Spacings of the successive local grids in degrees, decreasing. Each local grid
        covers the previous spacing around the current candidates.
    n_candidates
        Distinct coarse peaks (at least two coarse steps apart) refined by the first
        local grid; later levels refine the best one.
    max_angle_deg
        Local mode: when ``prior_rotations`` are given, search only within this many
        degrees of each (the first local grid spans it). ``None``: global search always
        (priors ignored).
    max_shift
        Largest shift norm searched, in voxels.
    wedge
        ``(tilt_min, tilt_max)`` in degrees: every particle's missing wedge (tilt axis y)
        weights the correlation; ``None`` for full Fourier coverage.
    mask_radius
        Radius of the soft spherical mask applied to reference and particles, in
        voxels; default ``box // 2 - 3``.
    max_frequency
        Band limit of the score in cycles per voxel (0.5 is Nyquist). Coarse levels use
        less: ``0.5 / (mask_radius * step)`` (step in radians), so that a grid step
        shifts the particle's rim by at most half a period at the highest frequency kept.
    upsample
        Sub-voxel refinement factor of the final shift.
    multiresolution
        Fourier-crop the coarse levels to their useful band (see ``max_frequency``), as
        RELION does; ``False`` scores every level at the full band (the plain matched
        filter: much slower, no more accurate; see ``docs/alignment.md``).
    batch_size
        Rotations interpolated and transformed at once (memory ~ ``6 * batch * box^3``
        floats).
    """

    coarse_step: float = 15.0
    refine_steps: tuple[float, ...] = (7.5, 3.75, 1.875, 0.94, 0.47)
    n_candidates: int = 3
    max_angle_deg: float | None = None
    max_shift: float = 4.0
    wedge: tuple[float, float] | None = None
    mask_radius: float | None = None
    max_frequency: float = 0.5
    upsample: int = 8
    multiresolution: bool = True
    batch_size: int = 32

    def __post_init__(self) -> None:
        if not 0 < self.coarse_step <= 180:
            raise InputError(None, f"coarse_step must be in (0, 180], got {self.coarse_step}")
        steps = tuple(self.refine_steps)
        if any(s <= 0 for s in steps) or any(b >= a for a, b in itertools.pairwise(steps)):
            raise InputError(None, f"refine_steps must be positive and decreasing: {steps}")
        if self.n_candidates < 1 or self.batch_size < 1 or self.upsample < 1:
            raise InputError(None, "n_candidates, batch_size and upsample must be >= 1")
        if self.max_angle_deg is not None and not 0 < self.max_angle_deg <= 180:
            raise InputError(None, f"max_angle_deg must be in (0, 180], got {self.max_angle_deg}")
        if self.max_shift < 0:
            raise InputError(None, f"max_shift must be >= 0, got {self.max_shift}")
        if not 0 < self.max_frequency <= 0.5 * math.sqrt(3):
            raise InputError(None, f"max_frequency must be in (0, 0.87], got {self.max_frequency}")


def _fourier_crop(x: torch.Tensor, box: int) -> torch.Tensor:
    """Keep the central ``box^3`` Fourier samples of ``(..., n, n, n)`` volumes.

    The result samples the same band-limited function on a coarser grid (``n / box``
    voxels per sample) and keeps the box centre at index ``box // 2``.
    """
    n = x.shape[-1]
    if box == n:
        return x
    dims = (-3, -2, -1)
    spectrum = torch.fft.fftshift(torch.fft.fftn(x, dim=dims), dim=dims)
    lo = n // 2 - box // 2
    cut = spectrum[..., lo : lo + box, lo : lo + box, lo : lo + box]
    small = torch.fft.ifftn(torch.fft.ifftshift(cut, dim=dims), dim=dims).real
    return small * (box / n) ** 3


@dataclass(frozen=True)
class _Scorer:
    """Fourier-side pieces shared by every score evaluation at one working box size."""

    shape: tuple[int, int, int]
    scale: float  # original voxels per working voxel
    reference: torch.Tensor  # (b, b, b) masked, Fourier-cropped
    weight_half: torch.Tensor  # (b, b, b//2+1) wedge x band, zero at k = 0 (rfft layout)
    hermitian: torch.Tensor  # (b//2+1,) multiplicity of each rfft column in the full spectrum
    allowed: torch.Tensor  # (b^3,) shifts within max_shift, fft order


class _Scorers:
    """Scorers by working box size, built on first use."""

    def __init__(
        self, reference: torch.Tensor, config: ExhaustiveConfig, ctf: ParticleCTF | None = None
    ) -> None:
        self.config = config
        self.ctf = ctf
        self._weights: dict[tuple[int, float], torch.Tensor] = {}
        self.shape = tuple(reference.shape)
        n = self.shape[-1]
        self.mask = spherical_mask(
            self.shape, radius=config.mask_radius, device=reference.device, dtype=reference.dtype
        )
        self.reference = reference * self.mask
        radius = config.mask_radius if config.mask_radius is not None else n // 2 - 3.0
        self.mask_radius = max(float(radius), 1.0)
        self._cache: dict[float, _Scorer] = {}

    @functools.cached_property
    def full_band_weight(self) -> torch.Tensor:
        """``(D, H, W)`` wedge x band weight of the final shift searches (fftn layout).

        Built once per alignment: each particle's shift is searched twice with it.
        """
        cfg = self.config
        shape = self.shape
        dev, dt = self.reference.device, self.reference.dtype
        if cfg.wedge is None:
            weight = torch.ones(shape, device=dev, dtype=dt)
        else:
            lo, hi = cfg.wedge
            weight = wedge_mask(shape, tilt_min=lo, tilt_max=hi, device=dev, dtype=dt)
        radius = frequency_grid(shape, fftshift=False, norm=True, device=dev, dtype=dt)
        weight = weight * (radius <= cfg.max_frequency).to(dt)
        weight[0, 0, 0] = 0.0
        return weight

    def box_for(self, cutoff: float) -> int:
        """Smallest even working box that holds frequencies up to ``cutoff`` (cycles/voxel)."""
        n = self.shape[-1]
        if len(set(self.shape)) != 1:
            return n  # cropping assumes a cubic box
        box = 2 * math.ceil(cutoff * n) + 2
        return n if box >= n else box

    def at(self, cutoff: float) -> _Scorer:
        """Return the scorer for a band limit ``cutoff`` in cycles per original voxel."""
        if cutoff in self._cache:
            return self._cache[cutoff]
        n = self.shape[-1]
        box = self.box_for(cutoff)
        shape = (box, box, box) if box != n else self.shape
        dev, dt = self.reference.device, self.reference.dtype
        scale = n / box
        cfg = self.config
        if cfg.wedge is None:
            wedge = torch.ones(shape, device=dev, dtype=dt)
        else:
            lo, hi = cfg.wedge
            wedge = wedge_mask(shape, tilt_min=lo, tilt_max=hi, device=dev, dtype=dt)
        half = shape[2] // 2 + 1
        k = fourier_frequencies(shape, device=dev, dtype=dt)[..., :half, :] / scale
        band = (torch.linalg.vector_norm(k, dim=-1) <= cutoff).to(dt)
        weight = wedge[..., :half] * band
        weight[0, 0, 0] = 0.0  # the score ignores the mean
        hermitian = torch.full((half,), 2.0, device=dev, dtype=dt)
        hermitian[0] = 1.0
        if shape[2] % 2 == 0:
            hermitian[-1] = 1.0
        xx, yy, zz = frequency_grid(
            shape, fftshift=False, spacing=[1.0 / m for m in shape], device=dev, dtype=dt
        ).unbind(-1)
        reach = (cfg.max_shift / scale) ** 2 + 1e-9
        allowed = ((xx**2 + yy**2 + zz**2) <= reach).reshape(-1)
        scorer = _Scorer(
            shape=shape,
            scale=scale,
            reference=_fourier_crop(self.reference, box) if box != n else self.reference,
            weight_half=weight,
            hermitian=hermitian,
            allowed=allowed,
        )
        self._cache[cutoff] = scorer
        return scorer

    def particle_weight(self, index: int, cutoff: float | None) -> torch.Tensor:
        """Particle ``index``'s 3-D CTF weight x band at a level (``None``: full band).

        ``(b, b, b//2+1)`` rfft layout of the level's box, zero at ``k = 0``; the full band
        is ``(D, H, W)`` fftn layout (the final shift searches).
        """
        key = (index, -1.0 if cutoff is None else cutoff)
        if key in self._weights:
            return self._weights[key]
        one = self.ctf.subset(slice(index, index + 1))
        dev, dt = self.reference.device, self.reference.dtype
        if cutoff is None:
            k = fourier_frequencies(self.shape, device=dev, dtype=torch.float64)
            weight = one.weights(k)[0].to(dt) * self.full_band_weight
        else:
            scorer = self.at(cutoff)
            half = scorer.shape[2] // 2 + 1
            k = fourier_frequencies(scorer.shape, device=dev, dtype=torch.float64)[..., :half, :]
            weight = one.weights(k / scorer.scale)[0].to(dt) * scorer.weight_half
        self._weights[key] = weight
        return weight

    def crop(self, scorer: _Scorer, particle: torch.Tensor) -> torch.Tensor:
        """Mask ``(..., D, H, W)`` particles and bring them to the scorer's box."""
        masked = particle * self.mask
        return masked if scorer.shape == self.shape else _fourier_crop(masked, scorer.shape[0])


def _level_cutoff(scorers: _Scorers, step_deg: float) -> float:
    if not scorers.config.multiresolution:
        return scorers.config.max_frequency
    limit = _BAND_PER_STEP / (scorers.mask_radius * math.radians(step_deg))
    return min(scorers.config.max_frequency, limit)


@functools.lru_cache(maxsize=8)
def _unit_grid(n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``(n^3, 4)`` homogeneous normalised coordinates ``(u_x, u_y, u_z, 1)`` of a cube."""
    u = torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype)
    zz, yy, xx = torch.meshgrid(u, u, u, indexing="ij")
    return torch.stack([xx, yy, zz, torch.ones_like(xx)], dim=-1).reshape(-1, 4)


def _rotate_many(volume: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """``rotate_volume(volume, rotations)`` for a cubic box, with one batched grid product.

    Same trilinear samples; the sampling grid is a single ``(n^3, 4) x (4, 3)`` matrix
    product per rotation on cached coordinates, several times faster than building
    per-voxel coordinates when thousands of orientations are scored.
    """
    n = volume.shape[-1]
    if len(set(volume.shape)) != 1 or n < 2:
        return rotate_volume(volume, rotations)
    rot_t = rotations.to(volume.dtype).transpose(-1, -2)
    # Normalised coordinates u = 2 idx / (n - 1) - 1; the centre n // 2 sits at -t.
    t = torch.full((3,), 1.0 - 2.0 * (n // 2) / (n - 1), device=volume.device, dtype=volume.dtype)
    theta = torch.cat([rot_t, (rot_t @ t - t)[..., None]], dim=-1)  # (B, 3, 4)
    b = rotations.shape[0]
    base = _unit_grid(n, volume.device, volume.dtype)
    grid = torch.matmul(base, theta.transpose(-1, -2)).reshape(b, n, n, n, 3)
    vol = volume.expand(b, 1, n, n, n)
    return F.grid_sample(vol, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]


def _rotated_spectra(scorer: _Scorer, rotations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectra ``(B, b, b, b//2+1)`` of the rotated reference and their hermitian power."""
    rotated = _rotate_many(scorer.reference, rotations)
    spectra = torch.fft.rfftn(rotated, dim=(-3, -2, -1))
    power = (spectra.real.square() + spectra.imag.square()) * scorer.hermitian
    return spectra, power


def _particle_spectrum(
    scorer: _Scorer, cropped: torch.Tensor, weight: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``M P``, ``sum_supp |P|^2`` and the reference-energy weight ``M^2`` of a particle.

    ``weight`` is the particle's 3-D CTF weight at the level (``None``: the binary
    wedge x band of the scorer, for which ``M = M^2 =`` support).
    """
    spectrum = torch.fft.rfftn(cropped, dim=(-3, -2, -1))
    power = (spectrum.real.square() + spectrum.imag.square()) * scorer.hermitian
    if weight is None:
        w = scorer.weight_half
        return w * spectrum, (w * power).sum(), w
    support = (weight != 0).to(power.dtype)
    return weight * spectrum, (support * power).sum(), weight * weight


def _best_over_shifts(
    scorer: _Scorer,
    ref_spectra: torch.Tensor,
    ref_power: torch.Tensor,
    particle: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Normalised score ``(B,)`` of each rotated reference at its best allowed shift.

    ``C / sqrt(sum M^2 |R ref|^2 * sum_supp |P|^2)`` with ``C`` the correlation of
    ``M P`` with the rotated reference (``M`` the binary wedge or the 3-D CTF weight).
    """
    weighted, particle_energy, energy_weight = particle
    ref_energy = (energy_weight * ref_power).sum(dim=(-3, -2, -1))
    spectrum = ref_spectra.conj() * weighted
    cc = torch.fft.irfftn(spectrum, s=scorer.shape, dim=(-3, -2, -1))
    flat = cc.reshape(cc.shape[0], -1)[:, scorer.allowed]
    n = math.prod(scorer.shape)
    denom = torch.sqrt(ref_energy * particle_energy).clamp_min(torch.finfo(cc.dtype).tiny)
    return flat.amax(dim=1) * n / denom


def _weight_at(scorers: _Scorers, index: int | None, cutoff: float) -> torch.Tensor | None:
    return None if scorers.ctf is None or index is None else scorers.particle_weight(index, cutoff)


def _score_rotations(
    scorers: _Scorers,
    particle: torch.Tensor,
    rotations: torch.Tensor,
    cutoff: float,
    index: int | None = None,
) -> torch.Tensor:
    """Scores ``(M,)`` of one particle against the reference at ``rotations (M, 3, 3)``."""
    scorer = scorers.at(cutoff)
    prepared = _particle_spectrum(
        scorer, scorers.crop(scorer, particle), _weight_at(scorers, index, cutoff)
    )
    batch = scorers.config.batch_size
    out = []
    for start in range(0, rotations.shape[0], batch):
        spectra, ref_power = _rotated_spectra(scorer, rotations[start : start + batch])
        out.append(_best_over_shifts(scorer, spectra, ref_power, prepared))
    return torch.cat(out)


def _global_scores(
    scorers: _Scorers, particles: torch.Tensor, grid: torch.Tensor, cutoff: float
) -> torch.Tensor:
    """Scores ``(N, G)`` of every particle at every grid rotation (rotations shared)."""
    scorer = scorers.at(cutoff)
    prepared = [
        _particle_spectrum(scorer, scorers.crop(scorer, p), _weight_at(scorers, i, cutoff))
        for i, p in enumerate(particles)
    ]
    scores = torch.empty(particles.shape[0], grid.shape[0], device=grid.device, dtype=grid.dtype)
    batch = scorers.config.batch_size
    for start in range(0, grid.shape[0], batch):
        stop = min(start + batch, grid.shape[0])
        spectra, ref_power = _rotated_spectra(scorer, grid[start:stop])
        for i, one in enumerate(prepared):
            scores[i, start:stop] = _best_over_shifts(scorer, spectra, ref_power, one)
    return scores


def _distinct_peaks(
    scores: torch.Tensor, rotations: torch.Tensor, *, count: int, separation_deg: float
) -> torch.Tensor:
    """Best ``count`` rotations ``(k, 3, 3)`` at least ``separation_deg`` apart."""
    order = torch.argsort(scores, descending=True)
    chosen: list[torch.Tensor] = []
    for idx in order.tolist():
        candidate = rotations[idx]
        if all(float(geodesic_distance(candidate, c)) >= separation_deg for c in chosen):
            chosen.append(candidate)
            if len(chosen) == count:
                break
    return torch.stack(chosen)


def _refine_levels(
    scorers: _Scorers,
    particle: torch.Tensor,
    candidates: torch.Tensor,
    levels: list[tuple[float, float]],
    index: int | None = None,
) -> torch.Tensor:
    """Refine ``(k, 3, 3)`` candidates through local grids ``(radius, step)``; best ``(3, 3)``."""
    best = candidates
    for radius, step in levels:
        grid = torch.cat(
            [local_so3_grid(c, max_angle_deg=radius, step_deg=step) for c in best], dim=0
        )
        scores = _score_rotations(scorers, particle, grid, _level_cutoff(scorers, step), index)
        best = grid[int(torch.argmax(scores))][None]
    return best[0]


def _final_shift(
    scorers: _Scorers, particle: torch.Tensor, rotation: torch.Tensor, index: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-voxel shift ``(3,)`` and full-band score of ``particle`` at ``rotation``."""
    cfg = scorers.config
    rotated = rotate_volume(scorers.reference, rotation)
    if scorers.ctf is not None and index is not None:
        weight = scorers.particle_weight(index, None)
        dims = (-3, -2, -1)
        spectrum = torch.fft.fftn(particle * scorers.mask, dim=dims)
        support = (weight != 0).to(weight.dtype)
        energy = (support * spectrum.abs() ** 2).sum(dim=dims)
        shifts, score = shift_from_spectra(
            torch.fft.fftn(rotated, dim=dims)[None],
            spectrum[None],
            energy[None],
            weight=weight,
            max_shift=cfg.max_shift,
            upsample=cfg.upsample,
            energy_weight=weight * weight,
        )
        return shifts[0], score[0]
    return find_shift(
        rotated,
        particle * scorers.mask,
        max_shift=cfg.max_shift,
        upsample=cfg.upsample,
        weight=scorers.full_band_weight,
    )


def align_exhaustive(
    reference: torch.Tensor,
    volumes: torch.Tensor,
    *,
    config: ExhaustiveConfig,
    prior_rotations: torch.Tensor | None = None,
    ctf: ParticleCTF | None = None,
    progress: bool = False,
) -> AlignmentResult:
    """Align volumes to a reference by exhaustive search over SO(3) and all shifts.

    Global mode (no ``prior_rotations`` or ``config.max_angle_deg is None``): every
    particle is scored against the
    reference rotated by each orientation of ``so3_grid(config.coarse_step)``; the best
    ``n_candidates`` distinct orientations are refined on local grids of spacing
    ``refine_steps``. Local mode (``config.max_angle_deg`` and ``prior_rotations`` given):
    the first local grid spans ``max_angle_deg`` around each prior. After the first local
    level the particle is re-centred on its sub-voxel shift and the remaining levels and
    the final shift are searched on the re-centred particle.

    Parameters
    ----------
    reference
        ``(D, H, W)`` real volume.
    volumes
        ``(N, D, H, W)`` particles (or ``(D, H, W)`` for one).
    config
        Grids, wedge, mask and band limit.
    prior_rotations
        ``(N, 3, 3)`` prior orientations: local mode within ``config.max_angle_deg`` of
        them (ignored when that is ``None``); ``None`` for a global search.
    ctf
        Per-particle 3-D CTF x exposure weights (one entry per particle); they replace
        the binary wedge (``config.wedge`` is then not used) in every score, as in
        :func:`~inversa.alignment.align_newton`.
    progress
        Show a progress bar over particles (terminals only).

    Returns
    -------
    AlignmentResult
        ``rotations (N, 3, 3)``, ``shifts (N, 3)`` voxels (x, y, z) and ``scores (N,)``
        such that each volume is about the reference rotated by its rotation, then
        shifted.

    Raises
    ------
    InputError
        Shapes disagree (priors included), or the volumes hold non-finite values.
    """
    start_time = time.perf_counter()
    vols = volumes if volumes.ndim == 4 else volumes[None]
    if reference.ndim != 3 or vols.shape[1:] != reference.shape:
        raise InputError(
            None,
            f"reference {tuple(reference.shape)} and volumes {tuple(volumes.shape)} "
            "must share one (D, H, W) box",
        )
    if not (torch.isfinite(reference).all() and torch.isfinite(vols).all()):
        raise InputError(None, "reference or volumes contain NaN or infinite values")
    n = vols.shape[0]
    vols = vols.to(reference.dtype)
    local = config.max_angle_deg is not None and prior_rotations is not None
    if local:
        if prior_rotations.shape != (n, 3, 3):
            raise InputError(
                None, f"prior_rotations must be ({n}, 3, 3), got {tuple(prior_rotations.shape)}"
            )
        priors = prior_rotations.to(device=reference.device, dtype=reference.dtype)
    if ctf is not None:
        if len(ctf) != n:
            raise InputError(None, f"ctf holds {len(ctf)} particles for {n} volumes")
        config = dataclasses.replace(config, wedge=None)
    scorers = _Scorers(reference, config, ctf)
    steps = list(config.refine_steps)

    if local:
        finer = [s for s in steps if s < config.max_angle_deg] or [config.max_angle_deg / 2]
        first_levels = [(config.max_angle_deg, finer[0])]
        later_levels = list(itertools.pairwise(finer))
    else:
        grid = so3_grid(config.coarse_step, dtype=reference.dtype, device=reference.device)
        coarse = _global_scores(scorers, vols, grid, _level_cutoff(scorers, config.coarse_step))
        radii = [config.coarse_step, *steps[:-1]]
        levels = list(zip(radii, steps, strict=True))
        first_levels, later_levels = levels[:1], levels[1:]

    from rich.progress import Progress  # the bar is optional; rich is a CLI dependency

    rotations = torch.empty(n, 3, 3, device=reference.device, dtype=reference.dtype)
    shifts = torch.empty(n, 3, device=reference.device, dtype=reference.dtype)
    scores = torch.empty(n, device=reference.device, dtype=reference.dtype)
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("exhaustive alignment", total=n)
        for i in range(n):
            if local:
                candidates = priors[i][None]
            else:
                candidates = _distinct_peaks(
                    coarse[i],
                    grid,
                    count=config.n_candidates,
                    separation_deg=2.0 * config.coarse_step,
                )
            rotation = _refine_levels(scorers, vols[i], candidates, first_levels, i)
            # Re-centre on the sub-voxel shift so the finer levels compare aligned densities.
            coarse_shift, _ = _final_shift(scorers, vols[i], rotation, i)
            centred = shift_volume(vols[i], -coarse_shift)
            rotation = _refine_levels(scorers, centred, rotation[None], later_levels, i)
            residual, score = _final_shift(scorers, centred, rotation, i)
            rotations[i], shifts[i], scores[i] = rotation, coarse_shift + residual, score
            bar.advance(task)
    return AlignmentResult(
        rotations=rotations,
        shifts=shifts,
        scores=scores,
        seconds=time.perf_counter() - start_time,
    )

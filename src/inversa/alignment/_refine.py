"""Iterative gold-standard refinement: align -> average -> FSC -> low-pass the references."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from inversa.alignment._average import AverageResult, average_particles
from inversa.alignment._exhaustive import ExhaustiveConfig, align_exhaustive
from inversa.alignment._result import AlignmentResult
from inversa.core.errors import InputError
from inversa.core.fourier import lowpass

__all__ = ["IterationStats", "RefineConfig", "RefineResult", "align_particles", "refine"]

_METHODS = ("exhaustive", "newton")


@dataclass(frozen=True, kw_only=True)
class RefineConfig:
    """Settings of :func:`refine`.

    Attributes
    ----------
    method
        ``"exhaustive"`` (:func:`~inversa.alignment.align_exhaustive`) or ``"newton"``
        (:func:`~inversa.alignment.align_volumes`, frequency-marched Newton).
    exhaustive
        Settings of the exhaustive aligner (its wedge, shift range and mask are taken
        from this config).
    newton
        Settings of the Newton aligner (an ``AlignmentConfig``); default its defaults.
    wedge
        ``(tilt_min, tilt_max)`` degrees of the particles' missing wedge, or ``None``.
    local_angle
        After the first iteration (or from the start with prior rotations), search only
        this many degrees around the previous poses; ``None`` searches globally always.
    initial_resolution
        Low-pass of the starting reference, in the unit of ``pixel_size`` (e.g. 30 Å);
        ``None`` keeps it as given.
    max_shift
        Largest shift searched, in voxels.
    mask_radius
        Soft spherical mask radius in voxels (alignment and FSC); default ``box // 2 - 3``.
    """

    method: str = "exhaustive"
    exhaustive: ExhaustiveConfig = field(default_factory=ExhaustiveConfig)
    newton: Any = None
    wedge: tuple[float, float] | None = None
    local_angle: float | None = 10.0
    initial_resolution: float | None = None
    max_shift: float = 4.0
    mask_radius: float | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise InputError(
                None, f"method must be one of {', '.join(_METHODS)}, got {self.method!r}"
            )
        if self.local_angle is not None and not 0 < self.local_angle <= 180:
            raise InputError(None, f"local_angle must be in (0, 180], got {self.local_angle}")
        if self.initial_resolution is not None and not self.initial_resolution > 0:
            raise InputError(None, "initial_resolution must be positive")


@dataclass(frozen=True)
class IterationStats:
    """What one refinement iteration achieved.

    Attributes
    ----------
    iteration
        From 1.
    resolution
        Half-map FSC 0.143 resolution (unit of ``pixel_size``).
    fsc
        ``(n // 2 + 1,)`` half-map FSC.
    mean_score
        Mean normalised correlation of the particles with their references.
    local
        Whether the search was local around the previous poses.
    seconds
        Wall-clock time of the iteration.
    """

    iteration: int
    resolution: float
    fsc: torch.Tensor
    mean_score: float
    local: bool
    seconds: float


@dataclass(frozen=True)
class RefineResult:
    """The outcome of :func:`refine`.

    Attributes
    ----------
    average
        The last average, half maps, FSC and resolution.
    alignment
        The last poses of every particle.
    iterations
        One entry per iteration.
    reference
        The starting reference after its low-pass.
    """

    average: AverageResult
    alignment: AlignmentResult
    iterations: tuple[IterationStats, ...]
    reference: torch.Tensor


def align_particles(
    reference: torch.Tensor,
    volumes: torch.Tensor,
    *,
    config: RefineConfig,
    prior_rotations: torch.Tensor | None = None,
    max_frequency: float | None = None,
    progress: bool = False,
) -> AlignmentResult:
    """Align volumes with the aligner, wedge and shift range a :class:`RefineConfig` names.

    Parameters
    ----------
    reference
        ``(D, H, W)``.
    volumes
        ``(N, D, H, W)``.
    config
        ``method`` picks the aligner; with ``prior_rotations`` the search is local within
        ``config.local_angle`` (global when it is ``None``).
    prior_rotations
        ``(N, 3, 3)`` or ``None`` for a global search.
    max_frequency
        Band limit of the scores in cycles per voxel (the reference's resolution), or
        ``None`` for the aligner's own.
    progress
        Progress bar (exhaustive aligner).

    Returns
    -------
    AlignmentResult
    """
    priors = prior_rotations if config.local_angle is not None else None
    local = priors is not None
    if config.method == "exhaustive":
        cfg = replace(
            config.exhaustive,
            wedge=config.wedge,
            max_shift=config.max_shift,
            mask_radius=config.mask_radius,
            max_angle=config.local_angle if local else None,
        )
        if max_frequency is not None:
            cfg = replace(cfg, max_frequency=min(cfg.max_frequency, max_frequency))
        return align_exhaustive(
            reference, volumes, config=cfg, prior_rotations=priors, progress=progress
        )
    # Imported here: the Newton aligner's harmonic tables are only needed when chosen.
    from inversa.alignment._fast import AlignmentConfig, align_volumes

    base = config.newton if config.newton is not None else AlignmentConfig()
    changes: dict[str, Any] = {
        "wedge": config.wedge,
        "max_shift": config.max_shift,
        "mask_radius": config.mask_radius,
    }
    if local:
        changes["max_angle_deg"] = config.local_angle
    if max_frequency is not None:
        low, high = base.frequency_band
        changes["frequency_band"] = (low, max(low, min(high, max_frequency)))
    return align_volumes(
        reference, volumes, config=replace(base, **changes), prior_rotations=priors
    )


# Frequencies (cycles/voxel) scored beyond the reference's low-pass: its cosine edge.
_BAND_MARGIN = 0.02


def _band(resolution: float | None, pixel_size: float) -> float | None:
    """Band limit matching a reference low-passed at ``resolution`` (None: unfiltered)."""
    if resolution is None or not math.isfinite(resolution):
        return None
    return min(0.5, pixel_size / max(resolution, 2.0 * pixel_size) + _BAND_MARGIN)


def _lowpassed(volume: torch.Tensor, resolution: float, pixel_size: float) -> torch.Tensor:
    if not math.isfinite(resolution):
        return volume
    return lowpass(volume, resolution=max(resolution, 2.0 * pixel_size), pixel_size=pixel_size)


def refine(
    volumes: torch.Tensor,
    *,
    reference: torch.Tensor | None = None,
    config: RefineConfig,
    n_iterations: int = 3,
    subsets: torch.Tensor | None = None,
    prior_rotations: torch.Tensor | None = None,
    pixel_size: float = 1.0,
    progress: bool = False,
) -> RefineResult:
    """Refine particle poses and their average with gold-standard half sets.

    Each iteration aligns the particles of half set ``h`` to reference ``h``, averages
    (:func:`~inversa.alignment.average_particles`, wedge-weighted), measures the half-map
    FSC, and low-passes each half map at the FSC 0.143 resolution to become the next
    reference of its half; scores use frequencies up to that resolution only (as RELION
    does), which also lets the exhaustive search work on smaller Fourier-cropped boxes.
    Both halves start from one reference: the given one, else the
    average at ``prior_rotations``, else the first particle, low-passed to
    ``config.initial_resolution``. After the first iteration (or from the start, with
    priors) searches are local within ``config.local_angle`` of the previous poses.

    Parameters
    ----------
    volumes
        ``(N, D, H, W)`` particles, ``N >= 2``.
    reference
        ``(D, H, W)`` starting reference, or ``None`` to start from scratch.
    config
        Aligner, wedge, local range, initial low-pass.
    n_iterations
        Align/average rounds (>= 1).
    subsets
        ``(N,)`` half sets 1/2 (``rlnRandomSubset``); default alternates.
    prior_rotations
        ``(N, 3, 3)`` poses to start from (local search from the first iteration).
    pixel_size
        Angstrom per voxel (unit of the resolutions).
    progress
        Progress bars of the exhaustive aligner.

    Returns
    -------
    RefineResult

    Raises
    ------
    InputError
        Fewer than two particles, shapes that disagree, or a bad iteration count.
    """
    if volumes.ndim != 4 or volumes.shape[0] < 2:
        raise InputError(
            None, f"refine needs (N >= 2, D, H, W) volumes, got {tuple(volumes.shape)}"
        )
    if n_iterations < 1:
        raise InputError(None, f"n_iterations must be >= 1, got {n_iterations}")
    n = volumes.shape[0]
    if subsets is None:
        subsets = torch.arange(n) % 2 + 1
    subsets = torch.as_tensor(subsets).to(device=volumes.device)
    if prior_rotations is not None:
        prior_rotations = prior_rotations.to(device=volumes.device, dtype=volumes.dtype)
    if reference is None:
        if prior_rotations is not None:
            zero = torch.zeros(n, 3, device=volumes.device, dtype=volumes.dtype)
            reference = average_particles(
                volumes, prior_rotations, zero, wedge=config.wedge, subsets=subsets
            ).map
        else:
            reference = volumes[0].clone()
    elif reference.shape != volumes.shape[1:]:
        raise InputError(
            None,
            f"reference box {tuple(reference.shape)} differs from the particles' "
            f"{tuple(volumes.shape[1:])}",
        )
    reference = reference.to(device=volumes.device, dtype=volumes.dtype)
    if config.initial_resolution is not None:
        reference = _lowpassed(reference, config.initial_resolution, pixel_size)
    refs = {1: reference, 2: reference}
    ref_resolution = config.initial_resolution
    priors = prior_rotations if config.local_angle is not None else None
    history: list[IterationStats] = []
    rotations = torch.empty(n, 3, 3, device=volumes.device, dtype=volumes.dtype)
    shifts = torch.empty(n, 3, device=volumes.device, dtype=volumes.dtype)
    scores = torch.empty(n, device=volumes.device, dtype=volumes.dtype)
    average = None
    for iteration in range(1, n_iterations + 1):
        t0 = time.perf_counter()
        local = priors is not None
        # Both halves share the starting reference: align them in one call, which lets a
        # global search rotate the reference once for all particles.
        groups = [subsets > 0] if refs[1] is refs[2] else [subsets == 1, subsets == 2]
        for pick in groups:
            half = int(subsets[pick][0])
            result = align_particles(
                refs[half],
                volumes[pick],
                config=config,
                prior_rotations=None if priors is None else priors[pick],
                max_frequency=_band(ref_resolution, pixel_size),
                progress=progress,
            )
            rotations[pick] = result.rotations.to(rotations.dtype)
            shifts[pick] = result.shifts.to(shifts.dtype)
            scores[pick] = result.scores.to(scores.dtype)
        average = average_particles(
            volumes,
            rotations,
            shifts,
            wedge=config.wedge,
            subsets=subsets,
            pixel_size=pixel_size,
            mask_radius=config.mask_radius,
        )
        refs = {
            1: _lowpassed(average.half1, average.resolution, pixel_size),
            2: _lowpassed(average.half2, average.resolution, pixel_size),
        }
        ref_resolution = average.resolution
        if config.local_angle is not None:
            priors = rotations.clone()
        history.append(
            IterationStats(
                iteration=iteration,
                resolution=average.resolution,
                fsc=average.fsc,
                mean_score=float(scores.mean()),
                local=local,
                seconds=time.perf_counter() - t0,
            )
        )
    return RefineResult(
        average=average,
        alignment=AlignmentResult(
            rotations=rotations.clone(),
            shifts=shifts.clone(),
            scores=scores.clone(),
            seconds=sum(h.seconds for h in history),
        ),
        iterations=tuple(history),
        reference=reference,
    )

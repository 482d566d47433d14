"""Iterative gold-standard refinement: align -> average -> FSC -> low-pass the references."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import torch

from inversa.alignment._average import AverageResult, average_particles
from inversa.alignment._ctfweight import ParticleCTF
from inversa.alignment._exhaustive import ExhaustiveConfig, align_exhaustive
from inversa.alignment._newton import NewtonConfig, align_newton
from inversa.alignment._result import AlignmentResult
from inversa.core.errors import InputError
from inversa.core.fourier import lowpass

__all__ = [
    "ALIGNERS",
    "AlignerConfig",
    "IterationStats",
    "RefineConfig",
    "RefineResult",
    "align_particles",
    "aligner_config",
    "refine",
]

#: The settings of either aligner; its type names the aligner.
AlignerConfig = NewtonConfig | ExhaustiveConfig

#: Aligner names: ``"newton"`` (:func:`~inversa.alignment.align_newton`, the default)
#: and ``"exhaustive"`` (:func:`~inversa.alignment.align_exhaustive`, the baseline).
ALIGNERS = ("newton", "exhaustive")


def aligner_config(
    method: str,
    *,
    wedge: tuple[float, float] | None = None,
    max_shift: float = 4.0,
    mask_radius: float | None = None,
    max_angle_deg: float | None = None,
) -> AlignerConfig:
    """Return the named aligner's default settings with the settings both aligners share.

    Parameters
    ----------
    method
        ``"newton"`` or ``"exhaustive"`` (:data:`ALIGNERS`).
    wedge
        ``(tilt_min, tilt_max)`` degrees of the particles' missing wedge, or ``None``.
    max_shift
        Largest shift searched, in voxels.
    mask_radius
        Soft spherical mask radius in voxels; default ``box // 2 - 3``.
    max_angle_deg
        With prior rotations, search only within this many degrees of them; ``None``:
        global search always.

    Returns
    -------
    NewtonConfig or ExhaustiveConfig

    Raises
    ------
    InputError
        An unknown method, or a setting out of range.
    """
    if method not in ALIGNERS:
        raise InputError(None, f"method must be one of {', '.join(ALIGNERS)}, got {method!r}")
    kind = NewtonConfig if method == "newton" else ExhaustiveConfig
    return kind(
        wedge=wedge, max_shift=max_shift, mask_radius=mask_radius, max_angle_deg=max_angle_deg
    )


def _method(config: AlignerConfig) -> str:
    return "newton" if isinstance(config, NewtonConfig) else "exhaustive"


@dataclass(frozen=True, kw_only=True)
class RefineConfig:
    """Settings of :func:`refine`.

    The aligner's own config is used as given: its wedge and mask also weight and mask
    the averages and FSC, and its ``max_angle_deg`` is the local range of the iterations
    that start from earlier poses (``None``: every iteration searches globally). The one
    setting derived per iteration, the band limit of the scores, is visible in
    :meth:`aligner_at`.

    Attributes
    ----------
    aligner
        :class:`~inversa.alignment.NewtonConfig` (the default: frequency-marched Newton)
        or :class:`~inversa.alignment.ExhaustiveConfig` (the exhaustive baseline); see
        :func:`aligner_config`.
    initial_resolution
        Low-pass of the starting reference, in the unit of ``pixel_size`` (e.g. 30 Å);
        ``None`` keeps it as given.
    """

    aligner: AlignerConfig = field(default_factory=NewtonConfig)
    initial_resolution: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.aligner, NewtonConfig | ExhaustiveConfig):
            raise InputError(
                None,
                f"aligner must be a NewtonConfig or an ExhaustiveConfig, got "
                f"{type(self.aligner).__name__}",
            )
        if self.initial_resolution is not None and not self.initial_resolution > 0:
            raise InputError(None, "initial_resolution must be positive")

    @property
    def method(self) -> str:
        """``"newton"`` or ``"exhaustive"``: the aligner's name."""
        return _method(self.aligner)

    @property
    def wedge(self) -> tuple[float, float] | None:
        """The aligner's missing wedge, also used by the averages."""
        return self.aligner.wedge

    @property
    def mask_radius(self) -> float | None:
        """The aligner's mask radius, also used by the FSC."""
        return self.aligner.mask_radius

    def aligner_at(self, max_frequency: float | None) -> AlignerConfig:
        """Return the aligner's settings for an iteration scored up to ``max_frequency``.

        Parameters
        ----------
        max_frequency
            Band limit of the scores in cycles per voxel (the current reference's
            resolution), or ``None`` for the aligner's own band.

        Returns
        -------
        NewtonConfig or ExhaustiveConfig
            :attr:`aligner` with its band (Newton's ``frequency_band`` upper end, the
            exhaustive ``max_frequency``) lowered to ``max_frequency`` where that is
            lower; otherwise unchanged.
        """
        cfg = self.aligner
        if max_frequency is None:
            return cfg
        if isinstance(cfg, ExhaustiveConfig):
            return replace(cfg, max_frequency=min(cfg.max_frequency, max_frequency))
        low, high = cfg.frequency_band
        return replace(cfg, frequency_band=(low, max(low, min(high, max_frequency))))


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
    subsets
        ``(N,)`` half set (1 or 2) of every particle.
    """

    average: AverageResult
    alignment: AlignmentResult
    iterations: tuple[IterationStats, ...]
    reference: torch.Tensor
    subsets: torch.Tensor | None = None


def align_particles(
    reference: torch.Tensor,
    volumes: torch.Tensor,
    *,
    config: AlignerConfig,
    prior_rotations: torch.Tensor | None = None,
    ctf: ParticleCTF | None = None,
    progress: bool = False,
) -> AlignmentResult:
    """Align volumes with the aligner whose settings ``config`` are.

    Parameters
    ----------
    reference
        ``(D, H, W)``.
    volumes
        ``(N, D, H, W)``.
    config
        :class:`~inversa.alignment.NewtonConfig` (calls
        :func:`~inversa.alignment.align_newton`) or
        :class:`~inversa.alignment.ExhaustiveConfig` (calls
        :func:`~inversa.alignment.align_exhaustive`).
    prior_rotations
        ``(N, 3, 3)``: search within ``config.max_angle_deg`` of these (globally when
        that is ``None``); ``None`` for a global search.
    ctf
        Per-particle 3-D CTF weights (replace the config's wedge), or ``None``.
    progress
        Progress bar.

    Returns
    -------
    AlignmentResult
    """
    if isinstance(config, ExhaustiveConfig):
        return align_exhaustive(
            reference,
            volumes,
            config=config,
            prior_rotations=prior_rotations,
            ctf=ctf,
            progress=progress,
        )
    if isinstance(config, NewtonConfig):
        return align_newton(
            reference,
            volumes,
            config=config,
            prior_rotations=prior_rotations,
            ctf=ctf,
            progress=progress,
        )
    raise InputError(None, f"config must name an aligner, got {type(config).__name__}")


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
    ctf: ParticleCTF | None = None,
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
    priors) searches are local within ``config.aligner.max_angle_deg`` of the previous
    poses (global throughout when that is ``None``); iteration settings come from
    :meth:`RefineConfig.aligner_at`.

    Parameters
    ----------
    volumes
        ``(N, D, H, W)`` particles, ``N >= 2``.
    reference
        ``(D, H, W)`` starting reference, or ``None`` to start from scratch.
    config
        The aligner's settings (wedge, mask, local range) and the initial low-pass.
    n_iterations
        Align/average rounds (>= 1).
    subsets
        ``(N,)`` half sets 1/2 (``rlnRandomSubset``); default alternates.
    prior_rotations
        ``(N, 3, 3)`` poses to start from (local search from the first iteration).
    pixel_size
        Angstrom per voxel (unit of the resolutions).
    ctf
        Per-particle 3-D CTF x exposure weights: the aligner scores with them (instead of
        the wedge) and the averages are CTF-corrected (Wiener constant from the FSC).
    progress
        Progress bars of the aligner.

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
    if ctf is not None and len(ctf) != n:
        raise InputError(None, f"ctf holds {len(ctf)} particles for {n} volumes")
    if subsets is None:
        subsets = torch.arange(n) % 2 + 1
    subsets = torch.as_tensor(subsets).to(device=volumes.device)
    if prior_rotations is not None:
        prior_rotations = prior_rotations.to(device=volumes.device, dtype=volumes.dtype)
    if reference is None:
        if prior_rotations is not None:
            zero = torch.zeros(n, 3, device=volumes.device, dtype=volumes.dtype)
            reference = average_particles(
                volumes, prior_rotations, zero, wedge=config.wedge, subsets=subsets, ctf=ctf
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
    local_range = config.aligner.max_angle_deg is not None
    priors = prior_rotations if local_range else None
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
                config=config.aligner_at(_band(ref_resolution, pixel_size)),
                prior_rotations=None if priors is None else priors[pick],
                ctf=None if ctf is None else ctf.subset(pick),
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
            ctf=ctf,
        )
        refs = {
            1: _lowpassed(average.half1, average.resolution, pixel_size),
            2: _lowpassed(average.half2, average.resolution, pixel_size),
        }
        ref_resolution = average.resolution
        if local_range:
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
        subsets=subsets.clone(),
    )

"""Whether alignment results can be trusted, judged without ground truth.

A failed alignment still returns poses, an average and a half-map FSC: aligning noise to
a reference reproduces the reference ("Einstein from noise"), and both halves inherit it.
What a failure cannot fake is separation: at a correct pose a particle correlates with the
reference far better than at a random orientation, while a particle that carries no usable
signal, or a reference that looks the same from every direction (nearly spherical), scores
about as well anywhere. So each particle's score at its pose is compared with its scores at
Haar-random orientations (each at its best shift, the same normalised wedge-weighted score
as :func:`~inversa.alignment.align_exhaustive`) as a robust z-score

    z = (s_pose - median(s_random)) / (1.4826 MAD(s_random)),

and a data set whose particles are mostly not separated is flagged. The search itself picks
the best of many orientations, so even noise reaches a few standard deviations: the
threshold sits above what such a maximum reaches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inversa.alignment._average import AverageResult
from inversa.alignment._exhaustive import (
    ExhaustiveConfig,
    _global_scores,
    _score_rotations,
    _Scorers,
)
from inversa.alignment._newton import NewtonConfig
from inversa.alignment._refine import RefineConfig, RefineResult
from inversa.alignment._result import AlignmentResult
from inversa.core.errors import InputError
from inversa.core.fourier import lowpass
from inversa.core.rotations import random_rotations

__all__ = [
    "AlignmentDiagnostics",
    "DiagnosticsConfig",
    "diagnose_alignment",
    "diagnose_refinement",
]

# Converts a median absolute deviation into a standard deviation for Gaussian scores.
_MAD_TO_STD = 1.4826


@dataclass(frozen=True, kw_only=True)
class DiagnosticsConfig:
    """Settings of :func:`diagnose_alignment` and :func:`diagnose_refinement`.

    Attributes
    ----------
    n_random
        Haar-random orientations every particle is also scored at (shared by all).
    min_z
        A particle is separated when its pose scores at least this many (robust)
        standard deviations above its random orientations. The default lies above the
        maximum over an orientation search of a particle without signal.
    max_unseparated_fraction
        Largest fraction of particles that may be not separated in a trustworthy result.
    seed
        Seed of the random orientations (the diagnostics are deterministic).
    """

    n_random: int = 64
    min_z: float = 6.0
    max_unseparated_fraction: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_random < 8:
            raise InputError(None, f"n_random must be >= 8, got {self.n_random}")
        if not self.min_z > 0:
            raise InputError(None, f"min_z must be positive, got {self.min_z}")
        if not 0 <= self.max_unseparated_fraction < 1:
            raise InputError(
                None,
                f"max_unseparated_fraction must be in [0, 1), got {self.max_unseparated_fraction}",
            )


@dataclass(frozen=True)
class AlignmentDiagnostics:
    """Whether poses can be trusted, and why not.

    Attributes
    ----------
    trustworthy
        ``False`` when any reason below was found.
    reasons
        One readable sentence per problem found; empty when trustworthy.
    z_scores
        ``(N,)`` each particle's score at its pose, in robust standard deviations above
        its scores at random orientations.
    unseparated_fraction
        Fraction of particles with ``z < min_z``.
    resolution
        Half-map FSC 0.143 resolution of the average when one was given (``inf`` when
        the FSC starts below 0.143), else ``None``.
    """

    trustworthy: bool
    reasons: tuple[str, ...]
    z_scores: torch.Tensor
    unseparated_fraction: float
    resolution: float | None = None


def _band_of(config: NewtonConfig | ExhaustiveConfig) -> float:
    if isinstance(config, NewtonConfig):
        return config.frequency_band[1]
    return config.max_frequency


def _z_scores(
    reference: torch.Tensor,
    volumes: torch.Tensor,
    rotations: torch.Tensor,
    *,
    config: NewtonConfig | ExhaustiveConfig,
    max_frequency: float,
    settings: DiagnosticsConfig,
) -> torch.Tensor:
    """Robust z-scores ``(N,)`` of the poses against random orientations."""
    scorer_config = ExhaustiveConfig(
        wedge=config.wedge,
        mask_radius=config.mask_radius,
        max_shift=config.max_shift,
        max_frequency=max_frequency,
        multiresolution=False,
    )
    reference = reference.to(volumes.dtype)
    scorers = _Scorers(reference, scorer_config)
    generator = torch.Generator().manual_seed(settings.seed)
    random = random_rotations(settings.n_random, generator=generator, dtype=volumes.dtype)
    random = random.to(volumes.device)
    noise = _global_scores(scorers, volumes, random, max_frequency)  # (N, K)
    pose = torch.stack(
        [
            _score_rotations(scorers, volume, rotation[None].to(volumes.dtype), max_frequency)[0]
            for volume, rotation in zip(volumes, rotations, strict=True)
        ]
    )
    centre = noise.median(dim=1).values
    spread = _MAD_TO_STD * (noise - centre[:, None]).abs().median(dim=1).values
    return (pose - centre) / spread.clamp_min(torch.finfo(noise.dtype).eps)


def _verdict(
    z: torch.Tensor,
    settings: DiagnosticsConfig,
    average: AverageResult | None,
    initial_resolution: float | None,
) -> AlignmentDiagnostics:
    reasons = []
    unseparated = float((z < settings.min_z).double().mean())
    if unseparated > settings.max_unseparated_fraction:
        reasons.append(
            f"{unseparated:.0%} of particles score less than {settings.min_z:g} standard "
            f"deviations better at their pose than at random orientations (median "
            f"{float(z.median()):.1f}): the particles carry too little signal, or the "
            "reference looks alike from every direction, to determine their poses"
        )
    resolution = None
    if average is not None:
        resolution = float(average.resolution)
        if not math.isfinite(resolution):
            reasons.append("the half-map FSC starts below 0.143: the half maps disagree")
        elif initial_resolution is not None and resolution >= initial_resolution:
            reasons.append(
                f"the half-map resolution ({resolution:.3g}) is no better than the starting "
                f"reference's low-pass ({initial_resolution:.3g}): the halves may only share "
                "the starting reference"
            )
    return AlignmentDiagnostics(
        trustworthy=not reasons,
        reasons=tuple(reasons),
        z_scores=z,
        unseparated_fraction=unseparated,
        resolution=resolution,
    )


def _check_shapes(reference: torch.Tensor, volumes: torch.Tensor, n_poses: int) -> None:
    if reference.ndim != 3 or volumes.ndim != 4 or volumes.shape[1:] != reference.shape:
        raise InputError(
            None,
            f"volumes {tuple(volumes.shape)} must be (N, D, H, W) particles of the "
            f"reference's box {tuple(reference.shape)}",
        )
    if n_poses != volumes.shape[0]:
        raise InputError(None, f"{n_poses} poses for {volumes.shape[0]} particles")


def diagnose_alignment(
    reference: torch.Tensor,
    volumes: torch.Tensor,
    alignment: AlignmentResult,
    *,
    config: NewtonConfig | ExhaustiveConfig,
    average: AverageResult | None = None,
    initial_resolution: float | None = None,
    settings: DiagnosticsConfig | None = None,
) -> AlignmentDiagnostics:
    """Judge whether poses found by an aligner can be trusted (see the module notes).

    Parameters
    ----------
    reference
        ``(D, H, W)`` the reference the particles were aligned to. It should not be
        built from these particles (their noise would match their own poses).
    volumes
        ``(N, D, H, W)`` the particles.
    alignment
        Their poses (rotations ``(N, 3, 3)``).
    config
        The aligner's settings: wedge, mask, shift range and band of the scores.
    average
        Their average, for the half-map FSC checks; ``None`` skips them.
    initial_resolution
        Low-pass of the starting reference (unit of the average's resolution), checked
        against the half-map resolution; ``None`` skips that check.
    settings
        Number of random orientations and thresholds; default :class:`DiagnosticsConfig`.

    Returns
    -------
    AlignmentDiagnostics

    Raises
    ------
    InputError
        Shapes that disagree.
    """
    settings = settings if settings is not None else DiagnosticsConfig()
    _check_shapes(reference, volumes, alignment.rotations.shape[0])
    z = _z_scores(
        reference,
        volumes,
        alignment.rotations,
        config=config,
        max_frequency=_band_of(config),
        settings=settings,
    )
    return _verdict(z, settings, average, initial_resolution)


def diagnose_refinement(
    volumes: torch.Tensor,
    result: RefineResult,
    *,
    config: RefineConfig,
    pixel_size: float = 1.0,
    settings: DiagnosticsConfig | None = None,
) -> AlignmentDiagnostics:
    """Judge whether a :func:`~inversa.alignment.refine` result can be trusted.

    Each particle is scored against the other half set's map, low-passed at the final
    resolution (the gold standard: that map holds none of its noise), at its final pose
    and at random orientations; the half-map FSC is checked as well.

    Parameters
    ----------
    volumes
        ``(N, D, H, W)`` the refined particles.
    result
        The :class:`~inversa.alignment.RefineResult`.
    config
        The :class:`~inversa.alignment.RefineConfig` it was refined with.
    pixel_size
        Unit of the resolutions, as given to :func:`~inversa.alignment.refine`.
    settings
        Number of random orientations and thresholds; default :class:`DiagnosticsConfig`.

    Returns
    -------
    AlignmentDiagnostics

    Raises
    ------
    InputError
        Shapes that disagree.
    """
    settings = settings if settings is not None else DiagnosticsConfig()
    average = result.average
    _check_shapes(average.map, volumes, result.alignment.rotations.shape[0])
    n = volumes.shape[0]
    subsets = result.subsets if result.subsets is not None else torch.arange(n) % 2 + 1
    subsets = subsets.to(volumes.device)
    resolution = float(average.resolution)
    if math.isfinite(resolution):
        resolution = max(resolution, 2.0 * pixel_size)
        band = min(0.5, pixel_size / resolution)
    else:
        band = _band_of(config.aligner)
    z = torch.empty(n, dtype=volumes.dtype, device=volumes.device)
    for half, other in ((1, average.half2), (2, average.half1)):
        pick = subsets == half
        if not bool(pick.any()):
            continue
        if math.isfinite(resolution):
            other = lowpass(other, resolution=resolution, pixel_size=pixel_size)
        z[pick] = _z_scores(
            other,
            volumes[pick],
            result.alignment.rotations[pick],
            config=config.aligner,
            max_frequency=band,
            settings=settings,
        )
    return _verdict(z, settings, average, config.initial_resolution)

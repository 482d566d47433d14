"""Training and test data from the tomography simulator: scenes, tilt schemes, targets."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inversa.core import phantoms
from inversa.core.errors import InputError
from inversa.core.fourier import lowpass
from inversa.cryolithe._features import normalize_counts
from inversa.tomography import SimulationConfig, TiltGeometry, random_xf, simulate_tilt_series

__all__ = [
    "DataConfig",
    "Scene",
    "SeriesConfig",
    "make_scene",
    "make_scenes",
    "make_target",
    "random_series",
    "simulate_series",
    "tilt_angles",
]


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """The distribution of training tilt series.

    Attributes
    ----------
    structure
        Structure file scattered in the scenes; ``None``: the shipped 80S ribosome (6ZU5).
        The benchmark's held-out structure (adenylate kinase, 1AKE) is never used here.
    n_scenes
        Scenes simulated once at the start and re-imaged with new tilt series.
    shape
        ``(D, H, W)`` of every scene.
    voxel_sizes
        Voxel size range in Angstrom (uniform).
    particles, membranes
        Inclusive ranges of particle and vesicle counts per scene.
    vesicle_radius
        Vesicle radii as fractions of the box's middle extent
        (:func:`~inversa.core.phantoms.cell_scene`).
    tilt_max
        Range of the largest tilt (the series spans ``+-tilt_max``).
    tilt_steps
        Tilt steps drawn from (degrees); 2 and 3 are kept out so that the benchmark's
        schemes (+-50 in 2, +-60 in 3, +-66 in 3) are unseen.
    drop_fraction
        Up to this fraction of the tilts is dropped at random.
    dose
        Range of electrons per square Angstrom per tilt.
    defocus_um, ctf_probability
        Defocus range and how often a CTF is applied (never phase-flipped: the network
        learns the low-frequency CTF).
    residual_shift_px, residual_rotation_deg
        Misalignment left in the data that the geometry does not know about.
    target_resolution_px
        The target is the noise-free density low-passed to this resolution (pixels).
    seed
        Seed of the scenes; series and points derive theirs from it and the step.
    """

    structure: str | None = None
    n_scenes: int = 48
    shape: tuple[int, int, int] = (48, 96, 96)
    voxel_sizes: tuple[float, float] = (10.5, 14.0)
    particles: tuple[int, int] = (2, 5)
    membranes: tuple[int, int] = (0, 3)
    vesicle_radius: tuple[float, float] = (0.2, 0.7)
    tilt_max: tuple[float, float] = (40.0, 70.0)
    tilt_steps: tuple[float, ...] = (1.0, 4.0, 5.0)
    drop_fraction: float = 0.15
    dose: tuple[float, float] = (1.5, 4.0)
    defocus_um: tuple[float, float] = (2.0, 4.0)
    ctf_probability: float = 0.8
    residual_shift_px: float = 0.5
    residual_rotation_deg: float = 0.3
    target_resolution_px: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_scenes < 1:
            raise InputError(None, "n_scenes must be >= 1")
        if not 0 <= self.drop_fraction < 1:
            raise InputError(None, "drop_fraction must be in [0, 1)")
        if self.target_resolution_px < 2:
            raise InputError(None, "target_resolution_px must be >= 2 (Nyquist)")


@dataclass(frozen=True)
class Scene:
    """A simulated volume and its target.

    Attributes
    ----------
    volume
        ``(D, H, W)`` noise-free density.
    target
        ``(D, H, W)`` the density low-passed and normalised (zero mean, unit std).
    voxel_size
        Angstrom per voxel.
    """

    volume: torch.Tensor
    target: torch.Tensor
    voxel_size: float


@dataclass(frozen=True, kw_only=True)
class SeriesConfig:
    """One acquisition: tilt scheme, dose, CTF and the residual misalignment."""

    angles: tuple[float, ...]
    dose: float = 3.0
    ctf: bool = True
    defocus_um: float = 3.0
    residual_shift_px: float = 0.0
    residual_rotation_deg: float = 0.0


def tilt_angles(tilt_max: float, step: float) -> tuple[float, ...]:
    """``-tilt_max, ..., tilt_max`` in ``step`` degrees (symmetric, 0 included)."""
    n = round(tilt_max / step + 1e-9)
    return tuple(float(step * k) for k in range(-n, n + 1))


def make_target(volume: torch.Tensor, *, resolution_px: float) -> torch.Tensor:
    """Return the noise-free density low-passed to ``resolution_px`` and normalised."""
    t = lowpass(volume.to(torch.float32), resolution=resolution_px, ndim=3)
    return (t - t.mean()) / t.std().clamp_min(1e-12)


def make_scene(
    *,
    structure: str | None,
    shape: tuple[int, int, int],
    voxel_size: float,
    n_particles: int,
    n_membranes: int,
    resolution_px: float,
    generator: torch.Generator,
    vesicle_radius: tuple[float, float] = (0.2, 0.4),
) -> Scene:
    """Simulate one cell-like scene (``core.phantoms.cell_scene``) and its target."""
    path = structure or str(phantoms.builtin_structure_path("ribosome"))
    model = phantoms.read_atomic_model(path)
    scene = phantoms.cell_scene(
        model,
        shape=shape,
        voxel_size=voxel_size,
        n_particles=n_particles,
        n_membranes=n_membranes,
        vesicle_radius=vesicle_radius,
        generator=generator,
    )
    volume = scene.volume.to(torch.float32)
    return Scene(volume, make_target(volume, resolution_px=resolution_px), voxel_size)


def simulate_series(
    scene: Scene, series: SeriesConfig, *, generator: torch.Generator
) -> tuple[torch.Tensor, TiltGeometry]:
    """Image ``scene`` with ``series``: normalised line-integral data and the known geometry.

    Returns
    -------
    (data, geometry)
        ``(T, H, W)`` images (:func:`normalize_counts` of the noisy counts) and the
        geometry a user would have: the angles, without the residual misalignment.
    """
    angles = torch.tensor(series.angles, dtype=torch.float64)
    geometry = TiltGeometry(angles=angles)
    true = geometry
    if series.residual_shift_px > 0 or series.residual_rotation_deg > 0:
        xf = random_xf(
            len(angles),
            shift_px=series.residual_shift_px,
            rotation_deg=series.residual_rotation_deg,
            generator=generator,
        )
        true = geometry.replace(xf=xf)
    cfg = SimulationConfig(
        shape=tuple(scene.volume.shape),
        voxel_size=scene.voxel_size,
        dose=series.dose,
        ctf=series.ctf,
        defocus_um=series.defocus_um,
    )
    counts = simulate_tilt_series(scene.volume, config=cfg, geometry=true, generator=generator)
    return normalize_counts(counts.to(torch.float32)), geometry


def _uniform(lo_hi: tuple[float, float], g: torch.Generator) -> float:
    lo, hi = lo_hi
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


def make_scenes(config: DataConfig) -> list[Scene]:
    """Simulate the ``config.n_scenes`` training scenes (deterministic in ``config.seed``)."""
    g = torch.Generator().manual_seed(config.seed)
    scenes = []
    while len(scenes) < config.n_scenes:
        for attempt in range(_PLACEMENT_ATTEMPTS):
            p = int(torch.randint(config.particles[0], config.particles[1] + 1, (), generator=g))
            m = int(torch.randint(config.membranes[0], config.membranes[1] + 1, (), generator=g))
            try:
                scene = make_scene(
                    structure=config.structure,
                    shape=config.shape,
                    voxel_size=_uniform(config.voxel_sizes, g),
                    n_particles=p,
                    n_membranes=m,
                    resolution_px=config.target_resolution_px,
                    vesicle_radius=config.vesicle_radius,
                    generator=g,
                )
            except InputError:
                # A draw whose particles do not fit beside its vesicles: draw the scene
                # again (the generator has moved on, so the run stays deterministic).
                if attempt == _PLACEMENT_ATTEMPTS - 1:
                    raise
                continue
            scenes.append(scene)
            break
    return scenes


_PLACEMENT_ATTEMPTS = 20


def random_series(config: DataConfig, generator: torch.Generator) -> SeriesConfig:
    """Draw a training acquisition: scheme, dropped tilts, dose, CTF, residual misalignment."""
    g = generator
    tmax = _uniform(config.tilt_max, g)
    step = config.tilt_steps[int(torch.randint(len(config.tilt_steps), (), generator=g))]
    angles = tilt_angles(tmax, step)
    n_drop = int(len(angles) * config.drop_fraction * float(torch.rand((), generator=g)))
    if n_drop:
        keep = torch.randperm(len(angles), generator=g)[: len(angles) - n_drop].sort().values
        angles = tuple(angles[int(i)] for i in keep)
    ctf = bool(torch.rand((), generator=g) < config.ctf_probability)
    return SeriesConfig(
        angles=angles,
        dose=_uniform(config.dose, g),
        ctf=ctf,
        defocus_um=_uniform(config.defocus_um, g),
        residual_shift_px=config.residual_shift_px,
        residual_rotation_deg=config.residual_rotation_deg,
    )

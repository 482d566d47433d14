"""Simulate a cryo-ET dataset: a cell-like scene, its tilt series, and the ground truth files."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from inversa.core import io, noise, phantoms
from inversa.core.errors import InputError, OutputExistsError
from inversa.tomography import CTFParams, TiltSeriesProjector, apply_ctf

__all__ = ["SimulatedDataset", "SimulationConfig", "simulate_dataset", "simulate_scene_tilt_series"]


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """What to simulate; every field has a laptop-sized default.

    Attributes
    ----------
    shape
        Volume shape ``(D, H, W)`` in voxels (z, y, x); the tilt images are ``(H, W)``.
    voxel_size
        Angstrom per voxel (and per detector pixel).
    structure
        PDB/mmCIF file of the particle; ``None`` uses the shipped structure (PDB 1AKE chain A).
    n_particles, n_membranes
        Copies of the structure at random positions and Haar-random orientations, and vesicles.
    tilt_min, tilt_max, tilt_step
        Tilt range and step in degrees (single axis about y).
    dose
        Electrons per square Angstrom per tilt image.
    max_contrast
        Fraction of the beam removed by the strongest projected column (amplitude-contrast
        simplification of image formation).
    ctf, defocus_um, voltage_kv, spherical_aberration_mm, amplitude_contrast
        Optional contrast transfer function, constant defocus over the series.
    shift_px, rotation_deg
        Per-tilt random misalignment (uniform in +-shift_px, +-rotation_deg about the
        image centre); the true IMOD transforms are written as ``.xf``.
    reference_box
        Box size of the reference map written beside the dataset.
    seed
        Seed of the one generator used for everything random.
    """

    shape: tuple[int, int, int] = (48, 128, 128)
    voxel_size: float = 5.0
    structure: str | None = None
    n_particles: int = 12
    n_membranes: int = 2
    tilt_min: float = -60.0
    tilt_max: float = 60.0
    tilt_step: float = 3.0
    dose: float = 3.0
    max_contrast: float = 0.5
    ctf: bool = False
    defocus_um: float = 3.0
    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    shift_px: float = 0.0
    rotation_deg: float = 0.0
    reference_box: int = 32
    seed: int = 0

    def tilt_angles(self) -> torch.Tensor:
        """Return the tilt angles in degrees, ``(T,)`` float64."""
        if self.tilt_step <= 0 or self.tilt_max < self.tilt_min:
            raise InputError(None, "tilt range must have tilt_max >= tilt_min and tilt_step > 0")
        n = math.floor((self.tilt_max - self.tilt_min) / self.tilt_step + 1e-9) + 1
        return self.tilt_min + self.tilt_step * torch.arange(n, dtype=torch.float64)


@dataclass(frozen=True)
class SimulatedDataset:
    """In-memory result of a simulation.

    Attributes
    ----------
    stack
        Raw tilt series in electron counts, ``(T, H, W)``.
    tilt_angles
        ``(T,)`` degrees.
    xf
        True IMOD alignment transforms ``(T, 2, 3)`` (raw -> aligned).
    volume
        Ground-truth scene ``(D, H, W)``.
    reference
        The structure at the identity orientation, ``(B, B, B)``.
    scene
        The phantom scene with particle positions and orientations.
    files
        Paths written, by role (empty when nothing was written).
    """

    stack: torch.Tensor
    tilt_angles: torch.Tensor
    xf: torch.Tensor
    volume: torch.Tensor
    reference: torch.Tensor
    scene: phantoms.Scene
    files: dict[str, Path]


def _random_xf(n: int, *, shift_px: float, rotation_deg: float, generator: torch.Generator):
    """Per-tilt in-plane rotations and shifts as IMOD ``(T, 2, 3)`` transforms."""
    ang = (2 * torch.rand(n, generator=generator, dtype=torch.float64) - 1) * rotation_deg
    shifts = (2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1) * shift_px
    c, s = torch.cos(torch.deg2rad(ang)), torch.sin(torch.deg2rad(ang))
    xf = torch.zeros(n, 2, 3, dtype=torch.float64)
    xf[:, 0, 0], xf[:, 0, 1], xf[:, 1, 0], xf[:, 1, 1] = c, -s, s, c
    xf[:, :, 2] = shifts
    return xf


def simulate_scene_tilt_series(
    volume: torch.Tensor,
    *,
    config: SimulationConfig,
    xf: torch.Tensor | None,
    generator: torch.Generator,
) -> torch.Tensor:
    """Project a volume into a noisy raw tilt series (electron counts).

    Parameters
    ----------
    volume
        ``(D, H, W)`` non-negative density.
    config
        Tilt geometry, dose, contrast and CTF.
    xf
        ``(T, 2, 3)`` alignment transforms of the raw images, or ``None``.
    generator
        Source of the Poisson noise.

    Returns
    -------
    torch.Tensor
        ``(T, H, W)`` counts.
    """
    angles = config.tilt_angles().to(volume.dtype)
    projector = TiltSeriesProjector(volume_shape=tuple(volume.shape), tilt_angles=angles, xf=xf)
    proj = projector.forward(volume)
    peak = float(proj.abs().max())
    contrast = config.max_contrast / peak if peak > 0 else 0.0
    if config.ctf:
        params = CTFParams(
            pixel_size_A=config.voxel_size,
            defocus_um=config.defocus_um,
            voltage_kv=config.voltage_kv,
            spherical_aberration_mm=config.spherical_aberration_mm,
            amplitude_contrast=config.amplitude_contrast,
        )
        # torch-ctf's CTF is positive at low frequency (CTF(0) = amplitude contrast), so
        # density still darkens the image at low resolution, as without a CTF.
        proj = apply_ctf(proj, params)
    dose_px = noise.electron_dose_per_pixel(config.dose, config.voxel_size)
    model = noise.ElectronNoise(dose_per_pixel=dose_px, contrast=contrast)
    return model(proj, generator=generator)


def simulate_dataset(
    out_dir: str | Path | None,
    *,
    config: SimulationConfig,
    force: bool = False,
    name: str = "tiltseries",
) -> SimulatedDataset:
    """Simulate a cell-like scene and its tilt series, and write the dataset files.

    Files written in ``out_dir`` (when given): ``{name}.mrc`` (raw tilt series, counts),
    ``{name}.tlt``, ``{name}.xf`` (true IMOD transforms), ``ground_truth.mrc``,
    ``reference.mrc`` and ``particles.star`` (RELION 5 columns with an optics block; the
    angles rotate the reference into each particle), ``simulation.json`` (the config).

    Parameters
    ----------
    out_dir
        Output folder (created if missing), or ``None`` to keep everything in memory.
    config
        What to simulate.
    force
        Overwrite existing files.
    name
        Stem of the tilt-series files (also the ``rlnTomoName``).

    Returns
    -------
    SimulatedDataset
    """
    generator = torch.Generator().manual_seed(config.seed)
    structure = config.structure or phantoms.builtin_structure_path()
    model = phantoms.read_atomic_model(structure)
    scene = phantoms.cell_scene(
        model,
        shape=config.shape,
        voxel_size=config.voxel_size,
        n_particles=config.n_particles,
        n_membranes=config.n_membranes,
        generator=generator,
    )
    volume = scene.volume.to(torch.float32)
    angles = config.tilt_angles()
    if config.shift_px > 0 or config.rotation_deg > 0:
        xf = _random_xf(
            len(angles),
            shift_px=config.shift_px,
            rotation_deg=config.rotation_deg,
            generator=generator,
        )
    else:
        xf = torch.zeros(len(angles), 2, 3, dtype=torch.float64)
        xf[:, 0, 0] = xf[:, 1, 1] = 1.0
    is_identity = config.shift_px <= 0 and config.rotation_deg <= 0
    stack = simulate_scene_tilt_series(
        volume,
        config=config,
        xf=None if is_identity else xf.to(volume.dtype),
        generator=generator,
    )
    reference = phantoms.reference_density(
        model, voxel_size=config.voxel_size, box=config.reference_box
    )
    files: dict[str, Path] = {}
    if out_dir is not None:
        files = _write_dataset(
            Path(out_dir),
            name=name,
            config=config,
            stack=stack,
            angles=angles,
            xf=xf,
            volume=volume,
            reference=reference,
            scene=scene,
            force=force,
        )
    return SimulatedDataset(
        stack=stack,
        tilt_angles=angles,
        xf=xf,
        volume=volume,
        reference=reference,
        scene=scene,
        files=files,
    )


def particles_table(
    scene: phantoms.Scene, *, tomo_name: str, shape: tuple[int, int, int], voxel_size: float
):
    """RELION 5 particle rows for the scene's ground-truth poses.

    Centred coordinates are in Angstrom relative to the tomogram centre (index n // 2);
    the subtomogram angles are zero and the origins zero (particles are exactly centred).
    """
    import pandas as pd

    pos = scene.positions.detach().cpu().to(torch.float64).numpy()
    centre = np.array([shape[2] // 2, shape[1] // 2, shape[0] // 2], dtype=np.float64)
    centred = (pos - centre) * voxel_size
    euler = scene.euler.detach().cpu().to(torch.float64).numpy()
    n = len(pos)
    return pd.DataFrame(
        {
            "rlnTomoName": [tomo_name] * n,
            "rlnCenteredCoordinateXAngst": centred[:, 0],
            "rlnCenteredCoordinateYAngst": centred[:, 1],
            "rlnCenteredCoordinateZAngst": centred[:, 2],
            "rlnOriginXAngst": np.zeros(n),
            "rlnOriginYAngst": np.zeros(n),
            "rlnOriginZAngst": np.zeros(n),
            "rlnAngleRot": euler[:, 0],
            "rlnAngleTilt": euler[:, 1],
            "rlnAnglePsi": euler[:, 2],
            "rlnTomoSubtomogramRot": np.zeros(n),
            "rlnTomoSubtomogramTilt": np.zeros(n),
            "rlnTomoSubtomogramPsi": np.zeros(n),
            "rlnOpticsGroup": np.ones(n, dtype=np.int64),
            "rlnRandomSubset": (np.arange(n) % 2 + 1).astype(np.int64),
        }
    )


def _write_dataset(out: Path, *, name, config, stack, angles, xf, volume, reference, scene, force):
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "stack": out / f"{name}.mrc",
        "angles": out / f"{name}.tlt",
        "xf": out / f"{name}.xf",
        "ground_truth": out / "ground_truth.mrc",
        "reference": out / "reference.mrc",
        "particles": out / "particles.star",
        "config": out / "simulation.json",
    }
    if not force:
        for path in files.values():
            if path.exists():
                raise OutputExistsError(path)
    io.write_mrc(files["stack"], stack, voxel_size=config.voxel_size, force=force)
    io.write_tlt(files["angles"], angles, force=force)
    io.write_xf(files["xf"], xf, force=force)
    io.write_mrc(files["ground_truth"], volume, voxel_size=config.voxel_size, force=force)
    io.write_mrc(files["reference"], reference, voxel_size=config.voxel_size, force=force)
    optics = io.make_optics_table(
        pixel_size=config.voxel_size,
        voltage=config.voltage_kv,
        cs=config.spherical_aberration_mm,
        amplitude_contrast=config.amplitude_contrast,
    )
    particles = particles_table(
        scene, tomo_name=name, shape=config.shape, voxel_size=config.voxel_size
    )
    io.write_particles(files["particles"], particles, optics, force=force)
    with io.atomic_write(files["config"], force=force) as tmp:
        Path(tmp).write_text(json.dumps(asdict(config), indent=2) + "\n")
    return files

"""Simulate a cryo-ET dataset on disk: the tilt series, its geometry and the ground truth files.

The simulation itself is :func:`inversa.tomography.simulate`; this module only writes it.
"""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from inversa.core import io, phantoms
from inversa.core.errors import InputError, OutputExistsError
from inversa.tomography import SimulatedTiltSeries, SimulationConfig, simulate

__all__ = [
    "DEFORMATION_FORMAT",
    "SimulatedDataset",
    "SimulationConfig",
    "dataset_paths",
    "particles_table",
    "read_deformation",
    "simulate_dataset",
]

# Written into the deformation file so that readers can check what they load.
DEFORMATION_FORMAT = "inversa-local-deformation-v1"


@dataclass(frozen=True)
class SimulatedDataset(SimulatedTiltSeries):
    """A :class:`~inversa.tomography.SimulatedTiltSeries` and the files it was written to.

    Attributes
    ----------
    files
        Paths written, by role (empty when nothing was written).
    """

    files: dict[str, Path]


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
    angles rotate the reference into each particle), ``simulation.json`` (the config), and
    with ``config.local_deformation_px > 0`` ``{name}_deformation.npz``: the true local
    displacement fields (see :func:`read_deformation`).

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
    if out_dir is not None:
        paths = dataset_paths(out_dir, config=config, name=name)
        if not force:
            # Checked before the (slow) simulation, so an existing file stops the job up front.
            for path in paths.values():
                if path.exists():
                    raise OutputExistsError(path)
    sim = simulate(config)
    files: dict[str, Path] = {}
    if out_dir is not None:
        files = _write_dataset(paths, name=name, config=config, sim=sim, force=force)
    return SimulatedDataset(**{f.name: getattr(sim, f.name) for f in fields(sim)}, files=files)


def read_deformation(path: str | Path) -> dict[str, np.ndarray]:
    """Read a ``{name}_deformation.npz`` written by :func:`simulate_dataset`.

    Returns
    -------
    dict
        ``displacement`` ``(T, H, W, 2)`` float32 pixels (components x, y, at each raw
        pixel: the raw image samples the aligned one at ``A r + d + D(r)``), ``control``
        ``(T, G, G, 2)`` float64 B-spline control vectors, ``angles`` ``(T,)`` degrees,
        ``amplitude_px`` (scalar), ``format`` (:data:`DEFORMATION_FORMAT`).
    """
    try:  # our own handle: np.load leaks its file when the archive is damaged
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
            out = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile) as err:
        raise InputError(path, f"not a readable .npz file ({err})") from None
    if str(out.get("format")) != DEFORMATION_FORMAT:
        raise InputError(path, f"is not an {DEFORMATION_FORMAT} file")
    return out


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


def dataset_paths(
    out_dir: str | Path, *, config: SimulationConfig, name: str = "tiltseries"
) -> dict[str, Path]:
    """Return the files :func:`simulate_dataset` writes for ``config``, by role."""
    out = Path(out_dir)
    paths = {
        "stack": out / f"{name}.mrc",
        "angles": out / f"{name}.tlt",
        "xf": out / f"{name}.xf",
        "ground_truth": out / "ground_truth.mrc",
        "reference": out / "reference.mrc",
        "particles": out / "particles.star",
        "config": out / "simulation.json",
    }
    if config.local_deformation_px > 0:
        paths["deformation"] = out / f"{name}_deformation.npz"
    return paths


def _write_dataset(
    files: dict[str, Path],
    *,
    name: str,
    config: SimulationConfig,
    sim: SimulatedTiltSeries,
    force: bool,
) -> dict[str, Path]:
    files["stack"].parent.mkdir(parents=True, exist_ok=True)
    io.write_mrc(files["stack"], sim.stack, voxel_size=config.voxel_size, force=force)
    sim.geometry.write(files["angles"], files["xf"], force=force)
    io.write_mrc(files["ground_truth"], sim.volume, voxel_size=config.voxel_size, force=force)
    io.write_mrc(files["reference"], sim.reference, voxel_size=config.voxel_size, force=force)
    optics = io.make_optics_table(
        pixel_size=config.voxel_size,
        voltage=config.voltage_kv,
        cs=config.spherical_aberration_mm,
        amplitude_contrast=config.amplitude_contrast,
    )
    particles = particles_table(
        sim.scene, tomo_name=name, shape=config.shape, voxel_size=config.voxel_size
    )
    io.write_particles(files["particles"], particles, optics, force=force)
    if "deformation" in files and sim.displacement is not None and sim.control is not None:
        with io.atomic_write(files["deformation"], force=force) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                format=np.array(DEFORMATION_FORMAT),
                displacement=sim.displacement.to(torch.float32).numpy(),
                control=sim.control.numpy(),
                angles=sim.angles.detach().cpu().numpy(),
                amplitude_px=np.array(config.local_deformation_px),
            )
    io.write_json(files["config"], asdict(config), force=force)
    return files

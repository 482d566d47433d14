"""Poses and particle positions <-> RELION 5 particle tables.

RELION's conventions (``src/euler.cpp``, ``Projector::rotate3D``, pinned by the tests):

- ``rlnAngleRot/Tilt/Psi`` are ZYZ Euler angles whose matrix ``A``
  (:func:`~inversa.core.rotations.euler_to_matrix`) rotates the reference into the
  particle: ``particle(r) = reference(A^T r)``.
- ``rlnOrigin{X,Y,Z}Angst`` shifts the particle onto the reference: a particle that sits
  ``d`` voxels off its box centre has origin ``-d * pixel_size``, and its position in the
  tomogram is ``coordinate - origin``.
- ``rlnCenteredCoordinate{X,Y,Z}Angst`` are Angstrom from the tomogram centre (voxel
  index ``n // 2`` along each axis, the project's convention).

Our shifts (:class:`~inversa.alignment.AlignmentResult`) are ``d`` in voxels, so
``origin = -(box_offset + d) * pixel_size`` where ``box_offset`` is how far the box centre
lies from the particle's coordinate (0 for subtomograms cut at their coordinate).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from inversa.core.errors import InputError
from inversa.core.rotations import euler_to_matrix, matrix_to_euler

__all__ = [
    "ANGLE_COLUMNS",
    "COORDINATE_COLUMNS",
    "ORIGIN_COLUMNS",
    "SUBTOMOGRAM_ANGLE_COLUMNS",
    "image_paths",
    "pixel_size_of",
    "poses_from_table",
    "poses_to_table",
    "positions_in_tomogram",
    "random_subsets",
]

ANGLE_COLUMNS = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
ORIGIN_COLUMNS = ("rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst")
COORDINATE_COLUMNS = (
    "rlnCenteredCoordinateXAngst",
    "rlnCenteredCoordinateYAngst",
    "rlnCenteredCoordinateZAngst",
)
SUBTOMOGRAM_ANGLE_COLUMNS = (
    "rlnTomoSubtomogramRot",
    "rlnTomoSubtomogramTilt",
    "rlnTomoSubtomogramPsi",
)


def _columns(table: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray:
    """``(N, 3)`` float64 values of three columns, zeros where a column is absent."""
    out = np.zeros((len(table), 3), dtype=np.float64)
    for j, name in enumerate(names):
        if name in table.columns:
            out[:, j] = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
    return out


def pixel_size_of(
    particles: pd.DataFrame, optics: pd.DataFrame, *, path: str | os.PathLike[str] | None = None
) -> float:
    """Return the particles' pixel size in Angstrom from the optics table.

    ``rlnImagePixelSize`` (or, before extraction, ``rlnTomoTiltSeriesPixelSize``) of the
    optics groups the particles use; they must agree.

    Parameters
    ----------
    particles, optics
        Tables from :func:`inversa.core.io.read_particles`.
    path
        The STAR file, named in errors.

    Returns
    -------
    float

    Raises
    ------
    InputError
        No pixel size column, a non-positive value, or groups that disagree.
    """
    column = next(
        (c for c in ("rlnImagePixelSize", "rlnTomoTiltSeriesPixelSize") if c in optics.columns),
        None,
    )
    if column is None:
        raise InputError(path, "optics table lacks rlnImagePixelSize")
    used = optics
    if "rlnOpticsGroup" in particles.columns and "rlnOpticsGroup" in optics.columns:
        used = optics[optics["rlnOpticsGroup"].isin(set(particles["rlnOpticsGroup"]))]
    sizes = sorted({float(v) for v in used[column]})
    if not sizes or not all(np.isfinite(s) and s > 0 for s in sizes):
        raise InputError(path, f"{column} must be positive, found {sizes}")
    if sizes[-1] - sizes[0] > 1e-3 * sizes[0]:
        raise InputError(path, f"optics groups disagree on {column}: {sizes}")
    return sizes[0]


def poses_from_table(
    particles: pd.DataFrame,
    *,
    pixel_size: float,
    box_offsets: torch.Tensor | None = None,
    path: str | os.PathLike[str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotations and shifts of particles from their RELION angles and origins.

    Absent angle or origin columns count as zero.

    Parameters
    ----------
    particles
        RELION 5 particle table.
    pixel_size
        Angstrom per voxel of the subtomograms.
    box_offsets
        ``(N, 3)`` voxels (x, y, z) from each particle's coordinate to its box centre;
        zero (the default) for subtomograms cut at their coordinates.
    path
        The STAR file, named in errors.

    Returns
    -------
    rotations : torch.Tensor
        ``(N, 3, 3)`` float64, the matrices of the Euler angles.
    shifts : torch.Tensor
        ``(N, 3)`` float64 voxels: ``-origin / pixel_size - box_offset``.

    Raises
    ------
    InputError
        An angle or origin is not a finite number.
    """
    angles = _columns(particles, ANGLE_COLUMNS)
    origins = _columns(particles, ORIGIN_COLUMNS)
    if not (np.isfinite(angles).all() and np.isfinite(origins).all()):
        raise InputError(path, "angles or origins contain non-numeric or non-finite values")
    rotations = euler_to_matrix(torch.from_numpy(angles))
    shifts = -torch.from_numpy(origins) / pixel_size
    if box_offsets is not None:
        shifts = shifts - box_offsets.to(torch.float64)
    return rotations, shifts


def poses_to_table(
    particles: pd.DataFrame,
    rotations: torch.Tensor,
    shifts: torch.Tensor,
    *,
    pixel_size: float,
    box_offsets: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Return a copy of a particle table with new RELION angles and origins.

    Parameters
    ----------
    particles
        ``N`` rows.
    rotations
        ``(N, 3, 3)``: particle ``i`` is the reference rotated by ``rotations[i]`` ...
    shifts
        ``(N, 3)`` ... then shifted by ``shifts[i]`` voxels from its box centre.
    pixel_size
        Angstrom per voxel.
    box_offsets
        ``(N, 3)`` voxels from each particle's coordinate to its box centre (default 0).

    Returns
    -------
    pandas.DataFrame
        With ``rlnAngleRot/Tilt/Psi`` and ``rlnOrigin{X,Y,Z}Angst`` set
        (``origin = -(box_offset + shift) * pixel_size``).
    """
    n = len(particles)
    if rotations.shape != (n, 3, 3) or shifts.shape != (n, 3):
        raise InputError(None, f"{n} particles need rotations (N, 3, 3) and shifts (N, 3)")
    euler = matrix_to_euler(rotations.detach().cpu().to(torch.float64)).numpy()
    offset = shifts.detach().cpu().to(torch.float64)
    if box_offsets is not None:
        offset = offset + box_offsets.detach().cpu().to(torch.float64)
    origins = (-offset * pixel_size).numpy()
    out = particles.copy()
    for j, name in enumerate(ANGLE_COLUMNS):
        out[name] = euler[:, j]
    for j, name in enumerate(ORIGIN_COLUMNS):
        out[name] = origins[:, j]
    return out


def positions_in_tomogram(
    particles: pd.DataFrame,
    *,
    pixel_size: float,
    shape: tuple[int, int, int],
    path: str | os.PathLike[str] | None = None,
) -> torch.Tensor:
    """Particle positions as voxel indices of their tomogram: ``coordinate - origin``.

    Parameters
    ----------
    particles
        Rows with ``rlnCenteredCoordinate{X,Y,Z}Angst`` (origins optional).
    pixel_size
        Tomogram voxel size in Angstrom.
    shape
        Tomogram ``(D, H, W)``.
    path
        The STAR file, named in errors.

    Returns
    -------
    torch.Tensor
        ``(N, 3)`` float64 (x, y, z) voxel indices (sub-voxel).

    Raises
    ------
    InputError
        A coordinate column is missing or a value is not finite.
    """
    missing = [c for c in COORDINATE_COLUMNS if c not in particles.columns]
    if missing:
        raise InputError(path, f"particle table lacks column(s): {', '.join(missing)}")
    coords = _columns(particles, COORDINATE_COLUMNS) - _columns(particles, ORIGIN_COLUMNS)
    if not np.isfinite(coords).all():
        raise InputError(path, "coordinates or origins contain non-numeric or non-finite values")
    centre = np.array([shape[2] // 2, shape[1] // 2, shape[0] // 2], dtype=np.float64)
    return torch.from_numpy(coords / pixel_size + centre)


def image_paths(particles: pd.DataFrame, *, star_path: str | os.PathLike[str]) -> list[Path]:
    """Files of the subtomograms named by ``rlnImageName``.

    RELION writes paths relative to its project folder; a relative name is looked up
    beside the STAR file first, then in the current folder.

    Parameters
    ----------
    particles
        Rows with ``rlnImageName``.
    star_path
        The STAR file.

    Returns
    -------
    list[pathlib.Path]
        One per particle (the first candidate that exists, else the one beside the STAR
        file so that the error names it).

    Raises
    ------
    InputError
        The column is missing, or a name points into a 2-D stack (``n@stack.mrcs``).
    """
    if "rlnImageName" not in particles.columns:
        raise InputError(star_path, "particle table lacks column rlnImageName")
    base = Path(star_path).parent
    out = []
    for name in particles["rlnImageName"].astype(str):
        if "@" in name:
            raise InputError(
                star_path,
                f"{name}: 2-D particle stacks are not supported; extract 3-D subtomograms",
            )
        path = Path(name)
        if not path.is_absolute():
            beside = base / path
            path = beside if beside.exists() or not path.exists() else path
        out.append(path)
    return out


def random_subsets(particles: pd.DataFrame, *, seed: int = 0) -> torch.Tensor:
    """Gold-standard half sets: ``rlnRandomSubset`` when present, else a seeded 1/2 split.

    Parameters
    ----------
    particles
        Particle table.
    seed
        Seed of the split when the column is absent or invalid.

    Returns
    -------
    torch.Tensor
        ``(N,)`` int64 values 1 or 2, both present when ``N >= 2``.
    """
    n = len(particles)
    if "rlnRandomSubset" in particles.columns:
        values = pd.to_numeric(particles["rlnRandomSubset"], errors="coerce").to_numpy()
        if np.isin(values, (1, 2)).all() and (n < 2 or len(set(values.tolist())) == 2):
            return torch.from_numpy(values.astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    subsets = torch.empty(n, dtype=torch.int64)
    subsets[order] = torch.arange(n) % 2 + 1
    return subsets

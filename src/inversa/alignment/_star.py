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

RELION 5's subtomogram angles ``rlnTomoSubtomogram{Rot,Tilt,Psi}`` compose as
``A_sub @ A_particle`` (:func:`to_tomogram_frame`). File names in a STAR file are relative
to its own folder and may not leave it or the current folder (:func:`image_paths`);
:func:`rebase_paths` keeps them valid when a table is written elsewhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
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
    "PIXEL_COORDINATE_COLUMNS",
    "SUBTOMOGRAM_ANGLE_COLUMNS",
    "centred_from_pixel_coordinates",
    "image_paths",
    "pixel_size_of",
    "poses_from_table",
    "poses_to_table",
    "positions_in_tomogram",
    "random_subsets",
    "rebase_paths",
    "safe_file_stem",
    "to_subtomogram_frame",
    "to_tomogram_frame",
]

ANGLE_COLUMNS = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
ORIGIN_COLUMNS = ("rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst")
COORDINATE_COLUMNS = (
    "rlnCenteredCoordinateXAngst",
    "rlnCenteredCoordinateYAngst",
    "rlnCenteredCoordinateZAngst",
)
PIXEL_COORDINATE_COLUMNS = ("rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ")
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


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def image_paths(
    particles: pd.DataFrame,
    *,
    star_path: str | os.PathLike[str],
    column: str = "rlnImageName",
    allow: Sequence[str | os.PathLike[str]] = (),
) -> list[Path]:
    """Files named by a path column (``rlnImageName``), resolved and checked.

    The rule (``docs/subtomogram-averaging.md``): a relative name is relative to the STAR
    file's own folder; a name not found there is looked up in the current folder (RELION
    writes names relative to its project folder, where it runs). A resolved path must lie
    inside the STAR file's folder, the current folder, or a folder of ``allow``; anything
    else (``../../etc/passwd``, an absolute path elsewhere) is refused, so that a STAR file
    cannot make a job read arbitrary files. The check is on the normalised path, not on
    symbolic links inside the allowed folders.

    Parameters
    ----------
    particles
        Rows with ``column``.
    star_path
        The STAR file.
    column
        The column holding file names.
    allow
        More folders that names may point into (``--allow-outside``).

    Returns
    -------
    list[pathlib.Path]
        Absolute, normalised paths, one per particle (the candidate that exists, else the
        one beside the STAR file so that the error names it).

    Raises
    ------
    InputError
        The column is missing, a name points into a 2-D stack (``n@stack.mrcs``), or a
        name leaves the allowed folders.
    """
    if column not in particles.columns:
        raise InputError(star_path, f"particle table lacks column {column}")
    base = os.path.dirname(os.path.abspath(star_path))
    cwd = os.getcwd()
    roots = [base, cwd, *(os.path.abspath(a) for a in allow)]
    out = []
    for name in particles[column].astype(str):
        if "@" in name:
            raise InputError(
                star_path,
                f"{name}: 2-D particle stacks are not supported; extract 3-D subtomograms",
            )
        beside = os.path.normpath(os.path.join(base, name))
        path = beside
        if not os.path.exists(beside):
            here = os.path.normpath(os.path.join(cwd, name))
            path = here if os.path.exists(here) else beside
        if not _inside(path, roots):
            raise InputError(
                star_path,
                f"{column} {name!r} points outside the STAR file's folder and the current "
                "folder; pass --allow-outside FOLDER to read it",
            )
        out.append(Path(path))
    return out


def rebase_paths(
    particles: pd.DataFrame, resolved: dict[str, Sequence[Path]], *, out_star: str | os.PathLike
) -> pd.DataFrame:
    """Rewrite path columns relative to the folder of the STAR file being written.

    Paths in a STAR file are relative to its own folder; a table read from one file and
    written to another must be rebased so that its names still reach the same files.

    Parameters
    ----------
    particles
        ``N`` rows.
    resolved
        Column name -> ``N`` absolute paths (from :func:`image_paths`).
    out_star
        The STAR file that will hold the table.

    Returns
    -------
    pandas.DataFrame
        A copy with each column of ``resolved`` rewritten.
    """
    folder = os.path.dirname(os.path.abspath(out_star))
    out = particles.copy()
    for column, paths in resolved.items():
        out[column] = [Path(os.path.relpath(p, folder)).as_posix() for p in paths]
    return out


def safe_file_stem(value: object) -> str:
    """Make a file-name stem from a value read from a file (``rlnTomoName``).

    Path separators, ``..`` and anything but letters, digits, ``-``, ``_`` and ``.`` are
    replaced by ``_``, so that the name can never place a file outside its folder.

    Parameters
    ----------
    value
        The value, e.g. ``"../../escaped"`` (-> ``"____escaped"``).

    Returns
    -------
    str
        A non-empty stem.
    """
    text = re.sub(r"[^A-Za-z0-9_.-]", "_", str(value))
    text = text.replace("..", "__").lstrip(".")
    return text or "_"


def _rotate_origins(table: pd.DataFrame, matrices: torch.Tensor) -> np.ndarray:
    return (matrices @ torch.from_numpy(_columns(table, ORIGIN_COLUMNS))[..., None])[..., 0].numpy()


def to_tomogram_frame(particles: pd.DataFrame) -> pd.DataFrame:
    """Compose ``rlnTomoSubtomogram{Rot,Tilt,Psi}`` into the particle angles and origins.

    RELION 5 (``ParticleSet::getMatrix3x3``, ``getPosition``) gives a particle two
    rotations: ``A_sub`` of its subtomogram (e.g. from a membrane normal) and ``A_part``
    relative to it. The particle in tomogram axes has ``A = A_sub @ A_part``, and its
    origin in tomogram axes is ``A_sub @ origin``. Boxes cut from a tomogram are in
    tomogram axes, so that is the frame they are aligned in.

    Parameters
    ----------
    particles
        RELION 5 particle table (subtomogram angles optional).

    Returns
    -------
    pandas.DataFrame
        A copy with ``rlnAngle*`` and ``rlnOrigin*Angst`` in tomogram axes and zero
        subtomogram angles (unchanged when there are none).

    Raises
    ------
    InputError
        An angle is not a finite number.
    """
    present = [c for c in SUBTOMOGRAM_ANGLE_COLUMNS if c in particles.columns]
    if not present:
        return particles.copy()
    sub_angles = _columns(particles, SUBTOMOGRAM_ANGLE_COLUMNS)
    if not np.isfinite(sub_angles).all():
        raise InputError(None, "rlnTomoSubtomogram angles are not all finite numbers")
    sub = euler_to_matrix(torch.from_numpy(sub_angles))
    rotations, _ = poses_from_table(particles, pixel_size=1.0)
    out = particles.copy()
    euler = matrix_to_euler(sub @ rotations).numpy()
    origins = _rotate_origins(particles, sub)
    for j, name in enumerate(ANGLE_COLUMNS):
        out[name] = euler[:, j]
    for j, name in enumerate(ORIGIN_COLUMNS):
        out[name] = origins[:, j]
    for name in SUBTOMOGRAM_ANGLE_COLUMNS:
        out[name] = 0.0
    return out


def to_subtomogram_frame(particles: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`to_tomogram_frame`: express poses relative to ``like``'s subtomograms.

    Parameters
    ----------
    particles
        ``N`` rows with angles and origins in tomogram axes.
    like
        ``N`` rows whose ``rlnTomoSubtomogram*`` angles are restored
        (``A_part = A_sub^T @ A``, ``origin = A_sub^T @ origin_tomogram``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``particles`` (unchanged when ``like`` has no subtomogram angles).
    """
    present = [c for c in SUBTOMOGRAM_ANGLE_COLUMNS if c in like.columns]
    if not present:
        return particles.copy()
    sub = euler_to_matrix(torch.from_numpy(_columns(like, SUBTOMOGRAM_ANGLE_COLUMNS)))
    rotations, _ = poses_from_table(particles, pixel_size=1.0)
    out = particles.copy()
    euler = matrix_to_euler(sub.transpose(-1, -2) @ rotations).numpy()
    origins = _rotate_origins(particles, sub.transpose(-1, -2))
    for j, name in enumerate(ANGLE_COLUMNS):
        out[name] = euler[:, j]
    for j, name in enumerate(ORIGIN_COLUMNS):
        out[name] = origins[:, j]
    for name in SUBTOMOGRAM_ANGLE_COLUMNS:
        out[name] = like[name].to_numpy() if name in like.columns else 0.0
    return out


def centred_from_pixel_coordinates(
    particles: pd.DataFrame,
    *,
    pixel_size: float,
    tomogram_size: dict[str, tuple[float, float, float]],
    path: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Add ``rlnCenteredCoordinate*Angst`` from pixel coordinates ``rlnCoordinate{X,Y,Z}``.

    RELION 4 and Warp give positions in pixels of ``pixel_size`` from the tomogram's
    first voxel; RELION 5 gives Angstrom from its centre (voxel ``n // 2``):
    ``centred = coordinate * pixel_size - centre``.

    Parameters
    ----------
    particles
        Rows with ``rlnTomoName`` and ``rlnCoordinate{X,Y,Z}``.
    pixel_size
        Angstrom per pixel of the coordinates (the optics table's).
    tomogram_size
        ``rlnTomoName`` -> the centre voxel's position ``(x, y, z)`` in Angstrom
        (``(n // 2) * voxel size`` per axis).
    path
        The STAR file, named in errors.

    Returns
    -------
    pandas.DataFrame
        A copy with the centred columns set.

    Raises
    ------
    InputError
        A coordinate is not finite or a tomogram is unknown.
    """
    coords = _columns(particles, PIXEL_COORDINATE_COLUMNS)
    if not np.isfinite(coords).all():
        raise InputError(path, "rlnCoordinate values are not all finite numbers")
    names = particles["rlnTomoName"].astype(str).tolist()
    unknown = sorted(set(names) - set(tomogram_size))
    if unknown:
        raise InputError(path, f"no tomogram for rlnTomoName {', '.join(unknown)}")
    centres = np.array([tomogram_size[n] for n in names], dtype=np.float64).reshape(-1, 3)
    centred = coords * pixel_size - centres
    out = particles.copy()
    for j, name in enumerate(COORDINATE_COLUMNS):
        out[name] = centred[:, j]
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

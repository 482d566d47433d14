"""Where subtomogram particles come from: STAR files, subtomogram MRCs, tomograms.

Particles come either as subtomogram MRCs (``rlnImageName``) or as coordinates in
tomograms (``rlnTomoName`` + ``rlnCenteredCoordinate*Angst``, or RELION 4 / Warp pixel
coordinates ``rlnCoordinate*``), with the tomograms given as MRC files or as a RELION 5
``tomograms.star``. Everything a job needs is checked here before any work starts.

A voxel size given by the user (``--voxel-size``) replaces the header voxel size of every
input MRC (subtomograms, tomograms, reference); without it a header that leaves the voxel
size unset (0) warns, naming the file, as `inversa.core.io.read_mrc` does.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import torch

from inversa.alignment import (
    COORDINATE_COLUMNS,
    PIXEL_COORDINATE_COLUMNS,
    ParticleCTF,
    centred_from_pixel_coordinates,
    extract_subtomograms,
    image_paths,
    pixel_size_of,
    positions_in_tomogram,
    to_tomogram_frame,
)
from inversa.core.errors import InputError
from inversa.core.io import read_mrc, read_particles, read_star
from inversa.tomography import TiltSeriesCTF, read_relion5_tilt_series

__all__ = [
    "ParticleSource",
    "TiltSeriesSource",
    "all_particles",
    "checked_reference",
    "input_stamps",
    "load_particles",
    "load_source",
    "outside_report",
    "particle_ctf",
    "read_tomograms_star",
]

# Relative tolerance on voxel sizes that must agree (headers store float32).
_VOXEL_TOLERANCE = 1e-3

_TOMOGRAM_COLUMN = "rlnTomoReconstructedTomogram"


def _same_size(a: float, b: float) -> bool:
    return abs(a - b) <= _VOXEL_TOLERANCE * max(a, b)


def _header(path: Path, voxel_size: float | None = None) -> tuple[tuple[int, int, int], float]:
    """``(D, H, W)`` and voxel size of an MRC volume, from its header only.

    ``voxel_size`` replaces the header's; an unset (0) or invalid header value reads as
    1.0 with a warning naming the file, as in `inversa.core.io.read_mrc`.
    """
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with mrcfile.open(path, header_only=True, permissive=True) as mrc:
            h = mrc.header
            shape = (int(h.nz), int(h.ny), int(h.nx))
            voxel = float(mrc.voxel_size.x)
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot read the MRC header ({err})") from err
    if min(shape) <= 0:
        raise InputError(path, f"MRC header dimensions {shape[::-1]} must be positive")
    if voxel_size is not None:
        return shape, float(voxel_size)
    if not (np.isfinite(voxel) and voxel > 0):
        warnings.warn(
            f"{os.fspath(path)}: the header's voxel size is unset (0) or invalid; using "
            "1.0 A (set it with --voxel-size)",
            UserWarning,
            stacklevel=2,
        )
        voxel = 1.0
    return shape, voxel


def _voxel_mismatch(path: Path, voxel: float, source: ParticleSource) -> InputError:
    given = " (--voxel-size)" if source.voxel_size is not None else ""
    return InputError(
        path, f"voxel size {voxel:g} Å{given} differs from the particles' {source.pixel_size:g} Å"
    )


def read_tomograms_star(
    path: str | os.PathLike[str], *, allow: Sequence[str | os.PathLike[str]] = ()
) -> dict[str, tuple[Path, float | None]]:
    """Tomograms of a RELION 5 ``tomograms.star``: ``rlnTomoName`` -> (file, voxel size).

    The file is ``rlnTomoReconstructedTomogram`` (resolved by the rule of
    :func:`inversa.alignment.image_paths`: relative to the STAR file's folder, then the
    current folder, never outside them and ``allow``); the voxel size is
    ``rlnTomoTiltSeriesPixelSize * rlnTomoTomogramBinning`` when both are given.

    Parameters
    ----------
    path
        The tomogram set STAR file (block ``global``, or its only block).
    allow
        More folders the tomogram files may be in.

    Returns
    -------
    dict[str, tuple[pathlib.Path, float | None]]

    Raises
    ------
    InputError
        No table with ``rlnTomoName`` and ``rlnTomoReconstructedTomogram``, or a file
        outside the allowed folders.
    """
    blocks = read_star(path)
    table = blocks.get("global")
    if table is None:
        table = next((t for t in blocks.values() if "rlnTomoName" in t.columns), None)
    if table is None or not {"rlnTomoName", _TOMOGRAM_COLUMN} <= set(table.columns):
        raise InputError(
            path, f"not a RELION 5 tomogram set: needs rlnTomoName and {_TOMOGRAM_COLUMN}"
        )
    files = image_paths(table, star_path=path, column=_TOMOGRAM_COLUMN, allow=allow)
    voxels: list[float | None] = [None] * len(table)
    if {"rlnTomoTiltSeriesPixelSize", "rlnTomoTomogramBinning"} <= set(table.columns):
        pix = pd.to_numeric(table["rlnTomoTiltSeriesPixelSize"], errors="coerce").to_numpy()
        binning = pd.to_numeric(table["rlnTomoTomogramBinning"], errors="coerce").to_numpy()
        voxels = [
            float(p * b) if np.isfinite(p * b) and p * b > 0 else None
            for p, b in zip(pix, binning, strict=True)
        ]
    names = table["rlnTomoName"].astype(str).tolist()
    return {n: (f, v) for n, f, v in zip(names, files, voxels, strict=True)}


def _match_tomograms(
    names: Sequence[str], tomograms: Sequence[str | Path], star_path: Path, allow: Sequence
) -> dict[str, tuple[Path, float | None]]:
    """Map each ``rlnTomoName`` to a tomogram: by ``tomograms.star``, else by file stem."""
    listed: dict[str, tuple[Path, float | None]] = {}
    paths = []
    for t in tomograms:
        if Path(t).suffix == ".star":
            listed.update(read_tomograms_star(t, allow=allow))
        else:
            paths.append(Path(t))
    unique = sorted(set(names))
    if len(unique) == 1 and len(paths) == 1 and not listed:
        return {unique[0]: (paths[0], None)}
    by_stem = {p.stem: p for p in paths}
    mapping, missing = {}, []
    for name in unique:
        hit = by_stem.get(name) or next(
            (p for p in paths if p.stem.startswith(name + "_") or p.stem.startswith(name + ".")),
            None,
        )
        if hit is not None:
            mapping[name] = (hit, None)
        elif name in listed:
            mapping[name] = listed[name]
        else:
            missing.append(name)
    if missing:
        given = ", ".join([p.name for p in paths] + [f"{n} (tomograms.star)" for n in listed])
        raise InputError(
            star_path,
            f"no tomogram given for rlnTomoName {', '.join(missing)} (tomogram files are "
            f"matched by name: {given})",
        )
    return mapping


@dataclass(frozen=True)
class ParticleSource:
    """Where each particle's voxels come from and where its box centre lies.

    Attributes
    ----------
    star
        The particle STAR file.
    particles
        The particle table; when cutting from tomograms, poses are in tomogram axes
        (subtomogram angles composed in) and centred coordinates are present.
    original
        The table as read (its subtomogram angles are restored on output).
    optics
        The optics table.
    pixel_size
        Angstrom per voxel of the boxes.
    images
        Subtomogram files (absolute), or ``None`` for tomogram coordinates.
    tomograms
        ``rlnTomoName`` -> tomogram file.
    box
        Box edge when cutting from tomograms.
    voxel_size
        Voxel size (Angstrom) that replaces the header's of every input MRC, or ``None``.
    """

    star: Path
    particles: pd.DataFrame
    original: pd.DataFrame
    optics: pd.DataFrame
    pixel_size: float
    images: list[Path] | None
    tomograms: dict[str, Path] = field(default_factory=dict)
    box: int = 0
    voxel_size: float | None = None


def _tomogram_pixel_size(
    optics: pd.DataFrame,
    particles: pd.DataFrame,
    star: Path,
    mapping: dict[str, tuple[Path, float | None]],
    headers: dict[str, tuple[tuple[int, int, int], float]],
) -> float:
    """Voxel size of the boxes cut from tomograms.

    ``rlnImagePixelSize`` when the optics table has it (the tomograms must match it);
    otherwise (a RELION 5 picking table, with only the tilt series' pixel size) the
    tomograms' own voxel size, which must be one for all of them.
    """
    if "rlnImagePixelSize" in optics.columns:
        return pixel_size_of(particles, optics, path=star)
    sizes = {
        name: (listed if listed is not None else headers[name][1])
        for name, (_, listed) in mapping.items()
    }
    first = next(iter(sizes.values()))
    for name, size in sizes.items():
        if not (np.isfinite(size) and size > 0) or not _same_size(size, first):
            raise InputError(
                mapping[name][0], f"voxel size {size:g} Å differs from the other tomograms'"
            )
    return first


def load_source(
    star: str | Path,
    *,
    tomograms: Sequence[str | Path] | None,
    box: int | None,
    allow_outside: Sequence[str | os.PathLike[str]] = (),
    voxel_size: float | None = None,
) -> ParticleSource:
    """Read a particle STAR file and check where its particles come from.

    Parameters
    ----------
    star
        RELION particle STAR file.
    tomograms
        Tomogram MRCs and/or RELION 5 ``tomograms.star`` files to cut particles from;
        ``None`` reads ``rlnImageName``.
    box
        Box edge when cutting from tomograms.
    allow_outside
        Folders outside the STAR file's and the current folder that file names may
        point into.
    voxel_size
        Angstrom per voxel of the input MRCs, replacing their headers' (``--voxel-size``).
        It sets the particles' pixel size where the headers would (tomograms with a
        picking table that has no ``rlnImagePixelSize``) and must agree with the STAR
        file's ``rlnImagePixelSize`` where that is given.

    Returns
    -------
    ParticleSource

    Raises
    ------
    InputError
        An empty table, missing columns, unknown tomograms, a file name that leaves
        the allowed folders, or a ``voxel_size`` that differs from the STAR file's.
    """
    if voxel_size is not None and not (np.isfinite(voxel_size) and voxel_size > 0):
        raise InputError(None, f"voxel size must be positive, got {voxel_size}")
    star = Path(star)
    particles, optics = read_particles(star, required=())
    if len(particles) == 0:
        raise InputError(star, "no particles in the table")
    if not tomograms:
        if "rlnImageName" not in particles.columns:
            raise InputError(
                star,
                "particle table lacks column rlnImageName (subtomograms); for coordinates "
                "in tomograms pass the tomogram files",
            )
        pixel_size = pixel_size_of(particles, optics, path=star)
        if voxel_size is not None and not _same_size(voxel_size, pixel_size):
            raise InputError(
                star, f"--voxel-size {voxel_size:g} Å differs from the particles' {pixel_size:g} Å"
            )
        images = image_paths(particles, star_path=star, allow=allow_outside)
        return ParticleSource(
            star, particles, particles, optics, pixel_size, images, voxel_size=voxel_size
        )
    if "rlnTomoName" not in particles.columns:
        raise InputError(star, "particle table lacks column rlnTomoName")
    centred = all(c in particles.columns for c in COORDINATE_COLUMNS)
    if not centred and not all(c in particles.columns for c in PIXEL_COORDINATE_COLUMNS):
        raise InputError(
            star,
            "particle table lacks coordinates: rlnCenteredCoordinate{X,Y,Z}Angst (RELION 5) "
            "or rlnCoordinate{X,Y,Z} (pixels)",
        )
    if box is None:
        raise InputError(star, "a box size is needed to cut particles from tomograms")
    names = particles["rlnTomoName"].astype(str).tolist()
    mapping = _match_tomograms(names, tomograms, star, allow_outside)
    headers = {name: _header(path, voxel_size) for name, (path, _) in mapping.items()}
    pixel_size = _tomogram_pixel_size(optics, particles, star, mapping, headers)
    table = particles
    if not centred:
        # Pixel coordinates count from the first voxel in the optics table's pixels.
        coordinate_pixel = pixel_size_of(particles, optics, path=star)
        centres = {
            name: tuple((n // 2) * pixel_size for n in shape[::-1])
            for name, (shape, _) in headers.items()
        }
        table = centred_from_pixel_coordinates(
            particles, pixel_size=coordinate_pixel, tomogram_size=centres, path=star
        )
    table = to_tomogram_frame(table)
    paths = {name: path for name, (path, _) in mapping.items()}
    return ParticleSource(
        star, table, particles, optics, pixel_size, None, paths, box, voxel_size=voxel_size
    )


def _read_tomogram(path: Path, source: ParticleSource) -> torch.Tensor:
    volume, voxel = read_mrc(path, ndim=3, mmap=True, voxel_size=source.voxel_size)
    if not _same_size(voxel, source.pixel_size):
        raise _voxel_mismatch(path, voxel, source)
    return volume


def _tomogram_positions(
    source: ParticleSource, rows: np.ndarray, shape: tuple[int, ...]
) -> torch.Tensor:
    return positions_in_tomogram(
        source.particles.iloc[rows],
        pixel_size=source.pixel_size,
        shape=tuple(shape),
        path=source.star,
    )


def load_particles(
    source: ParticleSource, indices: Sequence[int], clipped: list[int] | None = None
) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor], dict[int, str]]:
    """Volumes and box offsets (voxels, box centre - coordinate) of some particles.

    Parameters
    ----------
    source
        From :func:`load_source`.
    indices
        Rows to load.
    clipped
        Rows whose box reaches past the tomogram are appended here.

    Returns
    -------
    volumes : dict[int, torch.Tensor]
        Row -> ``(B, B, B)`` float32.
    offsets : dict[int, torch.Tensor]
        Row -> ``(3,)`` float64 voxels (x, y, z).
    failed : dict[int, str]
        Rows that could not be read, with the reason.
    """
    volumes: dict[int, torch.Tensor] = {}
    offsets: dict[int, torch.Tensor] = {}
    failed: dict[int, str] = {}
    if source.images is not None:
        for i in indices:
            try:
                vol, _ = read_mrc(source.images[i], ndim=3, voxel_size=source.voxel_size)
            except InputError as err:
                failed[i] = str(err)
                continue
            volumes[i] = vol.to(torch.float32)
            offsets[i] = torch.zeros(3, dtype=torch.float64)
        return volumes, offsets, failed
    names = source.particles["rlnTomoName"].astype(str).to_numpy()
    index_array = np.asarray(list(indices))
    for name in sorted(set(names[index_array].tolist())):
        rows = index_array[names[index_array] == name]
        tomo_path = source.tomograms[name]
        tomogram = _read_tomogram(tomo_path, source)
        positions = _tomogram_positions(source, rows, tomogram.shape)
        cut = extract_subtomograms(tomogram, positions, box=source.box)
        coords = torch.from_numpy(
            source.particles.iloc[rows][list(COORDINATE_COLUMNS)].to_numpy(dtype=np.float64)
        )
        centre = torch.tensor([s // 2 for s in tomogram.shape[::-1]], dtype=torch.float64)
        for k, i in enumerate(rows.tolist()):
            if not bool(cut.inside[k]):
                failed[i] = f"{tomo_path}: particle {i} lies outside the tomogram"
                continue
            volumes[i] = cut.volumes[k]
            if clipped is not None and bool(cut.clipped[k]):
                clipped.append(i)
            box_centre = cut.centres[k].to(torch.float64) - centre
            offsets[i] = box_centre - coords[k] / source.pixel_size
    return volumes, offsets, failed


def outside_report(source: ParticleSource) -> None:
    """Raise naming the tomogram when particles lie outside it (before anything is written).

    Parameters
    ----------
    source
        A source that cuts from tomograms (nothing is checked otherwise).

    Raises
    ------
    InputError
        Some particle lies outside its tomogram, or a tomogram's voxel size differs.
    """
    names = source.particles["rlnTomoName"].astype(str).to_numpy()
    for name, path in source.tomograms.items():
        rows = np.flatnonzero(names == name)
        shape, voxel = _header(path, source.voxel_size)
        if not _same_size(voxel, source.pixel_size):
            raise _voxel_mismatch(path, voxel, source)
        pos = _tomogram_positions(source, rows, shape)
        size = torch.tensor(shape[::-1], dtype=torch.float64)
        outside = ~((pos >= -0.5) & (pos <= size - 0.5)).all(dim=1)
        if bool(outside.any()):
            bad = rows[outside.numpy()].tolist()
            shown = ", ".join(str(b) for b in bad[:10]) + (" ..." if len(bad) > 10 else "")
            raise InputError(
                path,
                f"{len(bad)} particle(s) of {source.star.name} lie outside this "
                f"{shape} tomogram (rows {shown})",
            )


def checked_reference(reference: Path, source: ParticleSource) -> torch.Tensor:
    """Read a reference and check it against the particles (voxel size, box, cube).

    Raises
    ------
    InputError
        Voxel size or box differ from the particles', or the reference is not a cube.
    """
    volume, voxel = read_mrc(reference, ndim=3, voxel_size=source.voxel_size)
    if not _same_size(voxel, source.pixel_size):
        given = " (--voxel-size)" if source.voxel_size is not None else ""
        raise InputError(
            reference,
            f"voxel size {voxel:g} Å{given} differs from the particles' {source.pixel_size:g} Å "
            f"({source.star.name})",
        )
    if len(set(volume.shape)) != 1:
        raise InputError(reference, f"the reference must be a cube, got {tuple(volume.shape)}")
    if source.images is not None:
        # The first particle stands for all: one of another box is reported on its own.
        try:
            shape = _header(source.images[0], source.voxel_size)[0]
        except InputError:
            shape = None  # reported with that particle
        if shape is not None and shape != tuple(volume.shape):
            raise InputError(
                reference, f"box {tuple(volume.shape)} differs from the particles' {shape}"
            )
    return volume


def all_particles(source: ParticleSource) -> tuple[torch.Tensor, torch.Tensor]:
    """Every particle in memory: ``(N, B, B, B)`` volumes and ``(N, 3)`` box offsets.

    Raises
    ------
    InputError
        A particle cannot be read, or the boxes do not all have one size (names the file
        with the odd size).
    """
    n = len(source.particles)
    volumes, offsets, failed = load_particles(source, range(n))
    if failed:
        raise InputError(source.star, "; ".join(list(failed.values())[:5]))
    shapes = [tuple(volumes[i].shape) for i in range(n)]
    common = max(set(shapes), key=shapes.count)
    for i, shape in enumerate(shapes):
        if shape != common:
            where = source.images[i] if source.images is not None else source.star
            raise InputError(
                where, f"box {shape} differs from the other particles' {common} (mixed box sizes)"
            )
    return torch.stack([volumes[i] for i in range(n)]), torch.stack([offsets[i] for i in range(n)])


def _stat(path: Path) -> list:
    st = os.stat(path)
    # Inode too: an atomic rewrite (rename over) of a file changes it even within one tick.
    return [str(path), st.st_size, st.st_mtime_ns, st.st_ino]


def input_stamps(source: ParticleSource, rows: Sequence[int]) -> list:
    """Stamp the input files of some particles: path, size, mtime and inode of each.

    Subtomogram files of ``rows`` (a missing file stamps as ``None``), or the tomograms
    they are cut from. A file rewritten after a checkpoint changes its stamp.
    """
    if source.images is not None:
        out = []
        for i in rows:
            try:
                out.append(_stat(source.images[i]))
            except OSError:
                out.append([str(source.images[i]), None])
        return out
    names = source.particles["rlnTomoName"].astype(str).to_numpy()
    return [_stat(source.tomograms[n]) for n in sorted({names[i] for i in rows})]


#: What a job accepts as tilt-series CTF metadata: a RELION 5 ``tomograms.star`` (with
#: ``rlnTomoTiltSeriesStarFile``), ``rlnTomoName`` -> series, or one series for all.
TiltSeriesSource = str | os.PathLike | dict | TiltSeriesCTF


def particle_ctf(
    source: ParticleSource,
    tilt_series: TiltSeriesSource,
    *,
    phase_flipped: bool = False,
    dose_weighted: bool = True,
) -> ParticleCTF:
    """Per-particle 3-D CTF weights of a particle set (for the aligners and the average).

    Parameters
    ----------
    source
        The particles (``rlnTomoName`` and ``rlnCenteredCoordinate{X,Y,Z}Angst``; a
        single series needs no ``rlnTomoName``).
    tilt_series
        A RELION 5 ``tomograms.star`` naming each tomogram's tilt-series STAR file
        (per-tilt defocus, astigmatism, pre-exposure;
        :func:`inversa.tomography.read_relion5_tilt_series`), a dict ``rlnTomoName`` ->
        :class:`~inversa.tomography.TiltSeriesCTF`, or one series for every particle.
    phase_flipped
        The tomograms were reconstructed from phase-flipped tilts (weights ``|CTF|``).
    dose_weighted
        Apply the exposure filter.

    Returns
    -------
    ParticleCTF

    Raises
    ------
    InputError
        Missing coordinates, or a particle whose tomogram has no tilt series.
    """
    table = source.particles
    if not set(COORDINATE_COLUMNS) <= set(table.columns):
        raise InputError(
            source.star, "CTF weights need particle positions (rlnCenteredCoordinate*Angst)"
        )
    positions = torch.tensor(
        table[list(COORDINATE_COLUMNS)].to_numpy(dtype=float, copy=True), dtype=torch.float64
    )
    if isinstance(tilt_series, TiltSeriesCTF):
        series, index = (tilt_series,), torch.zeros(len(table), dtype=torch.long)
    else:
        if not isinstance(tilt_series, dict):
            tilt_series = read_relion5_tilt_series(tilt_series)
        if "rlnTomoName" not in table.columns:
            raise InputError(source.star, "CTF weights per tomogram need rlnTomoName")
        names = list(tilt_series)
        lookup = {name: i for i, name in enumerate(names)}
        missing = sorted(set(table["rlnTomoName"].astype(str)) - set(lookup))
        if missing:
            raise InputError(source.star, f"no tilt-series CTF for tomogram(s) {missing}")
        series = tuple(tilt_series[name] for name in names)
        index = torch.tensor([lookup[str(n)] for n in table["rlnTomoName"]], dtype=torch.long)
    return ParticleCTF(
        series=series,
        series_index=index,
        positions_A=positions,
        pixel_size_A=source.pixel_size,
        phase_flipped=phase_flipped,
        dose_weighted=dose_weighted,
    )

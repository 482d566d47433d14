"""Outputs of the subtomogram jobs: checked up front, STAR paths rebased, FSC files."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from inversa.alignment import AlignmentDiagnostics, AverageResult, rebase_paths
from inversa.core import io
from inversa.core.errors import InputError, OutputExistsError
from inversa.core.io import write_particles
from inversa.workflows._particles import ParticleSource

__all__ = [
    "check_outputs",
    "diagnostics_payload",
    "map_paths",
    "write_fsc",
    "write_json",
    "write_particle_star",
]


def _writable(folder: Path, target: Path) -> None:
    # os.access misleads on read-only mounts and for root: create and remove a probe.
    try:
        fd, probe = tempfile.mkstemp(prefix=".inversa-probe-", dir=folder)
    except OSError as err:
        raise InputError(target, f"cannot write in {folder} ({err.strerror or err})") from None
    os.close(fd)
    os.unlink(probe)


def _existing_ancestor(path: Path) -> Path:
    parent = path.absolute()
    while not parent.exists():
        parent = parent.parent
    return parent


def check_outputs(
    files: Sequence[Path], *, folders: Sequence[Path] = (), force: bool = False
) -> None:
    """Refuse, before any work, outputs that could not all be written.

    Parameters
    ----------
    files
        Output files: none may be a folder or (without ``force``) exist, and each one's
        folder must exist (or be one of ``folders``) and be writable.
    folders
        Output folders the job creates: none may be a file, and the nearest existing
        folder at or above each must be writable.
    force
        Whether existing files may be replaced.

    Raises
    ------
    OutputExistsError
        An output exists and ``force`` is false.
    InputError
        An output is a folder, a folder is a file, or a folder is not writable.
    """
    for folder in folders:
        if folder.exists() and not folder.is_dir():
            raise InputError(folder, "is a file, not a folder")
        ancestor = _existing_ancestor(folder)
        if not ancestor.is_dir():
            raise InputError(folder, f"{ancestor} is a file, not a folder")
        _writable(ancestor, folder)
    created = {f.absolute() for f in folders}
    checked: set[Path] = set()
    for path in files:
        if path.is_dir():
            raise InputError(path, "is a folder, not a file")
        if path.exists() and not force:
            raise OutputExistsError(path)
        parent = path.absolute().parent
        if parent in checked or parent in created:
            continue
        if not parent.is_dir():
            raise InputError(path, f"parent directory {parent} does not exist")
        _writable(parent, path)
        checked.add(parent)


def write_particle_star(
    path: Path,
    table: pd.DataFrame,
    optics: pd.DataFrame,
    *,
    source: ParticleSource | None,
    rows: Sequence[int] | None = None,
    force: bool,
) -> None:
    """Write a particle STAR file whose ``rlnImageName`` still reach the same files.

    Paths in a STAR file are relative to its own folder, so names read through
    ``source`` are rewritten relative to ``path``'s folder.

    Parameters
    ----------
    path
        Output STAR file.
    table, optics
        The tables; ``table`` holds ``rows`` of ``source`` (all rows when ``None``).
    source
        Where the particles were read from, or ``None`` when ``table``'s names are
        already relative to ``path``.
    rows
        Rows of ``source`` that ``table`` holds.
    force
        Overwrite ``path``.
    """
    if source is not None and source.images is not None:
        picked = source.images if rows is None else [source.images[i] for i in rows]
        table = rebase_paths(table, {"rlnImageName": picked}, out_star=path)
    write_particles(path, table, optics, force=force)


def map_paths(out_map: Path) -> dict[str, Path]:
    """Return the files of an average: map, half maps and FSC beside ``out_map``."""
    stem = out_map.with_suffix("")
    return {
        "map": out_map,
        "half1": Path(f"{stem}_half1.mrc"),
        "half2": Path(f"{stem}_half2.mrc"),
        "fsc": Path(f"{stem}_fsc.json"),
    }


def write_json(path: Path, payload: dict, *, force: bool) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    io.write_json(path, payload, force=force, indent=1)


def write_fsc(path: Path, average: AverageResult, *, pixel_size: float, force: bool) -> None:
    """Write an average's half-map FSC curve and resolution as JSON."""
    n = 2 * (len(average.fsc) - 1)
    write_json(
        path,
        {
            "resolution_A": average.resolution,
            "pixel_size_A": pixel_size,
            "frequency_per_A": [s / (n * pixel_size) for s in range(len(average.fsc))],
            "fsc": [float(v) for v in average.fsc],
        },
        force=force,
    )


def diagnostics_payload(diagnostics: AlignmentDiagnostics) -> dict:
    """Return the JSON form of :class:`~inversa.alignment.AlignmentDiagnostics`."""
    z = diagnostics.z_scores.detach().cpu().double()
    resolution = diagnostics.resolution
    return {
        "trustworthy": bool(diagnostics.trustworthy),
        "reasons": list(diagnostics.reasons),
        "unseparated_fraction": float(diagnostics.unseparated_fraction),
        "resolution_A": None if resolution is None or not math.isfinite(resolution) else resolution,
        "median_z": float(z.median()) if z.numel() else None,
        "z_scores": [float(v) for v in z],
    }

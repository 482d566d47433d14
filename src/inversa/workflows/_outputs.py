"""Outputs of the subtomogram jobs: STAR paths rebased, FSC and JSON files.

The up-front output check is `inversa.core.io.check_outputs`, shared with the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from inversa.alignment import AlignmentDiagnostics, AverageResult, rebase_paths
from inversa.core import io
from inversa.core.io import write_particles
from inversa.workflows._particles import ParticleSource

__all__ = [
    "diagnostics_payload",
    "map_paths",
    "write_fsc",
    "write_json",
    "write_particle_star",
]


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

"""``inversa extract``: cut subtomograms around STAR coordinates into MRCs + a STAR file."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inversa.alignment import (
    COORDINATE_COLUMNS,
    PIXEL_COORDINATE_COLUMNS,
    SUBTOMOGRAM_ANGLE_COLUMNS,
    poses_from_table,
    safe_file_stem,
)
from inversa.core.errors import InputError
from inversa.core.io import check_outputs, output_lock, write_mrc
from inversa.core.parallel import map_items
from inversa.workflows._outputs import write_particle_star
from inversa.workflows._particles import ParticleSource, load_particles, load_source, outside_report

__all__ = ["ExtractJobResult", "extract_particles_file"]


@dataclass(frozen=True)
class ExtractJobResult:
    """Files written by :func:`extract_particles_file`.

    Attributes
    ----------
    star
        The particle STAR file naming the subtomograms.
    volumes
        One MRC per particle.
    clipped
        Rows whose box reached past the tomogram edge (padded with the box mean).
    """

    star: Path
    volumes: list[Path]
    clipped: list[int]


def _cut_one_tomogram(rows: tuple[int, ...], *, source: ParticleSource):
    """Cut the particles of one tomogram (one task of ``map_items``)."""
    clipped: list[int] = []
    volumes, offsets, failed = load_particles(source, rows, clipped)
    return volumes, offsets, failed, clipped


def extract_particles_file(
    tomograms: Sequence[str | Path],
    particles_star: str | Path,
    *,
    box: int,
    out_dir: str | Path,
    scheduler: str | None = None,
    allow_outside: Sequence[str | Path] = (),
    voxel_size: float | None = None,
    force: bool = False,
) -> ExtractJobResult:
    """Cut subtomograms around the particles of a RELION STAR file.

    Each particle's box is centred on the tomogram voxel nearest to its position
    ``coordinate - origin``; the output STAR gives that voxel as the coordinate and the
    sub-voxel remainder ``d`` as ``rlnOrigin = -d * pixel_size``, so ``coordinate - origin``
    is unchanged. Boxes are in tomogram axes, so ``rlnTomoSubtomogram*`` angles are
    composed into the particle angles and set to zero. ``rlnImageName`` names the MRCs
    relative to ``out_dir``. File names are built from ``rlnTomoName`` made safe
    (:func:`inversa.alignment.safe_file_stem`): a name can never place a file outside
    ``out_dir/subtomograms``. Every output is checked (and ``out_dir`` locked) before
    anything is written.

    Parameters
    ----------
    tomograms
        Tomogram MRCs, matched to ``rlnTomoName`` by file stem (a single tomogram serves a
        single name whatever its file name), and/or RELION 5 ``tomograms.star`` files.
    particles_star
        Particle STAR file with tomogram names and coordinates (RELION 5 centred
        Angstrom, or RELION 4 / Warp pixels).
    box
        Box edge in voxels.
    out_dir
        Output folder: ``particles.star`` and ``subtomograms/``.
    scheduler
        Dask scheduler for the tomograms (``None``: local threads).
    allow_outside
        Folders outside the STAR files' and the current folder that names may point into.
    voxel_size
        Angstrom per voxel of the input MRCs, replacing their headers' (no warning for
        an unset header); it must agree with the STAR file's ``rlnImagePixelSize`` where
        that is given. ``None`` reads the headers.
    force
        Overwrite existing outputs.

    Returns
    -------
    ExtractJobResult

    Raises
    ------
    InputError
        Missing columns, voxel sizes that disagree, particles outside a tomogram, an
        existing output, or another run writing ``out_dir`` (all before anything is
        written).
    """
    source = load_source(
        particles_star,
        tomograms=tomograms,
        box=box,
        allow_outside=allow_outside,
        voxel_size=voxel_size,
    )
    out = Path(out_dir)
    star_out = out / "particles.star"
    n = len(source.particles)
    names = source.particles["rlnTomoName"].astype(str).tolist()
    rels = [Path("subtomograms") / f"{safe_file_stem(names[i])}_{i + 1:06d}.mrc" for i in range(n)]
    outputs = [star_out, *(out / r for r in rels)]
    folders = [out, out / "subtomograms"]
    check_outputs(outputs, folders=folders, force=force)
    outside_report(source)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        # Again under the lock: a run that held it may have written them meanwhile.
        check_outputs(outputs, folders=folders, force=force)
        by_tomogram = [
            tuple(int(i) for i in np.flatnonzero(np.asarray(names) == name))
            for name in sorted(set(names))
        ]
        cut = functools.partial(_cut_one_tomogram, source=source)
        results = map_items(cut, by_tomogram, scheduler=scheduler, progress=False, fail_fast=True)
        volumes, offsets, clipped, failed = {}, {}, [], {}
        for r in results:
            v, o, f, c = r.value
            volumes.update(v)
            offsets.update(o)
            failed.update(f)
            clipped += c
        if failed:
            raise InputError(source.star, "; ".join(failed.values()))
        (out / "subtomograms").mkdir(exist_ok=True)
        files = []
        for i in range(n):
            write_mrc(out / rels[i], volumes[i], voxel_size=source.pixel_size, force=force)
            files.append(out / rels[i])
        table = source.particles.drop(
            columns=[c for c in PIXEL_COORDINATE_COLUMNS if c in source.particles.columns]
        )
        offset = torch.stack([offsets[i] for i in range(n)])
        old_origin = -poses_from_table(table, pixel_size=source.pixel_size)[1]  # voxels
        coords = torch.from_numpy(table[list(COORDINATE_COLUMNS)].to_numpy(dtype=np.float64))
        new_coords = coords / source.pixel_size + offset
        # Keep coordinate - origin: the new origin absorbs the move of the coordinate.
        new_origin = old_origin + offset
        for j, name in enumerate(COORDINATE_COLUMNS):
            table[name] = (new_coords[:, j] * source.pixel_size).numpy()
        for j, axis in enumerate("XYZ"):
            table[f"rlnOrigin{axis}Angst"] = (new_origin[:, j] * source.pixel_size).numpy()
        for column in SUBTOMOGRAM_ANGLE_COLUMNS:
            table[column] = 0.0
        table["rlnImageName"] = [r.as_posix() for r in rels]
        optics = source.optics.copy()
        optics["rlnImagePixelSize"] = source.pixel_size
        optics["rlnImageSize"] = box
        optics["rlnImageDimensionality"] = 3
        write_particle_star(star_out, table, optics, source=None, force=force)
    return ExtractJobResult(star=star_out, volumes=files, clipped=sorted(clipped))

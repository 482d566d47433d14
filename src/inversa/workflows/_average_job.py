"""``inversa average``: average the particles of a STAR file at their poses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from inversa.alignment import AverageResult, average_particles, poses_from_table, random_subsets
from inversa.core.io import check_outputs, output_lock, write_mrc
from inversa.workflows._outputs import map_paths, write_fsc
from inversa.workflows._particles import (
    TiltSeriesSource,
    all_particles,
    load_source,
    outside_report,
    particle_ctf,
)

__all__ = ["average_particles_file"]


def average_particles_file(
    particles_star: str | Path,
    out_map: str | Path,
    *,
    wedge: tuple[float, float] | None = None,
    tomograms: Sequence[str | Path] | None = None,
    box: int | None = None,
    device: str = "cpu",
    allow_outside: Sequence[str | Path] = (),
    voxel_size: float | None = None,
    tilt_series: TiltSeriesSource | None = None,
    phase_flipped: bool = False,
    force: bool = False,
) -> AverageResult:
    """Average the particles of a STAR file at their poses; write map, half maps, FSC.

    Writes ``OUT.mrc``, ``OUT_half1.mrc``, ``OUT_half2.mrc`` (half sets from
    ``rlnRandomSubset``, else a seeded split) and ``OUT_fsc.json``; all four are checked
    (and ``OUT.mrc.lock`` taken) before any work.

    Parameters
    ----------
    particles_star
        RELION particle STAR file with angles and origins.
    out_map
        Output MRC.
    wedge
        ``(tilt_min, tilt_max)`` degrees for wedge-weighted averaging, or ``None``.
    tomograms, box
        Cut particles from these tomograms (MRCs or ``tomograms.star``) with this box
        instead of reading ``rlnImageName``.
    device
        Torch device the average is computed on.
    allow_outside
        Folders outside the STAR file's and the current folder that names may point into.
    voxel_size
        Angstrom per voxel of the input MRCs, replacing their headers' (no warning for
        an unset header); it must agree with the STAR file's ``rlnImagePixelSize`` where
        that is given. ``None`` reads the headers.
    tilt_series, phase_flipped
        Tilt-series CTF metadata (as in
        :func:`~inversa.workflows.refine_particles_file`): a CTF-corrected average
        (Wiener constant from the half sets' FSC) instead of the wedge-weighted one.
    force
        Overwrite outputs.

    Returns
    -------
    AverageResult

    Raises
    ------
    InputError
        Bad inputs (unreadable particles, mixed box sizes), an existing output, or
        another run writing ``out_map``.
    """
    paths = map_paths(Path(out_map))
    check_outputs(list(paths.values()), force=force)
    source = load_source(
        particles_star,
        tomograms=tomograms,
        box=box,
        allow_outside=allow_outside,
        voxel_size=voxel_size,
    )
    ctf = None
    if tilt_series is not None:
        ctf = particle_ctf(source, tilt_series, phase_flipped=phase_flipped)
    if tomograms:
        outside_report(source)
    with output_lock(paths["map"]):
        check_outputs(list(paths.values()), force=force)
        volumes, offsets = all_particles(source)
        rotations, shifts = poses_from_table(
            source.particles, pixel_size=source.pixel_size, box_offsets=offsets, path=source.star
        )
        average = average_particles(
            volumes.to(device),
            rotations.to(device=device, dtype=torch.float32),
            shifts.to(device=device, dtype=torch.float32),
            wedge=wedge,
            subsets=random_subsets(source.particles),
            pixel_size=source.pixel_size,
            ctf=ctf,
        )
        for role in ("map", "half1", "half2"):
            data = getattr(average, role).cpu()
            write_mrc(paths[role], data, voxel_size=source.pixel_size, force=force)
        write_fsc(paths["fsc"], average, pixel_size=source.pixel_size, force=force)
    return average

"""``inversa refine``: iterative gold-standard refinement of the particles of a STAR file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from inversa.alignment import (
    AlignmentDiagnostics,
    AlignmentResult,
    AverageResult,
    IterationStats,
    RefineConfig,
    RefineResult,
    diagnose_refinement,
    poses_from_table,
    poses_to_table,
    random_subsets,
    refine,
    to_subtomogram_frame,
)
from inversa.core.errors import InputError
from inversa.core.io import check_outputs, output_lock, read_mrc, write_mrc
from inversa.workflows._outputs import (
    diagnostics_payload,
    map_paths,
    write_fsc,
    write_json,
    write_particle_star,
)
from inversa.workflows._particles import (
    TiltSeriesSource,
    all_particles,
    checked_reference,
    load_source,
    outside_report,
    particle_ctf,
)

__all__ = ["RefineJobResult", "refine_output_paths", "refine_particles_file"]


def refine_output_paths(out_dir: str | Path) -> dict[str, Path]:
    """Return every file :func:`refine_particles_file` writes in ``out_dir``, by role."""
    out = Path(out_dir)
    maps = map_paths(out / "run_class001.mrc")
    return {
        "data": out / "run_data.star",
        **maps,
        "model": out / "run_model.json",
        "diagnostics": out / "run_diagnostics.json",
    }


@dataclass(frozen=True)
class RefineJobResult:
    """Outcome of :func:`refine_particles_file`.

    ``average``, ``alignment`` and ``iterations`` are those of ``refined``.

    Attributes
    ----------
    refined
        The :class:`~inversa.alignment.RefineResult`.
    diagnostics
        Whether the poses can be trusted (:func:`inversa.alignment.diagnose_refinement`),
        or ``None`` when not diagnosed; also in ``run_diagnostics.json``.
    files
        The files written, by role (see :func:`refine_output_paths`).
    """

    refined: RefineResult
    diagnostics: AlignmentDiagnostics | None
    files: dict[str, Path]

    @property
    def average(self) -> AverageResult:
        """The last average (``refined.average``)."""
        return self.refined.average

    @property
    def alignment(self) -> AlignmentResult:
        """The last poses (``refined.alignment``)."""
        return self.refined.alignment

    @property
    def iterations(self) -> tuple[IterationStats, ...]:
        """One entry per iteration (``refined.iterations``)."""
        return self.refined.iterations


def refine_particles_file(
    particles_star: str | Path,
    out_dir: str | Path,
    *,
    config: RefineConfig,
    reference: str | Path | None = None,
    n_iterations: int = 3,
    tomograms: Sequence[str | Path] | None = None,
    box: int | None = None,
    use_priors: bool = False,
    device: str = "cpu",
    allow_outside: Sequence[str | Path] = (),
    voxel_size: float | None = None,
    diagnose: bool = True,
    tilt_series: TiltSeriesSource | None = None,
    phase_flipped: bool = False,
    force: bool = False,
) -> RefineJobResult:
    """Refine the particles of a STAR file: poses, average, half maps, FSC per iteration.

    Writes in ``out_dir``: ``run_data.star`` (refined poses), ``run_class001.mrc`` with
    ``_half1``/``_half2`` maps and ``run_class001_fsc.json``, and ``run_model.json``
    (resolution and FSC of every iteration), and ``run_diagnostics.json`` (whether the
    poses can be trusted). Every output is checked (and ``out_dir.lock`` taken) before
    any work. All particles are held in memory.

    Parameters
    ----------
    particles_star
        RELION particle STAR file.
    out_dir
        Output folder (created).
    config
        Aligner (wedge, mask, local range) and initial low-pass.
    reference
        Starting reference MRC (box and voxel size of the particles), or ``None`` to
        start from scratch.
    n_iterations
        Refinement iterations.
    tomograms, box
        Cut particles from tomograms (MRCs or ``tomograms.star``) instead of reading
        ``rlnImageName``.
    use_priors
        Start from the STAR file's angles (local search from the first iteration).
    device
        Torch device the refinement runs on.
    allow_outside
        Folders outside the STAR file's and the current folder that names may point into.
    voxel_size
        Angstrom per voxel of the input MRCs, replacing their headers' (no warning for
        an unset header); it must agree with the STAR file's ``rlnImagePixelSize`` where
        that is given. ``None`` reads the headers.
    diagnose
        Judge whether the poses can be trusted and write ``run_diagnostics.json``.
    tilt_series
        Tilt-series CTF metadata (a RELION 5 ``tomograms.star``, a dict ``rlnTomoName``
        -> :class:`~inversa.tomography.TiltSeriesCTF`, or one series): the aligner
        scores with each particle's 3-D CTF x exposure weight instead of the wedge and
        the averages are CTF-corrected; ``None``: the wedge of ``config``.
    phase_flipped
        With ``tilt_series``: the tomograms were reconstructed from phase-flipped tilts.
    force
        Overwrite outputs.

    Returns
    -------
    RefineJobResult

    Raises
    ------
    InputError
        Bad inputs (unreadable particles, mixed box sizes, a reference that does not
        match), an existing output, or another run writing ``out_dir``.
    """
    out = Path(out_dir)
    paths = refine_output_paths(out)
    if not diagnose:
        del paths["diagnostics"]
    check_outputs(list(paths.values()), folders=[out], force=force)
    if reference is not None and tomograms and box is None:
        box = read_mrc(reference, ndim=3, voxel_size=voxel_size)[0].shape[-1]
    source = load_source(
        particles_star,
        tomograms=tomograms,
        box=box,
        allow_outside=allow_outside,
        voxel_size=voxel_size,
    )
    ref_volume = None
    if reference is not None:
        ref_volume = checked_reference(Path(reference), source)
    ctf = None
    if tilt_series is not None:
        ctf = particle_ctf(source, tilt_series, phase_flipped=phase_flipped)
    if tomograms:
        outside_report(source)
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        check_outputs(list(paths.values()), folders=[out], force=force)
        volumes, offsets = all_particles(source)
        if ref_volume is not None and ref_volume.shape != volumes.shape[1:]:
            raise InputError(
                reference,
                f"box {tuple(ref_volume.shape)} differs from the particles' "
                f"{tuple(volumes.shape[1:])}",
            )
        priors = None
        if use_priors:
            priors = poses_from_table(source.particles, pixel_size=source.pixel_size)[0]
            priors = priors.to(device).float()
        result = refine(
            volumes.to(device),
            reference=None if ref_volume is None else ref_volume.to(device),
            config=config,
            n_iterations=n_iterations,
            subsets=random_subsets(source.particles),
            prior_rotations=priors,
            pixel_size=source.pixel_size,
            ctf=ctf,
        )
        table = poses_to_table(
            source.particles,
            result.alignment.rotations.cpu(),
            result.alignment.shifts.cpu(),
            pixel_size=source.pixel_size,
            box_offsets=offsets,
        )
        if source.images is None:
            table = to_subtomogram_frame(table, source.original)
        if "rlnRandomSubset" not in table.columns:
            table["rlnRandomSubset"] = random_subsets(source.particles).numpy()
        write_particle_star(paths["data"], table, source.optics, source=source, force=force)
        for role in ("map", "half1", "half2"):
            data = getattr(result.average, role).cpu()
            write_mrc(paths[role], data, voxel_size=source.pixel_size, force=force)
        write_fsc(paths["fsc"], result.average, pixel_size=source.pixel_size, force=force)
        model = {
            "config": json.loads(json.dumps(asdict(config), default=str)),
            "iterations": [
                {
                    "iteration": it.iteration,
                    "resolution_A": it.resolution if math.isfinite(it.resolution) else None,
                    "mean_score": it.mean_score,
                    "local": it.local,
                    "seconds": it.seconds,
                    "fsc": [float(v) for v in it.fsc],
                }
                for it in result.iterations
            ],
        }
        write_json(paths["model"], model, force=force)
        diagnostics = None
        if diagnose:
            diagnostics = diagnose_refinement(
                volumes.to(device), result, config=config, pixel_size=source.pixel_size
            )
            write_json(paths["diagnostics"], diagnostics_payload(diagnostics), force=force)
    return RefineJobResult(refined=result, diagnostics=diagnostics, files=paths)

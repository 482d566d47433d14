"""``inversa extract``, ``align``, ``average`` and ``refine``: subtomogram averaging."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, Scheduler, VoxelSize, parse_wedge

_Wedge = typer.Option(
    None, "--wedge", help="MIN,MAX tilt range in degrees: weight by the missing wedge."
)
_Tomograms = typer.Option(
    None,
    "--tomogram",
    help="Tomogram MRC or RELION 5 tomograms.star to cut particles from (repeat; MRCs are "
    "matched to rlnTomoName by file name).",
)
_TiltSeries = typer.Option(
    None,
    "--tilt-series",
    help="RELION 5 tomograms.star naming each tomogram's tilt-series STAR file (per-tilt "
    "defocus, astigmatism, pre-exposure): weight by each particle's 3-D CTF x dose instead "
    "of the wedge, and average CTF-corrected.",
)
_PhaseFlipped = typer.Option(
    False, "--phase-flipped", help="With --tilt-series: the tomograms are phase-flipped."
)
_MaxShift = typer.Option(4.0, "--max-shift", min=0.0, help="Largest shift in voxels.")
_CutBox = typer.Option(None, "--box", min=2, help="Box edge when cutting from tomograms.")
_Method = typer.Option(
    "newton", "--method", help="Aligner: newton (default, faster and more accurate) or exhaustive."
)


def _warn_untrusted(diagnostics, where: Path | None) -> None:
    if diagnostics is not None and not diagnostics.trustworthy:
        reasons = "; ".join(diagnostics.reasons)
        typer.echo(f"warning: the poses may not be trustworthy: {reasons} (see {where})", err=True)


_AllowOutside = typer.Option(
    None,
    "--allow-outside",
    help="Folder that file names in STAR files may point into besides the STAR file's "
    "folder and the current folder (repeat).",
)


@app.command()
def extract(
    tomograms: list[Path] = typer.Argument(
        ..., help="Tomogram MRC file(s) or a RELION 5 tomograms.star."
    ),
    particles: Path = typer.Option(..., "--particles", help="RELION particle STAR file."),
    box: int = typer.Option(..., "--box", help="Box edge in voxels."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    scheduler: str = Scheduler,
    allow_outside: list[Path] = _AllowOutside,
    voxel_size: float = VoxelSize,
    force: bool = Force,
) -> None:
    """Cut subtomograms around STAR coordinates -> MRCs + particles.star (rlnImageName)."""
    from inversa.workflows import extract_particles_file

    result = extract_particles_file(
        tomograms,
        particles,
        box=box,
        out_dir=out,
        scheduler=scheduler,
        allow_outside=allow_outside or (),
        voxel_size=voxel_size,
        force=force,
    )
    typer.echo(f"extracted {len(result.volumes)} subtomograms of {box}^3 -> {result.star}")
    if result.clipped:
        typer.echo(f"  {len(result.clipped)} box(es) reach past the tomogram edge (padded)")


@app.command()
def align(
    particles: Path = typer.Argument(..., help="RELION particle STAR file."),
    reference: Path = typer.Option(..., "--reference", help="Reference MRC."),
    out: Path = typer.Option(..., "--out", "-o", help="Output STAR file."),
    max_angle_deg: float = typer.Option(
        None,
        "--max-angle-deg",
        "--local",
        help="Search within DEG of the STAR angles (default: global).",
    ),
    wedge: str = _Wedge,
    tilt_series: Path = _TiltSeries,
    phase_flipped: bool = _PhaseFlipped,
    method: str = _Method,
    max_shift: float = _MaxShift,
    chunk_size: int = typer.Option(8, "--chunk-size", help="Particles per task/checkpoint."),
    tomograms: list[Path] = _Tomograms,
    scheduler: str = Scheduler,
    device: str = Device,
    allow_outside: list[Path] = _AllowOutside,
    voxel_size: float = VoxelSize,
    force: bool = Force,
) -> None:
    """Align particles to a reference; write RELION angles and origins (resumable)."""
    from inversa.workflows import AlignJobConfig, align_particles_file

    config = AlignJobConfig(
        method=method,
        max_angle_deg=max_angle_deg,
        wedge=parse_wedge(wedge),
        max_shift=max_shift,
        chunk_size=chunk_size,
        tilt_series=tilt_series,
        phase_flipped=phase_flipped,
    )
    result = align_particles_file(
        particles,
        reference,
        out,
        config=config,
        tomograms=tomograms or None,
        scheduler=scheduler,
        device=device,
        allow_outside=allow_outside or (),
        voxel_size=voxel_size,
        force=force,
        progress=True,
    )
    if result.restarted:
        typer.echo(f"warning: {result.restarted}", err=True)
    notes = []
    if result.resumed_chunks:
        notes.append(f"{result.resumed_chunks} chunk(s) resumed")
    if result.redone_chunks:
        notes.append(f"{result.redone_chunks} checkpointed chunk(s) redone: inputs changed")
    extra = f" ({'; '.join(notes)})" if notes else ""
    typer.echo(
        f"aligned {result.n_aligned} particles, mean score {result.mean_score:.3f}{extra} "
        f"-> {result.star}"
    )
    for row, reason in result.failed:
        typer.echo(f"  skipped particle {row}: {reason}", err=True)
    _warn_untrusted(result.diagnostics, result.diagnostics_file)


@app.command()
def average(
    particles: Path = typer.Argument(..., help="RELION particle STAR file with poses."),
    out: Path = typer.Option(..., "--out", "-o", help="Output map MRC (half maps beside it)."),
    wedge: str = _Wedge,
    tilt_series: Path = _TiltSeries,
    phase_flipped: bool = _PhaseFlipped,
    tomograms: list[Path] = _Tomograms,
    box: int = _CutBox,
    device: str = Device,
    allow_outside: list[Path] = _AllowOutside,
    voxel_size: float = VoxelSize,
    force: bool = Force,
) -> None:
    """Average particles at their poses: map, half maps and half-map FSC."""
    from inversa.workflows import average_particles_file

    result = average_particles_file(
        particles,
        out,
        wedge=parse_wedge(wedge),
        tomograms=tomograms or None,
        box=box,
        device=device,
        allow_outside=allow_outside or (),
        voxel_size=voxel_size,
        tilt_series=tilt_series,
        phase_flipped=phase_flipped,
        force=force,
    )
    typer.echo(f"average -> {out}; half-map FSC 0.143 resolution {result.resolution:.1f} Å")


@app.command()
def refine(
    particles: Path = typer.Argument(..., help="RELION particle STAR file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    reference: Path = typer.Option(
        None, "--reference", help="Starting reference MRC (default: from scratch)."
    ),
    iterations: int = typer.Option(3, "--iterations", help="Align/average iterations."),
    initial_resolution: float = typer.Option(
        None, "--initial-resolution", help="Low-pass the starting reference to this (Å)."
    ),
    max_angle_deg: float = typer.Option(
        10.0,
        "--max-angle-deg",
        "--local",
        help="After the first iteration search within DEG of the last poses.",
    ),
    use_priors: bool = typer.Option(
        False, "--use-priors", help="Start from the STAR angles (local from the start)."
    ),
    wedge: str = _Wedge,
    tilt_series: Path = _TiltSeries,
    phase_flipped: bool = _PhaseFlipped,
    method: str = _Method,
    max_shift: float = _MaxShift,
    tomograms: list[Path] = _Tomograms,
    box: int = _CutBox,
    device: str = Device,
    allow_outside: list[Path] = _AllowOutside,
    voxel_size: float = VoxelSize,
    force: bool = Force,
) -> None:
    """Refine poses iteratively (gold standard): align, average, FSC, low-pass."""
    from inversa.alignment import RefineConfig, aligner_config
    from inversa.workflows import refine_particles_file

    aligner = aligner_config(
        method, wedge=parse_wedge(wedge), max_shift=max_shift, max_angle_deg=max_angle_deg
    )
    config = RefineConfig(aligner=aligner, initial_resolution=initial_resolution)
    result = refine_particles_file(
        particles,
        out,
        config=config,
        reference=reference,
        n_iterations=iterations,
        tomograms=tomograms or None,
        box=box,
        use_priors=use_priors,
        device=device,
        allow_outside=allow_outside or (),
        voxel_size=voxel_size,
        tilt_series=tilt_series,
        phase_flipped=phase_flipped,
        force=force,
    )
    for it in result.iterations:
        typer.echo(
            f"iteration {it.iteration}: FSC 0.143 {it.resolution:.1f} Å, "
            f"mean score {it.mean_score:.3f}, {it.seconds:.1f} s"
        )
    typer.echo(f"refined {len(result.alignment.scores)} particles -> {out}")
    _warn_untrusted(result.diagnostics, result.files.get("diagnostics"))

"""``inversa extract``, ``align``, ``average`` and ``refine``: subtomogram averaging."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Force, Scheduler, parse_floats

_Wedge = typer.Option(
    None, "--wedge", help="MIN,MAX tilt range in degrees: weight by the missing wedge."
)
_Tomograms = typer.Option(
    None,
    "--tomogram",
    help="Tomogram MRC to cut particles from (repeat; matched to rlnTomoName by file name).",
)
_Method = typer.Option("exhaustive", "--method", help="Aligner: exhaustive or newton.")


def _wedge(text: str | None) -> tuple[float, float] | None:
    return None if text is None else parse_floats(text, count=2, name="--wedge")


@app.command()
def extract(
    tomograms: list[Path] = typer.Argument(..., help="Tomogram MRC file(s)."),
    particles: Path = typer.Option(..., "--particles", help="RELION 5 particle STAR file."),
    box: int = typer.Option(..., "--box", help="Box edge in voxels."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    force: bool = Force,
) -> None:
    """Cut subtomograms around STAR coordinates -> MRCs + particles.star (rlnImageName)."""
    from inversa.workflows._subtomo import extract_particles_file

    result = extract_particles_file(tomograms, particles, box=box, out_dir=out, force=force)
    typer.echo(f"extracted {len(result.volumes)} subtomograms of {box}^3 -> {result.star}")
    if result.clipped:
        typer.echo(f"  {len(result.clipped)} box(es) reach past the tomogram edge (padded)")


@app.command()
def align(
    particles: Path = typer.Argument(..., help="RELION 5 particle STAR file."),
    reference: Path = typer.Option(..., "--reference", help="Reference MRC."),
    out: Path = typer.Option(..., "--out", "-o", help="Output STAR file."),
    local: float = typer.Option(
        None, "--local", help="Search within DEG of the STAR angles (default: global)."
    ),
    wedge: str = _Wedge,
    method: str = _Method,
    max_shift: float = typer.Option(4.0, "--max-shift", help="Largest shift in voxels."),
    chunk_size: int = typer.Option(8, "--chunk-size", help="Particles per task/checkpoint."),
    tomograms: list[Path] = _Tomograms,
    scheduler: str = Scheduler,
    force: bool = Force,
) -> None:
    """Align particles to a reference; write RELION angles and origins (resumable)."""
    from inversa.workflows._subtomo import AlignJobConfig, align_particles_file

    config = AlignJobConfig(
        method=method,
        local_angle=local,
        wedge=_wedge(wedge),
        max_shift=max_shift,
        chunk_size=chunk_size,
    )
    result = align_particles_file(
        particles,
        reference,
        out,
        config=config,
        tomograms=tomograms or None,
        scheduler=scheduler,
        force=force,
        progress=True,
    )
    resumed = f" ({result.resumed_chunks} chunk(s) resumed)" if result.resumed_chunks else ""
    typer.echo(
        f"aligned {result.n_aligned} particles, mean score {result.mean_score:.3f}{resumed} "
        f"-> {result.star}"
    )
    for row, reason in result.failed:
        typer.echo(f"  skipped particle {row}: {reason}", err=True)


@app.command()
def average(
    particles: Path = typer.Argument(..., help="RELION 5 particle STAR file with poses."),
    out: Path = typer.Option(..., "--out", "-o", help="Output map MRC (half maps beside it)."),
    wedge: str = _Wedge,
    tomograms: list[Path] = _Tomograms,
    box: int = typer.Option(None, "--box", help="Box edge when cutting from tomograms."),
    force: bool = Force,
) -> None:
    """Average particles at their poses: map, half maps and half-map FSC."""
    from inversa.workflows._subtomo import average_particles_file

    result = average_particles_file(
        particles, out, wedge=_wedge(wedge), tomograms=tomograms or None, box=box, force=force
    )
    typer.echo(f"average -> {out}; half-map FSC 0.143 resolution {result.resolution:.1f} Å")


@app.command()
def refine(
    particles: Path = typer.Argument(..., help="RELION 5 particle STAR file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    reference: Path = typer.Option(
        None, "--reference", help="Starting reference MRC (default: from scratch)."
    ),
    iterations: int = typer.Option(3, "--iterations", help="Align/average iterations."),
    initial_resolution: float = typer.Option(
        None, "--initial-resolution", help="Low-pass the starting reference to this (Å)."
    ),
    local: float = typer.Option(
        10.0, "--local", help="After the first iteration search within DEG of the last poses."
    ),
    use_priors: bool = typer.Option(
        False, "--use-priors", help="Start from the STAR angles (local from the start)."
    ),
    wedge: str = _Wedge,
    method: str = _Method,
    max_shift: float = typer.Option(4.0, "--max-shift", help="Largest shift in voxels."),
    tomograms: list[Path] = _Tomograms,
    box: int = typer.Option(None, "--box", help="Box edge when cutting from tomograms."),
    force: bool = Force,
) -> None:
    """Refine poses iteratively (gold standard): align, average, FSC, low-pass."""
    from inversa.alignment._refine import RefineConfig
    from inversa.workflows._subtomo import refine_particles_file

    config = RefineConfig(
        method=method,
        wedge=_wedge(wedge),
        local_angle=local,
        initial_resolution=initial_resolution,
        max_shift=max_shift,
    )
    result = refine_particles_file(
        particles,
        out,
        config=config,
        reference=reference,
        n_iterations=iterations,
        tomograms=tomograms or None,
        box=box,
        use_priors=use_priors,
        force=force,
    )
    for it in result.iterations:
        typer.echo(
            f"iteration {it.iteration}: FSC 0.143 {it.resolution:.1f} Å, "
            f"mean score {it.mean_score:.3f}, {it.seconds:.1f} s"
        )
    typer.echo(f"refined {len(result.alignment.scores)} particles -> {out}")

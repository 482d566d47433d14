"""``inversa bench NAME``."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, check_outputs


@app.command()
def bench(
    name: str = typer.Argument(..., help="Benchmark name, e.g. tomography."),
    quick: bool = typer.Option(False, "--quick", help="Laptop sizes, under a minute."),
    json_path: Path = typer.Option(None, "--json", help="Write the results as flat JSON."),
    figures: Path = typer.Option(
        None, "--figures", help="Folder for the benchmark's PNG figures (if it draws any)."
    ),
    from_json: Path = typer.Option(
        None, "--from-json", help="Redraw --figures from a saved --json file; do not rerun."
    ),
    resume: Path = typer.Option(
        None,
        "--resume",
        help="Save finished parts to this file and continue from it when rerun (long runs).",
    ),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Reproduce a method's headline experiment beside its peers and print the ratios."""
    from inversa.bench import benchmark_figures, run_benchmark
    from inversa.core.errors import InputError
    from inversa.core.io import read_json

    if json_path is not None:
        check_outputs([json_path], force=force, inputs=[] if from_json is None else [from_json])
    if figures is not None:
        check_outputs(folders=[figures])
    if resume is not None:  # an existing resume file is continued, not overwritten
        check_outputs([resume], force=True)
    if from_json is not None:
        if figures is None:
            raise InputError(from_json, "--from-json only redraws figures: give --figures DIR")
        values = read_json(from_json)
        for path in benchmark_figures(name, values, figures, force=force):
            typer.echo(f"wrote {path}")
        return
    report = run_benchmark(name, quick=quick, resume=resume, device=device)
    report.print()
    if json_path is not None:
        report.write_json(json_path, force=force)
        typer.echo(f"wrote {json_path}")
    if figures is not None:
        for path in benchmark_figures(name, report.values, figures, force=force):
            typer.echo(f"wrote {path}")

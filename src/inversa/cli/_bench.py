"""``inversa bench NAME``."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Force


@app.command()
def bench(
    name: str = typer.Argument(..., help="Benchmark name, e.g. tomography."),
    quick: bool = typer.Option(False, "--quick", help="Laptop sizes, under a minute."),
    json_path: Path = typer.Option(None, "--json", help="Write the results as flat JSON."),
    force: bool = Force,
) -> None:
    """Reproduce a method's headline experiment beside its peers and print the ratios."""
    from inversa.bench import run_benchmark
    from inversa.core.errors import OutputExistsError

    if json_path is not None and json_path.exists() and not force:
        raise OutputExistsError(json_path)
    report = run_benchmark(name, quick=quick)
    report.print()
    if json_path is not None:
        report.write_json(json_path, force=force)
        typer.echo(f"wrote {json_path}")

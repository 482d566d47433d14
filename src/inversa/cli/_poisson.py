"""``inversa poisson study``: MSE versus dose of Poisson and Gaussian objectives."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Force

poisson_app = typer.Typer(help="Poisson versus Gaussian objectives for low-dose imaging.")
app.add_typer(poisson_app, name="poisson")


@poisson_app.command("study")
def study(
    out_dir: Path = typer.Option(Path("poisson_study"), "--out", "-o", help="Output folder."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes (about a minute or two)."),
    penalty: str = typer.Option("gradient", help="Regulariser: identity, gradient or tv."),
    seed: int = typer.Option(0, help="Random seed."),
    force: bool = Force,
) -> None:
    """Run the CT study; write table.txt, results.json and mse_vs_dose.png."""
    import dataclasses
    import json

    from inversa.core.errors import InputError
    from inversa.core.io import atomic_write
    from inversa.poisson import StudyConfig, run_study, write_figure

    if penalty not in ("identity", "gradient", "tv"):
        raise InputError(None, f"--penalty must be identity, gradient or tv, got {penalty!r}")
    if not out_dir.is_dir():
        out_dir.mkdir(parents=True)
    table_path, json_path = out_dir / "table.txt", out_dir / "results.json"
    fig_path = out_dir / "mse_vs_dose.png"
    base = StudyConfig.quick() if quick else StudyConfig()
    config = dataclasses.replace(base, penalty=penalty, seed=seed)
    for path in (table_path, json_path, fig_path):
        if path.exists() and not force:
            from inversa.core.errors import OutputExistsError

            raise OutputExistsError(path)
    result = run_study(config, progress=True)
    table = result.table()
    with atomic_write(table_path, force=force) as tmp:
        Path(tmp).write_text(table + "\n")
    payload = {
        "config": dataclasses.asdict(config),
        "doses": result.doses,
        "counts_per_ray": result.counts_per_ray,
        "mse": result.mse,
        "mse_ci95": result.mse_ci,
        "psnr": result.psnr,
        "psnr_ci95": result.psnr_ci,
        "reg": result.reg,
        "iterations": result.iterations,
    }
    with atomic_write(json_path, force=force) as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=2) + "\n")
    write_figure(result, fig_path, force=force)
    typer.echo(table)
    typer.echo(f"wrote {table_path}, {json_path}, {fig_path}")

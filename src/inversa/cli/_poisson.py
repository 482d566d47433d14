"""``inversa poisson study``: MSE versus dose of Poisson and Gaussian objectives."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, check_outputs, output_folder

poisson_app = typer.Typer(help="Poisson versus Gaussian objectives for low-dose imaging.")
app.add_typer(poisson_app, name="poisson")


@poisson_app.command("study")
def study(
    out_dir: Path = typer.Option(Path("poisson_study"), "--out", "-o", help="Output folder."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes (about a minute or two)."),
    penalty: Literal["identity", "gradient", "tv"] = typer.Option(
        "gradient", help="Regulariser: identity, gradient or tv."
    ),
    seed: int = typer.Option(0, help="Random seed."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Run the CT study; write table.txt, results.json and mse_vs_dose.png."""
    import dataclasses

    from inversa.core.optional import require
    from inversa.poisson import StudyConfig

    table_path, json_path = out_dir / "table.txt", out_dir / "results.json"
    fig_path = out_dir / "mse_vs_dose.png"
    check_outputs([table_path, json_path, fig_path], folders=[out_dir], force=force)
    base = StudyConfig.quick() if quick else StudyConfig()
    config = dataclasses.replace(base, penalty=penalty, seed=seed)
    require("pydicom")  # the study's CT slice ships with pydicom: fail before the work
    with output_folder(out_dir):
        _run(config, table_path, json_path, fig_path, force=force, device=device)


def _run(
    config, table_path: Path, json_path: Path, fig_path: Path, *, force: bool, device: str
) -> None:
    import dataclasses

    from inversa.core.io import atomic_write, write_json
    from inversa.poisson import run_study, write_figure

    result = run_study(config, progress=True, device=device)
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
    write_json(json_path, payload, force=force)
    write_figure(result, fig_path, force=force)
    typer.echo(table)
    typer.echo(f"wrote {table_path}, {json_path}, {fig_path}")

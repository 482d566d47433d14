"""``inversa demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, output_folder


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Output folder."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Simulate a cryo-ET scene, reconstruct it, average its particles; write report.html.

    The stages show on stderr while they run (when it is a terminal).
    """
    from inversa.workflows import run_demo

    with output_folder(out):  # a refused or failed demo leaves nothing it created
        result = run_demo(out, force=force, device=device)
    for method, m in result.metrics.items():
        typer.echo(
            f"{method.upper():9s} PSNR {m['psnr_db']:.2f} dB  SSIM {m['ssim']:.3f}  "
            f"FSC0.143 {m['fsc_0.143_A']:.1f} Å  {m['seconds']:.1f} s"
        )
    if result.averaging is not None:
        a = result.averaging
        typer.echo(
            f"{'AVG':9s} {int(a['n_particles'])} particles: half-map FSC0.143 "
            f"{a['halfmap_fsc_0.143_A']:.1f} Å, vs truth FSC0.5 {a['fsc_truth_0.5_A']:.1f} Å, "
            f"median angular error {a['median_angular_error_deg']:.1f}°  {a['seconds']:.1f} s"
        )
    typer.echo(f"report: {result.report}")

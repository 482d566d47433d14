"""``inversa demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Output folder."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Simulate a cryo-ET scene, reconstruct it (WBP, SIRT) and write report.html."""
    from inversa.workflows import run_demo

    result = run_demo(out, force=force, device=device)
    for method, m in result.metrics.items():
        typer.echo(
            f"{method.upper():5s} PSNR {m['psnr_db']:.2f} dB  SSIM {m['ssim']:.3f}  "
            f"FSC0.143 {m['fsc_0.143_A']:.1f} Å  {m['seconds']:.1f} s"
        )
    typer.echo(f"report: {result.report}")

"""``inversa neurde simulate|train``: compressible lattice Boltzmann with a neural equilibrium."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Force

neurde_app = typer.Typer(
    help="NeurDE: compressible lattice Boltzmann with a neural equilibrium.",
    no_args_is_help=True,
)
app.add_typer(neurde_app, name="neurde")

Threads = typer.Option(0, "--threads", help="Torch CPU threads (0: torch's default).")


def _set_threads(threads: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


@neurde_app.command("simulate")
def simulate(
    case: str = typer.Argument(..., help="sod1, sod2, lax or cylinder."),
    equilibrium: str = typer.Option("newton", "--equilibrium", help="newton or neural."),
    steps: int = typer.Option(1000, "--steps", help="Time steps."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    weights: Path = typer.Option(
        None, "--weights", help="Network .safetensors (default: the shipped weights)."
    ),
    scale: float = typer.Option(1.0, "--scale", help="Grid scale (1: the paper's grid)."),
    threads: int = Threads,
    force: bool = Force,
) -> None:
    """Simulate CASE; write fields.npz and a figure of profiles (tubes) or maps (cylinder)."""
    from inversa.core.errors import InputError
    from inversa.neurde import make_case
    from inversa.neurde._report import write_simulation

    if steps < 1:
        raise InputError(None, f"--steps must be at least 1, got {steps}")
    _set_threads(threads)
    written = write_simulation(
        make_case(case, scale=scale),
        out,
        steps=steps,
        equilibrium=equilibrium,
        weights=weights,
        force=force,
    )
    typer.echo(" ".join(str(p) for p in written))


@neurde_app.command("train")
def train(
    case: str = typer.Argument(..., help="sod1, sod2 or cylinder."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Weights file (default: the package's shipped weights)."
    ),
    threads: int = Threads,
    force: bool = Force,
) -> None:
    """Train the neural equilibrium of CASE (two stages) and save it as safetensors."""
    from inversa.neurde._report import train_and_save

    _set_threads(threads)
    path, summary = train_and_save(case, out=out, force=force)
    typer.echo(f"{path}: " + ", ".join(f"{k} {v:.3g}" for k, v in summary.items()))


@neurde_app.command("figures")
def figures(
    out: Path = typer.Option(Path("docs/figures"), "--out", "-o", help="Output directory."),
    threads: int = Threads,
    force: bool = Force,
) -> None:
    """Write the documentation figures (neurde_*.png): tube profiles, rollout error, cylinder."""
    from inversa.neurde._report import write_figures

    _set_threads(threads)
    typer.echo(" ".join(str(p) for p in write_figures(out, force=force)))

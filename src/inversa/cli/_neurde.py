"""``inversa neurde simulate|train``: compressible lattice Boltzmann with a neural equilibrium."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, check_outputs, output_folder, positive

neurde_app = typer.Typer(
    help="NeurDE: compressible lattice Boltzmann with a neural equilibrium.",
    no_args_is_help=True,
)
app.add_typer(neurde_app, name="neurde")

Threads = typer.Option(0, "--threads", min=0, help="Torch CPU threads (0: torch's default).")


def _set_threads(threads: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


@neurde_app.command("simulate")
def simulate(
    case: Literal["sod1", "sod2", "lax", "cylinder"] = typer.Argument(
        ..., help="sod1, sod2, lax or cylinder."
    ),
    equilibrium: Literal["newton", "neural"] = typer.Option(
        "newton", "--equilibrium", help="newton or neural."
    ),
    steps: int = typer.Option(1000, "--steps", min=1, help="Time steps."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory."),
    weights: Path = typer.Option(
        None, "--weights", help="Network .safetensors (default: the shipped weights)."
    ),
    scale: float = typer.Option(
        1.0, "--scale", callback=positive, help="Grid scale (1: the paper's grid)."
    ),
    threads: int = Threads,
    device: str = Device,
    force: bool = Force,
) -> None:
    """Simulate CASE; write fields.npz and a figure of profiles (tubes) or maps (cylinder)."""
    from inversa.core.errors import InputError
    from inversa.neurde import make_case, write_simulation

    check_outputs([out / "fields.npz", out / "fields.png"], folders=[out], force=force)
    if weights is not None and not weights.is_file():
        raise InputError(weights, "file not found" if not weights.exists() else "not a file")
    _set_threads(threads)
    grid = make_case(case, scale=scale)
    with output_folder(out):  # a failed run leaves no empty folder behind
        written = write_simulation(
            grid,
            out,
            steps=steps,
            equilibrium=equilibrium,
            weights=weights,
            force=force,
            device=device,
        )
    typer.echo(" ".join(str(p) for p in written))


@neurde_app.command("train")
def train(
    case: Literal["sod1", "sod2", "cylinder"] = typer.Argument(..., help="sod1, sod2 or cylinder."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Weights file (default: ./neurde_CASE.safetensors)."
    ),
    threads: int = Threads,
    device: str = Device,
    force: bool = Force,
) -> None:
    """Train the neural equilibrium of CASE (two stages) and save it as safetensors."""
    from inversa.neurde import train_and_save

    if out is None:  # never into the installed package, which may be read-only or shared
        out = Path(f"neurde_{case}.safetensors")
    check_outputs([out], force=force)
    _set_threads(threads)
    path, summary = train_and_save(case, out=out, force=force, device=device)
    typer.echo(f"{path}: " + ", ".join(f"{k} {v:.3g}" for k, v in summary.items()))


@neurde_app.command("figures")
def figures(
    out: Path = typer.Option(Path("docs/figures"), "--out", "-o", help="Output directory."),
    threads: int = Threads,
    force: bool = Force,
) -> None:
    """Write the documentation figures (neurde_*.png): tube profiles, rollout error, cylinder."""
    from inversa.neurde import write_figures

    check_outputs(folders=[out])
    _set_threads(threads)
    with output_folder(out):
        written = write_figures(out, force=force)
    typer.echo(" ".join(str(p) for p in written))

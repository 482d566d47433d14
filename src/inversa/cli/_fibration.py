"""``inversa fibration learn``: learn a double fibration transform from random samples."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, check_outputs

fibration_app = typer.Typer(
    help="Learning double fibration transforms (Radon, circular means, geodesic rays).",
    no_args_is_help=True,
)
app.add_typer(fibration_app, name="fibration")


@fibration_app.command("learn")
def learn(
    transform: Literal["radon", "circular", "geodesic"] = typer.Argument(
        ..., help="radon, circular or geodesic."
    ),
    samples: int = typer.Option(..., "--samples", help="Training pairs (1 to 100000)."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder (model + JSON summary)."),
    size: int = typer.Option(32, "--size", help="Grid size N of the N x N inputs (>= 8)."),
    bandwidth: float = typer.Option(
        4.0, "--bandwidth", help="Band limit of the random inputs, cycles per image (<= N/2)."
    ),
    steps: int = typer.Option(600, "--steps", min=0, help="Optimiser steps."),
    lr: float = typer.Option(1e-2, "--lr", min=0.0, help="Peak learning rate (Adam, cosine)."),
    delta: Literal["gaussian", "hat"] = typer.Option(
        "hat", "--delta", help="Smooth delta: hat (matches Radon2D's Joseph lines) or gaussian."
    ),
    eps_px: float = typer.Option(
        1.0, "--eps-px", help="Final delta width in pixels (hat: half-width; gaussian: sigma)."
    ),
    noise: float = typer.Option(0.0, "--noise", min=0.0, help="Output noise, relative to RMS."),
    speed: Path = typer.Option(
        None, "--speed", help="Speed map (N x N .npy or .mrc) of the geodesic transform."
    ),
    init: Path = typer.Option(
        None, "--init", help="Continue from a saved model of the same transform and size."
    ),
    restarts: int = typer.Option(
        2,
        "--restarts",
        min=0,
        help="Fresh starts of a fit that found no curves by the end of its anneal.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the data and the weights."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Train the level-set network; write levelset_TRANSFORM.safetensors and summary JSON."""
    from inversa.core.errors import InputError
    from inversa.core.io import output_folder, write_json
    from inversa.fibration import (
        FitConfig,
        LearnConfig,
        LevelSetConfig,
        check_speed,
        load_levelset,
        save_levelset,
    )
    from inversa.fibration import learn as learn_transform

    model_path = out_dir / f"levelset_{transform}.safetensors"
    summary_path = out_dir / f"summary_{transform}.json"
    inputs = [p for p in (speed, init) if p is not None]
    check_outputs([model_path, summary_path], folders=[out_dir], force=force, inputs=inputs)
    config = LearnConfig(
        size=size,
        samples=samples,
        bandwidth=bandwidth,
        noise=noise,
        fit=FitConfig(steps=steps, lr=lr, restarts=restarts),
        levelset=LevelSetConfig(delta=delta, eps_px=eps_px),
        seed=seed,
    )
    speed_map = None
    if speed is not None:
        if transform != "geodesic":
            raise InputError(speed, "--speed is only for the geodesic transform")
        speed_map = check_speed(_read_map(speed))
    start = None
    if init is not None:
        start, _ = load_levelset(init, transform=transform, size=size, device=device)
    model, summary = learn_transform(transform, config, speed=speed_map, init=start, device=device)
    with output_folder(out_dir):
        save_levelset(model_path, model, transform=transform, force=force)
        write_json(summary_path, summary, force=force)
    typer.echo(
        f"{model_path}: relative test error {summary['rel_error']:.4f}, codimension "
        f"{summary['codimension']}, {summary['training_seconds']:.0f} s"
    )
    if summary["rel_error"] >= 0.95:  # a kernel that predicts ~0 everywhere: no curves found
        typer.echo(
            f"warning: the network did not find the {transform} curves (relative error "
            f"{summary['rel_error']:.2f}, about that of predicting zero); try more --steps, "
            "more --samples or another --seed",
            err=True,
        )


def _read_map(path: Path):
    """Read a 2-D map from ``.npy`` or ``.mrc`` as a float64 tensor."""
    import numpy as np
    import torch

    from inversa.core.errors import InputError
    from inversa.core.io import read_mrc

    if path.suffix.lower() == ".mrc":
        data, _ = read_mrc(path, ndim=2)
        return data.double()
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(path, f"not a readable .npy file ({exc})") from None
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise InputError(path, f"speed map must be a 2-D numeric array, got shape {arr.shape}")
    return torch.from_numpy(arr.astype("float64"))

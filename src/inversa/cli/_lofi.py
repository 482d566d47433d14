"""``inversa lofi train|apply``: train LoFi for a task, reconstruct a file with it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, check_outputs

lofi_app = typer.Typer(
    help="LoFi: local neural fields for image reconstruction at any resolution.",
    no_args_is_help=True,
)
app.add_typer(lofi_app, name="lofi")

Task = Literal["sparse-ct", "limited-ct", "lowdose-ct", "denoise"]


@lofi_app.command("train")
def train(
    task: Task = typer.Option(..., "--task", help="sparse-ct, limited-ct, lowdose-ct or denoise."),
    out: Path = typer.Option(..., "--out", help="Model file to write (.safetensors)."),
    quick: bool = typer.Option(False, "--quick", help="A tiny run (seconds), for a smoke test."),
    steps: int = typer.Option(None, "--steps", min=1, help="Optimiser steps (default 1500)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue from OUT.ckpt.pt left by an interrupted run."
    ),
    threads: int = typer.Option(0, "--threads", min=0, help="Torch CPU threads (0: default)."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Train on at most 10 random-ellipse images; write the model with its task."""
    import torch

    from inversa.lofi import train_and_save

    check_outputs([out], force=force)
    if threads > 0:
        torch.set_num_threads(threads)
    path, info = train_and_save(
        task, out, quick=quick, steps=steps, resume=resume, force=force, device=device
    )
    typer.echo(
        f"{path}: task {task}, {info['parameters']} parameters, {info['steps']} steps on "
        f"{info['n_images']} images of {info['size']}^2, loss {info['final_loss']:.4g}, "
        f"{info['training_seconds']:.0f} s"
    )


@lofi_app.command("apply")
def apply(
    model: Path = typer.Argument(..., help="A model written by `inversa lofi train`."),
    image: Path = typer.Argument(
        ...,
        help="Sinogram (angles x bins, CT tasks) or image (denoise): MRC, PNG, TIFF or .npy.",
    ),
    out: Path = typer.Option(..., "--out", help="Output image: .mrc, .png, .tif or .npy."),
    size: int = typer.Option(
        None, "--size", min=1, help="Output size (default: the input image's size)."
    ),
    task: Task = typer.Option(
        None, "--task", help="Refuse a model trained for another task than this one."
    ),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Reconstruct a sinogram or denoise an image with a trained LoFi model."""
    from inversa.lofi import apply_file, check_suffix

    check_suffix(out)
    check_outputs([out], force=force, inputs=[model, image])
    info = apply_file(model, image, out, size=size, task=task, force=force, device=device)
    typer.echo(
        f"{out}: {info['task']}, input {tuple(info['input_shape'])} -> "
        f"{tuple(info['output_shape'])}"
    )

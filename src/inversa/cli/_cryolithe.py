"""``inversa cryolithe train``: train the CryoLithe network on simulated tilt series."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, check_outputs

cryolithe_app = typer.Typer(
    help="CryoLithe: learned local reconstruction of tilt series.", no_args_is_help=True
)
app.add_typer(cryolithe_app, name="cryolithe")


@cryolithe_app.command("train")
def train(
    out_dir: Path = typer.Argument(..., help="Output folder (weights, checkpoint, record)."),
    head: Literal["pixel", "wavelet", "both"] = typer.Option(
        "both", "--head", help="pixel, wavelet or both."
    ),
    quick: bool = typer.Option(False, "--quick", help="A tiny run (seconds), for a smoke test."),
    steps: int = typer.Option(None, "--steps", min=1, help="Optimiser steps (default 1000)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in OUT_DIR."),
    threads: int = typer.Option(0, "--threads", min=0, help="Torch CPU threads (0: default)."),
    row_features: int = typer.Option(
        None, "--row-features", min=1, help="Width of the per-row map (default 16)."
    ),
    set_features: int = typer.Option(
        None, "--set-features", min=1, help="Width of the set layer (default 32)."
    ),
    row_out: int = typer.Option(None, "--row-out", min=1, help="Features per row (default 8)."),
    head_hidden: str = typer.Option(
        None, "--head-hidden", help="Hidden widths of the head MLP, e.g. 256,128 (default 128,64)."
    ),
    patch_size: int = typer.Option(
        None, "--patch-size", min=1, help="Patch size P, odd (default 9; the paper: 21)."
    ),
    scenes: int = typer.Option(
        None, "--scenes", min=1, help="Simulated training scenes (default 48)."
    ),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Train on simulated tilt series; write cryolithe_HEAD.safetensors and training_HEAD.json."""
    import torch

    from inversa.cryolithe import train_and_save

    sizes = {
        k: v
        for k, v in (
            ("row_features", row_features),
            ("set_features", set_features),
            ("row_out", row_out),
            ("patch_size", patch_size),
        )
        if v is not None
    }
    if head_hidden is not None:
        try:
            sizes["head_hidden"] = tuple(int(w) for w in head_hidden.split(",") if w.strip())
        except ValueError:
            raise typer.BadParameter(
                "comma-separated integers", param_hint="--head-hidden"
            ) from None
        if not sizes["head_hidden"] or min(sizes["head_hidden"]) < 1:
            raise typer.BadParameter("positive integers", param_hint="--head-hidden")
    heads = ["pixel", "wavelet"] if head == "both" else [head]
    files = [
        out_dir / f"{n}_{h}{e}"
        for h in heads
        for n, e in (("cryolithe", ".safetensors"), ("training", ".json"))
    ]
    check_outputs(files, folders=[out_dir], force=force or resume)
    if threads > 0:
        torch.set_num_threads(threads)
    # No output_folder(): an interrupted run must keep its checkpoint for --resume.
    for h in heads:
        path, info = train_and_save(
            out_dir,
            head=h,
            steps=steps,
            quick=quick,
            resume=resume,
            device=device,
            force=force or resume,
            sizes=sizes,
            data={"n_scenes": scenes} if scenes is not None else None,
        )
        typer.echo(
            f"{path}: {info['parameters']} parameters, loss {info['final_loss']:.4g}, "
            f"{info['training_seconds']:.0f} s"
        )

"""``inversa seislm ...``: synthetic data, pretraining, fine-tuning and picking with SeisLM."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import (
    Device,
    Force,
    Scheduler,
    check_outputs,
    output_folder,
    positive,
)

seislm_app = typer.Typer(
    help="SeisLM: self-supervised seismic waveform model; P/S picking.", no_args_is_help=True
)
app.add_typer(seislm_app, name="seislm")


def _training_data(data: Path | None, synthetic: int, samples: int, seed: int):
    from inversa.seislm import SyntheticConfig, read_seisbench, synthetic_events

    if data is not None:
        return read_seisbench(data)
    return synthetic_events(synthetic, config=SyntheticConfig(samples=samples), seed=seed)


def _check_data(data: Path | None) -> None:
    from inversa.core.errors import InputError

    if data is not None and not data.is_dir():
        problem = "folder not found" if not data.exists() else "not a SeisBench dataset folder"
        raise InputError(data, problem)


@seislm_app.command("synth")
def synth(
    out: Path = typer.Argument(..., help="Dataset folder (metadata.csv + waveforms.hdf5)."),
    n: int = typer.Option(1000, "--n", min=1, help="Number of windows."),
    samples: int = typer.Option(3001, min=100, help="Window length in samples (100 Hz)."),
    noise_fraction: float = typer.Option(
        0.2, min=0.0, max=1.0, help="Fraction of noise-only windows."
    ),
    seed: int = typer.Option(0, help="Random seed."),
    force: bool = Force,
) -> None:
    """Write synthetic labelled local events as a SeisBench WaveformDataset."""
    from inversa.seislm import SyntheticConfig, synthetic_events, write_seisbench

    check_outputs(folders=[out])
    cfg = SyntheticConfig(samples=samples, noise_fraction=noise_fraction)
    data = synthetic_events(n, config=cfg, seed=seed)
    with output_folder(out):
        write_seisbench(data, out, force=force)
    typer.echo(f"wrote {n} windows of {samples} samples to {out}")


@seislm_app.command("pretrain")
def pretrain_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Encoder weights (.safetensors)."),
    config: str = typer.Option("tiny", help="Model config: tiny or base."),
    data: Path = typer.Option(None, help="SeisBench dataset folder; synthetic when omitted."),
    synthetic: int = typer.Option(2000, min=1, help="Synthetic windows when --data is omitted."),
    steps: int = typer.Option(400, min=1, help="Optimiser steps."),
    batch_size: int = typer.Option(
        16, min=1, help="Windows per step (per process under torchrun)."
    ),
    samples: int = typer.Option(1501, min=100, help="Window length in samples."),
    lr: float = typer.Option(1e-3, callback=positive, help="Peak learning rate."),
    seed: int = typer.Option(1, help="Random seed."),
    checkpoint: Path = typer.Option(None, help="Resumable checkpoint (.pt)."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Self-supervised pretraining (masked-span contrastive); DDP under torchrun."""
    from inversa.core.errors import InputError
    from inversa.core.training import save_weights
    from inversa.seislm import CONFIGS, PretrainConfig, pretrain

    if config not in CONFIGS:
        raise InputError(None, f"unknown config {config!r}; choose from {', '.join(CONFIGS)}")
    check_outputs([out], force=force)
    if checkpoint is not None:  # an existing checkpoint is resumed, not overwritten
        check_outputs([checkpoint], force=True)
    _check_data(data)
    waves = _training_data(data, synthetic, max(samples, 3001), seed)
    sched = PretrainConfig(steps=steps, batch_size=batch_size, samples=samples, lr=lr, seed=seed)
    model, result = pretrain(
        waves,
        model_config=CONFIGS[config],
        config=sched,
        device=device,
        checkpoint=checkpoint,
        progress=True,
    )
    import torch.distributed as dist

    if not (dist.is_initialized() and dist.get_rank() != 0):
        meta = {"config": model.config.to_dict(), "info": {"steps": steps, "data": str(data)}}
        save_weights(out, model.state_dict(), metadata=meta, force=force)
        last = result.history[-1] if result.history else {}
        typer.echo(
            f"pretrained {config} ({steps} steps): loss {result.final_loss:.4f}, "
            f"contrastive accuracy {last.get('accuracy', float('nan')):.3f} -> {out}"
        )


@seislm_app.command("finetune")
def finetune_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Picker weights (.safetensors)."),
    encoder: Path = typer.Option(None, help="Pretrained encoder; random init when omitted."),
    config: str = typer.Option("tiny", help="Config when --encoder is omitted: tiny or base."),
    data: Path = typer.Option(None, help="Labelled SeisBench dataset; synthetic when omitted."),
    synthetic: int = typer.Option(2000, min=1, help="Synthetic windows when --data is omitted."),
    steps: int = typer.Option(400, min=1, help="Optimiser steps."),
    batch_size: int = typer.Option(16, min=1, help="Windows per step."),
    samples: int = typer.Option(3001, min=100, help="Window length in samples."),
    lr: float = typer.Option(1e-3, callback=positive, help="Peak learning rate of the head."),
    seed: int = typer.Option(2, help="Random seed."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Fine-tune P/S picking and detection heads (Gaussian labels, sigma 20 samples)."""
    from inversa.core.errors import InputError
    from inversa.seislm import CONFIGS, FinetuneConfig, finetune, load_encoder, save_picker

    check_outputs([out], force=force)
    _check_data(data)
    if encoder is not None:
        model_config, state = load_encoder(encoder)
    elif config in CONFIGS:
        model_config, state = CONFIGS[config], None
    else:
        raise InputError(None, f"unknown config {config!r}; choose from {', '.join(CONFIGS)}")
    waves = _training_data(data, synthetic, samples, seed)
    sched = FinetuneConfig(steps=steps, batch_size=batch_size, samples=samples, lr=lr, seed=seed)
    picker, result = finetune(
        waves, model_config=model_config, encoder=state, config=sched, device=device, progress=True
    )
    save_picker(out, picker, info={"encoder": str(encoder), "steps": steps}, force=force)
    typer.echo(f"fine-tuned picker ({steps} steps): loss {result.final_loss:.4f} -> {out}")


@seislm_app.command("pick")
def pick_cmd(
    files: list[Path] = typer.Argument(..., help="Waveform files (miniSEED, SAC, ...)."),
    out: Path = typer.Option(None, "--out", "-o", help="Picks as .xml (QuakeML) or .csv."),
    model: Path = typer.Option(None, help="Picker weights; the shipped tiny model if omitted."),
    threshold: float = typer.Option(0.3, min=0.0, max=1.0, help="Minimal pick probability."),
    fill_gaps: bool = typer.Option(False, "--fill-gaps", help="Interpolate over gaps."),
    associate_s: float = typer.Option(
        15.0, min=0.0, help="Longest P moveout (s) across the stations of one event."
    ),
    scheduler: str = Scheduler,
    force: bool = Force,
) -> None:
    """Pick P and S arrivals, the files in parallel; bad files and stations are skipped.

    A file with several stations is picked on its complete stations; the others are
    reported. Picks keep P before S per station; the output has one event per detection.
    """
    from inversa.core.errors import InputError
    from inversa.seislm import load_picker, pick_files, pick_probability, write_picks

    if out is not None:
        check_outputs([out], force=force)
    run = pick_files(
        files, model=None if model is None else load_picker(model), threshold=threshold,
        fill_gaps=fill_gaps, scheduler=scheduler,
    )  # fmt: skip
    if run.stations == 0:  # nothing to report but the failure: one line
        if not run.failures:
            raise InputError(None, f"none of the {len(files)} file(s) could be picked")
        path, problem = run.failures[0]
        more = len(run.failures) - 1
        raise InputError(path, problem + (f" (and {more} more file(s) failed)" if more else ""))
    for note in run.notes:
        typer.echo(f"note: {note}")
    for path, problem in run.failures:
        typer.echo(f"skipped {path}: {problem}", err=True)
    for p in run.picks:
        typer.echo(
            f"{p.waveform_id.get_seed_string()} {p.phase_hint} {p.time} "
            f"probability={pick_probability(p):.3f} +-{p.time_errors.uncertainty:.2f}s"
        )
    if out is not None:
        write_picks(run.picks, out, force=force, associate_s=associate_s)
    typer.echo(
        f"{len(run.picks)} picks on {run.stations} station recording(s); "
        f"{len(run.failures)} file(s) or station(s) skipped"
        + (f" -> {out}" if out is not None else "")
    )


@seislm_app.command("ship")
def ship_cmd(
    out: Path = typer.Argument(..., help="Picker .safetensors (encoder written beside it)."),
    pretrain_steps: int = typer.Option(600, min=1, help="Pretraining steps."),
    finetune_steps: int = typer.Option(5000, min=1, help="Fine-tuning steps."),
    real_noise: float = typer.Option(
        0.7, min=0.0, max=1.0, help="Fraction of windows with real noise (shipped bank)."
    ),
    labelled: int = typer.Option(4000, min=8, help="Labelled synthetic windows."),
    p_rise_max: float = typer.Option(
        0.5, min=0.01, help="Longest P rise time (s) of the synthetic events (emergent onsets)."
    ),
    force: bool = Force,
) -> None:
    """Reproduce the shipped tiny model (pretrain + fine-tune on synthetic events)."""
    from inversa.seislm import make_shipped_model

    check_outputs([out], force=force)
    info = make_shipped_model(
        out, pretrain_steps=pretrain_steps, finetune_steps=finetune_steps,
        real_noise=real_noise, n_labelled=labelled, p_rise_max_s=p_rise_max, force=force,
        progress=True,
    )  # fmt: skip
    typer.echo(f"wrote {out}: " + ", ".join(f"{k}={v:.4g}" for k, v in info.items()))

"""``inversa seislm ...``: synthetic data, pretraining, fine-tuning and picking with SeisLM."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force

seislm_app = typer.Typer(
    help="SeisLM: self-supervised seismic waveform model; P/S picking.", no_args_is_help=True
)
app.add_typer(seislm_app, name="seislm")


def _training_data(data: Path | None, synthetic: int, samples: int, seed: int):
    from inversa.seislm import SyntheticConfig, read_seisbench, synthetic_events

    if data is not None:
        return read_seisbench(data)
    return synthetic_events(synthetic, config=SyntheticConfig(samples=samples), seed=seed)


@seislm_app.command("synth")
def synth(
    out: Path = typer.Argument(..., help="Dataset folder (metadata.csv + waveforms.hdf5)."),
    n: int = typer.Option(1000, "--n", help="Number of windows."),
    samples: int = typer.Option(3001, help="Window length in samples (100 Hz)."),
    noise_fraction: float = typer.Option(0.2, help="Fraction of noise-only windows."),
    seed: int = typer.Option(0, help="Random seed."),
    force: bool = Force,
) -> None:
    """Write synthetic labelled local events as a SeisBench WaveformDataset."""
    from inversa.seislm import SyntheticConfig, synthetic_events, write_seisbench

    cfg = SyntheticConfig(samples=samples, noise_fraction=noise_fraction)
    data = synthetic_events(n, config=cfg, seed=seed)
    write_seisbench(data, out, force=force)
    typer.echo(f"wrote {n} windows of {samples} samples to {out}")


@seislm_app.command("pretrain")
def pretrain_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Encoder weights (.safetensors)."),
    config: str = typer.Option("tiny", help="Model config: tiny or base."),
    data: Path = typer.Option(None, help="SeisBench dataset folder; synthetic when omitted."),
    synthetic: int = typer.Option(2000, help="Synthetic windows when --data is omitted."),
    steps: int = typer.Option(400, help="Optimiser steps."),
    batch_size: int = typer.Option(16, help="Windows per step (per process under torchrun)."),
    samples: int = typer.Option(1501, help="Window length in samples."),
    lr: float = typer.Option(1e-3, help="Peak learning rate."),
    seed: int = typer.Option(1, help="Random seed."),
    checkpoint: Path = typer.Option(None, help="Resumable checkpoint (.pt)."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Self-supervised pretraining (masked-span contrastive); DDP under torchrun."""
    from inversa.core.errors import InputError, OutputExistsError
    from inversa.core.training import save_weights
    from inversa.seislm import CONFIGS, PretrainConfig, pretrain

    if config not in CONFIGS:
        raise InputError(None, f"unknown config {config!r}; choose from {', '.join(CONFIGS)}")
    if out.exists() and not force:
        raise OutputExistsError(out)
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
    synthetic: int = typer.Option(2000, help="Synthetic windows when --data is omitted."),
    steps: int = typer.Option(400, help="Optimiser steps."),
    batch_size: int = typer.Option(16, help="Windows per step."),
    samples: int = typer.Option(3001, help="Window length in samples."),
    lr: float = typer.Option(1e-3, help="Peak learning rate of the head."),
    seed: int = typer.Option(2, help="Random seed."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Fine-tune P/S picking and detection heads (Gaussian labels, sigma 20 samples)."""
    from inversa.core.errors import InputError, OutputExistsError
    from inversa.seislm import CONFIGS, FinetuneConfig, finetune, load_encoder, save_picker

    if out.exists() and not force:
        raise OutputExistsError(out)
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
    threshold: float = typer.Option(0.3, help="Minimal pick probability."),
    fill_gaps: bool = typer.Option(False, "--fill-gaps", help="Interpolate over gaps."),
    force: bool = Force,
) -> None:
    """Pick P and S arrivals; bad files are reported and skipped."""
    from inversa.core.errors import InputError, OutputExistsError
    from inversa.seislm import load_picker, pick_files, write_picks

    if out is not None and out.exists() and not force:
        raise OutputExistsError(out)
    run = pick_files(
        files, model=None if model is None else load_picker(model), threshold=threshold,
        fill_gaps=fill_gaps,
    )  # fmt: skip
    for note in run.notes:
        typer.echo(f"note: {note}")
    for path, problem in run.failures:
        typer.echo(f"skipped {path}: {problem}", err=True)
    for p in run.picks:
        prob = p.comments[0].text if p.comments else ""
        typer.echo(f"{p.waveform_id.get_seed_string()} {p.phase_hint} {p.time} {prob}")
    if run.stations == 0:
        raise InputError(None, f"none of the {len(files)} file(s) could be picked")
    if out is not None:
        write_picks(run.picks, out, force=force)
    typer.echo(
        f"{len(run.picks)} picks on {run.stations} station recording(s); "
        f"{len(run.failures)} file(s) skipped" + (f" -> {out}" if out is not None else "")
    )


@seislm_app.command("ship")
def ship_cmd(
    out: Path = typer.Argument(..., help="Picker .safetensors (encoder written beside it)."),
    pretrain_steps: int = typer.Option(600, help="Pretraining steps."),
    finetune_steps: int = typer.Option(1500, help="Fine-tuning steps."),
    force: bool = Force,
) -> None:
    """Reproduce the shipped tiny model (pretrain + fine-tune on synthetic data)."""
    from inversa.seislm import make_shipped_model

    info = make_shipped_model(
        out, pretrain_steps=pretrain_steps, finetune_steps=finetune_steps, force=force,
        progress=True,
    )  # fmt: skip
    typer.echo(f"wrote {out}: " + ", ".join(f"{k}={v:.4g}" for k, v in info.items()))

"""Pretraining, fine-tuning (SeisLM and the PhaseNet baseline), prediction, weight files."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from inversa.core.errors import InputError
from inversa.core.training import (
    TrainConfig,
    TrainResult,
    init_distributed,
    load_weights,
    save_weights,
    train,
)
from inversa.seislm._data import augment, highpass, normalize, phase_labels, random_windows
from inversa.seislm._model import CONFIGS, SeisLM, SeisLMConfig, SeisLMPicker, pretraining_loss
from inversa.seislm._onset import paired_onsets
from inversa.seislm._synthetic import LabelledWaveforms, SyntheticConfig, synthetic_events

__all__ = [
    "FinetuneConfig",
    "PretrainConfig",
    "finetune",
    "load_encoder",
    "load_picker",
    "make_shipped_model",
    "predict",
    "pretrain",
    "save_picker",
    "shipped_encoder_path",
    "shipped_model_path",
    "train_phasenet",
]


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    """Self-supervised pretraining schedule.

    Attributes
    ----------
    steps, batch_size, samples
        Optimiser steps, windows per step (per process), window length.
    lr, warmup
        Peak AdamW learning rate, reached linearly after ``warmup`` steps, then linear decay.
    seed
        Batches of step ``s`` derive from ``seed + s`` (and the rank), so resumes repeat.
    checkpoint_every
        Steps between checkpoints (when a checkpoint file is given).
    """

    steps: int = 1000
    batch_size: int = 8
    samples: int = 3001
    lr: float = 5e-4
    warmup: int = 100
    seed: int = 0
    checkpoint_every: int = 100


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """Supervised fine-tuning schedule (also used for the random-init and PhaseNet runs).

    Attributes
    ----------
    steps, batch_size, samples, lr, warmup, seed
        As in `PretrainConfig`.
    sigma
        Width of the Gaussian pick labels in samples.
    encoder_lr_scale
        Learning-rate factor of a pretrained encoder relative to the new head.
    validate_every
        With held-out ``validation`` windows given to the trainer: every this many steps
        (a multiple of 10, the logging interval) their P onset RMSE is logged in the
        history (``val_p_rmse_s``: argmax of the P curve; ``val_p_rmse_paired_s``: the
        most probable P before an S, `paired_onsets`), a held-out learning curve; 0: never.
    """

    steps: int = 500
    batch_size: int = 16
    samples: int = 3001
    lr: float = 1e-3
    warmup: int = 50
    seed: int = 0
    sigma: float = 20.0
    encoder_lr_scale: float = 1.0
    validate_every: int = 0

    def __post_init__(self) -> None:
        if self.validate_every < 0 or self.validate_every % 10:
            raise InputError(
                None, f"validate_every must be a multiple of 10, got {self.validate_every}"
            )


def _schedule(opt: torch.optim.Optimizer, warmup: int, steps: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.05, 1.0 - (step - warmup) / max(1, steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _training_batch(
    data: LabelledWaveforms, config: FinetuneConfig, step: int, device: str | torch.device
) -> tuple[LabelledWaveforms, torch.Tensor]:
    """Batch ``step`` of a fine-tuning run and its ``(B, 3, samples)`` augmented input."""
    # Seeded by the step, so a resumed or repeated run draws the same batches.
    g = torch.Generator().manual_seed(config.seed + step)
    batch = _batch(data, size=config.batch_size, samples=config.samples, generator=g)
    return batch, augment(normalize(batch.waveforms), generator=g).to(device)


def _validation_metrics(
    model: nn.Module, validation: LabelledWaveforms | None, config: FinetuneConfig, step: int
) -> dict[str, float]:
    """Held-out P onset RMSE before step ``step + 1`` (empty when not due)."""
    every = config.validate_every
    if validation is None or not every or (step + 1) % every:
        return {}
    has = ~torch.isnan(validation.p_sample)
    if not has.any():
        return {}
    phase, _ = predict(model, validation.waveforms[has])
    model.train()
    onset = validation.p_sample[has].to(phase.device)
    fs = validation.sampling_rate
    err = (phase[:, 0].argmax(-1).double() - onset) / fs
    err_paired = (paired_onsets(phase)[0].double() - onset) / fs
    return {
        "val_p_rmse_s": float(err.pow(2).mean().sqrt()),
        "val_p_rmse_paired_s": float(err_paired.pow(2).mean().sqrt()),
    }


def _fit(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    loss_fn,
    config: FinetuneConfig,
    *,
    progress: bool,
    description: str,
) -> tuple[nn.Module, TrainResult]:
    """Supervised training under the fine-tuning schedule; the model comes back in eval mode."""
    result = train(
        model=model,
        optimizer=opt,
        loss_fn=loss_fn,
        scheduler=_schedule(opt, config.warmup, config.steps),
        config=TrainConfig(
            steps=config.steps, grad_clip=5.0, progress=progress, description=description
        ),
    )
    return model.eval(), result


def highpassed(data: LabelledWaveforms, hz: float) -> LabelledWaveforms:
    """Return ``data`` with every trace high-passed (`highpass`; ``hz <= 0``: unchanged)."""
    if hz <= 0:
        return data
    parts = [
        highpass(w, hz, sampling_rate=data.sampling_rate)[0]
        for w in torch.split(data.waveforms, 256)
    ]
    return LabelledWaveforms(torch.cat(parts), data.p_sample, data.s_sample, data.sampling_rate)


def _batch(
    data: LabelledWaveforms, *, size: int, samples: int, generator: torch.Generator
) -> LabelledWaveforms:
    idx = torch.randint(0, len(data), (size,), generator=generator)
    return random_windows(data.subset(idx), samples=samples, generator=generator)


def pretrain(
    data: LabelledWaveforms,
    *,
    model_config: SeisLMConfig = CONFIGS["tiny"],
    config: PretrainConfig = PretrainConfig(),
    device: str | torch.device = "cpu",
    checkpoint: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> tuple[SeisLM, TrainResult]:
    """Pretrain a SeisLM encoder on unlabelled windows (labels in ``data`` are ignored).

    Under ``torchrun`` the model is wrapped in ``DistributedDataParallel`` and each rank
    draws its own batches (seeded by step and rank); only rank 0 writes the checkpoint.

    Parameters
    ----------
    data
        Traces ``(n, 3, L)``, ``L >= config.samples``, Z/N/E.
    model_config
        Architecture (``CONFIGS["base"]`` or ``CONFIGS["tiny"]``).
    config
        Schedule.
    device
        Torch device.
    checkpoint
        ``.pt`` file for resumable training (written atomically).
    progress
        Show a progress bar.

    Returns
    -------
    (model, result)
        The trained encoder (unwrapped, in eval mode) and the training history.
    """
    if len(data) == 0:
        raise InputError(None, "no waveforms to pretrain on")
    data = highpassed(data, model_config.highpass_hz)
    rank, world = init_distributed()
    torch.manual_seed(config.seed)
    model = SeisLM(model_config).to(device)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01, fused=True)

    def loss_fn(step: int):
        g = torch.Generator().manual_seed(config.seed + step * world + rank)
        batch = _batch(data, size=config.batch_size, samples=config.samples, generator=g)
        x = augment(normalize(batch.waveforms), generator=g).to(device)
        return pretraining_loss(net, x, step=step, generator=g)

    result = train(
        model=net,
        optimizer=opt,
        loss_fn=loss_fn,
        scheduler=_schedule(opt, config.warmup, config.steps),
        config=TrainConfig(
            steps=config.steps,
            grad_clip=10.0,
            checkpoint=None if checkpoint is None else Path(checkpoint),
            checkpoint_every=config.checkpoint_every,
            progress=progress,
            description="seislm pretrain",
        ),
    )
    return model.eval(), result


def _soft_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def finetune(
    data: LabelledWaveforms,
    *,
    model_config: SeisLMConfig = CONFIGS["tiny"],
    encoder: dict[str, torch.Tensor] | None = None,
    config: FinetuneConfig = FinetuneConfig(),
    device: str | torch.device = "cpu",
    progress: bool = False,
    validation: LabelledWaveforms | None = None,
) -> tuple[SeisLMPicker, TrainResult]:
    """Fine-tune a picker (P/S/noise per sample + detection) from a pretrained encoder.

    Parameters
    ----------
    data
        Labelled traces ``(n, 3, L)`` (onsets NaN for noise windows).
    model_config
        Architecture; must match ``encoder``.
    encoder
        State dict of a pretrained `SeisLM`; ``None`` trains from random initialisation.
    config
        Schedule and label width.
    device
        Torch device.
    progress
        Show a progress bar.
    validation
        Held-out labelled windows (``config.validate_every``: P RMSE in the history).

    Returns
    -------
    (picker, result)
        The fine-tuned `SeisLMPicker` in eval mode and the training history.
    """
    if len(data) == 0:
        raise InputError(None, "no labelled waveforms to fine-tune on")
    data = highpassed(data, model_config.highpass_hz)
    if validation is not None:
        validation = highpassed(validation, model_config.highpass_hz)
    torch.manual_seed(config.seed)
    model = SeisLMPicker(model_config)
    if encoder is not None:
        try:
            model.encoder.load_state_dict(encoder)
        except RuntimeError as exc:
            raise InputError(None, f"pretrained weights do not match the config ({exc})") from exc
    model.to(device)
    scale = config.encoder_lr_scale if encoder is not None else 1.0
    opt = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": config.lr * scale},
            {"params": model.head.parameters(), "lr": config.lr},
        ],
        weight_decay=0.01,
    )

    def loss_fn(step: int):
        batch, x = _training_batch(data, config, step, device)
        phase, det = phase_labels(
            batch.p_sample, batch.s_sample, config.samples, sigma=config.sigma
        )
        logits = model(x)
        lp = _soft_ce(logits[:, :3], phase.to(device))
        ld = F.binary_cross_entropy_with_logits(logits[:, 3], det.to(device))
        metrics = {"phase": float(lp.detach()), "detection": float(ld.detach())}
        return lp + ld, metrics | _validation_metrics(model, validation, config, step)

    return _fit(model, opt, loss_fn, config, progress=progress, description="seislm finetune")


def train_phasenet(
    data: LabelledWaveforms,
    *,
    config: FinetuneConfig = FinetuneConfig(),
    highpass_hz: float = 0.0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    validation: LabelledWaveforms | None = None,
) -> tuple[nn.Module, TrainResult]:
    """Train SeisBench's PhaseNet (P, S, noise) on the same labels and schedule.

    ``highpass_hz`` high-passes the training traces as a SeisLM config's ``highpass_hz``
    does (pass the same value to `evaluate_picker` / `stream_probabilities`);
    ``validation`` as in `finetune`.

    Returns
    -------
    (model, result)
        ``seisbench.models.PhaseNet`` in eval mode; it outputs probabilities
        ``(batch, 3, samples)`` in P, S, noise order.
    """
    import seisbench.models as sbm

    if len(data) == 0:
        raise InputError(None, "no labelled waveforms to train on")
    data = highpassed(data, highpass_hz)
    if validation is not None:
        validation = highpassed(validation, highpass_hz)
    torch.manual_seed(config.seed)
    model = sbm.PhaseNet(phases="PSN", sampling_rate=data.sampling_rate).to(device)
    try:  # PhaseNet's U-Net skips only line up for some lengths (1001 and 3001 do)
        with torch.no_grad():
            model(torch.zeros(1, 3, config.samples, device=device))
    except RuntimeError as exc:
        raise InputError(
            None, f"PhaseNet cannot take {config.samples}-sample windows (1001 or 3001 work)"
        ) from exc
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)

    def loss_fn(step: int):
        batch, x = _training_batch(data, config, step, device)
        phase, _ = phase_labels(batch.p_sample, batch.s_sample, config.samples, sigma=config.sigma)
        prob = model(x)
        loss = -(phase.to(device) * torch.log(prob + 1e-6)).sum(1).mean()
        return loss, _validation_metrics(model, validation, config, step)

    return _fit(model, opt, loss_fn, config, progress=progress, description="phasenet")


@torch.no_grad()
def predict(
    model: nn.Module, waveforms: torch.Tensor, *, batch_size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample P/S/noise and detection probabilities of raw windows.

    Parameters
    ----------
    model
        A `SeisLMPicker` or a SeisBench PhaseNet (whose detection is ``1 - noise``).
    waveforms
        ``(n, 3, samples)`` unnormalised windows (normalised here).
    batch_size
        Windows per forward pass.

    Returns
    -------
    (phase, detection)
        ``(n, 3, samples)`` and ``(n, samples)`` on ``waveforms``' device.
    """
    model.eval()
    device = next(model.parameters()).device
    phases, dets = [], []
    for chunk in torch.split(waveforms, batch_size):
        x = normalize(chunk.to(device))
        if isinstance(model, SeisLMPicker):
            ph, det = model.probabilities(x)
        else:
            ph = model(x)
            det = 1.0 - ph[:, 2]
        phases.append(ph.to(waveforms.device))
        dets.append(det.to(waveforms.device))
    return torch.cat(phases), torch.cat(dets)


def save_picker(
    path: str | os.PathLike[str],
    model: SeisLMPicker,
    *,
    info: dict | None = None,
    force: bool = False,
) -> None:
    """Write a picker as safetensors with its config (and ``info``) in the header."""
    meta = {"config": model.config.to_dict(), "info": info or {}}
    save_weights(path, model.state_dict(), metadata=meta, force=force)


def shipped_model_path() -> Path:
    """Path of the shipped tiny picker (``inversa/seislm/data/seislm_tiny_picker.safetensors``)."""
    return Path(str(resources.files("inversa.seislm") / "data" / "seislm_tiny_picker.safetensors"))


def shipped_encoder_path() -> Path:
    """Path of the shipped pretrained tiny encoder (the benchmark's pretrained init)."""
    return shipped_model_path().with_name("seislm_tiny_encoder.safetensors")


def load_encoder(
    path: str | os.PathLike[str] | None = None,
) -> tuple[SeisLMConfig, dict[str, torch.Tensor]]:
    """Read a pretrained encoder (config, state dict); ``None``: the shipped tiny encoder."""
    path = shipped_encoder_path() if path is None else Path(path)
    state, meta = load_weights(path)
    if "config" not in meta:
        raise InputError(path, "weights file has no SeisLM config in its header")
    try:
        config = SeisLMConfig(**meta["config"])
    except TypeError as exc:
        raise InputError(path, f"not a SeisLM encoder ({exc})") from exc
    return config, state


def load_picker(
    path: str | os.PathLike[str] | None = None, *, device: str | torch.device = "cpu"
) -> SeisLMPicker:
    """Read a picker written by `save_picker`; ``None`` loads the shipped tiny model."""
    path = shipped_model_path() if path is None else Path(path)
    state, meta = load_weights(path, device=device)
    if "config" not in meta:
        raise InputError(path, "weights file has no SeisLM config in its header")
    try:
        model = SeisLMPicker(SeisLMConfig(**meta["config"]))
        model.load_state_dict(state)
    except (TypeError, RuntimeError) as exc:
        raise InputError(path, f"not a SeisLM picker ({exc})") from exc
    return model.to(device).eval()


def make_shipped_model(
    path: str | os.PathLike[str],
    *,
    pretrain_steps: int = 600,
    finetune_steps: int = 5000,
    real_noise: float = 0.7,
    n_labelled: int = 4000,
    p_rise_max_s: float = 0.5,
    force: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """Reproduce the shipped tiny model: pretrain on synthetic windows, fine-tune, save.

    Pretraining draws 10 s crops (batch 16) from 2000 unlabelled synthetic 30 s windows
    (seed 1); fine-tuning draws 15 s crops (batch 8) from ``n_labelled`` labelled 30 s
    windows (seed 2); in both, a fraction ``real_noise`` of the windows has its noise from
    the shipped real-noise bank (`load_noise_bank`). The picker then runs on 30 s windows.

    Parameters
    ----------
    path
        Output ``.safetensors``.
    pretrain_steps, finetune_steps
        Optimiser steps of the two stages.
    real_noise
        Fraction of windows with real noise.
    n_labelled
        Labelled windows for fine-tuning.
    p_rise_max_s
        Longest P rise time (s) of the synthetic events (`SyntheticConfig.p_rise_s` is
        ``(0.01, p_rise_max_s)``): emergent onsets, as on volcano-tectonic records.
    force
        Overwrite ``path``.
    progress
        Show progress bars.

    Returns
    -------
    dict
        Final losses and the contrastive accuracy of pretraining.
    """
    path = Path(path)
    if path.exists() and not force:
        from inversa.core.errors import OutputExistsError

        raise OutputExistsError(path)
    cfg = CONFIGS["tiny"]
    syn = SyntheticConfig(samples=3001, real_noise=real_noise, p_rise_s=(0.01, p_rise_max_s))
    unlabelled = synthetic_events(2000, config=syn, seed=1)
    encoder, pre = pretrain(
        unlabelled,
        model_config=cfg,
        config=PretrainConfig(
            steps=pretrain_steps, batch_size=16, samples=1001, warmup=30, lr=1e-3, seed=1
        ),
        progress=progress,
    )
    labelled = synthetic_events(n_labelled, config=syn, seed=2)
    picker, fin = finetune(
        labelled,
        model_config=cfg,
        encoder=encoder.state_dict(),
        config=FinetuneConfig(steps=finetune_steps, batch_size=8, samples=1501, warmup=30, seed=2),
        progress=progress,
    )
    info = {
        "pretrain_steps": pretrain_steps,
        "finetune_steps": finetune_steps,
        "pretrain_loss": pre.final_loss,
        "pretrain_accuracy": pre.history[-1].get("accuracy", math.nan),
        "finetune_loss": fin.final_loss,
        "real_noise": real_noise,
        "n_labelled": n_labelled,
        "p_rise_max_s": p_rise_max_s,
    }
    save_picker(path, picker, info=info, force=force)
    # the pretrained encoder alone, the init of the benchmark's pretrained runs
    save_weights(
        path.with_name("seislm_tiny_encoder.safetensors"),
        encoder.state_dict(),
        metadata={"config": cfg.to_dict(), "info": info},
        force=force,
    )
    return info

"""One training loop and one checkpoint format for every learned method.

The loop (:func:`train`) is step-based: ``loss_fn(step)`` builds its own batch (so a model
trained on mini-batches, full batches or many networks stacked as one batched module all
fit), may return evaluation metrics beside the loss, and :class:`EarlyStopping` stops the
run on one of them. Checkpoints (``.pt``) hold only tensors and plain Python values and
are read back with ``torch.load(weights_only=True)``; shipped models are safetensors files
whose header carries the model configuration as JSON. Both are written atomically, so an
interrupted job never leaves a half-written file, and a job restarted with the same
checkpoint path resumes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.io import atomic_write

__all__ = [
    "EarlyStopping",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "init_distributed",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "save_weights",
    "train",
]

LossFn = Callable[[int], "torch.Tensor | tuple[torch.Tensor, dict[str, float]]"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step."""


@dataclass(frozen=True, kw_only=True)
class EarlyStopping:
    """Stop training when a monitored metric (lower is better) stops improving.

    The metric is one that ``loss_fn`` returns for a step, computed on the weights before
    that step's update; when the rule fires, that update is not made and the run ends.

    Attributes
    ----------
    metric
        Name of the metric in the dict ``loss_fn`` returns (e.g. a validation loss).
    patience
        How many past values the rule looks at (>= 1).
    rule
        ``"mean"``: stop once the value exceeds the mean of the previous ``patience``
        values (the GPRGNN recipe); ``"best"``: stop once the lowest value seen is
        ``patience`` steps old.
    """

    metric: str
    patience: int
    rule: Literal["mean", "best"] = "best"

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise InputError(None, f"patience must be >= 1, got {self.patience}")
        if self.rule not in ("mean", "best"):
            raise InputError(None, f"rule must be 'mean' or 'best', got {self.rule!r}")

    def should_stop(self, past: list[float], value: float) -> bool:
        """Whether ``value`` ends the run, given the ``past`` values (oldest first)."""
        if self.rule == "mean":
            # np.mean as the GPRGNN reference code, so the same comparisons come out.
            return len(past) >= self.patience and value > np.mean(past[-self.patience :])
        if not past:
            return False
        best = int(np.argmin([*past, value]))
        return len(past) - best >= self.patience


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to run :func:`train`.

    Attributes
    ----------
    steps
        Total optimiser steps; a resumed run continues up to this number.
    grad_clip
        Maximal global gradient norm, or ``None`` for no clipping.
    checkpoint
        ``.pt`` file written every ``checkpoint_every`` steps and at the end; ``None`` for none.
    checkpoint_every
        Steps between checkpoints.
    resume
        Continue from ``checkpoint`` when it exists (model, optimiser, scheduler, step, RNG).
    log_every
        Steps between history entries (the last step is always logged).
    progress
        Show a progress bar (rank 0 only).
    description
        Label of the progress bar.
    early_stopping
        Stop on a metric that ``loss_fn`` returns, or ``None`` to run all ``steps``.
    """

    steps: int
    grad_clip: float | None = None
    checkpoint: Path | None = None
    checkpoint_every: int = 100
    resume: bool = True
    log_every: int = 10
    progress: bool = True
    description: str = "training"
    early_stopping: EarlyStopping | None = None

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise InputError(None, f"steps must be >= 0, got {self.steps}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise InputError(None, "checkpoint_every and log_every must be >= 1")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise InputError(None, f"grad_clip must be positive, got {self.grad_clip}")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did.

    Attributes
    ----------
    history
        Logged entries ``{"step": s, "loss": l, **metrics}`` (steps counted from 1).
    final_loss
        Loss of the last step run (NaN when no step ran).
    steps_run
        Steps run by this call.
    resumed_from
        Step the run resumed from (0 when it started fresh).
    stopped_early
        True when :class:`EarlyStopping` ended the run before ``steps``.
    """

    history: list[dict[str, float]]
    final_loss: float
    steps_run: int
    resumed_from: int
    stopped_early: bool = False


def _rank() -> int:
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def init_distributed() -> tuple[int, int]:
    """Initialise ``torch.distributed`` from the ``torchrun`` environment, if there is one.

    Returns
    -------
    (rank, world_size)
        ``(0, 1)`` outside ``torchrun``; gloo is used on CPU and NCCL when CUDA is present.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    dist = torch.distributed
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def save_checkpoint(path: str | os.PathLike[str], state: dict) -> None:
    """Write a training state atomically with ``torch.save``.

    Parameters
    ----------
    path
        Destination ``.pt`` file.
    state
        Tensors, numbers, strings and nested lists/dicts of them only, so that
        :func:`load_checkpoint` can read it back with ``weights_only=True``.
    """
    with atomic_write(path, force=True) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike[str]) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises
    ------
    InputError
        When the file is missing, corrupt, or holds more than tensors and plain values.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise InputError(path, f"not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise InputError(path, "checkpoint does not hold a dictionary")
    return state


def save_weights(
    path: str | os.PathLike[str],
    state_dict: dict[str, torch.Tensor],
    *,
    metadata: dict | None = None,
    force: bool = True,
) -> None:
    """Write model weights as safetensors, with a JSON-able ``metadata`` dict in the header.

    Parameters
    ----------
    path
        Destination ``.safetensors`` file.
    state_dict
        Parameter name -> tensor (made contiguous and moved to CPU).
    metadata
        Anything JSON can encode, typically the model configuration.
    force
        Overwrite an existing file.
    """
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    header = {"inversa": json.dumps(metadata or {}, sort_keys=True)}
    with atomic_write(path, force=force) as tmp:
        save_file(tensors, str(tmp), metadata=header)


def load_weights(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read weights written by :func:`save_weights`.

    Returns
    -------
    (state_dict, metadata)

    Raises
    ------
    InputError
        When the file is missing or not a safetensors file.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file not found")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = json.loads(header.get("inversa", "{}"))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise InputError(path, f"not a readable safetensors file ({exc})") from exc
    return tensors, metadata


def _scalar(value: float | torch.Tensor) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    # DDP prefixes parameter names with "module."; checkpoints keep the bare model's names.
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def _restore(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
) -> tuple[int, list[dict[str, float]], list[float], bool]:
    state = load_checkpoint(path)
    try:
        _unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and "scheduler" in state:
            scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        step = int(state["step"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise InputError(path, f"checkpoint does not match this model ({exc})") from exc
    monitored = [float(v) for v in state.get("monitored", [])]
    return step, list(state.get("history", [])), monitored, bool(state.get("stopped", False))


def _snapshot(
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    history: list[dict[str, float]],
    monitored: list[float],
    stopped: bool,
) -> dict:
    state = {
        "step": step,
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "history": history,
        "monitored": monitored,
        "stopped": stopped,
    }
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    return state


def train(
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    config: TrainConfig,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> TrainResult:
    """Run ``config.steps`` optimiser steps of ``loss_fn``, with logging, checkpoints and resume.

    Parameters
    ----------
    model
        The module being trained (possibly wrapped in DistributedDataParallel by the caller).
    optimizer
        Optimiser over ``model``'s parameters.
    loss_fn
        ``loss_fn(step)`` builds the batch of global step ``step`` (0-based) and returns the
        scalar loss, or ``(loss, metrics)`` with float (or scalar tensor) metrics; an
        evaluation done there (e.g. a validation loss of the current weights) can be
        monitored by ``config.early_stopping``. Deriving its randomness from ``step``
        makes a resumed run identical to an uninterrupted one.
    config
        Steps, clipping, checkpointing, logging and early stopping.
    scheduler
        Learning-rate scheduler stepped after every optimiser step.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDiverged
        When the loss is not finite; the checkpoint keeps the last good state.
    InputError
        When the monitored metric is missing from what ``loss_fn`` returns.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    start, history, monitored, stopped = 0, [], [], False
    stopper = config.early_stopping
    ckpt = None if config.checkpoint is None else Path(config.checkpoint)
    if ckpt is not None and config.resume and ckpt.exists():
        start, history, monitored, stopped = _restore(ckpt, model, optimizer, scheduler)
    done = start
    rank0 = _rank() == 0
    model.train()
    last = math.nan
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
    )
    show = config.progress and rank0
    with Progress(*columns, disable=not show) as bar:
        task = bar.add_task(config.description, total=config.steps, completed=start, loss="-")
        for step in range(start, config.steps):
            if stopped:
                break
            optimizer.zero_grad(set_to_none=True)
            out = loss_fn(step)
            loss, metrics = out if isinstance(out, tuple) else (out, {})
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(f"{config.description}: loss is {value} at step {step + 1}")
            if stopper is not None:
                if stopper.metric not in metrics:
                    raise InputError(None, f"loss_fn returned no metric {stopper.metric!r}")
                watched = _scalar(metrics[stopper.metric])
                stopped = stopper.should_stop(monitored, watched)
                if stopped:
                    # This step's weights are final: save them as the end of the run.
                    if ckpt is not None and rank0:
                        state = _snapshot(
                            done, model, optimizer, scheduler, history, monitored, True
                        )
                        save_checkpoint(ckpt, state)
                    break
                monitored.append(watched)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            last = value
            done = step + 1
            last_step = done == config.steps
            if done % config.log_every == 0 or last_step:
                entry = {"step": float(done), "loss": value}
                history.append(entry | {k: _scalar(v) for k, v in metrics.items()})
            if ckpt is not None and rank0 and (done % config.checkpoint_every == 0 or last_step):
                state = _snapshot(done, model, optimizer, scheduler, history, monitored, False)
                save_checkpoint(ckpt, state)
            if show:  # a hidden bar still costs a lock per update
                bar.update(task, completed=done, loss=f"{value:.4g}")
    return TrainResult(
        history=history,
        final_loss=last,
        steps_run=done - start,
        resumed_from=start,
        stopped_early=stopped,
    )

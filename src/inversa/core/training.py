"""One training loop and one checkpoint format for every learned method.

Checkpoints (``.pt``) hold only tensors and plain Python values and are read back with
``torch.load(weights_only=True)``; shipped models are safetensors files whose header carries
the model configuration as JSON. Both are written atomically, so an interrupted job never
leaves a half-written file, and a job restarted with the same checkpoint path resumes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from inversa.core.errors import InputError
from inversa.core.io import atomic_write

__all__ = [
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
    """

    steps: int
    grad_clip: float | None = None
    checkpoint: Path | None = None
    checkpoint_every: int = 100
    resume: bool = True
    log_every: int = 10
    progress: bool = True
    description: str = "training"

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
    """

    history: list[dict[str, float]]
    final_loss: float
    steps_run: int
    resumed_from: int


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
) -> tuple[int, list[dict[str, float]]]:
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
    return step, list(state.get("history", []))


def _snapshot(
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    history: list[dict[str, float]],
) -> dict:
    state = {
        "step": step,
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
        "history": history,
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
        scalar loss, or ``(loss, metrics)`` with float (or scalar tensor) metrics.
        Deriving its randomness from ``step`` makes a resumed run identical to an
        uninterrupted one.
    config
        Steps, clipping, checkpointing and logging.
    scheduler
        Learning-rate scheduler stepped after every optimiser step.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDiverged
        When the loss is not finite; the checkpoint keeps the last good state.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    start, history = 0, []
    ckpt = None if config.checkpoint is None else Path(config.checkpoint)
    if ckpt is not None and config.resume and ckpt.exists():
        start, history = _restore(ckpt, model, optimizer, scheduler)
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
            optimizer.zero_grad(set_to_none=True)
            out = loss_fn(step)
            loss, metrics = out if isinstance(out, tuple) else (out, {})
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(f"{config.description}: loss is {value} at step {step + 1}")
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
                save_checkpoint(ckpt, _snapshot(done, model, optimizer, scheduler, history))
            bar.update(task, completed=done, loss=f"{value:.4g}")
    return TrainResult(
        history=history, final_loss=last, steps_run=config.steps - start, resumed_from=start
    )

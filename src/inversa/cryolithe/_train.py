"""Training on simulated data only, through ``core.training``."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from inversa.core.errors import InputError
from inversa.core.training import TrainConfig, train
from inversa.cryolithe._data import DataConfig, Scene, make_scenes, random_series, simulate_series
from inversa.cryolithe._features import extract_patches, prepare_projections
from inversa.cryolithe._model import SliceSet, SliceSetConfig
from inversa.cryolithe._wavelet import haar3d_forward
from inversa.tomography import TiltGeometry

__all__ = ["TrainingConfig", "quick_config", "sample_points", "train_and_save", "train_model"]


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """How to train a SliceSet network.

    Attributes
    ----------
    model
        The network.
    data
        The simulated data distribution.
    steps
        Optimiser steps.
    batch_points
        Points per step, all from one tilt series.
    series_every
        Steps that share one simulated tilt series (a new one after that).
    lr, weight_decay, warmup
        AdamW, linear warm-up over ``warmup`` steps then cosine decay to 5 %.
    focus
        Fraction of the points drawn in proportion to the target's deviation from its
        median (particles and membranes); the rest uniformly (background).
    checkpoint_every
        Steps between checkpoints (when a checkpoint file is given).
    seed
        Initial weights and point sampling.
    """

    model: SliceSetConfig = field(default_factory=SliceSetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    steps: int = 1000
    batch_points: int = 256
    series_every: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    focus: float = 0.5
    checkpoint_every: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_points < 1 or self.series_every < 1 or self.steps < 0:
            raise InputError(None, "batch_points and series_every must be >= 1, steps >= 0")
        if not 0 <= self.focus <= 1:
            raise InputError(None, "focus must be in [0, 1]")


def _targets(scene: Scene, block: int) -> torch.Tensor:
    """``(n_out, d, h, w)`` per-point targets: voxels, or Haar coefficients of blocks."""
    if block == 1:
        return scene.target[None]
    t = scene.target
    pad = [(block - n % block) % block for n in t.shape]
    t = torch.nn.functional.pad(t, (pad[2], 0, pad[1], 0, pad[0], 0))
    return haar3d_forward(t)


def sample_points(
    targets: torch.Tensor, n: int, *, focus: float, block: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw training points: ``focus`` of them where the target departs from its median.

    Parameters
    ----------
    targets
        ``(n_out, d, h, w)`` (see the pixel and wavelet heads).
    n
        Number of points.
    focus
        Fraction drawn with probability proportional to ``|target - median|``.
    block
        1 or 2 voxels per point and axis.

    Returns
    -------
    (points, values)
        ``(n, 3)`` coordinates ``(x, y, z)`` about the volume centre and ``(n, n_out)``.
    """
    c, d, h, w = targets.shape
    flat = targets.reshape(c, -1)
    n_focus = round(n * focus)
    weight = (flat[0] - flat[0].median()).abs() + 1e-6
    parts = [torch.randint(flat.shape[1], (n - n_focus,), generator=generator)]
    if n_focus:
        parts.insert(0, torch.multinomial(weight, n_focus, replacement=True, generator=generator))
    idx = torch.cat(parts)
    k, rem = idx // (h * w), idx % (h * w)
    j, i = rem // w, rem % w
    off = (block - 1) / 2
    full = (d * block, h * block, w * block)
    pts = torch.stack(
        [
            i * block + off - full[2] // 2,
            j * block + off - full[1] // 2,
            k * block + off - full[0] // 2,
        ],
        dim=-1,
    ).to(torch.float32)
    return pts, flat[:, idx].T


def _lr_factor(config: TrainingConfig):
    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        span = max(1, config.steps - config.warmup)
        t = min(1.0, (step - config.warmup) / span)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    return factor


def train_model(
    config: TrainingConfig,
    *,
    checkpoint: Path | None = None,
    resume: bool = True,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[SliceSet, dict]:
    """Train a SliceSet network on simulated tilt series.

    Every ``series_every`` steps a new series is simulated from one of the scenes (new
    scheme, dropped tilts, dose, CTF, residual misalignment); each step draws
    ``batch_points`` points of it. All randomness derives from the seeds and the step, so
    a resumed run (``checkpoint``) is the uninterrupted one.

    Returns
    -------
    (model, info)
        The trained network (eval mode, CPU) and a record (steps, seconds, final loss).
    """
    device = torch.device(device)
    t0, c0 = time.perf_counter(), time.process_time()
    scenes = make_scenes(config.data)
    targets = [_targets(s, config.model.block) for s in scenes]
    model = SliceSet(config.model, generator=torch.Generator().manual_seed(config.seed)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor(config))
    cache: dict[int, tuple[int, torch.Tensor, TiltGeometry]] = {}

    def series(k: int) -> tuple[int, torch.Tensor, TiltGeometry]:
        if k not in cache:
            cache.clear()
            g = torch.Generator().manual_seed(1_000_003 * (config.data.seed + 1) + k)
            which = int(torch.randint(len(scenes), (), generator=g))
            acq = random_series(config.data, g)
            data, geometry = simulate_series(scenes[which], acq, generator=g)
            images = prepare_projections(data).to(device)
            cache[k] = (which, images, geometry.to(device=device, dtype=torch.float32))
        return cache[k]

    def loss_fn(step: int) -> torch.Tensor:
        which, images, geometry = series(step // config.series_every)
        g = torch.Generator().manual_seed(7919 * (config.seed + 1) + step)
        pts, values = sample_points(
            targets[which],
            config.batch_points,
            focus=config.focus,
            block=config.model.block,
            generator=g,
        )
        patches = extract_patches(
            images, geometry, pts.to(device), patch_size=config.model.patch_size
        )
        pred = model(patches, geometry.angles)
        return (pred - values.to(device)).abs().mean()

    result = train(
        model=model,
        optimizer=opt,
        scheduler=sched,
        loss_fn=loss_fn,
        config=TrainConfig(
            steps=config.steps,
            grad_clip=1.0,
            checkpoint=checkpoint,
            checkpoint_every=config.checkpoint_every,
            resume=resume,
            log_every=50,
            progress=progress,
            description=f"cryolithe ({config.model.head})",
        ),
    )
    info = {
        "steps": config.steps,
        "steps_run": result.steps_run,
        "resumed_from": result.resumed_from,
        "final_loss": result.final_loss,
        "training_seconds": round(time.perf_counter() - t0, 1),
        # CPU seconds of this process (all threads): a budget that does not depend on how
        # loaded a shared machine was
        "training_cpu_seconds": round(time.process_time() - c0, 1),
        "torch_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "n_scenes": config.data.n_scenes,
        "history": result.history,
    }
    return model.to("cpu").eval(), info


def quick_config(head: str, steps: int | None = None) -> TrainingConfig:
    """Return a tiny training (one small scene, a few steps) for tests and ``--quick``."""
    data = DataConfig(n_scenes=1, shape=(48, 48, 48), voxel_sizes=(12.0, 12.5), particles=(1, 1))
    return TrainingConfig(
        model=SliceSetConfig(head=head), data=data, steps=steps or 10, batch_points=64, warmup=2
    )


def train_and_save(
    out_dir: str | Path,
    *,
    head: str,
    steps: int | None = None,
    quick: bool = False,
    resume: bool = False,
    device: str = "cpu",
    force: bool = False,
    progress: bool = True,
    sizes: dict | None = None,
    data: dict | None = None,
) -> tuple[Path, dict]:
    """Train one head and write ``cryolithe_{head}.safetensors`` and ``training_{head}.json``.

    The checkpoint ``checkpoint_{head}.pt`` in ``out_dir`` is kept, so ``resume=True``
    continues an interrupted run. ``sizes`` overrides fields of :class:`SliceSetConfig`
    (e.g. ``{"set_features": 64, "patch_size": 21}``); the head is ``head``. ``data``
    overrides fields of :class:`DataConfig` (e.g. ``{"n_scenes": 96}``).

    Returns
    -------
    (weights_path, info)
    """
    from inversa.core.io import write_json
    from inversa.cryolithe._model import save_model

    out_dir = Path(out_dir)
    config = quick_config(head, steps) if quick else TrainingConfig(model=SliceSetConfig(head=head))
    if steps is not None and not quick:
        config = TrainingConfig(model=config.model, data=config.data, steps=steps)
    if sizes:
        wider = SliceSetConfig.from_dict({**config.model.to_dict(), **sizes, "head": head})
        config = dataclasses.replace(config, model=wider)
    if data:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, **data))
    out_dir.mkdir(parents=True, exist_ok=True)  # after the checks: a bad size leaves nothing
    model, info = train_model(
        config,
        checkpoint=out_dir / f"checkpoint_{head}.pt",
        resume=resume,
        device=device,
        progress=progress,
    )
    info["quick"] = quick
    record = out_dir / f"training_{head}.json"
    if resume and info["resumed_from"] > 0 and record.is_file():
        import json

        before = json.loads(record.read_text())
        total = before.get("training_seconds_total", before.get("training_seconds", 0.0))
        info["training_seconds_total"] = round(total + info["training_seconds"], 1)
        cpu = before.get("training_cpu_seconds_total", before.get("training_cpu_seconds"))
        if cpu is not None:
            info["training_cpu_seconds_total"] = round(cpu + info["training_cpu_seconds"], 1)
    weights = out_dir / f"cryolithe_{head}.safetensors"
    save_model(weights, model, info={k: v for k, v in info.items() if k != "history"}, force=force)
    write_json(record, info, force=force)
    return weights, info

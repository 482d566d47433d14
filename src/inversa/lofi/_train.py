"""Training LoFi and its peer (FBPConvNet, a U-Net on the FBP input) on the same data.

Both train on the same few random-ellipse images (`core.phantoms.random_ellipses`), for the
same steps, with the same L1 loss, Adam and cosine learning-rate decay, through
`core.training.train` (checkpoints and exact resume). Step ``s`` draws its image and its
noise from a generator seeded by ``(seed, s)``, so both models see the same sequence of
(input, target) pairs and a resumed run repeats an uninterrupted one. LoFi learns from
``queries`` random pixels of the step's image, the U-Net from the whole image.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from inversa.core.errors import InputError
from inversa.core.nets import UNet, UNetConfig
from inversa.core.phantoms import random_ellipses
from inversa.core.training import TrainConfig, load_weights, save_weights, train
from inversa.lofi._model import LoFi, LoFiConfig, save_model
from inversa.lofi._tasks import TASKS, TaskConfig, simulate, task_config

__all__ = [
    "UNET_FORMAT",
    "TrainingConfig",
    "load_unet",
    "quick_config",
    "save_unet",
    "step_pair",
    "train_and_save",
    "train_lofi",
    "train_unet",
    "training_images",
    "unet_predict",
]

UNET_FORMAT = "inversa-lofi-unet-v1"


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """Data, steps and optimiser shared by LoFi and the U-Net.

    Attributes
    ----------
    size
        Training resolution (images ``size x size``).
    n_images
        Training images (random ellipses; at most 10).
    steps
        Optimiser steps (one image per step).
    queries
        Random query pixels per LoFi step.
    lr, lr_final
        Adam learning rate, decayed by a cosine to ``lr_final``.
    seed
        Seed of the images, the per-step draws and the weights.
    model
        The LoFi architecture (its ``reference_size`` is set to ``size``).
    unet_channels, unet_depth
        The U-Net peer's first-level channels and poolings.
    checkpoint_every
        Steps between checkpoints (when a checkpoint file is given).
    """

    size: int = 128
    n_images: int = 8
    steps: int = 1500
    queries: int = 2048
    lr: float = 1e-3
    lr_final: float = 1e-5
    seed: int = 0
    model: LoFiConfig = field(default_factory=LoFiConfig)
    unet_channels: int = 16
    unet_depth: int = 3
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if not 1 <= self.n_images <= 10:
            raise InputError(
                None, f"n_images must be 1..10 (LoFi trains on few), got {self.n_images}"
            )
        if self.steps < 1 or self.queries < 1 or self.size < 8:
            raise InputError(None, "steps and queries must be >= 1 and size >= 8")
        if self.model.reference_size != self.size:
            object.__setattr__(self, "model", replace(self.model, reference_size=self.size))

    def unet(self) -> UNetConfig:
        """Return the U-Net's config (2-D, residual on its input)."""
        return UNetConfig(dim=2, channels=self.unet_channels, depth=self.unet_depth, residual=True)


def quick_config() -> TrainingConfig:
    """Return a tiny configuration (64^2, 4 images, 60 steps, small networks)."""
    return TrainingConfig(
        size=64,
        n_images=4,
        steps=60,
        queries=512,
        lr=2e-3,
        model=LoFiConfig(
            n_spokes=6, n_radii=5, spoke_hidden=32, spoke_features=16, mixer_hidden=(64,)
        ),
        unet_channels=8,
        unet_depth=2,
    )


def training_images(config: TrainingConfig) -> torch.Tensor:
    """Return the training images, ``(n_images, size, size)`` ellipses in [0, 1]."""
    g = torch.Generator().manual_seed(config.seed)
    return random_ellipses(config.size, count=config.n_images, generator=g)


def step_pair(
    task: TaskConfig, images: torch.Tensor, step: int, *, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the (input, target) pair of training step ``step``, ``(n, n)`` each."""
    g = torch.Generator().manual_seed(1_000_003 * (seed + 1) + step)
    idx = int(torch.randint(images.shape[0], (), generator=g))
    target = images[idx : idx + 1]
    sigma = None
    if not task.is_ct:
        lo, hi = task.sigma_train
        sigma = lo + (hi - lo) * float(torch.rand((), generator=g))
    _, inp = simulate(task, target, generator=g, sigma=sigma)
    return inp[0], target[0]


def _optimiser(model: torch.nn.Module, config: TrainingConfig):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=config.steps, eta_min=config.lr_final
    )
    return opt, sched


def train_lofi(
    task: str | TaskConfig,
    config: TrainingConfig,
    *,
    checkpoint: Path | None = None,
    resume: bool = True,
    progress: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[LoFi, dict]:
    """Train LoFi for ``task`` on the configured images.

    Parameters
    ----------
    task
        A task name (`TASKS`) or config.
    config
        Data, steps and optimiser.
    checkpoint
        ``.pt`` file for checkpoints and resume (``None``: none).
    resume
        Continue from ``checkpoint`` when it exists.
    progress
        Show a progress bar.
    device
        Torch device.

    Returns
    -------
    (model, info)
        The trained model (eval mode) and ``{"final_loss", "training_seconds", "steps",
        "parameters", "history"}``.
    """
    task = task_config(task) if isinstance(task, str) else task
    images = training_images(config)
    model = LoFi(config.model, seed=config.seed).to(device)
    opt, sched = _optimiser(model, config)
    n = config.size

    def loss_fn(step: int) -> torch.Tensor:
        inp, target = step_pair(task, images, step, seed=config.seed)
        g = torch.Generator().manual_seed(7_000_001 * (config.seed + 1) + step)
        idx = torch.randint(n * n, (config.queries,), generator=g)
        rows, cols = idx // n, idx % n
        coords = torch.stack([(cols + 0.5) / n, (rows + 0.5) / n], dim=-1)
        pred = model(inp[None, None].to(device), coords[None].to(device))[0]
        return (pred - target[rows, cols].to(device)).abs().mean()

    return _run(model, opt, sched, loss_fn, config, task, "lofi", checkpoint, resume, progress)


def _run(model, opt, sched, loss_fn, config, task, label, checkpoint, resume, progress):
    t0 = time.perf_counter()
    result = train(
        model=model,
        optimizer=opt,
        scheduler=sched,
        loss_fn=loss_fn,
        config=TrainConfig(
            steps=config.steps,
            checkpoint=checkpoint,
            checkpoint_every=max(1, min(config.checkpoint_every, config.steps)),
            resume=resume,
            log_every=max(1, config.steps // 20),
            progress=progress,
            description=f"{label} {task.name}",
        ),
    )
    info = {
        "final_loss": result.final_loss,
        "training_seconds": time.perf_counter() - t0,
        "steps": config.steps,
        "resumed_from": result.resumed_from,
        "parameters": sum(p.numel() for p in model.parameters()),
        "history": result.history,
    }
    return model.eval(), info


def train_unet(
    task: str | TaskConfig,
    config: TrainingConfig,
    *,
    checkpoint: Path | None = None,
    resume: bool = True,
    progress: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[UNet, dict]:
    """Train the FBPConvNet peer (residual U-Net on the input image) like `train_lofi`.

    Returns
    -------
    (unet, info)
        As `train_lofi`.
    """
    task = task_config(task) if isinstance(task, str) else task
    images = training_images(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        unet = UNet(config.unet()).to(device)
    opt, sched = _optimiser(unet, config)

    def loss_fn(step: int) -> torch.Tensor:
        inp, target = step_pair(task, images, step, seed=config.seed)
        pred = unet(inp[None, None].to(device))[0, 0]
        return (pred - target.to(device)).abs().mean()

    return _run(unet, opt, sched, loss_fn, config, task, "unet", checkpoint, resume, progress)


def unet_predict(unet: UNet, image: torch.Tensor) -> torch.Tensor:
    """Apply the U-Net to ``(H, W)`` or ``(B, H, W)`` (zero-padded to its multiple, cropped)."""
    single = image.ndim == 2
    x = (image[None] if single else image)[:, None]
    ref = next(unet.parameters())
    h, w = x.shape[-2:]
    with torch.no_grad():
        out = unet(unet.pad_to_multiple(x.to(device=ref.device, dtype=ref.dtype)))
    out = out[:, 0, :h, :w]
    return out[0] if single else out


def save_unet(path: str | Path, unet: UNet, *, task: str, force: bool = False) -> Path:
    """Write the U-Net's weights and config (safetensors)."""
    meta = {"format": UNET_FORMAT, "task": task, "config": asdict(unet.config)}
    save_weights(path, unet.state_dict(), metadata=meta, force=force)
    return Path(path)


def load_unet(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[UNet, dict]:
    """Read a U-Net written by `save_unet`."""
    state, meta = load_weights(path, device=device)
    if meta.get("format") != UNET_FORMAT:
        raise InputError(path, "not a LoFi-benchmark U-Net file")
    unet = UNet(UNetConfig(**meta["config"]))
    unet.load_state_dict(state)
    return unet.to(device).eval(), meta


def train_and_save(
    task: str,
    out: Path,
    *,
    quick: bool = False,
    steps: int | None = None,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[Path, dict]:
    """Train LoFi for ``task`` and write ``out`` (safetensors) beside ``out.ckpt.pt``.

    Returns
    -------
    (path, info)
    """
    if task not in TASKS:
        raise InputError(None, f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    config = quick_config() if quick else TrainingConfig()
    if steps is not None:
        config = replace(config, steps=steps)
    ckpt = out.with_name(out.name + ".ckpt.pt")
    if ckpt.exists() and not resume:
        ckpt.unlink()
    model, info = train_lofi(
        task, config, checkpoint=ckpt, resume=resume, progress=progress, device=device
    )
    info = {k: v for k, v in info.items() if k != "history"}
    info |= {"size": config.size, "n_images": config.n_images, "quick": quick}
    path = save_model(out, model, task=task, info=info, force=force)
    ckpt.unlink(missing_ok=True)
    return path, info

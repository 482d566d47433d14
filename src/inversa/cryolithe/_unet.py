"""The learned peer: a small 3-D U-Net that post-processes the WBP tomogram.

The cryo-CARE / IsoNet style of learned improvement, trained here on the same simulated
data as CryoLithe (supervised, against the same targets) so the benchmark compares the
two fairly. It is a baseline, not shipped.
"""

from __future__ import annotations

import time

import torch

from inversa.core.errors import InputError
from inversa.core.nets import UNet, UNetConfig
from inversa.core.training import EarlyStopping, TrainConfig, train
from inversa.cryolithe._data import DataConfig, make_scenes, random_series, simulate_series
from inversa.tomography import TiltGeometry, TiltSeriesProjector, wbp

__all__ = ["UNetConfig", "WBPUNet", "train_unet", "unet_reconstruct", "wbp_normalized"]


class WBPUNet(UNet):
    """Small residual 3-D U-Net on the WBP tomogram, ``(B, 1, D, H, W) -> (B, 1, D, H, W)``.

    ``core.nets.UNet`` with ``dim=3``, one channel in and out, residual on its input; sizes
    must be divisible by ``2^depth`` (:func:`unet_reconstruct` pads).
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        config = config or UNetConfig()
        if config.dim != 3 or config.in_channels != 1 or config.out_channels != 1:
            raise InputError(None, "WBPUNet needs a UNetConfig with dim=3 and one channel")
        super().__init__(config)


def wbp_normalized(
    data: torch.Tensor, geometry: TiltGeometry, shape: tuple[int, int, int]
) -> torch.Tensor:
    """WBP (Hann filter) of ``(T, H, W)`` line-integral data, zero mean and unit std."""
    projector = TiltSeriesProjector(
        volume_shape=tuple(shape),
        geometry=geometry.to(dtype=torch.float32).replace(detector_shape=None),
    )
    v = wbp(data.to(torch.float32), projector, filter="hann")
    return (v - v.mean()) / v.std().clamp_min(1e-12)


@torch.no_grad()
def unet_reconstruct(
    data: torch.Tensor, geometry: TiltGeometry, *, model: WBPUNet, shape: tuple[int, int, int]
) -> torch.Tensor:
    """WBP then the U-Net; ``(D, H, W)`` float32 in the target's normalised units."""
    v = wbp_normalized(data, geometry, shape)
    y = model.eval()(model.pad_to_multiple(v[None, None]))[0, 0]
    return y[: shape[0], : shape[1], : shape[2]].contiguous()


def train_unet(
    data: DataConfig,
    *,
    config: UNetConfig | None = None,
    steps: int = 300,
    crop: int = 32,
    series_every: int = 4,
    lr: float = 2e-3,
    seed: int = 0,
    seconds: float | None = None,
    clock: str = "wall",
    progress: bool = False,
) -> tuple[WBPUNet, dict]:
    """Train the peer on WBP tomograms of the same simulated series as CryoLithe.

    Each step takes a random ``crop`` x ``crop`` column (full depth) of the WBP of the
    current series against the same normalised target; L1 loss, AdamW.

    Parameters
    ----------
    steps
        Optimiser steps (the most when ``seconds`` is given).
    seconds
        Wall-time budget, counted from the call (scene and tilt-series simulation
        included, as in CryoLithe's recorded training time): the run stops at the first
        step that would start past it, after at least one step (``core.training``'s
        early stopping on a ``past_budget_s`` metric, 0 within the budget and growing
        after it). ``None``: run all ``steps``.
    clock
        What ``seconds`` counts: ``"wall"`` (elapsed time) or ``"cpu"`` (this process's
        CPU seconds, all threads, ``time.process_time``: on a shared machine an equal
        CPU budget is an equal amount of work whatever the load).

    Returns
    -------
    (model, info)
        ``info``: steps run, final loss, wall seconds, parameters, the budget.
    """
    if seconds is not None and not seconds > 0:
        raise InputError(None, f"seconds must be positive, got {seconds}")
    if clock not in ("wall", "cpu"):
        raise InputError(None, f"clock must be 'wall' or 'cpu', got {clock!r}")
    now = time.perf_counter if clock == "wall" else time.process_time
    t0, w0, c0 = now(), time.perf_counter(), time.process_time()
    config = config or UNetConfig()
    scenes = make_scenes(data)
    torch.manual_seed(seed)
    model = WBPUNet(config)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    m = 2**config.depth
    crop = max(m, crop // m * m)

    def pair(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if k not in cache:
            cache.clear()
            g = torch.Generator().manual_seed(1_000_003 * (data.seed + 1) + k)
            which = int(torch.randint(len(scenes), (), generator=g))
            acq = random_series(data, g)
            series, geometry = simulate_series(scenes[which], acq, generator=g)
            scene = scenes[which]
            cache[k] = (wbp_normalized(series, geometry, tuple(scene.volume.shape)), scene.target)
        return cache[k]

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        past = 0.0 if seconds is None else max(0.0, now() - t0 - seconds)
        x, t = pair(step // series_every)
        g = torch.Generator().manual_seed(7919 * (seed + 1) + step)
        d = x.shape[0] // m * m
        j = int(torch.randint(x.shape[1] - crop + 1, (), generator=g))
        i = int(torch.randint(x.shape[2] - crop + 1, (), generator=g))
        xs = x[:d, j : j + crop, i : i + crop]
        ts = t[:d, j : j + crop, i : i + crop]
        return (model(xs[None, None])[0, 0] - ts).abs().mean(), {"past_budget_s": past}

    result = train(
        model=model,
        optimizer=opt,
        loss_fn=loss_fn,
        config=TrainConfig(
            steps=steps,
            grad_clip=1.0,
            progress=progress,
            description="3-D U-Net on WBP",
            # past_budget_s is 0, then grows: "above the previous value" stops the run
            early_stopping=None
            if seconds is None
            else EarlyStopping(metric="past_budget_s", patience=1, rule="mean"),
        ),
    )
    info = {
        "steps": result.steps_run,
        "budget_seconds": seconds,
        "budget_clock": clock,
        "final_loss": result.final_loss,
        "training_seconds": round(time.perf_counter() - w0, 1),
        "training_cpu_seconds": round(time.process_time() - c0, 3),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return model.eval(), info

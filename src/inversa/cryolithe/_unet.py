"""The learned peer: a small 3-D U-Net that post-processes the WBP tomogram.

The cryo-CARE / IsoNet style of learned improvement, trained here on the same simulated
data as CryoLithe (supervised, against the same targets) so the benchmark compares the
two fairly. It is a baseline, not shipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.core.training import TrainConfig, train
from inversa.cryolithe._data import DataConfig, make_scenes, random_series, simulate_series
from inversa.tomography import TiltGeometry, TiltSeriesProjector, wbp

__all__ = ["UNetConfig", "WBPUNet", "train_unet", "unet_reconstruct", "wbp_normalized"]


@dataclass(frozen=True, kw_only=True)
class UNetConfig:
    """Channels of the first level (doubled per level) and the number of poolings."""

    channels: int = 8
    depth: int = 2

    def __post_init__(self) -> None:
        if self.channels < 1 or self.depth < 1:
            raise InputError(None, "channels and depth must be >= 1")


def _block(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(a, b, 3, padding=1),
        nn.LeakyReLU(0.1),
        nn.Conv3d(b, b, 3, padding=1),
        nn.LeakyReLU(0.1),
    )


class WBPUNet(nn.Module):
    """Small 3-D U-Net, ``(B, 1, D, H, W) -> (B, 1, D, H, W)``, residual on its input.

    Sizes must be divisible by ``2^depth``.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        c = [config.channels * 2**i for i in range(config.depth + 1)]
        self.down = nn.ModuleList(
            [_block(1, c[0])] + [_block(c[i], c[i + 1]) for i in range(config.depth)]
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose3d(c[i + 1], c[i], 2, stride=2) for i in range(config.depth)
        )
        self.merge = nn.ModuleList(_block(2 * c[i], c[i]) for i in range(config.depth))
        self.out = nn.Conv3d(c[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network (pad the input to multiples of ``2^depth`` first)."""
        skips = []
        h = x
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else nn.functional.max_pool3d(h, 2))
            skips.append(h)
        for i in reversed(range(self.config.depth)):
            h = self.merge[i](torch.cat([self.up[i](h), skips[i]], dim=1))
        return x + self.out(h)


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
    m = 2**model.config.depth
    pad = [(m - n % m) % m for n in shape]
    x = nn.functional.pad(v, (0, pad[2], 0, pad[1], 0, pad[0]))
    y = model.eval()(x[None, None])[0, 0]
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
    progress: bool = False,
) -> tuple[WBPUNet, dict]:
    """Train the peer on WBP tomograms of the same simulated series as CryoLithe.

    Each step takes a random ``crop`` x ``crop`` column (full depth) of the WBP of the
    current series against the same normalised target; L1 loss, AdamW.

    Returns
    -------
    (model, info)
    """
    t0 = time.perf_counter()
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

    def loss_fn(step: int) -> torch.Tensor:
        x, t = pair(step // series_every)
        g = torch.Generator().manual_seed(7919 * (seed + 1) + step)
        d = x.shape[0] // m * m
        j = int(torch.randint(x.shape[1] - crop + 1, (), generator=g))
        i = int(torch.randint(x.shape[2] - crop + 1, (), generator=g))
        xs = x[:d, j : j + crop, i : i + crop]
        ts = t[:d, j : j + crop, i : i + crop]
        return (model(xs[None, None])[0, 0] - ts).abs().mean()

    result = train(
        model=model,
        optimizer=opt,
        loss_fn=loss_fn,
        config=TrainConfig(
            steps=steps, grad_clip=1.0, progress=progress, description="3-D U-Net on WBP"
        ),
    )
    info = {
        "steps": steps,
        "final_loss": result.final_loss,
        "training_seconds": round(time.perf_counter() - t0, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    return model.eval(), info

"""A small CNN variant of the paper's networks: the same knobs, convolutions instead of Linear.

``depth - 1`` blocks Conv2d(3x3, padding 1)-BatchNorm2d-LeakyReLU(alpha)[-Dropout] on the
image, then a flattening output Linear. The networks are trained one after the other with
PyTorch's autograd and Adam on `inversa.core.training.train` (a batched CNN would need
grouped convolutions, which gain little on a CPU: the convolutions already fill the cores),
and measured with the hook-based `separation_curve`, exactly as a user's model would be.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import nn

from inversa.core import training
from inversa.core.errors import InputError
from inversa.springblock._data import Dataset
from inversa.springblock._mlp import (
    NetworkSetting,
    TrainedNetworks,
    _check_slope_dropout,
    _noisy_batch,
    _seeded_sequential,
)
from inversa.springblock._separation import separation_curve

__all__ = ["make_cnn", "train_cnns"]


def make_cnn(
    *,
    image_shape: tuple[int, int],
    classes: int,
    channels: int = 16,
    depth: int = 8,
    alpha: float = 0.0,
    dropout: float = 0.0,
    seed: int = 0,
) -> nn.Sequential:
    """Build a plain CNN as an ``nn.Sequential``, initialised from ``seed``.

    Parameters
    ----------
    image_shape
        ``(h, w)`` of the single-channel input images.
    classes
        Number of classes.
    channels
        Feature maps per convolution.
    depth
        Number of weight layers: ``depth - 1`` convolution blocks and the output Linear (>= 2).
    alpha
        LeakyReLU negative slope in [0, 1] (1 = linear network).
    dropout
        Dropout rate after each activation.
    seed
        Initialisation seed.

    Returns
    -------
    torch.nn.Sequential
        Input ``(n, 1, h, w)``, output logits ``(n, classes)``.
    """
    if depth < 2 or channels < 1 or min(image_shape) < 1:
        raise InputError(
            None, f"need depth >= 2, channels >= 1, images >= 1 pixel ({depth}, {channels})"
        )
    _check_slope_dropout(alpha, dropout)

    def layers() -> list[nn.Module]:
        mods: list[nn.Module] = []
        c = 1
        for _ in range(depth - 1):
            mods += [
                nn.Conv2d(c, channels, 3, padding=1),
                nn.BatchNorm2d(channels),
                nn.LeakyReLU(alpha),
            ]
            if dropout > 0:
                mods.append(nn.Dropout(dropout))
            c = channels
        return [*mods, nn.Flatten(), nn.Linear(channels * image_shape[0] * image_shape[1], classes)]

    return _seeded_sequential(seed, layers)


def _train_one(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    data: Dataset,
    setting: NetworkSetting,
    *,
    image_shape: tuple[int, int],
    epochs: int,
    seed: int,
) -> None:
    """Train one CNN on ``x`` ``(n, h * w)`` for ``epochs`` passes (``n // bs`` steps each)."""
    h, w = image_shape
    n = len(data.y_train)
    g = torch.Generator().manual_seed(seed)
    noise = torch.tensor([setting.noise], dtype=x.dtype)
    bs = min(setting.batch_size or n, n)
    per_epoch = n // bs  # a trailing partial mini-batch is dropped
    perm = torch.arange(n)

    def loss_fn(step: int) -> torch.Tensor:
        nonlocal perm
        b = step % per_epoch
        if b == 0 and bs < n:  # a fresh shuffle per epoch, drawn before its noise
            perm = torch.randperm(n, generator=g)
        idx = perm[None, b * bs : (b + 1) * bs]
        xb, yb = _noisy_batch(x, data.y_train, idx, noise, data.classes, g)
        return nn.functional.cross_entropy(model(xb[0].reshape(-1, 1, h, w)), yb[0])

    steps = epochs * per_epoch
    run = training.TrainConfig(steps=steps, log_every=max(1, steps), progress=False)
    training.train(model=model, optimizer=opt, loss_fn=loss_fn, config=run)


def train_cnns(
    data: Dataset,
    settings: Sequence[NetworkSetting],
    *,
    image_shape: tuple[int, int] = (8, 8),
    epochs: int = 100,
    channels: int = 16,
    depth: int = 8,
    seed: int = 0,
) -> TrainedNetworks:
    """Train one CNN per setting and measure its separation curve with forward hooks.

    The noise knobs are those of `train_networks`: label noise with matched input noise drawn
    afresh each step, learning rate, dropout and batch size (``None``: full batch).

    Parameters
    ----------
    data
        Training and test data; inputs ``(n, h * w)`` or ``(n, h, w)`` single-channel images.
    settings
        One `NetworkSetting` per network.
    image_shape
        ``(h, w)`` of the images.
    epochs
        Passes over the training set (a trailing partial mini-batch is dropped).
    channels, depth
        See `make_cnn`.
    seed
        Seed of batch order, label/input noise and dropout masks.

    Returns
    -------
    TrainedNetworks
        Curves (input, then each LeakyReLU's output) on the clean training set, accuracies.
    """
    if not settings:
        raise InputError(None, "no networks to train")
    h, w = image_shape
    n = len(data.y_train)
    if data.x_train[0].numel() != h * w:
        raise InputError(None, f"inputs of {data.x_train[0].numel()} values are not {h}x{w} images")
    x = data.x_train.reshape(n, -1)
    x_test = data.x_test.reshape(len(data.y_test), 1, h, w)
    t0 = time.perf_counter()
    train_s = 0.0
    curves, tr, te = [], [], []
    for i, s in enumerate(settings):
        if not 0.0 <= s.noise < 1.0 or s.lr <= 0 or (s.batch_size is not None and s.batch_size < 2):
            raise InputError(None, f"invalid setting {s}: noise in [0, 1), lr > 0, batch size >= 2")
        model = make_cnn(
            image_shape=image_shape,
            classes=data.classes,
            channels=channels,
            depth=depth,
            alpha=s.alpha,
            dropout=s.dropout,
            seed=s.seed,
        )
        opt = torch.optim.Adam(model.parameters(), lr=s.lr)
        t1 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + i)  # dropout masks
            _train_one(
                model, opt, x, data, s, image_shape=image_shape, epochs=epochs, seed=seed + i
            )
        train_s += time.perf_counter() - t1
        model.eval()  # accuracies with the batch norms' running statistics, as the curves
        curves.append(separation_curve(model, x.reshape(n, 1, h, w), data.y_train))
        with torch.no_grad():
            tr.append(
                float((model(x.reshape(n, 1, h, w)).argmax(-1) == data.y_train).double().mean())
            )
            te.append(
                float((model(x_test).argmax(-1) == data.y_test).double().mean())
                if len(data.y_test)
                else float("nan")
            )
    return TrainedNetworks(
        settings=tuple(settings),
        curves=tuple(curves),
        train_accuracy=torch.tensor(tr, dtype=torch.float64),
        test_accuracy=torch.tensor(te, dtype=torch.float64),
        seconds=time.perf_counter() - t0,
        train_seconds=train_s,
        network_epochs=epochs * len(settings),
    )

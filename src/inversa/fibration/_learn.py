"""Learn one transform with the level-set network; save, load and evaluate the model."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass

import torch

from inversa.core.errors import InputError
from inversa.core.training import load_weights, save_weights
from inversa.fibration._data import GRFConfig, check_samples, disk_window, sample_grf
from inversa.fibration._geometry import (
    amplitude_grid,
    codimension,
    level_set_grid,
    speed_from_level_sets,
)
from inversa.fibration._models import LevelSetConfig, LevelSetNet
from inversa.fibration._train import (
    FitConfig,
    FittedOperator,
    fit_operator,
    predict,
    relative_error,
)
from inversa.fibration._transforms import Transform, make_transform

__all__ = [
    "FORMAT",
    "LearnConfig",
    "learn",
    "load_levelset",
    "make_pairs",
    "ood_images",
    "recover_speed",
    "save_levelset",
    "speed_error",
]

FORMAT = "inversa.fibration.levelset/1"
"""The ``format`` entry of a saved level-set model's metadata."""


@dataclass(frozen=True, kw_only=True)
class LearnConfig:
    """One run of :func:`learn`.

    Parameters
    ----------
    size
        ``N`` of the ``(N, N)`` grid.
    samples
        Training pairs, in ``[1, MAX_SAMPLES]``.
    bandwidth
        Band limit of the training fields (cycles per image), in ``(0, N / 2]``.
    noise
        Standard deviation of Gaussian noise added to the outputs, relative to their RMS.
    n_test
        Fresh test fields.
    fit
        Training schedule.
    levelset
        Architecture.
    seed
        Seeds the data and the weights.
    """

    size: int = 32
    samples: int = 32
    bandwidth: float = 4.0
    noise: float = 0.0
    n_test: int = 32
    fit: FitConfig = dataclasses.field(
        default_factory=lambda: FitConfig(steps=600, lr=1e-2, restarts=2)
    )
    levelset: LevelSetConfig = dataclasses.field(default_factory=LevelSetConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        check_samples(self.samples)
        GRFConfig(size=self.size, bandwidth=self.bandwidth)  # validates both
        if not (self.noise >= 0 and self.noise < float("inf")):
            raise InputError(None, f"noise must be >= 0, got {self.noise}")
        if self.fit.ensemble != 1:  # one network is saved, loaded and read out
            raise InputError(
                None, f"learn fits one network; fit.ensemble must be 1, got {self.fit.ensemble}"
            )


def ood_images(size: int) -> dict[str, torch.Tensor]:
    """Out-of-distribution inputs ``(N, N)``: Shepp-Logan and a real CT slice.

    Both are multiplied by the training window (so that they lie where every transform is
    defined) and scaled to unit RMS, like the random fields.
    """
    from inversa.core.phantoms import real_image, shepp_logan_2d

    window = disk_window(size, 0.9).float()
    out = {}
    for name, img in (
        ("shepp_logan", shepp_logan_2d(size)),
        ("ct_small", real_image("ct_small", size=size)),
    ):
        img = img.float() * window
        out[name] = img / img.square().mean().sqrt()
    return out


def make_pairs(
    transform: Transform,
    n: int,
    grf: GRFConfig,
    *,
    seed: int,
    noise: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` pairs ``(f (n, N, N), Tf (n, N * N))`` from the band-limited sampler.

    ``noise`` adds Gaussian noise of that standard deviation relative to the RMS of ``Tf``.
    """
    g = torch.Generator().manual_seed(seed)
    f = sample_grf(n, grf, generator=g, dtype=torch.float64)
    y = transform.operator(f).reshape(n, -1)
    if noise > 0:
        rms = y.square().mean().sqrt()
        y = y + noise * rms * torch.randn(y.shape, generator=g, dtype=y.dtype)
    return f.float(), y.float()


def recover_speed(model: LevelSetNet, transform: Transform, *, stride: int = 3) -> torch.Tensor:
    """Speed map ``(N, N)`` from the level sets of every ``stride``-th output (channel 0)."""
    index = torch.arange(0, model.y_coords.shape[0], stride)
    phi = torch.cat([level_set_grid(model, chunk)[0] for chunk in index.split(256)])
    amp = torch.cat([amplitude_grid(model, chunk) for chunk in index.split(256)])
    return speed_from_level_sets(phi, band=1.5 * 2.0 / transform.size, weights=amp)


def speed_error(recovered: torch.Tensor, truth: torch.Tensor, *, radius: float = 0.8) -> float:
    """Relative L2 error of a speed map over the disk of ``radius`` (normalised units)."""
    from inversa.fibration._data import pixel_coordinates

    inside = pixel_coordinates(truth.shape[-1]).square().sum(-1).sqrt() < radius
    diff = (recovered.double() - truth.double())[inside]
    return float(diff.norm() / truth.double()[inside].norm())


def learn(
    transform_name: str,
    config: LearnConfig,
    *,
    speed: torch.Tensor | None = None,
    init: FittedOperator | None = None,
    device: str = "cpu",
) -> tuple[FittedOperator, dict]:
    """Train the level-set network on ``config.samples`` random pairs of a transform.

    Parameters
    ----------
    transform_name
        ``radon``, ``circular`` or ``geodesic``.
    config
        Sizes, data and schedule.
    speed
        Speed map of the geodesic transform (``None``: the default lens).
    init
        A saved model to continue from (same transform and size).
    device
        Torch device.

    Returns
    -------
    (model, summary)
        The trained model and a JSON-able summary (errors, codimension, speed error, time).
    """
    transform = make_transform(transform_name, config.size, speed=speed)
    grf = GRFConfig(size=config.size, bandwidth=config.bandwidth)
    f, y = make_pairs(transform, config.samples, grf, seed=config.seed, noise=config.noise)
    t0 = time.perf_counter()
    model = fit_operator(
        "levelset",
        f,
        y,
        transform.out_coords,
        config=config.fit,
        seed=config.seed,
        levelset=config.levelset,
        device=device,
        init=init,
    )
    seconds = time.perf_counter() - t0
    ft, yt = make_pairs(transform, config.n_test, grf, seed=10_000 + config.seed)
    summary: dict = {
        "transform": transform_name,
        "size": config.size,
        "samples": config.samples,
        "bandwidth": config.bandwidth,
        "noise": config.noise,
        "steps": config.fit.steps,
        "lr": config.fit.lr,
        "restarts": model.restarts,
        "levelset": dataclasses.asdict(model.model.config),
        "seed": config.seed,
        "training_seconds": seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
        "rel_error": relative_error(predict(model, ft), yt),
    }
    for name, img in ood_images(config.size).items():
        truth = transform.operator(img.double()).reshape(1, -1)
        summary[f"rel_error_{name}"] = relative_error(predict(model, img[None]), truth)
    codim, rho = codimension(model.model)
    summary["codimension"] = codim
    summary["cut_widths"] = rho
    if transform.speed is not None:
        summary["speed_map_rel_error"] = speed_error(
            recover_speed(model.model, transform), transform.speed
        )
    return model, summary


def save_levelset(
    path: str | os.PathLike[str], model: FittedOperator, *, transform: str, force: bool = False
) -> None:
    """Write a trained level-set model as safetensors with its transform and config."""
    net = model.model
    if not isinstance(net, LevelSetNet):
        raise InputError(None, "only level-set models are saved")
    metadata = {
        "format": FORMAT,
        "transform": transform,
        "size": net.size,
        "out_dim": int(net.y_coords.shape[-1]),
        "config": dataclasses.asdict(net.config),
    }
    save_weights(path, model.state_dict(), metadata=metadata, force=force)


def load_levelset(
    path: str | os.PathLike[str],
    *,
    transform: str | None = None,
    size: int | None = None,
    device: str = "cpu",
) -> tuple[FittedOperator, dict]:
    """Read a model written by :func:`save_levelset`.

    Parameters
    ----------
    path
        The ``.safetensors`` file.
    transform, size
        When given, the model must have been trained on this transform and grid size.

    Raises
    ------
    InputError
        Not a level-set model, a model of another transform or size, or unreadable.
    """
    state, meta = load_weights(path, device="cpu")
    if meta.get("format") != FORMAT:
        raise InputError(path, "not a fibration level-set model (no matching format entry)")
    if transform is not None and meta.get("transform") != transform:
        raise InputError(
            path, f"model was trained on the {meta.get('transform')} transform, not {transform}"
        )
    if size is not None and meta.get("size") != size:
        raise InputError(path, f"model was trained at size {meta.get('size')}, not {size}")
    try:
        cfg = meta["config"]
        cfg["hidden"] = tuple(cfg["hidden"])
        config = LevelSetConfig(**cfg)
        coords = state["model.y_coords"]
        net = LevelSetNet(int(meta["size"]), coords, config)
        fitted = FittedOperator("levelset", net, 1.0)
        fitted.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise InputError(path, f"level-set model does not load ({exc})") from exc
    return fitted.to(device), meta

"""Fitting every model on the same pairs ``(f, Tf)`` through ``core.training``."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.core.training import EarlyStopping, TrainConfig, train
from inversa.fibration._models import (
    LevelSetConfig,
    LevelSetEnsemble,
    RidgeOperator,
    build_model,
)

__all__ = ["FitConfig", "FittedOperator", "fit_operator", "predict", "relative_error"]


@dataclass(frozen=True, kw_only=True)
class FitConfig:
    """How a learned model is trained (Adam, cosine learning-rate decay).

    Parameters
    ----------
    steps
        Optimiser steps.
    lr
        Peak learning rate.
    batch
        Training pairs per step (all of them when fewer).
    outputs
        Output points per step (a random subset of the ``N^2``; the loss is unbiased).
    progress
        Show a progress bar.
    patience
        Early stopping (``core.training.EarlyStopping``, rule ``"best"``) on the training
        loss smoothed over about 20 steps (exponential average): stop once its lowest value
        is ``patience`` steps old; 0 runs all ``steps``. The level-set network is watched
        only once its delta has its final width and shape (after ``anneal`` / ``hat_end``).
    restarts, dead_loss
        Level-set network only: when its training loss (relative squared error, averaged
        over about 10 steps) is still at or above ``dead_loss`` once its delta has reached
        its final width (the ``anneal`` fraction of the steps), the fit has found no curves
        (or collapsed to a zero kernel, loss 1): it is abandoned and started again from a
        new initialisation (seed ``seed + 7919 k`` for the ``k``-th restart), at most
        ``restarts`` times; the last attempt runs to the end whatever its loss.
    ensemble, keep
        Level-set network only: fit ``ensemble`` networks from independent
        initialisations (member ``k`` from seed ``seed + 104729 k``, each with its own
        restarts) and predict with the mean of those whose relative error on the training
        pairs is at most ``keep`` times the lowest and below 1 (a member worse than
        predicting zero on its own training pairs is dropped unless it is the best). With
        few pairs the members' curves agree at coarse scales and disagree at fine ones,
        so the mean falls below any member; with many, a member that found the curves
        fits the pairs several times better than one that did not, which ``keep`` drops.
    """

    steps: int = 400
    lr: float = 3e-3
    batch: int = 16
    outputs: int = 512
    progress: bool = False
    patience: int = 0
    restarts: int = 0
    dead_loss: float = 0.98
    ensemble: int = 1
    keep: float = 1.5

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch < 1 or self.outputs < 1 or self.patience < 0:
            raise InputError(None, "steps, patience must be >= 0 and batch, outputs >= 1")
        if self.restarts < 0 or not 0 < self.dead_loss:
            raise InputError(None, "restarts must be >= 0 and dead_loss > 0")
        if self.ensemble < 1 or not self.keep >= 1:
            raise InputError(None, "ensemble must be >= 1 and keep >= 1")
        if not self.lr > 0:
            raise InputError(None, f"lr must be positive, got {self.lr}")


class FittedOperator(nn.Module):
    """A model and the output scale it was trained at: ``(B, N, N), (Yb,) -> (B, Yb)``."""

    def __init__(self, kind: str, model: nn.Module, scale: float) -> None:
        super().__init__()
        self.kind = kind
        self.steps_run = 0  # optimiser steps of the fit (fewer than asked on early stopping)
        self.restarts = 0  # fresh starts after a dead fit (``FitConfig.restarts``)
        self.train_errors: list[float] = []  # ensemble members' training errors, all of them
        self.model = model
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, f: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the outputs ``index`` (all if ``None``) of the inputs ``f``."""
        return self.model(f, index) * self.scale


def fit_operator(
    kind: str,
    inputs: torch.Tensor,
    outputs: torch.Tensor,
    out_coords: torch.Tensor,
    *,
    config: FitConfig = FitConfig(),
    seed: int = 0,
    levelset: LevelSetConfig | None = None,
    device: str | torch.device = "cpu",
    init: FittedOperator | None = None,
) -> FittedOperator:
    """Fit model ``kind`` to the pairs ``inputs (n, N, N) -> outputs (n, Y)``.

    ``ridge`` is solved in closed form; the networks are trained with the relative squared
    error on random mini-batches of pairs and output points (targets divided by their
    RMS over the training set).

    Parameters
    ----------
    kind
        ``levelset``, ``ridge``, ``deeponet``, ``fno`` or ``attention``.
    inputs, outputs
        ``(n, N, N)`` and ``(n, Y)`` (or ``(n, A, K)``, flattened) training pairs.
    out_coords
        ``(Y, d)`` coordinates of the outputs.
    config
        Training schedule.
    seed
        Seeds the initial weights and the mini-batches.
    levelset
        Architecture of the level-set network (default :class:`LevelSetConfig`).
    device
        Torch device of the training.
    init
        A fitted model of the same kind to continue from (its weights are copied; not an
        ensemble).

    Returns
    -------
    FittedOperator
        Its ``model`` is a :class:`LevelSetEnsemble` for a level-set fit with
        ``config.ensemble > 1``.
    """
    if kind != "levelset" or init is not None:
        return _fit_once(kind, inputs, outputs, out_coords, config, seed, levelset, device, init)
    if config.ensemble == 1:
        return _fit_restarting(inputs, outputs, out_coords, config, seed, levelset, device)
    members = [
        _fit_restarting(inputs, outputs, out_coords, config, seed + 104_729 * k, levelset, device)
        for k in range(config.ensemble)
    ]
    target = outputs.reshape(outputs.shape[0], -1)
    train = [relative_error(predict(m, inputs), target) for m in members]
    best = min(range(len(members)), key=train.__getitem__)
    kept = [
        k for k, e in enumerate(train) if k == best or (e < 1.0 and e <= config.keep * train[best])
    ]
    net = LevelSetEnsemble([members[k].model for k in kept], best=kept.index(best))
    fitted = FittedOperator(kind, net, float(members[0].scale))
    fitted.steps_run = sum(m.steps_run for m in members)
    fitted.restarts = sum(m.restarts for m in members)
    fitted.train_errors = train
    return fitted


def _fit_restarting(
    inputs: torch.Tensor,
    outputs: torch.Tensor,
    out_coords: torch.Tensor,
    config: FitConfig,
    seed: int,
    levelset: LevelSetConfig | None,
    device: str | torch.device,
) -> FittedOperator:
    """One level-set fit, started again while it is dead (``FitConfig.restarts``)."""
    wasted = 0
    for attempt in range(config.restarts + 1):
        last = attempt == config.restarts
        try:
            fitted = _fit_once(
                "levelset",
                inputs,
                outputs,
                out_coords,
                config,
                seed + 7919 * attempt,
                levelset,
                device,
                None,
                dead_check=not last,
            )
        except _DeadFit as dead:
            wasted += dead.steps
            continue
        fitted.restarts = attempt
        fitted.steps_run += wasted
        return fitted
    raise AssertionError("unreachable: the last attempt is not checked")


class _DeadFit(Exception):
    """A level-set fit found nothing by the end of its anneal (see ``FitConfig.restarts``)."""

    def __init__(self, steps: int) -> None:
        super().__init__(f"dead fit after {steps} steps")
        self.steps = steps


def _fit_once(
    kind: str,
    inputs: torch.Tensor,
    outputs: torch.Tensor,
    out_coords: torch.Tensor,
    config: FitConfig,
    seed: int,
    levelset: LevelSetConfig | None,
    device: str | torch.device,
    init: FittedOperator | None,
    *,
    dead_check: bool = False,
) -> FittedOperator:
    n, size = inputs.shape[0], inputs.shape[-1]
    x = inputs.to(device=device, dtype=torch.float32)
    y = outputs.reshape(n, -1).to(device=device, dtype=torch.float32)
    if y.shape[1] != out_coords.shape[0]:
        raise InputError(None, f"{y.shape[1]} outputs per pair but {out_coords.shape[0]} coords")
    scale = float(y.square().mean().sqrt().clamp_min(1e-12))
    if kind == "ridge":
        return FittedOperator(kind, RidgeOperator(x, y / scale).to(device), scale)
    gen = torch.Generator().manual_seed(seed)
    if init is not None:
        if init.kind != kind:
            raise InputError(None, f"cannot continue a {init.kind} model as {kind}")
        if isinstance(init.model, LevelSetEnsemble):
            raise InputError(None, "cannot continue an ensemble; continue one of its members")
        model = copy.deepcopy(init.model).to(device)
    else:
        model = build_model(kind, size, out_coords, generator=gen, levelset=levelset).to(device)
    yn = y / scale
    n_out = y.shape[1]
    batch = min(config.batch, n)
    n_pick = min(config.outputs, n_out)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.steps, 1))

    anneal = getattr(model, "anneal", None)
    fit_terms = getattr(model, "fit_terms", None)
    settled = _settled_fraction(model)
    smooth = {"ema": None, "recent": None}
    check_step = round(model.config.anneal * config.steps) if dead_check else -1

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        fraction = step / max(config.steps, 1)
        if anneal is not None:
            anneal(fraction)
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        rows = torch.randperm(n, generator=g)[:batch].to(device)
        cols = torch.randperm(n_out, generator=g)[:n_pick].to(device)
        target = yn[rows][:, cols]
        if fit_terms is not None:  # the level-set network: outputs and its anchoring penalty
            pred, penalty = fit_terms(x[rows], cols)
        else:
            pred, penalty = model(x[rows], cols), None
        loss = (pred - target).square().mean() / target.square().mean().clamp_min(1e-12)
        value = float(loss.detach())
        if penalty is not None:
            loss = loss + penalty
        recent = smooth["recent"]
        smooth["recent"] = value if recent is None else 0.9 * recent + 0.1 * value
        if step == check_step and smooth["recent"] >= config.dead_loss:
            raise _DeadFit(step)
        if fraction < settled:  # not watched yet: a value that improves every step
            smooth["ema"] = None
            return loss, {"smoothed": 1e12 - step}
        ema = value if smooth["ema"] is None else 0.95 * smooth["ema"] + 0.05 * value
        smooth["ema"] = ema
        return loss, {"smoothed": ema}

    result = train(
        model=model,
        optimizer=optimizer,
        loss_fn=loss_fn,
        scheduler=scheduler,
        config=TrainConfig(
            steps=config.steps,
            grad_clip=10.0,
            progress=config.progress,
            description=f"{kind} n={n}",
            log_every=max(config.steps, 1),
            early_stopping=(
                EarlyStopping(metric="smoothed", patience=config.patience, rule="best")
                if config.patience > 0
                else None
            ),
        ),
    )
    if anneal is not None:
        anneal(1.0)
    model.eval()
    fitted = FittedOperator(kind, model, scale)
    fitted.steps_run = result.steps_run
    return fitted


def _settled_fraction(model: nn.Module) -> float:
    """Fraction of the steps after which a model's training objective stops changing."""
    cfg = getattr(model, "config", None)
    if not hasattr(model, "anneal") or cfg is None:
        return 0.0
    return cfg.hat_end if cfg.delta == "hat" else cfg.anneal


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, *, chunk: int = 1024) -> torch.Tensor:
    """All outputs ``(B, Y)`` of ``inputs (B, N, N)``, computed ``chunk`` outputs at a time."""
    device = next(iter(model.buffers())).device
    x = inputs.to(device=device, dtype=torch.float32)
    n_out = int(model.model.y_coords.shape[0]) if hasattr(model.model, "y_coords") else None
    if n_out is None:
        return model(x).cpu()
    parts = [
        model(x, torch.arange(i, min(i + chunk, n_out), device=device)).cpu()
        for i in range(0, n_out, chunk)
    ]
    return torch.cat(parts, dim=-1)


def relative_error(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over the pairs of ``||pred - target|| / ||target||`` (``(B, ...)`` each)."""
    p = pred.reshape(pred.shape[0], -1).double()
    t = target.reshape(target.shape[0], -1).double()
    return float(((p - t).norm(dim=1) / t.norm(dim=1).clamp_min(1e-30)).mean())

"""The noise x non-linearity phase diagram: networks beside the fitted spring-block model."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.io import atomic_write
from inversa.springblock._data import Dataset
from inversa.springblock._mlp import NetworkSetting, TrainedNetworks, train_networks
from inversa.springblock._model import SpringBlockConfig, SpringBlockFit, fit_spring_block

__all__ = [
    "ModelComparison",
    "PhaseDiagram",
    "PhaseDiagramGrid",
    "compare_spring_block",
    "phase_diagram",
    "plot_phase_diagram",
    "refit_phase_diagram",
]


@dataclass(frozen=True, kw_only=True)
class PhaseDiagramGrid:
    """The (noise x non-linearity) grid of `phase_diagram` and the epochs per network.

    Attributes
    ----------
    alphas
        LeakyReLU slopes (0: ReLU, 1: linear).
    noises
        Training-noise levels.
    seeds
        Seeds trained in each cell.
    epochs
        Full-batch epochs per network.
    """

    alphas: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    noises: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    seeds: tuple[int, ...] = tuple(range(10))
    epochs: int = 100

    def __post_init__(self) -> None:
        if not (self.alphas and self.noises and self.seeds):
            raise InputError(None, "the phase-diagram grid needs alphas, noises and seeds")
        if self.epochs < 1:
            raise InputError(None, f"epochs must be at least 1, got {self.epochs}")

    @classmethod
    def quick(cls) -> PhaseDiagramGrid:
        """Return a 3 x 3 grid, 2 seeds, 40 epochs: 18 networks, a quick run on a laptop."""
        return cls(alphas=(0.0, 0.5, 1.0), noises=(0.0, 0.3, 0.6), seeds=(0, 1), epochs=40)


def _sign3(t: torch.Tensor, tol: float) -> torch.Tensor:
    """Three-way sign: 0 for ``|t| <= tol`` (straight), else the sign."""
    return torch.where(t.abs() <= tol, 0.0, torch.sign(t))


@dataclass(frozen=True)
class ModelComparison:
    """The spring-block model fitted to a grid of networks, and how well its signs agree.

    Attributes
    ----------
    fit
        The model fitted to all cells (seed-mean loads).
    model_curvature
        ``(A, N)`` the fitted model's curvature on the grid.
    sign_agreement
        In-sample: fraction of cells where model and networks (seed-mean curvature) have the
        same three-way sign (concave, straight = ``|curvature| <= straight_tol``, convex).
    sign_agreement_strict
        The same with the plain sign.
    heldout_cells
        Held out by cell: the grid is split like a checkerboard; the model fitted on one
        colour predicts the other, and the agreement is counted over all cells, each
        predicted by the fit that did not see it.
    heldout_seeds
        Held out by seed: the model is fitted on the loads of the first half of the seeds and
        scored against the curvature of the other half (NaN with fewer than two seeds).
    """

    fit: SpringBlockFit
    model_curvature: torch.Tensor
    sign_agreement: float
    sign_agreement_strict: float
    heldout_cells: float
    heldout_seeds: float


def compare_spring_block(
    alphas: Sequence[float],
    noises: Sequence[float],
    network_loads: torch.Tensor,
    network_curvature: torch.Tensor,
    *,
    model_config: SpringBlockConfig | None = None,
    straight_tol: float = 1e-3,
    seed: int = 0,
) -> ModelComparison:
    """Fit the spring-block model to a grid of networks; in-sample and held-out sign agreement.

    Parameters
    ----------
    alphas, noises
        The grid axes (A LeakyReLU slopes, N noise levels).
    network_loads
        ``(A, N, S, L)`` per-layer loads of every network (S seeds per cell).
    network_curvature
        ``(A, N, S)`` curvature of every network's log-separation curve.
    model_config
        Spring-block simulation settings (``blocks`` follows L).
    straight_tol
        Curvatures within +-``straight_tol`` count as straight in the three-way sign.
    seed
        Seed of the model simulation.

    Returns
    -------
    ModelComparison
    """
    loads = torch.as_tensor(network_loads, dtype=torch.float64)
    curv = torch.as_tensor(network_curvature, dtype=torch.float64)
    a_n, n_n = len(alphas), len(noises)
    if loads.ndim != 4 or loads.shape[:2] != (a_n, n_n) or curv.shape != loads.shape[:3]:
        raise InputError(None, "need (A, N, S, L) loads and (A, N, S) curvatures for the grid")
    shape = (a_n, n_n)
    a_cells = torch.tensor(alphas, dtype=torch.float64)[:, None].expand(shape).reshape(-1)
    n_cells = torch.tensor(noises, dtype=torch.float64)[None, :].expand(shape).reshape(-1)
    cfg = model_config or SpringBlockConfig()
    cfg = SpringBlockConfig(**{**cfg.__dict__, "blocks": loads.shape[-1]})

    def fit_on(cell_loads: torch.Tensor, use: torch.Tensor) -> SpringBlockFit | None:
        flat = cell_loads.reshape(-1, cell_loads.shape[-1])
        # cells whose networks did not separate the classes at all (total load <= 0) have
        # no load profile to fit; the model still predicts them
        use = use & (flat.sum(-1) > 0)
        if not use.any():
            return None
        return fit_spring_block(
            a_cells[use], n_cells[use], flat[use], config=model_config, seed=seed
        )

    def predict(fit: SpringBlockFit | None) -> torch.Tensor:
        if fit is None:  # nothing to fit on this part of the grid: no prediction
            return torch.full(shape, float("nan"), dtype=torch.float64)
        return fit.predict(a_cells, n_cells, config=cfg, seed=seed)[0].reshape(shape)

    def hits(pred: torch.Tensor, net: torch.Tensor) -> torch.Tensor:
        same = _sign3(net, straight_tol) == _sign3(pred, straight_tol)
        return torch.where(pred.isnan(), float("nan"), same.double())

    every = torch.ones(a_n * n_n, dtype=torch.bool)
    fit = fit_on(loads.mean(2), every)
    if fit is None:
        raise InputError(None, "no cell of the grid learned to separate the classes")
    model_curv = predict(fit)
    net = curv.mean(-1)
    agree = float((_sign3(net, straight_tol) == _sign3(model_curv, straight_tol)).double().mean())
    strict = float((torch.sign(net) == torch.sign(model_curv)).double().mean())
    # held out by cell: checkerboard halves predict each other
    board = ((torch.arange(a_n)[:, None] + torch.arange(n_n)[None, :]) % 2 == 0).reshape(-1)
    held = torch.zeros(shape, dtype=torch.float64)
    for half in (board, ~board):
        # a one-cell grid has no second colour: the held-out agreement is then NaN
        pred = predict(fit_on(loads.mean(2), half) if half.any() else None)
        held = torch.where(half.reshape(shape), held, hits(pred, net))
    # held out by seed: fit on the first half of the seeds, score on the rest
    s = loads.shape[2]
    heldout_seeds = float("nan")
    if s >= 2:
        pred = predict(fit_on(loads[:, :, : s // 2].mean(2), every))
        heldout_seeds = float(hits(pred, curv[:, :, s // 2 :].mean(-1)).mean())
    return ModelComparison(
        fit=fit,
        model_curvature=model_curv,
        sign_agreement=agree,
        sign_agreement_strict=strict,
        heldout_cells=float(held.mean()),
        heldout_seeds=heldout_seeds,
    )


def _model_json(c: ModelComparison) -> dict[str, object]:
    """Return the model side of the flat JSON values."""
    nan_none = lambda v: None if np.isnan(v) else round(v, 4)  # noqa: E731
    return {
        "model_curvature": np.round(c.model_curvature.numpy(), 4).tolist(),
        "model_friction_scale": round(c.fit.friction_scale, 4),
        "model_backward_excess": round(c.fit.backward_excess, 4),
        "model_noise_scale": round(c.fit.noise_scale, 4),
        "model_noise_floor": round(c.fit.noise_floor, 4),
        "model_fit_loss": float(f"{c.fit.loss:.3g}"),
        "sign_agreement": round(c.sign_agreement, 4),
        "sign_agreement_strict": round(c.sign_agreement_strict, 4),
        "sign_agreement_heldout_cells": nan_none(c.heldout_cells),
        "sign_agreement_heldout_seeds": nan_none(c.heldout_seeds),
    }


@dataclass(frozen=True)
class PhaseDiagram:
    """Grids over (alpha, noise), indexed ``[i_alpha, i_noise]``.

    Attributes
    ----------
    alphas, noises, seeds
        The grid axes and the seeds of each cell.
    curvature, spread, centroid, test_accuracy
        ``(A, N)`` seed means of the networks' curve curvature, load spread, load centroid and
        test accuracy.
    model
        The spring-block model fitted to the grid and its sign agreement with the networks,
        in-sample and held out (`ModelComparison`).
    network_loads
        ``(A, N, S, L)`` every network's per-layer loads (what the model is fitted to).
    linearity_accuracy_spearman, linearity_accuracy_pvalue
        Spearman rank correlation (over all networks) of linearity = -|curvature| with test
        accuracy, and its two-sided p-value.
    trained
        All networks' results.
    seconds
        Wall time (training, measuring, fitting).
    """

    alphas: tuple[float, ...]
    noises: tuple[float, ...]
    seeds: tuple[int, ...]
    curvature: torch.Tensor
    spread: torch.Tensor
    centroid: torch.Tensor
    test_accuracy: torch.Tensor
    model: ModelComparison
    network_loads: torch.Tensor
    linearity_accuracy_spearman: float
    linearity_accuracy_pvalue: float
    trained: TrainedNetworks
    seconds: float

    def to_json(self) -> dict[str, object]:
        """Return the flat JSON values of the issue (grids as nested lists ``[alpha][noise]``)."""
        r = lambda t: np.round(t.numpy(), 4).tolist()  # noqa: E731
        return {
            "alphas": list(self.alphas),
            "noises": list(self.noises),
            "seeds": list(self.seeds),
            "curvature": r(self.curvature),
            "load_spread": r(self.spread),
            "load_centroid": r(self.centroid),
            "test_accuracy": r(self.test_accuracy),
            **_model_json(self.model),
            # what the model side needs to be refitted without retraining (`refit_phase_diagram`)
            "network_loads": r(self.network_loads),
            "network_curvature": r(self.trained.curvature.reshape(self.network_loads.shape[:3])),
            "linearity_accuracy_spearman": round(self.linearity_accuracy_spearman, 4),
            "linearity_accuracy_pvalue": float(f"{self.linearity_accuracy_pvalue:.3g}"),
            "networks": len(self.trained.settings),
            "seconds": round(self.seconds, 2),
            "train_seconds": round(self.trained.train_seconds, 2),
            "seconds_per_network_epoch": float(
                f"{self.trained.train_seconds / self.trained.network_epochs:.4g}"
            ),
        }


def phase_diagram(
    data: Dataset,
    *,
    alphas: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    noises: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
    seeds: Sequence[int] = tuple(range(10)),
    epochs: int = 100,
    chunk: int = 54,
    model_config: SpringBlockConfig | None = None,
    straight_tol: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> PhaseDiagram:
    """Train a grid of MLPs over (alpha, noise), measure their curves, fit the model to them.

    Parameters
    ----------
    data
        Training/test data (e.g. ``load_dataset("digits")``).
    alphas, noises, seeds
        The grid (LeakyReLU slopes, training-noise levels) and the seeds of each cell; the
        defaults are the paper's noise diagram (6 x 9 x 10 = 540 networks).
    epochs
        Full-batch epochs per network (Adam 1e-3, depth 8, width 100).
    chunk
        Networks trained together as one batched model.
    model_config
        Spring-block simulation settings (``blocks`` follows the networks' depth).
    straight_tol
        Curvatures within +-``straight_tol`` count as straight in the sign agreement: the
        frictionless model chain is straight, and its simulated curvature is then only
        replica noise, which grows with the kicks (larger kicks need a larger tolerance or
        more replicas; docs/springblock.md gives the values used).
    seed
        Seed of the noise draws and of the model simulation.
    device
        Torch device the networks train on (see `train_networks`); the model fit and
        the results stay on the CPU.

    Returns
    -------
    PhaseDiagram
    """
    from scipy.stats import spearmanr

    if len(alphas) < 1 or len(noises) < 1 or len(seeds) < 1:
        raise InputError(None, "the grid needs at least one alpha, noise and seed")
    t0 = time.perf_counter()
    settings = [
        NetworkSetting(alpha=float(a), noise=float(n), seed=int(s))
        for a in alphas
        for n in noises
        for s in seeds
    ]
    trained = train_networks(data, settings, epochs=epochs, chunk=chunk, seed=seed, device=device)
    shape = (len(alphas), len(noises), len(seeds))
    grid = lambda t: t.reshape(shape).mean(-1)  # noqa: E731
    loads = torch.stack([c.load for c in trained.curves]).reshape(*shape, -1)
    comp = compare_spring_block(
        alphas,
        noises,
        loads,
        trained.curvature.reshape(shape),
        model_config=model_config,
        straight_tol=straight_tol,
        seed=seed,
    )
    curv = grid(trained.curvature)
    rho, p = spearmanr(-trained.curvature.abs().numpy(), trained.test_accuracy.numpy())
    return PhaseDiagram(
        alphas=tuple(float(a) for a in alphas),
        noises=tuple(float(n) for n in noises),
        seeds=tuple(int(s) for s in seeds),
        curvature=curv,
        spread=grid(trained.spread),
        centroid=grid(trained.centroid),
        test_accuracy=grid(trained.test_accuracy),
        model=comp,
        network_loads=loads,
        linearity_accuracy_spearman=float(rho),
        linearity_accuracy_pvalue=float(p),
        trained=trained,
        seconds=time.perf_counter() - t0,
    )


def refit_phase_diagram(
    values: dict,
    *,
    model_config: SpringBlockConfig | None = None,
    straight_tol: float = 1e-3,
    seed: int = 0,
) -> dict:
    """Refit the model side of a saved phase diagram (its JSON values), without retraining.

    Parameters
    ----------
    values
        `PhaseDiagram.to_json` values with ``alphas``, ``noises``, ``network_loads`` and
        ``network_curvature``.
    model_config, straight_tol, seed
        See `phase_diagram`.

    Returns
    -------
    dict
        A copy of ``values`` with the model keys (``model_*``, ``sign_agreement*``) recomputed.
    """
    try:
        alphas, noises = values["alphas"], values["noises"]
        loads = torch.tensor(values["network_loads"], dtype=torch.float64)
        curv = torch.tensor(values["network_curvature"], dtype=torch.float64)
    except KeyError as exc:
        raise InputError(
            None, f"phase-diagram values lack {exc} (saved before per-network loads were kept?)"
        ) from None
    comp = compare_spring_block(
        alphas, noises, loads, curv, model_config=model_config, straight_tol=straight_tol, seed=seed
    )
    return {**values, **_model_json(comp)}


def plot_phase_diagram(
    result: PhaseDiagram | dict, path: str | os.PathLike[str], *, force: bool = False
) -> Path:
    """Write a PNG: networks' and model's curvature side by side, test accuracy, load spread.

    Parameters
    ----------
    result
        A `phase_diagram` result, or its `PhaseDiagram.to_json` dict (re-plot a saved run).
    path
        Output ``.png`` (written atomically).
    force
        Overwrite an existing file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    j = result.to_json() if isinstance(result, PhaseDiagram) else result
    try:
        alphas, noises = j["alphas"], j["noises"]
        curv, model = np.array(j["curvature"]), np.array(j["model_curvature"])
        acc, spread = np.array(j["test_accuracy"]), np.array(j["load_spread"])
    except KeyError as exc:
        raise InputError(None, f"phase-diagram values lack {exc}") from None
    # colour limit from the bulk of the cells, so that one outlier does not wash out the rest
    lim = max(float(np.quantile(np.abs(np.concatenate([curv, model]).ravel()), 0.9)), 1e-3)
    panels = [
        ("networks: curvature of log D", curv, "RdBu_r", (-lim, lim), "{:+.2f}"),
        ("spring-block model (fitted): curvature", model, "RdBu_r", (-lim, lim), "{:+.2f}"),
        ("networks: test accuracy", acc, "viridis", (None, None), "{:.3f}"),
        (
            "networks: load spread (std/mean)",
            spread,
            "magma",
            (0, float(np.quantile(spread, 0.9))),
            "{:.2f}",
        ),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.6), constrained_layout=True)
    for ax, (title, z, cmap, (lo, hi), fmt) in zip(axes, panels, strict=True):
        im = ax.imshow(z, origin="lower", aspect="auto", cmap=cmap, vmin=lo, vmax=hi)
        for (i, k), val in np.ndenumerate(z):
            ax.text(k, i, fmt.format(val), ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(noises)), [f"{n:g}" for n in noises])
        ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        ax.set_xlabel("training noise (label + matched input)")
        ax.set_ylabel("LeakyReLU slope alpha (1 = linear)")
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.85)
    held = [
        f"{j[k]:.0%} {what}"
        for k, what in (
            ("sign_agreement_heldout_cells", "held out by cell"),
            ("sign_agreement_heldout_seeds", "held out by seed"),
        )
        if j.get(k) is not None
    ]
    fig.suptitle(
        f"{j['networks']} networks ({len(j['seeds'])} seeds per cell); curvature > 0: load on "
        f"deep layers (concave), < 0: on shallow layers (convex); sign agreement "
        f"{j['sign_agreement']:.0%} in-sample"
        + (f" ({', '.join(held)})" if held else "")
        + " (colour clipped at the 90th percentile)",
        fontsize=10,
    )
    with atomic_write(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)

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

__all__ = ["PhaseDiagram", "phase_diagram", "plot_phase_diagram"]


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
    model_curvature
        ``(A, N)`` curvature of the fitted spring-block model.
    fit
        The fitted model (friction and noise scales).
    sign_agreement
        Fraction of cells where model and networks have the same three-way sign of curvature
        (concave, straight = ``|curvature| <= straight_tol``, convex).
    sign_agreement_strict
        The same with the plain sign (a model curvature of +1e-6 counts as concave).
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
    model_curvature: torch.Tensor
    fit: SpringBlockFit
    sign_agreement: float
    sign_agreement_strict: float
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
            "model_curvature": r(self.model_curvature),
            "model_friction_scale": round(self.fit.friction_scale, 4),
            "model_noise_scale": round(self.fit.noise_scale, 4),
            "model_fit_loss": float(f"{self.fit.loss:.3g}"),
            "sign_agreement": round(self.sign_agreement, 4),
            "sign_agreement_strict": round(self.sign_agreement_strict, 4),
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
        replica noise (below 1e-3 for kicks up to sigma ~ 0.1; larger kicks need a larger
        tolerance or more replicas).
    seed
        Seed of the noise draws and of the model simulation.

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
    trained = train_networks(data, settings, epochs=epochs, chunk=chunk, seed=seed)
    shape = (len(alphas), len(noises), len(seeds))
    grid = lambda t: t.reshape(shape).mean(-1)  # noqa: E731
    loads = torch.stack([c.load for c in trained.curves]).reshape(*shape, -1).mean(2)
    a_cells = torch.tensor(alphas, dtype=torch.float64)[:, None].expand(shape[:2]).reshape(-1)
    n_cells = torch.tensor(noises, dtype=torch.float64)[None, :].expand(shape[:2]).reshape(-1)
    loads = loads.reshape(-1, loads.shape[-1])
    # cells whose networks did not separate the classes at all (total load <= 0, e.g. very
    # high noise with few epochs) have no load profile to fit; the model still predicts them
    learned = loads.sum(-1) > 0
    if not learned.any():
        raise InputError(None, "no cell of the grid learned to separate the classes")
    fit = fit_spring_block(
        a_cells[learned], n_cells[learned], loads[learned], config=model_config, seed=seed
    )
    cfg = model_config or SpringBlockConfig()
    cfg = SpringBlockConfig(**{**cfg.__dict__, "blocks": loads.shape[-1]})
    model_curv = fit.predict(a_cells, n_cells, config=cfg, seed=seed)[0].reshape(shape[:2])
    curv = grid(trained.curvature)
    sign3 = lambda t: torch.where(t.abs() <= straight_tol, 0.0, torch.sign(t))  # noqa: E731
    agree = float((sign3(curv) == sign3(model_curv)).double().mean())
    strict = float((torch.sign(curv) == torch.sign(model_curv)).double().mean())
    rho, p = spearmanr(-trained.curvature.abs().numpy(), trained.test_accuracy.numpy())
    return PhaseDiagram(
        alphas=tuple(float(a) for a in alphas),
        noises=tuple(float(n) for n in noises),
        seeds=tuple(int(s) for s in seeds),
        curvature=curv,
        spread=grid(trained.spread),
        centroid=grid(trained.centroid),
        test_accuracy=grid(trained.test_accuracy),
        model_curvature=model_curv,
        fit=fit,
        sign_agreement=agree,
        sign_agreement_strict=strict,
        linearity_accuracy_spearman=float(rho),
        linearity_accuracy_pvalue=float(p),
        trained=trained,
        seconds=time.perf_counter() - t0,
    )


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
    fig.suptitle(
        f"{j['networks']} networks ({len(j['seeds'])} seeds per cell); curvature > 0: load on "
        f"deep layers (concave), < 0: on shallow layers (convex); sign agreement "
        f"{j['sign_agreement']:.0%} (colour clipped at the 90th percentile)",
        fontsize=10,
    )
    with atomic_write(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)

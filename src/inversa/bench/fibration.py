"""``inversa bench fibration``: learning double fibration transforms from few samples.

One run, side by side: the level-set kernel network and its peers (ridge, DeepONet, a
compact FNO, plain cross-attention) learn the Radon transform, circular means and the
geodesic ray transform of a smooth lens from ``n`` random band-limited pairs, for every
``n`` of the learning curve and a few seeds (nested training sets: the first ``n`` of the
seed's fields). Errors: mean relative L2 error on fresh band-limited fields and on two
out-of-distribution images (Shepp-Logan and the CT slice ``ct_small``, both windowed);
the fitted slope of log error against log n. Geometry: the codimension read from the
level-set network trained on the most samples, and for the geodesic transform the speed
map recovered from its learned rays. Sizes: 64 x 64 (``--quick``: 32 x 32, fewer ``n``,
one seed, short training).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from inversa.bench._harness import BenchReport, save_figure

__all__ = ["FULL", "QUICK", "REDUCED", "BenchPlan", "figures", "run", "run_plan"]

MODELS = ("levelset", "ridge", "deeponet", "fno", "attention")
TRANSFORMS = ("radon", "circular", "geodesic")
LABELS = {
    "levelset": "level-set (ours)",
    "ridge": "ridge",
    "deeponet": "DeepONet",
    "fno": "FNO",
    "attention": "cross-attention",
}


@dataclass(frozen=True, kw_only=True)
class BenchPlan:
    """Sizes and schedules of one benchmark run.

    Parameters
    ----------
    size
        ``N`` of the ``N x N`` grid.
    counts
        Training sample counts of the learning curves.
    seeds
        Seeds (training fields and initial weights); intervals are min..max over them.
    steps, lr
        ``(model, value)`` pairs: optimiser steps and learning rate per learned model.
    outputs, batch
        Output points and pairs per step.
    n_test
        Fresh band-limited test fields.
    bandwidth
        Band limit of the fields (cycles per image).
    """

    size: int
    counts: tuple[int, ...]
    seeds: tuple[int, ...]
    steps: tuple[tuple[str, int], ...]
    lr: tuple[tuple[str, float], ...]
    outputs: int = 256
    batch: int = 16
    n_test: int = 32
    bandwidth: float = 8.0


LR = (("levelset", 1e-2), ("deeponet", 3e-3), ("fno", 3e-3), ("attention", 3e-3))

FULL = BenchPlan(
    size=64,
    counts=(4, 8, 16, 32, 64, 128, 256, 512),
    seeds=(0, 1),
    steps=(("levelset", 300), ("deeponet", 300), ("fno", 60), ("attention", 150)),
    lr=LR,
    bandwidth=8.0,
)
"""The issue's benchmark: 64 x 64, n = 4 .. 512, two seeds."""

REDUCED = BenchPlan(
    size=32,
    counts=(4, 8, 16, 32, 64, 128, 256, 512),
    seeds=(0, 1),
    steps=(("levelset", 250), ("deeponet", 200), ("fno", 40), ("attention", 100)),
    lr=LR,
    bandwidth=4.0,
)
"""What fits a shared 2-core machine in about half an hour: 32 x 32, same n, two seeds."""

QUICK = BenchPlan(
    size=32,
    counts=(8, 32),
    seeds=(0,),
    steps=(("levelset", 120), ("deeponet", 100), ("fno", 15), ("attention", 40)),
    lr=LR,
    outputs=256,
    batch=8,
    n_test=16,
    bandwidth=4.0,
)
"""``--quick``: 32 x 32, two counts, one seed, short training (a smoke run, not a result)."""


def _slope(counts: list[int], errors: list[float]) -> float:
    x = torch.tensor([math.log(n) for n in counts], dtype=torch.float64)
    y = torch.tensor([math.log(max(e, 1e-12)) for e in errors], dtype=torch.float64)
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / xc.square().sum())


def run(*, quick: bool, device: str = "cpu") -> BenchReport:
    """Learning curves of every model on every transform (see the module docstring)."""
    return run_plan(QUICK if quick else FULL, quick=quick, device=device)


def run_plan(plan: BenchPlan, *, quick: bool = False, device: str = "cpu") -> BenchReport:
    """Run the benchmark at the sizes of ``plan`` (:data:`FULL` and :data:`QUICK` are two)."""
    from inversa.fibration import (
        FitConfig,
        GRFConfig,
        fit_operator,
        make_pairs,
        make_transform,
        ood_images,
        predict,
        relative_error,
    )

    report = BenchReport(name="fibration", quick=quick)
    values = report.values
    values["sample_counts"] = list(plan.counts)
    values["image_size"] = plan.size
    values["seeds"] = list(plan.seeds)
    values["bandwidth"] = plan.bandwidth
    values["steps"] = dict(plan.steps)
    values["n_test"] = plan.n_test
    grf = GRFConfig(size=plan.size, bandwidth=plan.bandwidth)
    ood = torch.stack(list(ood_images(plan.size).values()))
    n_max = max(plan.counts)
    level_sets: dict[str, dict] = {}
    for name in TRANSFORMS:
        transform = make_transform(name, plan.size)
        test_f, test_y = make_pairs(transform, plan.n_test, grf, seed=10_000)
        ood_y = transform.operator(ood.double()).reshape(ood.shape[0], -1).float()
        errs = {m: [[0.0] * len(plan.seeds) for _ in plan.counts] for m in MODELS}
        errs_ood = {m: [[0.0] * len(plan.seeds) for _ in plan.counts] for m in MODELS}
        seconds = dict.fromkeys(MODELS, 0.0)
        for s, seed in enumerate(plan.seeds):
            all_f, all_y = make_pairs(transform, n_max, grf, seed=seed)
            for i, n in enumerate(plan.counts):
                for model_name in MODELS:
                    fit = FitConfig(
                        steps=dict(plan.steps).get(model_name, 0),
                        lr=dict(plan.lr).get(model_name, 1e-3),
                        batch=plan.batch,
                        outputs=plan.outputs,
                    )
                    t0 = time.perf_counter()
                    model = fit_operator(
                        model_name,
                        all_f[:n],
                        all_y[:n],
                        transform.out_coords,
                        config=fit,
                        seed=seed,
                        device=device,
                    )
                    errs[model_name][i][s] = relative_error(predict(model, test_f), test_y)
                    errs_ood[model_name][i][s] = relative_error(predict(model, ood), ood_y)
                    seconds[model_name] += time.perf_counter() - t0
                    if model_name == "levelset" and n == n_max and s == 0:
                        level_sets[name] = _geometry(model.model, transform, values)
        for m in MODELS:
            mean = [sum(e) / len(e) for e in errs[m]]
            mean_ood = [sum(e) / len(e) for e in errs_ood[m]]
            values[f"rel_error_{m}_{name}"] = mean
            values[f"rel_error_ood_{m}_{name}"] = mean_ood
            values[f"rel_error_{m}_{name}_seeds"] = errs[m]
            values[f"rel_error_ood_{m}_{name}_seeds"] = errs_ood[m]
            values[f"slope_{m}_{name}"] = _slope(list(plan.counts), mean)
            values[f"seconds_{m}_{name}"] = seconds[m]
        for i, n in enumerate(plan.counts):
            ours = values[f"rel_error_levelset_{name}"][i]
            best = min(values[f"rel_error_{m}_{name}"][i] for m in MODELS if m != "levelset")
            report.compare(f"{name} n={n}: rel. error (best peer)", ours, best, unit="")
    values["level_sets"] = level_sets
    return report


def _geometry(net, transform, values: dict) -> dict:
    """Codimension, speed map and three learned level sets of one trained network."""
    from inversa.fibration import codimension, level_set_grid, recover_speed, speed_error

    name = transform.name
    codim, rho = codimension(net)
    values[f"codimension_{name}"] = codim
    values[f"cut_widths_{name}"] = rho
    size = transform.size
    if transform.speed is not None:
        speed = recover_speed(net, transform)
        values["speed_map_rel_error"] = speed_error(speed, transform.speed)
        values["speed_map_recovered"] = speed.float().tolist()
        values["speed_map_true"] = transform.speed.float().tolist()
    picks = [
        size * (size // 8) + size // 2,
        size * (size // 3) + size // 4,
        size * (size // 2) + 3 * size // 4,
    ]
    picks = [min(p, size * size - 1) for p in picks]
    phi = level_set_grid(net, torch.tensor(picks))[0]
    return {
        "outputs": picks,
        "phi": [[[round(float(v), 5) for v in row] for row in p] for p in phi],
        "eps": net.eps,
        "true": [transform.true_curve(p, n_points=120).float().tolist() for p in picks],
    }


def figures(values: dict, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Log-log learning curves, learned vs true level sets, recovered speed map."""
    import numpy as np

    from inversa.bench._harness import pyplot

    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = np.asarray(values["sample_counts"], dtype=float)
    paths = []
    fig, axes = plt.subplots(2, 3, figsize=(12, 7), sharex=True)
    for c, name in enumerate(TRANSFORMS):
        for r, (key, title) in enumerate(
            (("rel_error", "fresh band-limited"), ("rel_error_ood", "OOD"))
        ):
            ax = axes[r, c]
            for m in MODELS:
                mean = np.asarray(values[f"{key}_{m}_{name}"], dtype=float)
                seeds = values.get(f"{key}_{m}_{name}_seeds")
                line = ax.loglog(counts, mean, "o-", label=LABELS[m], ms=3)[0]
                if seeds and len(seeds[0]) > 1:
                    arr = np.asarray(seeds, dtype=float)
                    ax.fill_between(
                        counts, arr.min(1), arr.max(1), color=line.get_color(), alpha=0.2
                    )
            ax.set_title(f"{name}: {title}", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            if c == 0:
                ax.set_ylabel("relative L2 error")
            if r == 1:
                ax.set_xlabel("training samples n")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(save_figure(fig, out_dir / "fibration_learning_curves.png", force=force))

    level_sets = values.get("level_sets") or {}
    if level_sets:
        names = [n for n in TRANSFORMS if n in level_sets]
        fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False)
        for c, name in enumerate(names):
            ax = axes[0, c]
            data = level_sets[name]
            for k, (phi, curve) in enumerate(zip(data["phi"], data["true"], strict=True)):
                phi = np.asarray(phi, dtype=float)
                n = phi.shape[0]
                axis = (np.arange(n) - n // 2) / (n / 2)
                color = f"C{k}"
                ax.contour(axis, axis, phi, levels=[0.0], colors=[color], linewidths=1.5)
                curve = np.asarray(curve, dtype=float)
                ax.plot(curve[:, 0], curve[:, 1], "--", color="k", lw=0.8)
            circle = np.linspace(0, 2 * np.pi, 200)
            ax.plot(0.9 * np.cos(circle), 0.9 * np.sin(circle), ":", color="grey", lw=0.8)
            ax.set_xlim(-1, 1)
            ax.set_ylim(1, -1)
            ax.set_aspect("equal")
            ax.set_title(f"{name}: learned (colour) vs true (dashed)", fontsize=9)
        fig.tight_layout()
        paths.append(save_figure(fig, out_dir / "fibration_level_sets.png", force=force))

    if "speed_map_recovered" in values:
        rec = np.asarray(values["speed_map_recovered"], dtype=float)
        true = np.asarray(values["speed_map_true"], dtype=float)
        n = true.shape[0]
        axis = (np.arange(n) - n // 2) / (n / 2)
        outside = np.hypot(axis[None, :], axis[:, None]) >= 0.8  # not scored, not probed
        rec = np.where(outside, np.nan, rec)
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
        lo, hi = float(true.min()), float(true.max())
        for ax, img, title in (
            (axes[0], true, "true speed"),
            (axes[1], rec, "recovered (r < 0.8)"),
        ):
            im = ax.imshow(img, vmin=lo, vmax=hi, cmap="viridis")
            ax.set_title(title, fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046)
        err = rec - true
        lim = float(np.nanmax(np.abs(err))) if np.isfinite(err).any() else 1.0
        im = axes[2].imshow(err, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[2].set_title(
            f"error inside r < 0.8 (rel. L2 {values['speed_map_rel_error']:.3f})", fontsize=9
        )
        fig.colorbar(im, ax=axes[2], fraction=0.046)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        paths.append(save_figure(fig, out_dir / "fibration_speed_map.png", force=force))
    return paths

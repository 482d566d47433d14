"""``inversa bench fibration``: learning double fibration transforms from few samples.

One run, side by side: the level-set kernel network and its peers (ridge, DeepONet, a
compact FNO, plain cross-attention) learn the Radon transform, circular means and the
geodesic ray transform of a smooth lens from ``n`` random band-limited pairs, for every
``n`` of the learning curve and a few seeds (nested training sets: the first ``n`` of the
seed's fields). Errors: mean relative L2 error on fresh band-limited fields and on two
out-of-distribution images (Shepp-Logan and the CT slice ``ct_small``, both windowed);
the fitted slope of log error against log n. Geometry: the codimension read from the
level-set network trained on the most samples, and for the geodesic transform the speed
map recovered from its learned rays. The headline fit (``BenchPlan.long_steps``): every
model once more on 64 Radon pairs with a 16x longer budget (``long_*`` keys). Sizes:
64 x 64 (``--quick``: 32 x 32, fewer ``n``, one seed, short training, no headline fit).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from inversa.bench._harness import BenchReport, save_figure

__all__ = [
    "FULL",
    "QUICK",
    "RUN64",
    "TUNED_LR",
    "BenchPlan",
    "figures",
    "merge_values",
    "run",
    "run_plan",
    "tune_learning_rates",
]

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
    steps
        Optimiser steps of every learned model (one budget for all; ridge is closed form).
    patience
        Early stopping of every network on its smoothed training loss (0: off; see
        ``FitConfig.patience``).
    lr_grid
        Learning rates tried for every learned model on the validation split.
    lr
        ``(model, value)`` pairs: fixed learning rates, no sweep (``None``: sweep).
    tune_transform, tune_samples, tune_size
        The sweep trains on ``tune_samples`` pairs of this transform on a ``tune_size``
        grid (``None``: ``size``; seed 0's first fields) and scores on ``n_val`` fresh
        fields of another seed than the test fields.
    outputs, batch
        Output points and pairs per step.
    n_test, n_val
        Fresh band-limited test and validation fields.
    bandwidth
        Band limit of the fields (cycles per image).
    transforms
        Transforms, in the order they run (an interrupted run has the first ones).
    models
        Models to fit (default all five).
    delta, eps_px, anneal, hat_end
        Delta of the level-set network, its final width in pixels and its schedule
        (``LevelSetConfig``).
    anchor
        Weight of the level-set network's anchoring penalty (``LevelSetConfig.anchor``;
        0: off).
    restarts
        Fresh starts of a dead level-set fit (``FitConfig.restarts``; 0: none).
    ensemble
        Level-set networks fitted per curve point, their predictions averaged
        (``FitConfig.ensemble``; the kept members' rule is ``FitConfig.keep``); the
        headline fit uses one (``long_ensemble``).
    long_steps, long_samples, long_batch, long_anneal, long_hat_end
        The headline fit (``long_steps > 0``): every model fitted once more on
        ``long_samples`` Radon pairs (seed ``seeds[0]``) with ``long_steps`` steps and
        ``long_batch`` pairs per step, the level-set anneal at ``long_anneal`` /
        ``long_hat_end`` of those steps and every network's early-stopping patience scaled
        by ``long_steps / steps`` (the same budget rule as the curves, a longer budget);
        keys ``long_rel_error_{model}_radon`` and friends.
    """

    size: int
    counts: tuple[int, ...]
    seeds: tuple[int, ...]
    steps: int
    patience: int = 0
    lr_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    lr: tuple[tuple[str, float], ...] | None = None
    tune_transform: str = "radon"
    tune_samples: int = 64
    tune_size: int | None = None
    outputs: int = 256
    batch: int = 16
    n_test: int = 32
    n_val: int = 32
    bandwidth: float = 16.0
    transforms: tuple[str, ...] = ("radon", "geodesic", "circular")
    models: tuple[str, ...] = MODELS
    delta: str = "hat"
    eps_px: float = 1.0
    anneal: float = 0.6
    hat_end: float = 0.7
    anchor: float = 0.0
    restarts: int = 2
    ensemble: int = 4
    long_ensemble: int = 1
    long_steps: int = 0
    long_samples: int = 64
    long_batch: int = 16
    long_anneal: float = 0.075
    long_hat_end: float = 0.1


FULL = BenchPlan(
    size=64,
    counts=(4, 8, 16, 32, 64, 128, 256, 512),
    seeds=(0, 1, 2),
    steps=300,
    patience=50,
    batch=8,
    long_steps=4800,
)
"""The issue's benchmark: 64 x 64, n = 4 .. 512, three seeds, a learning-rate sweep, and
the headline fit (Radon, n = 64, 4,800 steps for every network)."""

RUN64 = dataclasses.replace(FULL, seeds=(0,), tune_size=32)
"""What was run on the shared 2-core machine: :data:`FULL` with one seed, the sweep at 32^2."""

TUNED_LR = (("attention", 1e-2), ("deeponet", 3e-3), ("fno", 1e-3), ("levelset", 1e-2))
"""The learning rates the sweep of the 64 x 64 run chose (at 32^2; used by ``--quick``)."""

QUICK = BenchPlan(
    size=32,
    counts=(8, 32),
    seeds=(0,),
    steps=60,
    patience=50,
    lr=TUNED_LR,
    outputs=256,
    batch=8,
    n_test=16,
    ensemble=2,
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


def _fit(model_name, f, y, coords, plan: BenchPlan, lr: float, seed: int, device: str, long=False):
    from inversa.fibration import FitConfig, LevelSetConfig, fit_operator

    if long:
        patience = round(plan.patience * plan.long_steps / max(plan.steps, 1))
        fit = FitConfig(
            steps=plan.long_steps,
            lr=lr,
            batch=plan.long_batch,
            outputs=plan.outputs,
            patience=patience,
            restarts=plan.restarts,
            ensemble=plan.long_ensemble,
        )
        anneal, hat_end = plan.long_anneal, plan.long_hat_end
    else:
        fit = FitConfig(
            steps=plan.steps,
            lr=lr,
            batch=plan.batch,
            outputs=plan.outputs,
            patience=plan.patience,
            restarts=plan.restarts,
            ensemble=plan.ensemble,
        )
        anneal, hat_end = plan.anneal, plan.hat_end
    levelset = LevelSetConfig(
        delta=plan.delta, eps_px=plan.eps_px, anneal=anneal, hat_end=hat_end, anchor=plan.anchor
    )
    return fit_operator(
        model_name, f, y, coords, config=fit, seed=seed, device=device, levelset=levelset
    )


def tune_learning_rates(plan: BenchPlan, values: dict, *, device: str = "cpu") -> dict[str, float]:
    """Pick each network's learning rate from ``plan.lr_grid`` on a validation split.

    Every network gets the same budget (``plan.steps``) and the same pairs; the rate with
    the lowest relative error on ``plan.n_val`` fresh fields (seed 20 000, not the test
    seed) wins. Writes ``tune_*`` entries into ``values``.
    """
    from inversa.fibration import GRFConfig, make_pairs, make_transform, predict, relative_error

    if plan.lr is not None:
        values["tune_lr"] = dict(plan.lr)
        values["tune_note"] = "fixed learning rates (no sweep in this plan)"
        return dict(plan.lr)
    size = plan.tune_size or plan.size
    grf = GRFConfig(size=size, bandwidth=plan.bandwidth)
    transform = make_transform(plan.tune_transform, size)
    f, y = make_pairs(transform, plan.tune_samples, grf, seed=0)
    fv, yv = make_pairs(transform, plan.n_val, grf, seed=20_000)
    chosen = {}
    for m in plan.models:
        if m == "ridge":
            continue
        errs = []
        for lr in plan.lr_grid:
            model = _fit(m, f, y, transform.out_coords, plan, lr, 0, device)
            errs.append(relative_error(predict(model, fv), yv))
        values[f"tune_val_error_{m}"] = errs
        chosen[m] = plan.lr_grid[min(range(len(errs)), key=errs.__getitem__)]
    values["tune_lr_grid"] = list(plan.lr_grid)
    values["tune_lr"] = chosen
    values["tune_setting"] = (
        f"{plan.tune_transform} at {size} x {size}, n = {plan.tune_samples}, "
        f"{plan.steps} steps, "
        f"{plan.n_val} validation fields (seed 20000)"
    )
    return chosen


def run_plan(
    plan: BenchPlan,
    *,
    quick: bool = False,
    device: str = "cpu",
    checkpoint: str | Path | None = None,
) -> BenchReport:
    """Run the benchmark at the sizes of ``plan`` (:data:`FULL` and :data:`QUICK` are two).

    Order: the learning-rate sweep, then seed by seed, transform by transform, so that
    an interrupted run has whole learning curves. With ``checkpoint`` the JSON is
    rewritten there after every (seed, transform) block (``completed`` lists them).
    """
    from inversa.fibration import (
        GRFConfig,
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
    values["steps"] = plan.steps
    values["n_test"] = plan.n_test
    values["levelset_delta"] = (
        f"{plan.delta}, {plan.eps_px} px, anneal {plan.anneal}, hat_end {plan.hat_end}, "
        f"anchor {plan.anchor}, restarts {plan.restarts}, ensemble {plan.ensemble}"
    )
    values["completed"] = []
    t_start = time.perf_counter()
    lrs = tune_learning_rates(plan, values, device=device)
    values["tune_seconds"] = time.perf_counter() - t_start
    grf = GRFConfig(size=plan.size, bandwidth=plan.bandwidth)
    ood = torch.stack(list(ood_images(plan.size).values()))
    n_max = max(plan.counts, default=0)
    level_sets: dict[str, dict] = {}
    values["level_sets"] = level_sets
    empty = [[None] * len(plan.seeds) for _ in plan.counts]
    errs = {(m, t): [list(r) for r in empty] for m in MODELS for t in TRANSFORMS}
    errs_ood = {(m, t): [list(r) for r in empty] for m in MODELS for t in TRANSFORMS}
    seconds = {(m, t): 0.0 for m in MODELS for t in TRANSFORMS}
    steps_run = {(m, t): 0 for m in MODELS for t in TRANSFORMS}
    transforms = {name: make_transform(name, plan.size) for name in plan.transforms}
    tests = {}
    for name, transform in transforms.items():
        test_f, test_y = make_pairs(transform, plan.n_test, grf, seed=10_000)
        ood_y = transform.operator(ood.double()).reshape(ood.shape[0], -1).float()
        tests[name] = (test_f, test_y, ood_y)
    for s, seed in enumerate(plan.seeds if plan.counts else ()):
        for name, transform in transforms.items():
            test_f, test_y, ood_y = tests[name]
            all_f, all_y = make_pairs(transform, n_max, grf, seed=seed)
            for i, n in enumerate(plan.counts):
                for m in plan.models:
                    t0 = time.perf_counter()
                    model = _fit(
                        m,
                        all_f[:n],
                        all_y[:n],
                        transform.out_coords,
                        plan,
                        lrs.get(m, 1.0),
                        seed,
                        device,
                    )
                    errs[m, name][i][s] = relative_error(predict(model, test_f), test_y)
                    errs_ood[m, name][i][s] = relative_error(predict(model, ood), ood_y)
                    seconds[m, name] += time.perf_counter() - t0
                    steps_run[m, name] += model.steps_run
                    if m == "levelset" and n == n_max and s == 0:
                        net = getattr(model.model, "best", model.model)  # one net of an ensemble
                        level_sets[name] = _geometry(net, transform, values)
            values["completed"].append([name, seed])
            _summarise(values, plan, errs, errs_ood, seconds, steps_run)
            if checkpoint is not None:
                report.write_json(checkpoint, force=True)
    _summarise(values, plan, errs, errs_ood, seconds, steps_run)
    if plan.long_steps > 0:
        _long_fit(plan, values, lrs, ood, device, report=report, checkpoint=checkpoint)
    values["total_seconds"] = time.perf_counter() - t_start
    peers = [m for m in plan.models if m != "levelset"]
    if "levelset" not in plan.models or not peers or not plan.counts:
        return report
    for name in plan.transforms:
        for i, n in enumerate(plan.counts):
            ours = values[f"rel_error_levelset_{name}"][i]
            best = min(values[f"rel_error_{m}_{name}"][i] for m in peers)
            report.compare(f"{name} n={n}: rel. error (best peer)", ours, best, unit="")
    return report


def _long_fit(plan: BenchPlan, values: dict, lrs: dict, ood, device: str, *, report, checkpoint):
    """Fit every model once more on ``long_samples`` Radon pairs for ``long_steps`` steps."""
    from inversa.fibration import GRFConfig, make_pairs, make_transform, predict, relative_error

    grf = GRFConfig(size=plan.size, bandwidth=plan.bandwidth)
    transform = make_transform("radon", plan.size)
    f, y = make_pairs(transform, plan.long_samples, grf, seed=plan.seeds[0])
    test_f, test_y = make_pairs(transform, plan.n_test, grf, seed=10_000)
    ood_y = transform.operator(ood.double()).reshape(ood.shape[0], -1).float()
    values["long_samples"] = plan.long_samples
    values["long_steps"] = plan.long_steps
    values["long_setting"] = (
        f"radon at {plan.size} x {plan.size}, n = {plan.long_samples} (seed {plan.seeds[0]}), "
        f"{plan.long_steps} steps, {plan.long_batch} pairs and {plan.outputs} outputs per "
        f"step, patience {round(plan.patience * plan.long_steps / max(plan.steps, 1))}, "
        f"level-set anneal {plan.long_anneal} / {plan.long_hat_end}"
    )
    for m in plan.models:
        t0 = time.perf_counter()
        model = _fit(
            m, f, y, transform.out_coords, plan, lrs.get(m, 1.0), plan.seeds[0], device, True
        )
        values[f"long_rel_error_{m}_radon"] = relative_error(predict(model, test_f), test_y)
        values[f"long_rel_error_ood_{m}_radon"] = relative_error(predict(model, ood), ood_y)
        values[f"long_seconds_{m}_radon"] = time.perf_counter() - t0
        values[f"long_steps_run_{m}_radon"] = model.steps_run
        if checkpoint is not None:
            report.write_json(checkpoint, force=True)
    peers = [m for m in plan.models if m != "levelset"]
    if "levelset" in plan.models and peers:
        report.compare(
            f"radon n={plan.long_samples}, {plan.long_steps} steps: rel. error (best peer)",
            values["long_rel_error_levelset_radon"],
            min(values[f"long_rel_error_{m}_radon"] for m in peers),
            unit="",
        )


def merge_values(*parts: dict) -> dict:
    """Union of the JSON values of runs of one benchmark on disjoint (model, transform) sets.

    Keys present in several parts must agree, except the lists ``completed`` and the
    dicts ``level_sets`` (joined) and the run bookkeeping (``total_seconds``: summed);
    ``merged_runs`` records how many runs went in.
    """
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            if key == "completed":
                out.setdefault(key, []).extend(v for v in value if v not in out.get(key, []))
            elif key == "level_sets":
                out.setdefault(key, {}).update(value)
            elif key in ("total_seconds", "tune_seconds"):
                out[key] = out.get(key, 0.0) + value
            elif key in ("environment", "quick"):
                out[key] = value
            elif key in out and out[key] != value and not key.startswith("tune_"):
                raise ValueError(f"runs disagree on {key!r}: {out[key]!r} vs {value!r}")
            else:
                out.setdefault(key, value)
    out["merged_runs"] = len(parts)
    return out


def _summarise(
    values: dict, plan: BenchPlan, errs: dict, errs_ood: dict, seconds: dict, steps_run: dict
) -> None:
    """Means over the seeds done so far, slopes and seconds, as the issue's flat keys."""
    counts = list(plan.counts)
    for (m, name), table in errs.items():
        if all(v is None for row in table for v in row):
            continue
        for key, tab in (("rel_error", table), ("rel_error_ood", errs_ood[m, name])):
            done = [[v for v in row if v is not None] for row in tab]
            mean = [sum(d) / len(d) for d in done]
            values[f"{key}_{m}_{name}"] = mean
            values[f"{key}_{m}_{name}_seeds"] = done
        values[f"slope_{m}_{name}"] = _slope(counts, values[f"rel_error_{m}_{name}"])
        values[f"seconds_{m}_{name}"] = seconds[m, name]
        values[f"steps_run_{m}_{name}"] = steps_run[m, name]


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
    done = [t for t in TRANSFORMS if f"rel_error_levelset_{t}" in values]
    fig, axes = plt.subplots(2, len(done), figsize=(4 * len(done), 7), sharex=True, squeeze=False)
    for c, name in enumerate(done):
        for r, (key, title) in enumerate(
            (("rel_error", "fresh band-limited"), ("rel_error_ood", "OOD"))
        ):
            ax = axes[r, c]
            for m in MODELS:
                mean = np.asarray(values[f"{key}_{m}_{name}"], dtype=float)
                seeds = values.get(f"{key}_{m}_{name}_seeds")
                line = ax.loglog(counts, mean, "o-", label=LABELS[m], ms=3)[0]
                long = values.get(f"long_{key}_{m}_{name}")
                if long is not None:  # the headline fit: same n, the long budget
                    n_long = values.get("long_samples", 64)
                    ax.loglog([n_long], [long], "*", color=line.get_color(), ms=9)
                if seeds and len(seeds[0]) > 1:
                    arr = np.asarray(seeds, dtype=float)
                    ax.fill_between(
                        counts, arr.min(1), arr.max(1), color=line.get_color(), alpha=0.2
                    )
            if any(f"long_{key}_{m}_{name}" in values for m in MODELS):
                title += "; stars: the long fit"
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

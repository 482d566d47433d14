"""``inversa bench jdr``: JDR on the contextual SBM beside no rewiring, DIGL and FoSR.

In one run:

- accuracy vs phi: GCN on the raw cSBM, after JDR (parameters found by random search on
  validation splits only), after DIGL (PPR alpha chosen on validation) and after FoSR
  (number of added edges chosen on validation); mean test accuracy over random sparse
  (2.5/2.5/95) splits with 95 % confidence intervals;
- speed: JDR on the n = 5000, F = 2000 cSBM with the paper's largest tuned iteration
  count for phi = -0.5 (K = 50; quick: a 2000-node graph);
- scaling: time and peak memory of the truncated path on sparse cSBM graphs of growing n.
"""

from __future__ import annotations

import time

import numpy as np

from inversa.bench._harness import BenchReport, PeakMemory
from inversa.jdr import (
    JDR,
    JDRConfig,
    TrainConfig,
    csbm,
    digl,
    evaluate,
    fosr,
    jdr,
    search_jdr,
)

__all__ = ["run"]

# The paper's tuned cSBM configuration for phi = -0.5 (GCN), the longest tuned run.
PAPER_PHI_M05 = JDRConfig(
    iterations=50, l_a=9, l_x=10, eta_a=0.189, eta_x=0.412, eta_x2=0.991, abs_ordering=True
)


def _pick(data, candidates, make, *, train: TrainConfig, splits: int):
    """Return the candidate whose rewired graph has the best mean validation accuracy."""
    best, best_val = None, -np.inf
    for c in candidates:
        acc = evaluate(make(data, c), splits=splits, config=train, seed=10_000)
        if acc.val_mean > best_val:
            best, best_val = c, acc.val_mean
    return best


def run(*, quick: bool = False) -> BenchReport:
    """Run the JDR benchmark and return its report.

    Parameters
    ----------
    quick
        Small graphs, three phis, three splits (about a minute on 2 cores).
    """
    report = BenchReport(name="jdr", quick=quick)
    v = report.values
    if quick:
        n, f, phis, splits, trials, search_splits = 500, 250, [-0.5, 0.0, 0.5], 3, 3, 1
        train = TrainConfig(max_epochs=150, patience=40)
        scaling = [1000, 10000]
        speed_n, speed_f = 1000, 400
    else:
        n, f, splits, trials, search_splits = 5000, 2000, 10, 12, 2
        phis = [round(p, 2) for p in np.arange(-1.0, 1.01, 0.25)]
        train = TrainConfig()
        scaling = [1000, 10000, 100000, 1000000]
        speed_n, speed_f = 5000, 2000
    v.update(phis=phis, splits=splits, n_nodes=n, n_features=f, avg_degree=5, trials=trials)
    acc = {k: [] for k in ("gcn", "gcn_jdr", "gcn_digl", "gcn_rewire_baseline")}
    ci = {k: [] for k in acc}
    configs = []
    for i, phi in enumerate(phis):
        data = csbm(n_nodes=n, n_features=f, avg_degree=5, phi=phi, seed=100 + i)
        cfg, _ = search_jdr(data, trials=trials, splits=search_splits, train=train, seed=i)
        alpha = _pick(
            data, [0.05, 0.2], lambda d, a: digl(d, alpha=a), train=train, splits=search_splits
        )
        n_add = _pick(
            data,
            [n // 20, n // 4],
            lambda d, k: fosr(d, iterations=k),
            train=train,
            splits=search_splits,
        )
        variants = {
            "gcn": data,
            "gcn_jdr": JDR(config=cfg)(data),
            "gcn_digl": digl(data, alpha=alpha),
            "gcn_rewire_baseline": fosr(data, iterations=n_add),
        }
        for key, d in variants.items():
            a = evaluate(d, splits=splits, config=train, seed=0)
            acc[key].append(round(a.mean, 2))
            ci[key].append(round(a.ci95, 2))
        configs.append(
            {
                "phi": phi,
                "K": cfg.iterations,
                "L_A": cfg.l_a,
                "L_X": cfg.l_x,
                "eta_A": round(cfg.eta_a, 3),
                "eta_X": round(cfg.eta_x, 3),
                "eta_X2": round(cfg.eta_x2, 3),
                "abs_ordering": cfg.abs_ordering,
                "offset": cfg.offset,
                "digl_alpha": alpha,
                "fosr_edges": n_add,
            }
        )
    for key in acc:
        v[f"acc_{key}"] = acc[key]
        v[f"ci95_{key}"] = ci[key]
    v["jdr_configs"] = configs
    small = [i for i, p in enumerate(phis) if abs(p) <= 0.5]
    gain = float(np.mean([acc["gcn_jdr"][i] - acc["gcn"][i] for i in small]))
    v["mean_gain_abs_phi_le_half"] = round(gain, 2)
    v["jdr_never_worse"] = all(a >= b for a, b in zip(acc["gcn_jdr"], acc["gcn"], strict=True))
    for i, phi in enumerate(phis):
        report.compare(
            f"GCN+JDR vs GCN, phi={phi}",
            acc["gcn_jdr"][i],
            acc["gcn"][i],
            unit="%",
            higher_is_better=True,
        )

    # Speed on the paper's n = 5000 graph with its K = 50 configuration.
    data = csbm(n_nodes=speed_n, n_features=speed_f, avg_degree=5, phi=-0.5, seed=7)
    t0 = time.perf_counter()
    res = jdr(data.edge_index, data.x, config=PAPER_PHI_M05)
    v["seconds_jdr_5000"] = round(time.perf_counter() - t0, 2)
    v["speed_nodes"], v["speed_path"], v["speed_rank"] = speed_n, res.path, res.rank
    report.compare(
        f"JDR K=50 on n={speed_n} (peer: public code, 14 min)",
        v["seconds_jdr_5000"],
        14 * 60.0 if speed_n == 5000 else None,
    )

    # Scaling of the truncated path (F = 64 features, the paper's phi = 0.5 config).
    cfg = JDRConfig(
        iterations=18, l_a=10, l_x=9, eta_a=0.415, eta_x=0.263, eta_x2=0.88, method="sparse"
    )
    secs, peaks = [], []
    for m in scaling:
        g = csbm(n_nodes=m, n_features=64, avg_degree=5, phi=0.5, seed=3)
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            jdr(g.edge_index, g.x, config=cfg)
            secs.append(round(time.perf_counter() - t0, 2))
        peaks.append(round(mem.peak_mib / 1024, 3))
    v["scaling_nodes"], v["scaling_seconds"], v["scaling_peak_gb"] = scaling, secs, peaks
    if 100000 in scaling:
        v["seconds_1e5_nodes"] = secs[scaling.index(100000)]
        v["peak_gb_1e5_nodes"] = peaks[scaling.index(100000)]
    else:
        v["seconds_1e5_nodes"] = v["peak_gb_1e5_nodes"] = None
    for m, s in zip(scaling, secs, strict=True):
        report.compare(f"truncated JDR, n={m}", s, None)
    return report

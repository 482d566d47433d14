"""``inversa bench springblock``: the noise x non-linearity phase diagram and its cost.

In one run:

- the phase diagram on scikit-learn's digits: MLPs (depth 8, width 100, batch norm,
  LeakyReLU alpha, Adam 1e-3, full batch) over a grid of alpha x training noise x seeds,
  trained as batched models; curvature and load spread of the log-separation curve, test
  accuracy; the spring-block model fitted to the loads and its curvature on the same grid;
  sign agreement; Spearman correlation of linearity (-|curvature|) with test accuracy;
- the cost: seconds per network-epoch beside the arithmetic floor (the network's flop count
  divided by the measured batched-matmul throughput of this machine), and the paper-sized
  diagram (540 networks x 100 epochs) extrapolated from it in quick mode;
- the CNN variant (full run only): one line of the noise sweep (alpha = 0, five noise levels)
  for small CNNs trained one by one and measured through forward hooks;
- the anchor: the paper's public code takes about 85 minutes for the 540-network diagram
  (about 6 s per network, 1.4 s of it the network) on a 2-core machine of this kind
  (issue 7; not re-run here).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

from inversa.bench._harness import BenchReport, best_time, pyplot, save_figure
from inversa.springblock import (
    NetworkSetting,
    load_dataset,
    phase_diagram,
    plot_phase_diagram,
    train_cnns,
)

__all__ = ["figures", "run"]

PAPER_NETWORKS, PAPER_EPOCHS = 540, 100
# Issue 7's anchor: the paper's public code, 540-network diagram on a 2-core machine.
ANCHOR_PAPER_DIAGRAM_SECONDS = 85 * 60.0


def _flops_per_network_epoch(n_train: int, dims: list[int]) -> float:
    """Matrix-product flops of one full-batch epoch: forward 2, backward 4 per multiply-add."""
    macs = sum(a * b for a, b in itertools.pairwise(dims))
    return 6.0 * n_train * macs


def _matmul_gflops(n_nets: int, n: int, width: int) -> float:
    """Measured float32 batched-matmul throughput at the training's shapes (GFLOP/s)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n_nets, n, width, generator=g)
    w = torch.randn(n_nets, width, width, generator=g)
    t = best_time(lambda: torch.bmm(a, w), repeat=5)
    return 2.0 * n_nets * n * width * width / t / 1e9


def run(*, quick: bool = False) -> BenchReport:
    """Run the spring-block benchmark and return its report.

    Parameters
    ----------
    quick
        A 3 x 3 grid, 2 seeds, 40 epochs (18 networks; under a minute on 2 idle cores);
        otherwise the paper's noise diagram: 6 alphas x 9 noises x 10 seeds, 100 epochs.
    """
    report = BenchReport(name="springblock", quick=quick)
    v = report.values
    data = load_dataset("digits")
    if quick:
        grid = dict(alphas=(0.0, 0.5, 1.0), noises=(0.0, 0.3, 0.6), seeds=(0, 1), epochs=40)
    else:
        grid = dict(
            alphas=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
            noises=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
            seeds=tuple(range(10)),
            epochs=PAPER_EPOCHS,
        )
    chunk = 54
    result = phase_diagram(data, chunk=chunk, **grid)
    v.update(result.to_json())
    v["epochs"] = grid["epochs"]
    v["dataset"] = f"sklearn digits 8x8: {len(data.y_train)} train / {len(data.y_test)} test"

    n_train = len(data.y_train)
    dims = [data.x_train.shape[1]] + [100] * 7 + [data.classes]
    flops = _flops_per_network_epoch(n_train, dims)
    gflops = _matmul_gflops(min(chunk, len(result.trained.settings)), n_train, 100)
    floor = flops / (gflops * 1e9)
    per = result.trained.train_seconds / result.trained.network_epochs
    full_net_epochs = PAPER_NETWORKS * PAPER_EPOCHS
    v.update(
        flops_per_network_epoch=flops,
        matmul_gflops=round(gflops, 2),
        floor_seconds_per_network_epoch=float(f"{floor:.4g}"),
        ratio_to_floor=round(per / floor, 2),
        paper_diagram_seconds_extrapolated=round(per * full_net_epochs, 1),
        paper_diagram_floor_seconds=round(floor * full_net_epochs, 1),
        anchor_paper_code_seconds=ANCHOR_PAPER_DIAGRAM_SECONDS,
    )
    report.compare("seconds per network-epoch (floor as peer)", per, floor)
    report.compare(
        "540 networks x 100 epochs" + (" (extrapolated)" if quick else " (training)"),
        per * full_net_epochs if quick else result.trained.train_seconds,
        ANCHOR_PAPER_DIAGRAM_SECONDS,
    )
    report.compare("whole run (train, measure, fit)", result.seconds, None)
    if not quick:
        v.update(_cnn_line(data, epochs=PAPER_EPOCHS))
        report.compare("CNN noise line (5 networks, training)", v["cnn_train_seconds"], None)
    report.compare(
        "sign agreement model vs networks (peer: 0.8 target)",
        result.model.sign_agreement,
        0.8,
        unit="",
        higher_is_better=True,
    )
    return report


def _cnn_line(data, *, epochs: int) -> dict:
    """One line of the noise sweep for the CNN variant (alpha = 0, one seed per noise)."""
    noises = (0.0, 0.2, 0.4, 0.6, 0.8)
    channels = 6
    tr = train_cnns(
        data,
        [NetworkSetting(alpha=0.0, noise=n, seed=0) for n in noises],
        epochs=epochs,
        channels=channels,
    )
    r = lambda t: [round(float(x), 4) for x in t]  # noqa: E731
    return {
        "cnn_alpha": 0.0,
        "cnn_channels": channels,
        "cnn_noises": list(noises),
        "cnn_curvature": r(tr.curvature),
        "cnn_load_centroid": r(tr.centroid),
        "cnn_test_accuracy": r(tr.test_accuracy),
        "cnn_log_separation": [r(c.log_separation) for c in tr.curves],
        "cnn_train_seconds": round(tr.train_seconds, 1),
    }


def _plot_cnn_line(values: dict, path: Path, *, force: bool) -> Path:
    """Log-separation curves of the CNN noise line, one per noise level."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    noises = values["cnn_noises"]
    for i, (n, curve) in enumerate(zip(noises, values["cnn_log_separation"], strict=True)):
        ax.plot(
            range(len(curve)),
            curve,
            "o-",
            color=cmap(i / max(len(noises) - 1, 1)),
            label=f"noise {n:g}: curvature {values['cnn_curvature'][i]:+.2f}, "
            f"test acc. {values['cnn_test_accuracy'][i]:.3f}",
        )
    ax.set_xlabel("layer (0 = input, then each conv block's activation)")
    ax.set_ylabel("log D (lower: classes better separated)")
    ax.set_title(
        f"CNN variant ({values['cnn_channels']} channels x 7 conv blocks, "
        f"alpha = {values['cnn_alpha']:g}), digits",
        fontsize=10,
    )
    ax.legend(fontsize=7)
    return save_figure(fig, path, force=force)


def figures(values: dict, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Draw the phase diagram (and, after a full run, the CNN noise line) from JSON values.

    ``springblock_phase_diagram.png``: networks beside the model; ``springblock_cnn.png``: the
    CNN variant's log-separation curves.
    """
    paths = [plot_phase_diagram(values, out_dir / "springblock_phase_diagram.png", force=force)]
    if "cnn_log_separation" in values:
        paths.append(_plot_cnn_line(values, out_dir / "springblock_cnn.png", force=force))
    return paths

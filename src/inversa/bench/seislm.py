"""``inversa bench seislm``: pretrained SeisLM vs random init vs PhaseNet, few labels.

In one run:

- label-fraction sweep on synthetic local events: a SeisLM picker fine-tuned from the
  shipped pretrained tiny encoder, the same picker from random initialisation, and
  SeisBench's PhaseNet, all trained with the same labels, schedule and augmentations, then
  scored on held-out windows (detection AUC, P and S onset RMSE, pick precision/recall
  within 0.1 s);
- the shipped picker on ObsPy's real example event (BW.RJOB) against ObsPy's AR picker;
- pretraining throughput (samples/s, fwd + bwd + AdamW step) of the base config (batch 8,
  3001-sample windows, the public code's anchor setting) and of the tiny config, and the
  base config's arithmetic floor (FLOPs of a step over the measured fp32 matmul rate).

The full run fine-tunes each model for 300 steps (batch 8, 10 s windows) on 5-100 % of
2000 training windows and scores 300 held-out windows; ``--quick`` (under a minute on 2
idle cores) uses 40 steps, 400 windows, fractions 0.1 and 1.0. The pretrained init is
always the shipped encoder: pretraining is not repeated inside the benchmark
(`inversa seislm ship` reproduces it).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from inversa.bench._harness import BenchReport, pyplot, save_figure
from inversa.seislm import (
    CONFIGS,
    FinetuneConfig,
    SeisLM,
    SyntheticConfig,
    annotate,
    evaluate_picker,
    finetune,
    load_encoder,
    load_picker,
    normalize,
    pretraining_loss,
    stream_to_waveforms,
    synthetic_events,
    train_phasenet,
)

__all__ = ["figures", "pretrain_floor", "pretrain_throughput", "real_event_picks", "run"]


def _pretrain_setup(config_name: str, batch: int, samples: int):
    torch.manual_seed(0)
    model = SeisLM(CONFIGS[config_name]).train()
    x = normalize(
        synthetic_events(batch, config=SyntheticConfig(samples=samples), seed=0).waveforms
    )
    return model, x


def pretrain_floor(config_name: str, *, batch: int = 8, samples: int = 3001) -> dict[str, float]:
    """Arithmetic floor of a pretraining step: its FLOPs over the measured matmul rate.

    FLOPs of one forward + backward pass (matrix products, convolutions, attention) by
    :class:`torch.utils.flop_counter.FlopCounterMode`; the rate is the best of three fp32
    products at the shape of the feed-forward layers, on all the threads torch uses.
    Returns ``flops_per_step``, ``matmul_gflops`` and ``floor_samples_per_s``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model, x = _pretrain_setup(config_name, batch, samples)
    counter = FlopCounterMode(display=False)
    with counter:
        loss, _ = pretraining_loss(model, x, step=0, generator=torch.Generator().manual_seed(0))
        loss.backward()
    flops = float(counter.get_total_flops())
    cfg = CONFIGS[config_name]
    frames = cfg.frames(samples)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(batch * frames, cfg.hidden, generator=g)
    w = torch.randn(cfg.hidden, cfg.ffn, generator=g)
    best = float("inf")
    for _ in range(4):  # the first warms up
        t0 = time.perf_counter()
        a @ w
        best = min(best, time.perf_counter() - t0)
    gflops = 2 * a.shape[0] * cfg.hidden * cfg.ffn / best / 1e9
    return {
        "flops_per_step": flops,
        "matmul_gflops": gflops,
        "floor_samples_per_s": batch / (flops / (gflops * 1e9)),
    }


def pretrain_throughput(
    config_name: str, *, batch: int = 8, samples: int = 3001, steps: int = 2
) -> float:
    """Pretraining samples per second (forward, backward and AdamW step), best of ``steps``.

    The optimiser is `pretrain`'s (fused AdamW).
    """
    model, x = _pretrain_setup(config_name, batch, samples)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)
    best = float("inf")
    for i in range(steps + 1):  # the first step warms up allocators and kernels
        g = torch.Generator().manual_seed(i)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = pretraining_loss(model, x, step=i, generator=g)
        loss.backward()
        opt.step()
        if i > 0:
            best = min(best, time.perf_counter() - t0)
    return batch / best


def real_event_picks() -> dict[str, float]:
    """Shipped picker vs ObsPy's AR picker on ObsPy's example event (BW.RJOB, 30 s, 100 Hz).

    Returns
    -------
    dict
        ``p_model_s``, ``s_model_s`` (most probable P and S, seconds after the start),
        ``p_ar_s``, ``s_ar_s`` (AR picker with the parameters of ObsPy's tutorial), the
        absolute differences and the peak probabilities.
    """
    import obspy
    from obspy.signal.trigger import ar_pick

    st = obspy.read()
    (w,) = stream_to_waveforms(st)
    phase, _ = annotate(load_picker(), w.data)
    z, n, e = (w.data[i].double().numpy() for i in range(3))
    p_ar, s_ar = ar_pick(z, n, e, 100.0, 1.0, 20.0, 1.0, 0.1, 4.0, 1.0, 2, 8, 0.1, 0.2)
    ip, is_ = int(phase[0].argmax()), int(phase[1].argmax())
    p_m, s_m = ip / w.sampling_rate, is_ / w.sampling_rate
    return {
        "p_model_s": p_m,
        "s_model_s": s_m,
        "p_ar_s": float(p_ar),
        "s_ar_s": float(s_ar),
        "p_abs_diff_s": abs(p_m - float(p_ar)),
        "s_abs_diff_s": abs(s_m - float(s_ar)),
        "p_probability": float(phase[0, ip]),
        "s_probability": float(phase[1, is_]),
    }


def run(*, quick: bool = False) -> BenchReport:
    """Run the SeisLM benchmark and return its report.

    Parameters
    ----------
    quick
        10 s windows, 40 fine-tuning steps, fractions 0.1 and 1.0 (under a minute).
    """
    report = BenchReport(name="seislm", quick=quick)
    v = report.values
    if quick:
        samples, n_train, n_test, steps, batch = 1001, 400, 150, 40, 8
        fractions = [0.1, 1.0]
    else:
        samples, n_train, n_test, steps, batch = 1001, 2000, 300, 300, 8
        fractions = [0.05, 0.1, 0.2, 1.0]
    syn = SyntheticConfig(samples=samples)
    pool = synthetic_events(n_train, config=syn, seed=10)
    test = synthetic_events(n_test, config=syn, seed=11)
    model_config, encoder = load_encoder()
    ft = FinetuneConfig(steps=steps, batch_size=batch, samples=samples, warmup=max(1, steps // 10))
    v.update(fractions=fractions, window_samples=samples, train_windows=n_train,
             test_windows=n_test, finetune_steps=steps)  # fmt: skip
    scores: dict[str, list[dict[str, float]]] = {"pretrained": [], "scratch": [], "phasenet": []}
    for f in fractions:
        sub = pool.subset(slice(0, max(8, round(f * n_train))))
        runs = {
            "pretrained": finetune(sub, model_config=model_config, encoder=encoder, config=ft)[0],
            "scratch": finetune(sub, model_config=model_config, encoder=None, config=ft)[0],
            "phasenet": train_phasenet(sub, config=ft)[0],
        }
        for name, model in runs.items():
            scores[name].append(
                evaluate_picker(model, test.waveforms, test.p_sample, test.s_sample)
            )
    keys = {"det_auc": "det_auc", "p_rmse_s": "p_rmse_s", "s_rmse_s": "s_rmse_s",
            "pick_precision": "precision", "pick_recall": "recall"}  # fmt: skip
    for name, rows in scores.items():
        for out, key in keys.items():
            v[f"{out}_{name}"] = [round(r[key], 4) for r in rows]
    for i, f in enumerate(fractions):
        report.compare(f"P RMSE, fraction {f} (vs PhaseNet)", v["p_rmse_s_pretrained"][i],
                       v["p_rmse_s_phasenet"][i])  # fmt: skip
        report.compare(f"P RMSE, fraction {f} (vs random init)", v["p_rmse_s_pretrained"][i],
                       v["p_rmse_s_scratch"][i])  # fmt: skip
        report.compare(f"detection AUC, fraction {f} (vs PhaseNet)", v["det_auc_pretrained"][i],
                       v["det_auc_phasenet"][i], unit="", higher_is_better=True)  # fmt: skip

    real = real_event_picks()
    v.update({f"real_{k}": round(x, 4) for k, x in real.items()})
    v["real_pick_abs_diff_s"] = round((real["p_abs_diff_s"] + real["s_abs_diff_s"]) / 2, 4)
    report.compare("RJOB P pick vs AR picker (abs diff)", real["p_abs_diff_s"], None)
    report.compare("RJOB S pick vs AR picker (abs diff)", real["s_abs_diff_s"], None)

    steps_thr = 1 if quick else 3
    v["pretrain_samples_per_s_base"] = round(pretrain_throughput("base", steps=steps_thr), 3)
    v["pretrain_samples_per_s_tiny"] = round(pretrain_throughput("tiny", steps=3), 2)
    # anchor: the public SeisLM base code, 0.45 samples/s on a 2-core machine of this kind
    report.compare("pretrain base (batch 8, 3001 samples)", v["pretrain_samples_per_s_base"],
                   0.45, unit="samples/s", higher_is_better=True)  # fmt: skip
    report.compare("pretrain tiny (batch 8, 3001 samples)", v["pretrain_samples_per_s_tiny"],
                   None, unit="samples/s", higher_is_better=True)  # fmt: skip
    floor = pretrain_floor("base")
    v.update(
        pretrain_flops_per_step_base=float(f"{floor['flops_per_step']:.4g}"),
        matmul_gflops=round(floor["matmul_gflops"], 1),
        pretrain_floor_samples_per_s_base=round(floor["floor_samples_per_s"], 3),
    )
    report.compare("pretrain base vs its fp32 arithmetic floor", v["pretrain_samples_per_s_base"],
                   v["pretrain_floor_samples_per_s_base"], unit="samples/s",
                   higher_is_better=True)  # fmt: skip
    v["threads"] = torch.get_num_threads()
    v["mean_det_auc_gain_vs_scratch"] = float(
        np.mean(np.array(v["det_auc_pretrained"]) - np.array(v["det_auc_scratch"]))
    )
    return report


def figures(results: dict, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Draw the label-fraction curves (from bench ``results``) and the picks on BW.RJOB.

    Parameters
    ----------
    results
        Values of a benchmark run (``report.values`` or the JSON it wrote).
    out_dir
        Folder for ``seislm_label_fraction.png`` and ``seislm_rjob_picks.png``.
    force
        Overwrite existing figures.

    Returns
    -------
    list[pathlib.Path]
        The written files.
    """
    import obspy
    from obspy.signal.trigger import ar_pick

    plt = pyplot()
    out = Path(out_dir)
    written = []
    fr = results["fractions"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    styles = {"pretrained": "o-", "scratch": "s--", "phasenet": "^:"}
    labels = {"pretrained": "SeisLM pretrained", "scratch": "SeisLM random init",
              "phasenet": "PhaseNet (SeisBench)"}  # fmt: skip
    for ax, key, title in zip(
        axes, ("det_auc", "p_rmse_s", "s_rmse_s"),
        ("detection AUC", "P onset RMSE (s)", "S onset RMSE (s)"), strict=True,
    ):  # fmt: skip
        for name in styles:
            ax.plot(fr, results[f"{key}_{name}"], styles[name], label=labels[name])
        ax.set_xscale("log")
        ax.set_xlabel("fraction of training labels")
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    written.append(save_figure(fig, out / "seislm_label_fraction.png", force=force))

    st = obspy.read()
    (w,) = stream_to_waveforms(st)
    phase, _ = annotate(load_picker(), w.data)
    z, n, e = (w.data[i].double().numpy() for i in range(3))
    p_ar, s_ar = ar_pick(z, n, e, 100.0, 1.0, 20.0, 1.0, 0.1, 4.0, 1.0, 2, 8, 0.1, 0.2)
    t = np.arange(w.data.shape[1]) / w.sampling_rate
    fig, axes = plt.subplots(4, 1, figsize=(10, 7), sharex=True)
    x = normalize(w.data).numpy()
    for i, c in enumerate("ZNE"):
        axes[i].plot(t, x[i], "k", lw=0.5)
        axes[i].set_ylabel(f"EH{c}")
    axes[3].plot(t, phase[0].numpy(), "b", label="P probability")
    axes[3].plot(t, phase[1].numpy(), "r", label="S probability")
    axes[3].set_ylim(0, 1)
    ip, is_ = float(phase[0].argmax()) / 100, float(phase[1].argmax()) / 100
    for ax in axes:
        ax.axvline(ip, color="b", lw=1)
        ax.axvline(is_, color="r", lw=1)
        ax.axvline(p_ar, color="b", ls=":", lw=1)
        ax.axvline(s_ar, color="r", ls=":", lw=1)
    axes[3].legend(fontsize=8, loc="upper right")
    axes[3].set_xlabel(f"seconds after {w.starttime} (solid: shipped SeisLM, dotted: AR picker)")
    axes[0].set_title("BW.RJOB (ObsPy example event)")
    fig.tight_layout()
    written.append(save_figure(fig, out / "seislm_rjob_picks.png", force=force))
    return written

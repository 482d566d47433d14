"""``inversa bench seislm``: SeisLM on real recordings, label fractions, PhaseNet, speed.

In one run:

- real held-out records (ObsPy's own event recordings, never used for training or noise:
  BW.RJOB, CER, JMI and five MVO stations): the shipped picker's most probable P and its
  first automatic P pick against a classical reference (Maeda's AIC on the band-passed
  vertical); the file's incomplete stations are reported, not picked;
- label-fraction sweep on synthetic local events with real noise (the shipped model's
  generator, other seeds): a SeisLM picker fine-tuned from the shipped pretrained tiny
  encoder, the same picker from random initialisation, and SeisBench's PhaseNet, all on
  the same labels, schedule and augmentations, several seeds, 95 % intervals over seeds;
- a long schedule for PhaseNet and the pretrained SeisLM on all labels (learning curves:
  training loss, held-out P onset RMSE at the end);
- speed: pretraining samples/s of the tiny and base configs (batch 8, 3001 samples),
  the base config's arithmetic floor, and picking throughput on continuous data (hours
  of 100 Hz three-component data per CPU second) of the shipped picker and of
  SeisBench's PhaseNet ``annotate`` (randomly initialised: SeisBench has no offline
  weights; throughput only) on the same record.

The full run fine-tunes for 200 steps (batch 8, 10 s windows) on 5 % and 100 % of 2000
training windows with seeds 0, 1, 2 and scores 300 held-out windows; the long schedule is
1200 steps; throughput on 1 h of data. ``--quick`` (about a minute of CPU) uses 40 steps,
one seed, fractions 0.1 and 1.0, a 100-step long schedule and 15 minutes of data.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import torch

from inversa.bench._harness import BenchReport, pyplot, save_figure
from inversa.seislm import (
    CONFIGS,
    FinetuneConfig,
    SeisLM,
    StationWaveform,
    SyntheticConfig,
    aic_pick,
    annotate,
    evaluate_picker,
    finetune,
    highpass,
    load_encoder,
    load_picker,
    normalize,
    onset_snr_db,
    paired_onsets,
    pick_waveform,
    predict,
    pretraining_loss,
    real_event_records,
    synthetic_events,
    train_phasenet,
)

__all__ = [
    "figures",
    "onset_errors",
    "picking_throughput",
    "pretrain_floor",
    "pretrain_throughput",
    "real_record_picks",
    "run",
]


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
    config_name: str, *, batch: int = 8, samples: int = 3001, steps: int = 2, clock: str = "wall"
) -> float:
    """Pretraining samples per second (forward, backward and AdamW step), best of ``steps``.

    The optimiser is `pretrain`'s (fused AdamW). ``clock="wall"`` times wall-clock seconds;
    ``clock="cpu"`` times the process's CPU seconds (``time.process_time``), which other
    jobs on a shared machine do not inflate (with one thread: an idle core's rate).
    """
    timer = time.process_time if clock == "cpu" else time.perf_counter
    model, x = _pretrain_setup(config_name, batch, samples)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)
    best = float("inf")
    for i in range(steps + 1):  # the first step warms up allocators and kernels
        g = torch.Generator().manual_seed(i)
        t0 = timer()
        opt.zero_grad(set_to_none=True)
        loss, _ = pretraining_loss(model, x, step=i, generator=g)
        loss.backward()
        opt.step()
        if i > 0:
            best = min(best, timer() - t0)
    return batch / best


def real_record_picks(model=None) -> dict[str, list]:
    """Run the picker on ObsPy's real event recordings; compare with Maeda's AIC P.

    Returns
    -------
    dict
        Lists over records: ``names``, ``p_model_s`` (most probable P that precedes an S,
        `paired_onsets`, s after the start), ``p_argmax_s`` (argmax of the P curve alone),
        ``p_probability``, ``p_first_pick_s`` (first automatic P pick of `pick_waveform`,
        NaN if none), ``p_reference_s``, ``p_ar_s`` (ObsPy's AR picker, for comparison),
        ``p_abs_diff_s``, ``p_first_pick_abs_diff_s``;
        and ``incomplete`` (stations that lack components).
    """
    model = load_picker() if model is None else model
    records, incomplete = real_event_records()
    from obspy.signal.trigger import ar_pick

    fields = ("names", "p_model_s", "p_argmax_s", "p_probability", "p_first_pick_s",
              "p_reference_s", "p_ar_s")  # fmt: skip
    out: dict[str, list] = {k: [] for k in fields}
    for name, w in records:
        phase, _ = annotate(model, w.data)
        i = int(paired_onsets(phase[None])[0][0])
        picks = [p for p in pick_waveform(model, w) if p.phase_hint == "P"]
        first = (picks[0].time - w.starttime) if picks else float("nan")
        out["names"].append(name)
        out["p_model_s"].append(i / w.sampling_rate)
        out["p_argmax_s"].append(int(phase[0].argmax()) / w.sampling_rate)
        out["p_probability"].append(float(phase[0, i]))
        out["p_first_pick_s"].append(float(first))
        z, n, e = (w.data[i].double().numpy() for i in range(3))
        out["p_reference_s"].append(aic_pick(z, w.sampling_rate))
        # ObsPy's AR picker (tutorial parameters), a second classical opinion
        out["p_ar_s"].append(
            float(
                ar_pick(z, n, e, w.sampling_rate, 1.0, 20.0, 1.0, 0.1, 4.0, 1.0, 2, 8, 0.1, 0.2)[0]
            )
        )
    ref = np.array(out["p_reference_s"])
    out["p_abs_diff_s"] = list(np.abs(np.array(out["p_model_s"]) - ref))
    out["p_first_pick_abs_diff_s"] = list(np.abs(np.array(out["p_first_pick_s"]) - ref))
    out["incomplete"] = [sid for sid, _ in incomplete]
    return out


def onset_errors(models: dict[str, str | None], *, n_test: int = 300) -> dict[str, list]:
    """Per-event P onset errors of pickers on the benchmark's held-out synthetic windows.

    The windows are the full run's test set (``n_test`` 10 s windows, seed 11, 70 % over
    real noise). For each picker file (``None``: the shipped one) under its label:
    ``p_err_argmax_s_LABEL`` (argmax of the P curve minus the true onset) and
    ``p_err_paired_s_LABEL`` (`paired_onsets`); and ``p_snr_db``, the onset SNR
    (`onset_snr_db` on the high-passed windows), over the event windows in order.
    """
    test = synthetic_events(n_test, config=SyntheticConfig(samples=1001, real_noise=0.7), seed=11)
    has = ~torch.isnan(test.p_sample)
    onset = test.p_sample[has]
    out: dict[str, list] = {}
    for label, path in models.items():
        model = load_picker(path)
        x = highpass(test.waveforms[has], model.config.highpass_hz)[0]
        phase, _ = predict(model, x)
        argmax = (phase[:, 0].argmax(-1).double() - onset) / test.sampling_rate
        paired = (paired_onsets(phase)[0].double() - onset) / test.sampling_rate
        out[f"p_err_argmax_s_{label}"] = [round(float(e), 3) for e in argmax]
        out[f"p_err_paired_s_{label}"] = [round(float(e), 3) for e in paired]
        out["p_snr_db"] = [round(float(d), 2) for d in onset_snr_db(x, onset)]
    return out


def _continuous(hours: float, *, seed: int = 0) -> torch.Tensor:
    """``(3, samples)`` synthetic continuous 100 Hz record: events every ~2 min in noise."""
    n_win = max(1, round(hours * 3600 / 30))
    ev = synthetic_events(min(n_win, 60), config=SyntheticConfig(samples=3000), seed=seed)
    reps = -(-n_win // len(ev))
    return ev.waveforms.repeat(reps, 1, 1)[:n_win].permute(1, 0, 2).reshape(3, -1)


def picking_throughput(hours: float = 1.0) -> dict[str, float]:
    """Hours of 100 Hz three-component data picked per CPU second: ours vs PhaseNet.

    Ours: `pick_waveform` (streamed 30 s windows at 15 s stride, peaks, P-before-S)
    with the shipped picker. PhaseNet: ``seisbench.models.PhaseNet().annotate`` on the
    same record as an ObsPy stream, *randomly initialised* (SeisBench ships no weights
    offline; the cost of a forward pass does not depend on the weights), with its default
    window overlap of 1500 samples (the same as ours). CPU seconds are
    ``time.process_time`` (all threads of the process).
    """
    import obspy
    import seisbench.models as sbm

    data = _continuous(hours)
    start = obspy.UTCDateTime(2020, 1, 1)
    w = StationWaveform("XX", "SYN", "", "HH", start, data, 100.0)
    model = load_picker()
    pick_waveform(model, StationWaveform("XX", "SYN", "", "HH", start, data[:, :6000], 100.0))
    t0 = time.process_time()
    pick_waveform(model, w)
    ours = time.process_time() - t0
    st = obspy.Stream(
        [
            obspy.Trace(data[i].numpy(), header={"station": "SYN", "network": "XX",
                        "channel": f"HH{c}", "sampling_rate": 100.0, "starttime": start})
            for i, c in enumerate("ZNE")
        ]
    )  # fmt: skip
    torch.manual_seed(0)
    pn = sbm.PhaseNet(phases="PSN", sampling_rate=100.0).eval()
    pn.annotate(st.slice(start, start + 60))  # warm-up
    t0 = time.process_time()
    pn.annotate(st, overlap=1500)  # SeisBench's default overlap, the same as ours
    theirs = time.process_time() - t0
    hours_true = data.shape[1] / 100.0 / 3600.0
    return {
        "hours": hours_true,
        "ours_cpu_s": ours,
        "phasenet_cpu_s": theirs,
        "hours_per_cpu_second_ours": hours_true / ours,
        "hours_per_cpu_second_phasenet": hours_true / theirs,
    }


def _ci95(x: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % Student-t interval over seeds (zero width for one seed)."""
    from scipy import stats

    a = np.asarray(x, dtype=float)
    m = float(a.mean())
    if len(a) < 2:
        return m, m, m
    h = float(stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)))
    return m, m - h, m + h


def _curve(history: list[dict], points: int = 30) -> tuple[list[int], list[float]]:
    """Training loss averaged over ``points`` blocks of the logged steps: (steps, losses)."""
    steps = np.array([h["step"] for h in history])
    loss = np.array([h["loss"] for h in history])
    blocks = np.array_split(np.arange(len(loss)), min(points, len(loss)))
    return (
        [int(steps[b[-1]]) for b in blocks],
        [round(float(loss[b].mean()), 4) for b in blocks],
    )


def run(*, quick: bool = False, device: str = "cpu") -> BenchReport:
    """Run the SeisLM benchmark and return its report.

    Parameters
    ----------
    quick
        40 steps, one seed, fractions 0.1 and 1.0, short long-schedule (about a minute).
    device
        Torch device of the training runs (throughput figures are CPU).
    """
    report = BenchReport(name="seislm", quick=quick)
    v = report.values

    real = real_record_picks()
    diffs = np.array(real["p_abs_diff_s"])
    first = np.array(real["p_first_pick_abs_diff_s"])
    v["real_records"] = len(diffs)
    v["real_record_names"] = real["names"]
    v["real_incomplete_stations"] = real["incomplete"]
    for k in ("p_model_s", "p_argmax_s", "p_probability", "p_first_pick_s", "p_reference_s",
              "p_ar_s", "p_abs_diff_s", "p_first_pick_abs_diff_s"):  # fmt: skip
        v[f"real_{k}"] = [round(float(x), 3) for x in real[k]]
    v["real_p_abs_diff_s_median"] = round(float(np.median(diffs)), 3)
    v["real_p_within_0_5s_fraction"] = round(float(np.mean(diffs <= 0.5)), 3)
    v["real_p_within_1s_fraction"] = round(float(np.mean(diffs <= 1.0)), 3)
    v["real_p_abs_diff_s_max"] = round(float(diffs.max()), 3)
    v["real_first_pick_abs_diff_s_median"] = round(float(np.nanmedian(first)), 3)
    v["real_first_pick_within_0_5s_fraction"] = round(float(np.mean(first <= 0.5)), 3)
    report.compare("real records: median |P - AIC reference|", v["real_p_abs_diff_s_median"],
                   0.2)  # fmt: skip

    if quick:
        samples, n_train, n_test, steps, batch = 1001, 400, 150, 40, 8
        fractions, seeds, long_steps, every, hours = [0.1, 1.0], [0], 100, 50, 0.25
    else:
        # sized to finish in ~45 min on a shared 2-core machine
        samples, n_train, n_test, steps, batch = 1001, 2000, 300, 500, 8
        fractions, seeds, long_steps, every = [0.01, 0.05, 0.2, 1.0], [0, 1, 2], 4000, 250
        hours = 1.0
    syn = SyntheticConfig(samples=samples, real_noise=0.7)
    pool = synthetic_events(n_train, config=syn, seed=10)
    test = synthetic_events(n_test, config=syn, seed=11)
    model_config, encoder = load_encoder()
    hz = model_config.highpass_hz
    v.update(fractions=fractions, seeds=seeds, window_samples=samples, train_windows=n_train,
             test_windows=n_test, finetune_steps=steps, real_noise_fraction=0.7,
             highpass_hz=hz)  # fmt: skip

    def trainers(cfg: FinetuneConfig, validation=None):
        return {
            "pretrained": lambda d: finetune(d, model_config=model_config, encoder=encoder,
                                             config=cfg, device=device, validation=validation),
            "scratch": lambda d: finetune(d, model_config=model_config, encoder=None,
                                          config=cfg, device=device, validation=validation),
            "phasenet": lambda d: train_phasenet(d, config=cfg, device=device, highpass_hz=hz,
                                                 validation=validation),
        }  # fmt: skip

    def score(model) -> dict[str, float]:
        # PhaseNet sees the same high-passed data as SeisLM, in training and here
        return evaluate_picker(
            model.cpu(), test.waveforms, test.p_sample, test.s_sample, highpass_hz=hz
        )

    keys = {"det_auc": "det_auc", "p_rmse_s": "p_rmse_s", "s_rmse_s": "s_rmse_s",
            "p_rmse_s_detected": "p_rmse_detected_s", "p_detected": "p_detected",
            "p_rmse_s_paired": "p_rmse_paired_s", "p_abs_err_s_median": "p_abs_err_median_s",
            "p_outlier_fraction": "p_outlier_fraction", "p_rmse_s_snr3db": "p_rmse_snr_s",
            "pick_precision": "precision", "pick_recall": "recall"}  # fmt: skip
    raw: dict[str, dict[str, list[list[float]]]] = {}
    for f in fractions:
        sub = pool.subset(slice(0, max(8, round(f * n_train))))
        for seed in seeds:
            ft = FinetuneConfig(steps=steps, batch_size=batch, samples=samples,
                                warmup=max(1, steps // 10), seed=seed)  # fmt: skip
            for name, fit in trainers(ft).items():
                sc = score(fit(sub)[0])
                for out, key in keys.items():
                    raw.setdefault(name, {}).setdefault(out, [[] for _ in fractions])
                    raw[name][out][fractions.index(f)].append(sc[key])
    v["train_windows_per_fraction"] = [max(8, round(f * n_train)) for f in fractions]
    for name, per in raw.items():
        for out, rows in per.items():
            stats = [_ci95(r) for r in rows]
            v[f"{out}_{name}"] = [round(m, 4) for m, _, _ in stats]
            v[f"{out}_{name}_ci95"] = [[round(lo, 4), round(hi, 4)] for _, lo, hi in stats]
            v[f"{out}_{name}_seeds"] = [[round(x, 4) for x in r] for r in rows]
    for metric in ("p_rmse_s", "p_rmse_s_paired", "pick_precision"):
        gains = []
        for i in range(len(fractions)):
            a = np.array(raw["pretrained"][metric][i])
            b = np.array(raw["scratch"][metric][i])
            gains.append(_ci95(list(b - a) if metric.startswith("p_rmse") else list(a - b)))
        v[f"{metric}_gain_pretrained_vs_scratch"] = [round(m, 4) for m, _, _ in gains]
        v[f"{metric}_gain_pretrained_vs_scratch_ci95"] = [
            [round(lo, 4), round(hi, 4)] for _, lo, hi in gains
        ]
    for i, f in enumerate(fractions):
        report.compare(f"P RMSE, fraction {f} (vs PhaseNet)", v["p_rmse_s_pretrained"][i],
                       v["p_rmse_s_phasenet"][i])  # fmt: skip
        report.compare(f"P RMSE, fraction {f} (vs random init)", v["p_rmse_s_pretrained"][i],
                       v["p_rmse_s_scratch"][i])  # fmt: skip

    # long schedule on all labels: learning curves (training loss, held-out P RMSE every
    # `every` steps), held-out scores at the end
    ft = FinetuneConfig(steps=long_steps, batch_size=batch, samples=samples,
                        warmup=max(1, long_steps // 20), seed=0,
                        validate_every=every)  # fmt: skip
    v["long_steps"] = long_steps
    for name in ("phasenet", "pretrained"):
        model, result = trainers(ft, validation=test)[name](pool)
        sc = score(model)
        v[f"long_curve_steps_{name}"], v[f"long_loss_curve_{name}"] = _curve(result.history)
        val = [h for h in result.history if "val_p_rmse_s" in h]
        v[f"long_val_steps_{name}"] = [int(h["step"]) for h in val]
        v[f"long_val_p_rmse_{name}"] = [round(h["val_p_rmse_s"], 4) for h in val]
        v[f"long_val_p_rmse_paired_{name}"] = [round(h["val_p_rmse_paired_s"], 4) for h in val]
        for out, key in keys.items():
            v[f"{out}_{name}_long"] = round(sc[key], 4)
    shipped = score(load_picker())
    for out, key in keys.items():
        v[f"{out}_shipped"] = round(shipped[key], 4)
    report.compare("synthetic P RMSE, shipped picker", v["p_rmse_s_shipped"], 0.3)
    report.compare("synthetic P RMSE (P before S), shipped", v["p_rmse_s_paired_shipped"], 0.3)
    report.compare("synthetic P RMSE, PhaseNet long schedule", v["p_rmse_s_phasenet_long"], 0.3)
    report.compare("synthetic P RMSE (P before S), PhaseNet long",
                   v["p_rmse_s_paired_phasenet_long"], 0.3)  # fmt: skip

    thr = picking_throughput(hours)
    v.update({k: round(x, 3) for k, x in thr.items()})
    report.compare("picking: hours of data per CPU second", v["hours_per_cpu_second_ours"],
                   v["hours_per_cpu_second_phasenet"], unit="h/s",
                   higher_is_better=True)  # fmt: skip

    v["pretrain_samples_per_s_tiny"] = round(pretrain_throughput("tiny", steps=3), 2)
    v["pretrain_samples_per_cpu_s_tiny"] = round(
        pretrain_throughput("tiny", steps=3, clock="cpu"), 2
    )
    report.compare("pretrain tiny (batch 8, 3001 samples)", v["pretrain_samples_per_s_tiny"],
                   50.0, unit="samples/s", higher_is_better=True)  # fmt: skip
    if not quick:
        v["pretrain_samples_per_s_base"] = round(pretrain_throughput("base", steps=1), 3)
        floor = pretrain_floor("base")
        v.update(
            pretrain_flops_per_step_base=float(f"{floor['flops_per_step']:.4g}"),
            matmul_gflops=round(floor["matmul_gflops"], 1),
            pretrain_floor_samples_per_s_base=round(floor["floor_samples_per_s"], 3),
        )
    v["threads"] = torch.get_num_threads()
    return report


def _error_figure(plt, results: dict, out: Path, *, force: bool) -> list[Path]:
    """``seislm_p_errors.png``: per-event |P error| against onset SNR, and its histogram."""
    labels = [k[len("p_err_paired_s_") :] for k in results if k.startswith("p_err_paired_s_")]
    if not labels:
        return []
    snr = np.array(results["p_snr_db"], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    bins = np.array([0, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10])
    width = 0.8 / (2 * len(labels))
    for j, label in enumerate(labels):
        for k, rule in enumerate(("argmax", "paired")):
            e = np.abs(np.array(results[f"p_err_{rule}_s_{label}"], dtype=float))
            if rule == "paired":
                axes[0].plot(snr, np.maximum(e, 0.005), "o^"[j % 2], ms=3, alpha=0.6,
                             label=f"{label} (P before S)")  # fmt: skip
            h, _ = np.histogram(e, bins=bins)
            axes[1].bar(np.arange(len(h)) + (2 * j + k - len(labels)) * width + width / 2,
                        h, width, label=f"{label}, {rule}")  # fmt: skip
    axes[0].set_yscale("log")
    axes[0].axhline(0.5, color="k", lw=0.8, ls="--")
    axes[0].axvline(3.0, color="g", lw=0.8, ls="--")
    axes[0].set_xlabel("P onset SNR (dB): 1 s after vs 3 s before, high-passed")
    axes[0].set_ylabel("|P error| (s, floored at 5 ms)")
    axes[0].legend(fontsize=7)
    axes[0].set_title("per-event P error vs SNR (dashed: 0.5 s, 3 dB)")
    axes[1].set_xticks(range(len(bins) - 1),
                       [f"{a:g}-{b:g}" for a, b in itertools.pairwise(bins)],
                       fontsize=7)  # fmt: skip
    axes[1].set_xlabel("|P error| (s)")
    axes[1].set_ylabel("event windows")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=7)
    axes[1].set_title(f"histogram over {len(snr)} held-out event windows")
    fig.tight_layout()
    return [save_figure(fig, out / "seislm_p_errors.png", force=force)]


def figures(results: dict, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Draw the label-fraction curves, learning curves and the picks on real records.

    Parameters
    ----------
    results
        Values of a benchmark run (``report.values`` or the JSON it wrote), or of
        `onset_errors` (then only ``seislm_p_errors.png`` is drawn).
    out_dir
        Folder for ``seislm_label_fraction.png``, ``seislm_learning_curves.png``,
        ``seislm_real_picks.png`` and ``seislm_real_zoom.png``.
    force
        Overwrite existing figures.

    Returns
    -------
    list[pathlib.Path]
        The written files.
    """
    plt = pyplot()
    out = Path(out_dir)
    written = []
    if "fractions" not in results:  # an error-diagnosis file (`onset_errors`)
        return _error_figure(plt, results, out, force=force)
    fr = results["fractions"]
    panels = [("det_auc", "detection AUC"), ("p_rmse_s", "P RMSE, argmax (s)"),
              ("p_rmse_s_paired", "P RMSE, P before S (s)"),
              ("pick_precision", "pick precision (0.1 s)")]  # fmt: skip
    panels = [(k, t) for k, t in panels if f"{k}_pretrained" in results]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    styles = {"pretrained": "o-", "scratch": "s--", "phasenet": "^:"}
    labels = {"pretrained": "SeisLM pretrained", "scratch": "SeisLM random init",
              "phasenet": "PhaseNet (SeisBench)"}  # fmt: skip
    for ax, (key, title) in zip(axes, panels, strict=True):
        for name in styles:
            m = np.array(results[f"{key}_{name}"])
            ci = np.array(results.get(f"{key}_{name}_ci95", [[x, x] for x in m]))
            ax.errorbar(fr, m, yerr=[m - ci[:, 0], ci[:, 1] - m], fmt=styles[name],
                        label=labels[name], capsize=3)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("fraction of training labels")
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"mean and 95 % interval over {len(results['seeds'])} seed(s)", fontsize=9)
    fig.tight_layout()
    written.append(save_figure(fig, out / "seislm_label_fraction.png", force=force))

    has_val = "long_val_steps_phasenet" in results
    fig, axes = plt.subplots(1, 2 if has_val else 1, figsize=(11 if has_val else 6, 3.6))
    axes = np.atleast_1d(axes)
    for name, color in (("phasenet", "C0"), ("pretrained", "C1")):
        c = results[f"long_loss_curve_{name}"]
        steps_axis = results[f"long_curve_steps_{name}"]
        axes[0].plot(steps_axis, c, styles[name], ms=3, color=color, label=labels[name])
        if has_val:
            vs = results[f"long_val_steps_{name}"]
            axes[1].plot(vs, results[f"long_val_p_rmse_{name}"], styles[name], ms=3,
                         color=color, label=f"{labels[name]}, argmax")  # fmt: skip
            axes[1].plot(vs, results[f"long_val_p_rmse_paired_{name}"], styles[name], ms=3,
                         color=color, alpha=0.45, label=f"{labels[name]}, P before S")  # fmt: skip
    axes[0].set_xlabel("optimiser step")
    axes[0].set_ylabel("training loss")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    axes[0].set_title(f"long schedule ({results['long_steps']} steps), all labels")
    if has_val:
        axes[1].axhline(0.3, color="k", lw=0.8, ls="--")
        axes[1].set_xlabel("optimiser step")
        axes[1].set_ylabel("held-out P RMSE (s)")
        axes[1].set_title("held-out P onset RMSE (dashed: target 0.3 s)")
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    written.append(save_figure(fig, out / "seislm_learning_curves.png", force=force))

    records, _ = real_event_records()
    model = load_picker()
    names = results["real_record_names"]
    fig, axes = plt.subplots(len(names), 1, figsize=(11, 1.6 * len(names)))
    for ax, (name, w), pm, ref in zip(axes, records, results["real_p_model_s"],
                                      results["real_p_reference_s"], strict=True):  # fmt: skip
        phase, _ = annotate(model, w.data)
        t = np.arange(w.data.shape[1]) / w.sampling_rate
        z = normalize(highpass(w.data, model.config.highpass_hz)[0])[0].numpy()
        ax.plot(t, 0.5 * z + 0.5, "k", lw=0.4)
        ax.plot(t, phase[0].numpy(), "b", lw=1, label="P probability")
        ax.plot(t, phase[1].numpy(), "r", lw=1, label="S probability")
        ax.axvline(pm, color="b", lw=1)
        ax.axvline(ref, color="g", ls="--", lw=1)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlim(0, t[-1])
        ax.text(0.005, 0.85, f"{name}  |P - AIC| = {abs(pm - ref):.2f} s", fontsize=7,
                transform=ax.transAxes)  # fmt: skip
    axes[0].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel(
        "seconds after the record start (blue line: most probable P, green dashed: AIC "
        "reference; black: vertical, high-passed as the model sees it)"
    )
    fig.tight_layout()
    written.append(save_figure(fig, out / "seislm_real_picks.png", force=force))

    # zoom on each onset: three components, the P and S curves, the picks
    rows = -(-len(names) // 2)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 2.5 * rows), squeeze=False)
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    panels_real = axes.ravel()[: len(names)]
    for ax, (name, w), pm, ref in zip(panels_real, records, results["real_p_model_s"],
                                      results["real_p_reference_s"], strict=True):  # fmt: skip
        phase, _ = annotate(model, w.data)
        x = normalize(highpass(w.data, model.config.highpass_hz)[0])
        t = np.arange(x.shape[1]) / w.sampling_rate
        sl = (t > ref - 3.0) & (t < ref + 5.0)
        for c, off in zip(range(3), (2.5, 1.5, 0.5), strict=True):
            seg = x[c].numpy()[sl]
            ax.plot(t[sl], off + 0.45 * seg / max(float(np.abs(seg).max()), 1e-12), "k", lw=0.5)
        ax.plot(t[sl], 2 * phase[0].numpy()[sl], "b", lw=1, label="2 x P probability")
        ax.plot(t[sl], 2 * phase[1].numpy()[sl], "r", lw=1, label="2 x S probability")
        ax.axvline(pm, color="b", lw=1)
        ax.axvline(ref, color="g", ls="--", lw=1)
        ax.set_yticks([0.5, 1.5, 2.5], ["E", "N", "Z"])
        ax.set_title(f"{name}: |P - AIC| = {abs(pm - ref):.2f} s", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.supxlabel("s after the record start (blue: model P, green dashed: AIC reference)")
    fig.tight_layout()
    written.append(save_figure(fig, out / "seislm_real_zoom.png", force=force))
    return written

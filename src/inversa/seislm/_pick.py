"""Picking continuous recordings: sliding windows, peaks, ObsPy picks, QuakeML/CSV, metrics."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.core.io import atomic_write
from inversa.seislm._stream import StationWaveform
from inversa.seislm._train import predict

__all__ = [
    "PickRun",
    "annotate",
    "evaluate_picker",
    "find_peaks",
    "pick_files",
    "pick_waveform",
    "roc_auc",
    "write_picks",
]


def annotate(
    model: nn.Module, data: torch.Tensor, *, window: int = 3001, stride: int = 1500
) -> tuple[torch.Tensor, torch.Tensor]:
    """P/S/noise and detection probabilities along a recording of any length.

    Overlapping windows (each normalised on its own) are predicted and averaged; a
    recording shorter than ``window`` is zero-padded at the end.

    Parameters
    ----------
    model
        A `SeisLMPicker` (or PhaseNet).
    data
        ``(3, samples)`` Z/N/E recording at the model's rate.
    window, stride
        Window length and hop in samples.

    Returns
    -------
    (phase, detection)
        ``(3, samples)`` and ``(samples,)``.
    """
    n = data.shape[-1]
    length = max(n, window)
    x = torch.nn.functional.pad(data, (0, length - n))
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    windows = torch.stack([x[:, s : s + window] for s in starts])
    ph, det = predict(model, windows)
    phase = torch.zeros(3, length)
    detection = torch.zeros(length)
    count = torch.zeros(length)
    for i, s in enumerate(starts):
        phase[:, s : s + window] += ph[i].cpu()
        detection[s : s + window] += det[i].cpu()
        count[s : s + window] += 1
    return phase[:, :n] / count[:n], detection[:n] / count[:n]


def find_peaks(
    prob: torch.Tensor, *, threshold: float, min_distance: int = 100
) -> list[tuple[int, float]]:
    """Local maxima of a probability curve above ``threshold``, ``min_distance`` apart.

    Parameters
    ----------
    prob
        ``(samples,)`` probabilities.

    Returns
    -------
    list of (sample, probability)
    """
    from scipy.signal import find_peaks as _scipy_find_peaks

    p = prob.detach().cpu().double().numpy()
    idx, props = _scipy_find_peaks(p, height=threshold, distance=min_distance)
    return [(int(i), float(h)) for i, h in zip(idx, props["peak_heights"], strict=True)]


def pick_waveform(
    model: nn.Module,
    waveform: StationWaveform,
    *,
    threshold: float = 0.3,
    min_distance: int = 100,
) -> list:
    """ObsPy ``Pick`` objects (P and S) for one station's recording.

    Parameters
    ----------
    model
        Picker (`load_picker()` gives the shipped tiny model).
    waveform
        From `stream_to_waveforms` / `read_waveforms`.
    threshold
        Minimal peak probability of a pick.
    min_distance
        Minimal samples between two picks of one phase.

    Returns
    -------
    list[obspy.core.event.Pick]
        Automatic picks, time-ordered; the probability is in ``pick.comments[0].text``
        and the time uncertainty set to one sample.
    """
    from obspy.core.event import Comment, Pick, QuantityError, WaveformStreamID

    phase, _ = annotate(model, waveform.data)
    picks = []
    for k, name in enumerate("PS"):
        for i, prob in find_peaks(phase[k], threshold=threshold, min_distance=min_distance):
            channel = waveform.channel_prefix + ("Z" if name == "P" else "N")
            picks.append(
                Pick(
                    time=waveform.starttime + i / waveform.sampling_rate,
                    time_errors=QuantityError(uncertainty=1.0 / waveform.sampling_rate),
                    waveform_id=WaveformStreamID(
                        network_code=waveform.network,
                        station_code=waveform.station,
                        location_code=waveform.location,
                        channel_code=channel,
                    ),
                    phase_hint=name,
                    evaluation_mode="automatic",
                    method_id="smi:local/inversa/seislm",
                    comments=[Comment(text=f"probability={prob:.3f}")],
                )
            )
    return sorted(picks, key=lambda p: p.time)


def write_picks(picks: list, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write picks as QuakeML (``.xml``/``.qml``/``.quakeml``) or CSV (``.csv``), atomically.

    The QuakeML file holds one event with all picks; the CSV has the columns
    ``seed_id, phase, time, probability``.
    """
    from obspy.core.event import Catalog, Event

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".xml", ".qml", ".quakeml", ".csv"}:
        raise InputError(path, "pick output must end in .xml, .qml, .quakeml or .csv")
    with atomic_write(path, force=force) as tmp:
        if suffix == ".csv":
            lines = ["seed_id,phase,time,probability"]
            for p in picks:
                prob = p.comments[0].text.split("=")[1] if p.comments else ""
                lines.append(f"{p.waveform_id.get_seed_string()},{p.phase_hint},{p.time},{prob}")
            tmp.write_text("\n".join(lines) + "\n")
        else:
            Catalog(events=[Event(picks=list(picks))]).write(str(tmp), format="QUAKEML")
    return path


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve (Mann-Whitney statistic with tie correction).

    Parameters
    ----------
    scores
        ``(n,)`` higher = more likely positive.
    labels
        ``(n,)`` bool.
    """
    from scipy.stats import rankdata

    s = scores.detach().cpu().double().numpy()
    y = labels.detach().cpu().numpy().astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise InputError(None, "ROC AUC needs positive and negative examples")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate_picker(
    model: nn.Module,
    waveforms: torch.Tensor,
    p_sample: torch.Tensor,
    s_sample: torch.Tensor,
    *,
    sampling_rate: float = 100.0,
    threshold: float = 0.3,
    tolerance_s: float = 0.1,
) -> dict[str, float]:
    """SeisBench-style scores of a picker on labelled held-out windows.

    - detection AUC: window score = peak detection probability, label = holds an event;
    - P/S onset RMSE (s): argmax of the P (S) curve vs the true onset, event windows;
    - pick precision / recall: peaks above ``threshold`` within ``tolerance_s`` of a true
      onset of the same phase (each true onset matches at most one pick).

    Parameters
    ----------
    model
        `SeisLMPicker` or PhaseNet.
    waveforms
        ``(n, 3, samples)`` raw windows.
    p_sample, s_sample
        ``(n,)`` true onsets (NaN: none).

    Returns
    -------
    dict
        ``det_auc``, ``p_rmse_s``, ``s_rmse_s``, ``precision``, ``recall``.
    """
    phase, det = predict(model, waveforms)
    event = ~torch.isnan(p_sample)
    out = {"det_auc": roc_auc(det.amax(-1), event)}
    tol = tolerance_s * sampling_rate
    tp = n_pred = n_true = 0
    for k, (name, onset) in enumerate((("p", p_sample), ("s", s_sample))):
        has = ~torch.isnan(onset)
        err = (phase[has, k].argmax(-1).double() - onset[has]) / sampling_rate
        out[f"{name}_rmse_s"] = float(err.pow(2).mean().sqrt())
        for i in range(len(onset)):
            peaks = [j for j, _ in find_peaks(phase[i, k], threshold=threshold)]
            n_pred += len(peaks)
            if not np.isnan(float(onset[i])):
                n_true += 1
                tp += any(abs(j - float(onset[i])) <= tol for j in peaks)
    out["precision"] = tp / n_pred if n_pred else 0.0
    out["recall"] = tp / n_true if n_true else 0.0
    return out


@dataclass(frozen=True)
class PickRun:
    """Result of `pick_files`.

    Attributes
    ----------
    picks
        ObsPy ``Pick`` objects of every good file.
    failures
        ``(path, problem)`` of every file that was skipped.
    notes
        What was done to the inputs (resampling, gap filling).
    stations
        Number of station recordings picked.
    """

    picks: list
    failures: list[tuple[Path, str]]
    notes: list[str]
    stations: int


def _pick_file(
    path: str | os.PathLike[str], *, model: nn.Module, threshold: float, fill_gaps: bool
) -> tuple[list, list[tuple[Path, str]], list[str], int]:
    """Pick one file (one task of `map_items`): picks, failures, notes, stations."""
    from inversa.seislm._stream import read_waveforms

    good, bad = read_waveforms([path], fill_gaps=fill_gaps)
    picks, notes = [], []
    for _, w in good:
        notes.extend(w.notes)
        picks.extend(pick_waveform(model, w, threshold=threshold))
    return picks, bad, notes, len(good)


def pick_files(
    paths: list[str | os.PathLike[str]],
    *,
    model: nn.Module | None = None,
    threshold: float = 0.3,
    fill_gaps: bool = False,
    scheduler: str | None = None,
) -> PickRun:
    """Pick P and S on waveform files; a bad file is reported in ``failures`` and skipped.

    Parameters
    ----------
    paths
        Waveform files (any format ObsPy reads).
    model
        Picker; ``None`` loads the shipped tiny model.
    threshold
        Minimal pick probability.
    fill_gaps
        Fill gaps by interpolation instead of refusing the file.
    scheduler
        The files are read and picked in parallel by `inversa.core.parallel.map_items`:
        ``None`` for local threads, ``"processes"``, or a Dask scheduler address.

    Returns
    -------
    PickRun
        Picks, failures and notes in the order of ``paths``, whatever the scheduler.
    """
    from inversa.core.parallel import map_items  # Dask: only when files are picked
    from inversa.seislm._train import load_picker

    if not 0.0 < threshold < 1.0:
        raise InputError(None, f"threshold must be in (0, 1), got {threshold}")
    model = load_picker() if model is None else model
    one = functools.partial(_pick_file, model=model, threshold=threshold, fill_gaps=fill_gaps)
    # A bad file is a failure inside its task; anything raised is a real error: re-raise.
    results = map_items(one, list(paths), scheduler=scheduler, progress=False, fail_fast=True)
    picks, bad, notes, stations = [], [], [], 0
    for r in results:
        file_picks, file_bad, file_notes, file_stations = r.value
        picks += file_picks
        bad += file_bad
        notes += file_notes
        stations += file_stations
    return PickRun(picks, bad, notes, stations)

"""Picking continuous recordings: sliding windows, peaks, ObsPy picks, QuakeML/CSV, metrics."""

from __future__ import annotations

import bisect
import functools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.core.io import atomic_write
from inversa.seislm._data import highpass
from inversa.seislm._onset import paired_onsets
from inversa.seislm._stream import StationWaveform
from inversa.seislm._train import predict

__all__ = [
    "NAMESPACE",
    "PickRun",
    "annotate",
    "evaluate_picker",
    "find_peaks",
    "group_events",
    "onset_snr_db",
    "pick_files",
    "pick_probability",
    "pick_waveform",
    "roc_auc",
    "stream_probabilities",
    "write_picks",
]


NAMESPACE = "urn:inversa:seislm:1"
"""XML namespace of the pick probability (``pick.extra["probability"]``) in QuakeML."""


def stream_probabilities(
    model: nn.Module,
    chunks: torch.Tensor | Iterable[torch.Tensor],
    *,
    window: int = 3001,
    stride: int = 1500,
    batch_size: int = 16,
    highpass_hz: float | None = None,
    sampling_rate: float = 100.0,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Stream P/S/noise and detection probabilities along a recording of any length.

    Overlapping windows (each normalised on its own) are predicted ``batch_size`` at a
    time and averaged; a recording shorter than ``window`` is zero-padded at the end, and
    a last window is aligned with the end. The recording may come as one tensor or as
    consecutive chunks of any sizes (e.g. read piece by piece from disk): only the samples
    of the windows in flight are held, so memory does not grow with the record length.
    Joined, the segments equal `annotate`.

    Parameters
    ----------
    model
        A `SeisLMPicker` (or PhaseNet).
    chunks
        ``(3, samples)`` Z/N/E recording at the model's rate, or an iterable of
        consecutive ``(3, n_i)`` pieces of it.
    window, stride
        Window length and hop in samples.
    batch_size
        Windows per forward pass.
    highpass_hz
        Causal high-pass applied to the record first, chunk by chunk (`highpass`);
        ``None``: the model config's ``highpass_hz`` (0 for models without one).
    sampling_rate
        Of the record (for the high-pass).

    Yields
    ------
    (start, phase, detection)
        Consecutive finished segments: first sample index, ``(3, m)`` and ``(m,)``.
    """
    if stride < 1 or stride > window:
        raise InputError(None, f"stride must be in [1, window], got {stride}")
    if isinstance(chunks, torch.Tensor):
        chunks = torch.split(chunks, max(window, batch_size * stride), dim=-1)
    hz = _model_highpass(model) if highpass_hz is None else highpass_hz
    hp_state = None
    buf, buf0 = torch.zeros(3, 0), 0  # samples [buf0, buf0 + len) of the record
    acc, cnt, acc0 = torch.zeros(4, 0), torch.zeros(0), 0  # sums over windows from acc0
    total, next_start, pending, last_start = 0, 0, [], -1

    def run(starts: list[int]) -> None:
        nonlocal acc, cnt, last_start
        wins = torch.stack([buf[:, s - buf0 : s - buf0 + window] for s in starts])
        ph, det = predict(model, wins, batch_size=batch_size)
        need = starts[-1] + window - acc0
        if need > acc.shape[1]:
            acc = torch.cat([acc, torch.zeros(4, need - acc.shape[1])], 1)
            cnt = torch.cat([cnt, torch.zeros(need - cnt.shape[0])])
        for i, s in enumerate(starts):
            a = s - acc0
            acc[:3, a : a + window] += ph[i].cpu()
            acc[3, a : a + window] += det[i].cpu()
            cnt[a : a + window] += 1
        last_start = starts[-1]
        starts.clear()

    def emit(upto: int) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        nonlocal acc, cnt, acc0
        m = upto - acc0
        if m > 0:
            seg, c = acc[:, :m], cnt[:m]
            yield acc0, seg[:3] / c, seg[3] / c
            acc, cnt, acc0 = acc[:, m:], cnt[m:], upto

    for chunk in chunks:
        chunk = torch.as_tensor(chunk, dtype=torch.float32)
        if chunk.ndim != 2 or chunk.shape[0] != 3:
            raise InputError(None, f"expected (3, samples) chunks, got {tuple(chunk.shape)}")
        chunk, hp_state = highpass(chunk, hz, sampling_rate=sampling_rate, state=hp_state)
        buf = torch.cat([buf, chunk], 1)
        total += chunk.shape[1]
        while next_start + window <= total:
            pending.append(next_start)
            next_start += stride
            if len(pending) == batch_size:
                run(pending)
        if next_start >= stride:
            # samples before the first window still to run, and before next_start - stride
            # (the end-aligned last window starts at or after the last regular start), see
            # no further window: they are final
            keep = min(pending[0] if pending else next_start, next_start - stride)
            yield from emit(keep)
            if keep > buf0:
                buf, buf0 = buf[:, keep - buf0 :].clone(), keep
    if total == 0:
        return
    if total < window:  # shorter than a window: zero-pad, one window
        buf = torch.cat([buf, torch.zeros(3, window - total)], 1)
        pending = [0]
    elif (pending[-1] if pending else last_start) + window < total:
        pending.append(total - window)
    if pending:
        run(pending)
    m = total - acc0
    yield acc0, acc[:3, :m] / cnt[:m], acc[3, :m] / cnt[:m]


def _model_highpass(model: nn.Module) -> float:
    return float(getattr(getattr(model, "config", None), "highpass_hz", 0.0) or 0.0)


def annotate(
    model: nn.Module, data: torch.Tensor, *, window: int = 3001, stride: int = 1500
) -> tuple[torch.Tensor, torch.Tensor]:
    """P/S/noise and detection probabilities along a whole recording (`stream_probabilities`).

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
    segs = list(stream_probabilities(model, data, window=window, stride=stride))
    return torch.cat([p for _, p, _ in segs], 1), torch.cat([d for _, _, d in segs])


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


def _stream_peaks(
    segments: Iterable[tuple[int, torch.Tensor, torch.Tensor]],
    *,
    threshold: float,
    min_distance: int,
    context: int,
) -> Iterator[tuple[int, int, float, float]]:
    """Peaks of the P and S curves of streamed segments: ``(phase, sample, prob, width)``.

    ``width`` is the peak's full width at half prominence in samples. A buffer of about
    ``3 context`` samples is held; peaks are final once ``context`` samples follow them.
    """
    from scipy.signal import find_peaks as _scipy_find_peaks
    from scipy.signal import peak_widths

    buf, b0, done = np.zeros((2, 0)), 0, 0

    def scan(limit: int) -> Iterator[tuple[int, int, float, float]]:
        for k in range(2):
            idx, props = _scipy_find_peaks(buf[k], height=threshold, distance=min_distance)
            if len(idx) == 0:
                continue
            widths = peak_widths(buf[k], idx, rel_height=0.5)[0]
            for i, h, w in zip(idx, props["peak_heights"], widths, strict=True):
                if done <= b0 + i < limit:
                    yield k, int(b0 + i), float(h), float(w)

    for start, phase, _ in segments:
        if start != b0 + buf.shape[1]:
            raise InputError(None, "probability segments are not consecutive")
        buf = np.concatenate([buf, phase[:2].double().numpy()], 1)
        if buf.shape[1] >= 3 * context:
            limit = b0 + buf.shape[1] - context
            yield from sorted(scan(limit), key=lambda x: x[1])
            done = limit
            keep = limit - context
            buf, b0 = buf[:, keep - b0 :], keep
    yield from sorted(scan(b0 + buf.shape[1]), key=lambda x: x[1])


def _physical(
    peaks: list[tuple[int, int, float, float]], *, max_sp: int
) -> list[tuple[int, int, float, float]]:
    """One station's picks that respect P before S.

    - every S is given to the most probable P at most ``max_sp`` samples before it; an S
      with no P there is dropped;
    - a P keeps at most one S, its most probable one;
    - a P between another P and that P's S, less probable than that P, is dropped (a
      later arrival in the P coda, not a new event).
    """
    ps = sorted((x for x in peaks if x[0] == 0), key=lambda x: x[1])
    ss = [x for x in peaks if x[0] == 1]
    times = [p[1] for p in ps]
    best_s: dict[int, tuple[int, int, float, float]] = {}
    for s in ss:
        lo = bisect.bisect_left(times, s[1] - max_sp)
        hi = bisect.bisect_left(times, s[1])  # P strictly before the S
        if lo >= hi:
            continue
        p = max(ps[lo:hi], key=lambda x: x[2])
        if p[1] not in best_s or best_s[p[1]][2] < s[2]:
            best_s[p[1]] = s
    dropped = set()
    for q in ps:
        if q[1] not in best_s:
            continue
        lo = bisect.bisect_right(times, q[1])
        hi = bisect.bisect_left(times, best_s[q[1]][1])
        dropped.update(p[1] for p in ps[lo:hi] if p[2] < q[2])
    keep_p = [p for p in ps if p[1] not in dropped]
    kept = keep_p + [best_s[p[1]] for p in keep_p if p[1] in best_s]
    return sorted(kept, key=lambda x: x[1])


def pick_waveform(
    model: nn.Module,
    waveform: StationWaveform,
    *,
    threshold: float = 0.3,
    min_distance: int = 100,
    max_s_minus_p_s: float = 60.0,
    stride: int = 1500,
) -> list:
    """ObsPy ``Pick`` objects (P and S) for one station's recording, streamed.

    The recording is annotated in overlapping windows (`stream_probabilities`) and peaks
    of the P and S curves above ``threshold`` become picks, subject to P before S (see
    below); memory does not grow with the record length beyond the recording itself.

    Parameters
    ----------
    model
        Picker (`load_picker()` gives the shipped tiny model).
    waveform
        From `stream_to_waveforms` / `read_waveforms`.
    threshold
        Minimal peak probability of a pick (in (0, 1)).
    min_distance
        Minimal samples between two picks of one phase.
    max_s_minus_p_s
        Longest S-P time (s): every S pick needs a P pick at most this much earlier
        (its most probable one); S picks without one are dropped, a P keeps at most one
        S, and a weaker P between a P and its S is dropped.
    stride
        Hop of the 3001-sample windows.

    Returns
    -------
    list[obspy.core.event.Pick]
        Automatic picks, time-ordered. ``time_errors.uncertainty`` is the standard
        deviation (s) of a Gaussian with the probability peak's full width at half
        prominence (``confidence_level`` 68.27); the peak probability is in
        ``pick.extra["probability"]`` (namespace `NAMESPACE`, QuakeML extension) and in
        a comment ``probability=...``.
    """
    if not 0.0 < threshold < 1.0:
        raise InputError(None, f"threshold must be in (0, 1), got {threshold}")
    fs = waveform.sampling_rate
    segments = stream_probabilities(model, waveform.data, stride=stride, sampling_rate=fs)
    peaks = list(
        _stream_peaks(
            segments, threshold=threshold, min_distance=min_distance,
            context=max(4 * min_distance, 500),
        )
    )  # fmt: skip
    kept = _physical(peaks, max_sp=round(max_s_minus_p_s * fs))
    return [_make_pick(waveform, k, i, prob, width) for k, i, prob, width in kept]


def _make_pick(waveform: StationWaveform, k: int, i: int, prob: float, width: float):
    """One ObsPy ``Pick`` (phase ``k``: 0 P, 1 S) at sample ``i``."""
    from obspy.core.event import Comment, Pick, QuantityError, WaveformStreamID
    from obspy.core.util import AttribDict

    fs = waveform.sampling_rate
    name = "PS"[k]
    sigma = max(width, 1.0) / (2.0 * np.sqrt(2.0 * np.log(2.0))) / fs
    pick = Pick(
        time=waveform.starttime + i / fs,
        time_errors=QuantityError(uncertainty=round(sigma, 4), confidence_level=68.27),
        waveform_id=WaveformStreamID(
            network_code=waveform.network,
            station_code=waveform.station,
            location_code=waveform.location,
            channel_code=waveform.channel_prefix + ("Z" if name == "P" else "N"),
        ),
        phase_hint=name,
        evaluation_mode="automatic",
        evaluation_status="preliminary",
        method_id="smi:local/inversa/seislm",
        comments=[Comment(text=f"probability={prob:.3f}")],
    )
    pick.extra = AttribDict(
        {"probability": AttribDict({"value": f"{prob:.4f}", "namespace": NAMESPACE})}
    )
    return pick


def pick_probability(pick) -> float:
    """Return a pick's probability (its QuakeML extension, else its comment)."""
    extra = getattr(pick, "extra", None) or {}
    if "probability" in extra:
        return float(extra["probability"]["value"])
    for c in pick.comments:
        if c.text.startswith("probability="):
            return float(c.text.split("=", 1)[1])
    return float("nan")


def group_events(picks: list, *, associate_s: float = 15.0) -> list:
    """Group picks into one ObsPy ``Event`` per detection.

    A detection is a P pick with the S picks of its station that follow it (before that
    station's next P); detections of different stations whose P times lie within
    ``associate_s`` of the first P of a group, and whose stations are not yet in it,
    join that group. Each group becomes an ``Event`` (type earthquake, certainty
    suspected, no origin) holding its picks.

    Parameters
    ----------
    picks
        P and S picks (e.g. of `pick_files`), any order.
    associate_s
        Longest P moveout (s) across the stations of one event.

    Returns
    -------
    list[obspy.core.event.Event]
        Time-ordered; S picks without a P before them on their station are left out.
    """
    from obspy.core.event import Comment, CreationInfo, Event

    by_station: dict[str, list] = {}
    for p in sorted(picks, key=lambda p: p.time):
        sid = p.waveform_id.get_seed_string()[:-1]
        by_station.setdefault(sid, []).append(p)
    detections = []
    for sid, ps in by_station.items():
        for p in ps:
            if p.phase_hint == "P":
                detections.append((p.time, sid, [p]))
            elif detections and any(d[1] == sid for d in detections):
                last = max((d for d in detections if d[1] == sid), key=lambda d: d[0])
                last[2].append(p)
    detections.sort(key=lambda d: d[0])
    groups: list[tuple[object, set, list]] = []
    for t, sid, ps in detections:
        g = groups[-1] if groups else None
        if g is None or t - g[0] > associate_s or sid in g[1]:
            groups.append((t, {sid}, list(ps)))
        else:
            g[1].add(sid)
            g[2].extend(ps)
    events = []
    for t, stations, ps in groups:
        best = max(pick_probability(p) for p in ps if p.phase_hint == "P")
        events.append(
            Event(
                picks=sorted(ps, key=lambda p: p.time),
                event_type="earthquake",
                event_type_certainty="suspected",
                creation_info=CreationInfo(author="inversa seislm"),
                comments=[
                    Comment(
                        text=f"automatic detection: first P {t}, {len(stations)} station(s), "
                        f"highest P probability {best:.3f}"
                    )
                ],
            )
        )
    return events


def write_picks(
    picks: list, path: str | os.PathLike[str], *, force: bool = False, associate_s: float = 15.0
) -> Path:
    """Write picks as QuakeML (``.xml``/``.qml``/``.quakeml``) or CSV (``.csv``), atomically.

    The QuakeML file holds one event per detection (`group_events`); each pick carries its
    probability as a namespaced extension (`NAMESPACE`). The CSV has the columns
    ``event, seed_id, phase, time, probability, uncertainty_s`` (``event`` numbers the
    detections from 0).
    """
    from obspy.core.event import Catalog

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".xml", ".qml", ".quakeml", ".csv"}:
        raise InputError(path, "pick output must end in .xml, .qml, .quakeml or .csv")
    events = group_events(picks, associate_s=associate_s)
    with atomic_write(path, force=force) as tmp:
        if suffix == ".csv":
            lines = ["event,seed_id,phase,time,probability,uncertainty_s"]
            for j, ev in enumerate(events):
                for p in ev.picks:
                    unc = p.time_errors.uncertainty
                    lines.append(
                        f"{j},{p.waveform_id.get_seed_string()},{p.phase_hint},{p.time},"
                        f"{pick_probability(p):.4f},{'' if unc is None else unc}"
                    )
            tmp.write_text("\n".join(lines) + "\n")
        else:
            Catalog(events=events).write(str(tmp), format="QUAKEML", nsmap={"inversa": NAMESPACE})
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


def onset_snr_db(
    waveforms: torch.Tensor,
    p_sample: torch.Tensor,
    *,
    sampling_rate: float = 100.0,
    before_s: float = 3.0,
    after_s: float = 1.0,
) -> torch.Tensor:
    """Signal-to-noise ratio of each window's P onset in dB (NaN: no P, or no noise before).

    ``10 log10`` of the mean power of the three components in the ``after_s`` seconds
    from the onset over that in the ``before_s`` seconds before it (at least 0.2 s of
    them).

    Parameters
    ----------
    waveforms
        ``(n, 3, samples)`` windows (as the picker sees them, e.g. high-passed).
    p_sample
        ``(n,)`` P onsets (NaN: none).

    Returns
    -------
    torch.Tensor
        ``(n,)`` float64.
    """
    out = torch.full((len(p_sample),), float("nan"), dtype=torch.float64)
    pre, post = round(before_s * sampling_rate), round(after_s * sampling_rate)
    for i, p in enumerate(p_sample.tolist()):
        if np.isnan(p) or int(p) < round(0.2 * sampling_rate):
            continue
        x = waveforms[i].double()
        noise = x[:, max(0, int(p) - pre) : int(p)].pow(2).mean()
        signal = x[:, int(p) : int(p) + post].pow(2).mean()
        out[i] = 10.0 * torch.log10(signal / noise.clamp(min=1e-30))
    return out


def evaluate_picker(
    model: nn.Module,
    waveforms: torch.Tensor,
    p_sample: torch.Tensor,
    s_sample: torch.Tensor,
    *,
    sampling_rate: float = 100.0,
    threshold: float = 0.3,
    tolerance_s: float = 0.1,
    highpass_hz: float | None = None,
    min_snr_db: float = 3.0,
) -> dict[str, float]:
    """SeisBench-style scores of a picker on labelled held-out windows.

    - detection AUC: window score = peak detection probability, label = holds an event;
    - P/S onset RMSE (s): argmax of the P (S) curve vs the true onset, event windows;
      also over the event windows whose P (S) curve reaches ``threshold`` (the phase was
      picked), with the fraction of such windows;
    - the same RMSE with the most probable P-before-S pair (`paired_onsets`, the rule of
      the picker's P-before-S logic), its median absolute error and the fraction of
      events more than 0.5 s off (outliers, which dominate an RMSE);
    - P RMSE (paired) over the events whose onset SNR (`onset_snr_db`, on the windows as
      the model sees them) is at least ``min_snr_db``, with the fraction of such events;
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
    highpass_hz
        High-pass of the windows before the model (`highpass`); ``None``: the model
        config's (0 for models without one).
    min_snr_db
        SNR bound of ``p_rmse_snr_s``.

    Returns
    -------
    dict
        ``det_auc``, ``p_rmse_s``, ``s_rmse_s``, ``p_rmse_detected_s``, ``p_detected``,
        ``s_rmse_detected_s``, ``s_detected``, ``p_rmse_paired_s``, ``s_rmse_paired_s``,
        ``p_abs_err_median_s``, ``p_outlier_fraction``, ``p_rmse_snr_s``,
        ``snr_fraction``, ``precision``, ``recall``.
    """
    hz = _model_highpass(model) if highpass_hz is None else highpass_hz
    if hz > 0:
        waveforms = torch.cat(
            [highpass(w, hz, sampling_rate=sampling_rate)[0] for w in torch.split(waveforms, 256)]
        )
    phase, det = predict(model, waveforms)
    event = ~torch.isnan(p_sample)
    out = {"det_auc": roc_auc(det.amax(-1), event)}
    paired = paired_onsets(phase)
    tol = tolerance_s * sampling_rate
    tp = n_pred = n_true = 0
    for k, (name, onset) in enumerate((("p", p_sample), ("s", s_sample))):
        has = ~torch.isnan(onset)
        err = (phase[has, k].argmax(-1).double() - onset[has]) / sampling_rate
        out[f"{name}_rmse_s"] = float(err.pow(2).mean().sqrt())
        found = phase[has, k].amax(-1) >= threshold  # the phase was picked at all
        out[f"{name}_detected"] = float(found.double().mean())
        out[f"{name}_rmse_detected_s"] = (
            float(err[found].pow(2).mean().sqrt()) if found.any() else float("nan")
        )
        err_paired = (paired[k][has].double() - onset[has]) / sampling_rate
        out[f"{name}_rmse_paired_s"] = float(err_paired.pow(2).mean().sqrt())
        if k == 0:
            out["p_abs_err_median_s"] = float(err_paired.abs().median())
            out["p_outlier_fraction"] = float((err_paired.abs() > 0.5).double().mean())
            snr = onset_snr_db(waveforms[has], onset[has], sampling_rate=sampling_rate)
            clear = snr >= min_snr_db
            out["snr_fraction"] = float(clear.double().mean())
            out["p_rmse_snr_s"] = (
                float(err_paired[clear].pow(2).mean().sqrt()) if clear.any() else float("nan")
            )
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
        ``(path, problem)`` of every file that was skipped and every station that could
        not be used (its problem names it; the file's complete stations are picked).
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

"""ObsPy streams to model input: merge, gaps, resampling, Z/N/E ordering; robust file batches."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.optional import require

__all__ = ["StationWaveform", "read_waveforms", "split_stations", "stream_to_waveforms"]

# Channel-code endings accepted for each component (1/2: unoriented horizontals).
_COMPONENTS = {"Z": "Z", "N": "N", "E": "E", "1": "N", "2": "E"}
_MIN_RATE_HZ = 20.0


@dataclass(frozen=True)
class StationWaveform:
    """One station's three-component recording, ready for the model.

    Attributes
    ----------
    network, station, location, channel_prefix
        SEED identifiers (``channel_prefix`` is the band + instrument code, e.g. ``"EH"``).
    starttime
        ``obspy.UTCDateTime`` of sample 0.
    data
        ``(3, samples)`` float32 tensor, components Z, N, E.
    sampling_rate
        Samples per second (after any resampling).
    notes
        What was done to the input (resampling, gap filling), for the user.
    """

    network: str
    station: str
    location: str
    channel_prefix: str
    starttime: object
    data: torch.Tensor
    sampling_rate: float
    notes: tuple[str, ...] = field(default=())

    @property
    def seed_id(self) -> str:
        """``NET.STA.LOC.CH?``."""
        return f"{self.network}.{self.station}.{self.location}.{self.channel_prefix}?"


def stream_to_waveforms(
    stream: object,
    *,
    path: str | os.PathLike[str] | None = None,
    sampling_rate: float = 100.0,
    fill_gaps: bool = False,
) -> list[StationWaveform]:
    """Turn an ObsPy ``Stream`` into one Z/N/E waveform per station; any bad station refuses.

    As `split_stations`, but the first station that cannot be used raises `InputError`
    (for callers that need every station, e.g. one station's recording).

    Parameters
    ----------
    stream
        ``obspy.Stream``.
    path
        The file the stream came from, named in errors.
    sampling_rate
        Target rate in Hz (the model's 100 Hz).
    fill_gaps
        Fill gaps instead of refusing them.

    Returns
    -------
    list[StationWaveform]

    Raises
    ------
    InputError
        Empty stream, gaps (without ``fill_gaps``), a missing component, a too-low rate.
    """
    good, bad = split_stations(stream, path=path, sampling_rate=sampling_rate, fill_gaps=fill_gaps)
    if bad:
        raise InputError(path, bad[0][1])
    return good


def split_stations(
    stream: object,
    *,
    path: str | os.PathLike[str] | None = None,
    sampling_rate: float = 100.0,
    fill_gaps: bool = False,
) -> tuple[list[StationWaveform], list[tuple[str, str]]]:
    """Split an ObsPy ``Stream`` into usable stations and the stations that cannot be used.

    Traces are grouped by network, station, location and band/instrument code and merged.
    Gaps make a station unusable unless ``fill_gaps``: then each trace is demeaned and the
    gaps are filled by linear interpolation (noted). Other sampling rates are resampled to
    ``sampling_rate`` with ObsPy's Fourier resampling (noted); rates below 20 Hz are
    unusable. The three components are trimmed to their common time span. A station with
    a missing component, a gap, a too-low rate or no common span is reported in the
    second list, and the others are still returned (a network file with a few incomplete
    stations is picked on its complete ones).

    Parameters
    ----------
    stream
        ``obspy.Stream``.
    path
        The file the stream came from, named in errors.
    sampling_rate
        Target rate in Hz (the model's 100 Hz).
    fill_gaps
        Fill gaps instead of refusing them.

    Returns
    -------
    (waveforms, incomplete)
        One `StationWaveform` per usable station (sorted by SEED id), and
        ``(seed_id, problem)`` for every station that cannot be used.

    Raises
    ------
    InputError
        Empty stream.
    """
    st = stream.copy()
    if len(st) == 0:
        raise InputError(path, "holds no traces")
    groups: dict[tuple[str, str, str, str], list] = {}
    for tr in st:
        code = tr.stats.channel
        key = (tr.stats.network, tr.stats.station, tr.stats.location, code[:-1])
        groups.setdefault(key, []).append(tr)
    out, bad = [], []
    for (net, sta, loc, cha), traces in sorted(groups.items()):
        name = f"{net}.{sta}.{loc}.{cha}?"
        try:
            out.append(
                _station(
                    st.__class__(traces), (net, sta, loc, cha), path=path,
                    sampling_rate=sampling_rate, fill_gaps=fill_gaps,
                )
            )  # fmt: skip
        except InputError as exc:
            bad.append((name, exc.problem))
    return out, bad


def _station(
    traces, key: tuple[str, str, str, str], *, path, sampling_rate: float, fill_gaps: bool
) -> StationWaveform:
    """One station's traces -> `StationWaveform`; `InputError` if it cannot be used."""
    net, sta, loc, cha = key
    name = f"{net}.{sta}.{loc}.{cha}?"
    notes: list[str] = []
    comps: dict[str, object] = {}
    for comp_code in sorted({tr.stats.channel[-1:] for tr in traces}):
        comp = _COMPONENTS.get(comp_code.upper())
        if comp is None:
            notes.append(f"{name}: ignored component {comp_code!r}")
            continue
        if comp in comps:
            raise InputError(path, f"{name} has two {comp} components (one is {comp_code!r})")
        sel = traces.__class__([tr for tr in traces if tr.stats.channel[-1:] == comp_code])
        comps[comp] = _merge(sel, path=path, name=name, fill_gaps=fill_gaps, notes=notes)
    missing = [c for c in "ZNE" if c not in comps]
    if missing:
        found = ", ".join(sorted(comps)) or "none"
        raise InputError(
            path,
            f"{name} lacks component(s) {', '.join(missing)} (found: {found}); "
            "the model needs Z, N and E (or Z, 1, 2)",
        )
    for c in "ZNE":
        tr = comps[c]
        rate = float(tr.stats.sampling_rate)
        if rate < _MIN_RATE_HZ:
            raise InputError(
                path,
                f"{name}: sampling rate {rate:g} Hz is too low (need >= {_MIN_RATE_HZ:g} Hz)",
            )
        if abs(rate - sampling_rate) > 1e-6:
            tr.data = tr.data.astype(np.float64)
            tr.resample(sampling_rate)
            notes.append(f"{name[:-1]}{c}: resampled from {rate:g} Hz to {sampling_rate:g} Hz")
    t0 = max(comps[c].stats.starttime for c in "ZNE")
    t1 = min(comps[c].stats.endtime for c in "ZNE")
    if t1 <= t0:
        raise InputError(path, f"{name}: the components do not overlap in time")
    arrays = []
    for c in "ZNE":
        tr = comps[c]
        i0 = round((t0 - tr.stats.starttime) * sampling_rate)
        arrays.append(np.asarray(tr.data[i0:], dtype=np.float64))
    n = min(len(a) for a in arrays)
    n = min(n, round((t1 - t0) * sampling_rate) + 1)
    data = torch.from_numpy(np.stack([a[:n] for a in arrays]).astype(np.float32))
    return StationWaveform(net, sta, loc, cha, t0, data, float(sampling_rate), tuple(notes))


def _merge(sel, *, path, name: str, fill_gaps: bool, notes: list[str]):
    """Merge one component's traces; refuse or fill gaps."""
    gaps = [g for g in sel.get_gaps() if g[6] > 0]  # g[6]: gap length in s (< 0: overlap)
    if gaps and not fill_gaps:
        first = gaps[0]
        raise InputError(
            path,
            f"{name[:-1]}{sel[0].stats.channel[-1]} has {len(gaps)} gap(s), the first "
            f"{first[6]:.2f} s at {first[4]}; pass fill_gaps=True (CLI: --fill-gaps) to "
            "fill them by linear interpolation",
        )
    if gaps:
        for tr in sel:
            tr.data = tr.data.astype(np.float64)
            tr.data -= tr.data.mean()
        comp = sel[0].stats.channel[-1]
        notes.append(f"{name[:-1]}{comp}: filled {len(gaps)} gap(s) by interpolation")
    try:
        merged = sel.merge(method=1, fill_value="interpolate")
    except Exception as exc:  # ObsPy refuses mixed sampling rates or data types
        raise InputError(path, f"{name}: traces cannot be merged ({exc})") from exc
    if len(merged) != 1:
        raise InputError(path, f"{name}: traces with different sampling rates cannot be merged")
    return merged[0]


def read_waveforms(
    paths: list[str | os.PathLike[str]],
    *,
    sampling_rate: float = 100.0,
    fill_gaps: bool = False,
) -> tuple[list[tuple[Path, StationWaveform]], list[tuple[Path, str]]]:
    """Read many waveform files; a bad file is reported and skipped, never stops the batch.

    Parameters
    ----------
    paths
        Files in any format ObsPy reads (miniSEED, SAC, ...).
    sampling_rate, fill_gaps
        As in :func:`stream_to_waveforms`.

    Returns
    -------
    (waveforms, failures)
        ``(path, StationWaveform)`` for every usable station of every readable file, and
        ``(path, problem)`` for every file that could not be read and every station that
        could not be used (the problem names the station; the file's other stations are
        still returned).
    """
    obspy = require("obspy", extra="seismic")

    good, bad = [], []
    for p in map(Path, paths):
        try:
            if not p.is_file():
                raise InputError(p, "file not found")
            if p.stat().st_size == 0:
                raise InputError(p, "file is empty")
            try:
                st = obspy.read(str(p))
            except Exception as exc:  # ObsPy raises many types for unreadable files
                problem = f"not a readable waveform file ({type(exc).__name__}: {exc})"
                raise InputError(p, problem) from exc
            waveforms, incomplete = split_stations(
                st, path=p, sampling_rate=sampling_rate, fill_gaps=fill_gaps
            )
            good.extend((p, w) for w in waveforms)
            bad.extend((p, problem) for _, problem in incomplete)
        except InputError as exc:
            bad.append((p, exc.problem))
    return good, bad

"""Waveform data: SeisBench datasets on disk, windows, normalisation, augmentation, labels."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from inversa.core.errors import InputError, OutputExistsError
from inversa.core.optional import require
from inversa.seislm._synthetic import LabelledWaveforms

__all__ = [
    "augment",
    "highpass",
    "normalize",
    "phase_labels",
    "random_windows",
    "read_seisbench",
    "write_seisbench",
]


@contextlib.contextmanager
def _seisbench_quiet() -> Iterator[None]:
    # SeisBench 0.12 calls pandas APIs that pandas 3 deprecates; nothing for a user to act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The inplace keyword")
        warnings.filterwarnings("ignore", message=".*copy keyword is deprecated")
        yield


def write_seisbench(
    data: LabelledWaveforms, path: str | os.PathLike[str], *, force: bool = False
) -> Path:
    """Write windows as a SeisBench ``WaveformDataset`` (``metadata.csv`` + ``waveforms.hdf5``).

    Parameters
    ----------
    data
        Windows ``(n, 3, samples)`` in Z, N, E order with their onsets (NaN: none).
    path
        Dataset folder (created).
    force
        Replace existing dataset files.

    Returns
    -------
    pathlib.Path
        The dataset folder, readable by ``seisbench.data.WaveformDataset(path)``.
    """
    sbd = require("seisbench.data", extra="seismic")

    folder = Path(path)
    meta, wave = folder / "metadata.csv", folder / "waveforms.hdf5"
    for f in (meta, wave):
        if f.exists() and not force:
            raise OutputExistsError(f)
        f.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    waveforms = data.waveforms.detach().cpu().numpy()
    with _seisbench_quiet(), sbd.WaveformDataWriter(meta, wave) as writer:
        writer.data_format = {
            "dimension_order": "CW",
            "component_order": "ZNE",
            "measurement": "velocity",
            "unit": "counts",
            "instrument_response": "not restituted",
        }
        for i in range(len(data)):
            p, s = float(data.p_sample[i]), float(data.s_sample[i])
            writer.add_trace(
                {
                    "trace_name": f"synthetic_{i:06d}",
                    "station_network_code": "XX",
                    "station_code": "SYN",
                    "trace_sampling_rate_hz": data.sampling_rate,
                    "trace_category": "noise" if np.isnan(p) else "earthquake",
                    "trace_p_arrival_sample": None if np.isnan(p) else p,
                    "trace_s_arrival_sample": None if np.isnan(s) else s,
                },
                waveforms[i],
            )
    return folder


def read_seisbench(
    path: str | os.PathLike[str], *, samples: int | None = None, sampling_rate: float = 100.0
) -> LabelledWaveforms:
    """Read a SeisBench ``WaveformDataset`` into tensors (components Z, N, E; resampled).

    Parameters
    ----------
    path
        Dataset folder with ``metadata.csv`` and ``waveforms.hdf5``.
    samples
        Length every trace is cut (from its start) or zero-padded to; default: the
        length of the first trace, and all traces must then have that length.
    sampling_rate
        Traces are resampled to this rate by SeisBench.

    Returns
    -------
    LabelledWaveforms
        Onsets from ``trace_p_arrival_sample`` / ``trace_s_arrival_sample`` (NaN if absent).
    """
    sbd = require("seisbench.data", extra="seismic")

    folder = Path(path)
    for f in ("metadata.csv", "waveforms.hdf5"):
        if not (folder / f).is_file():
            raise InputError(folder, f"not a SeisBench dataset: {f} is missing")
    try:
        with _seisbench_quiet():
            ds = sbd.WaveformDataset(
                folder, sampling_rate=sampling_rate, component_order="ZNE", dimension_order="NCW"
            )
    except Exception as exc:  # SeisBench/h5py raise many types for malformed datasets
        raise InputError(folder, f"cannot be read as a SeisBench dataset ({exc})") from exc
    if len(ds) == 0:
        raise InputError(folder, "dataset holds no traces")
    meta = ds.metadata
    rate = meta.get("trace_sampling_rate_hz", None)
    scale = np.ones(len(ds)) if rate is None else sampling_rate / rate.to_numpy(float)
    out, onsets = [], {}
    for key in ("trace_p_arrival_sample", "trace_s_arrival_sample"):
        col = meta[key].to_numpy(float) if key in meta else np.full(len(ds), np.nan)
        onsets[key] = col * scale  # onsets move with the resampling
    for i in range(len(ds)):
        w = ds.get_waveforms(i)
        if samples is None:
            samples = w.shape[-1]
        if w.shape[-1] < samples:
            w = np.pad(w, ((0, 0), (0, samples - w.shape[-1])))
        out.append(w[:, :samples].astype(np.float32))
    p = torch.from_numpy(onsets["trace_p_arrival_sample"])
    s = torch.from_numpy(onsets["trace_s_arrival_sample"])
    # an onset cut off by the window is no label
    p[p >= samples] = float("nan")
    s[s >= samples] = float("nan")
    return LabelledWaveforms(torch.from_numpy(np.stack(out)), p, s, sampling_rate)


def highpass(
    x: torch.Tensor,
    hz: float,
    *,
    sampling_rate: float = 100.0,
    state: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[torch.Tensor, tuple[np.ndarray, np.ndarray] | None]:
    """Causal 2-pole Butterworth high-pass along the last axis (no-op for ``hz <= 0``).

    Causal, so no filtered energy comes before an onset (a zero-phase filter would
    smear it earlier). Pass the returned ``state`` with the next consecutive chunk to
    filter a record piece by piece exactly as in one go; a record (or a window without
    ``state``) starts from rest after removing its first sample's value.

    Parameters
    ----------
    x
        ``(..., samples)`` waveforms.
    hz
        Corner frequency in Hz.
    sampling_rate
        Samples per second.
    state
        Filter state from the previous chunk, or ``None`` for a new record.

    Returns
    -------
    (filtered, state)
        Same shape and dtype as ``x``; the state to continue with.
    """
    if hz <= 0:
        return x, state
    from scipy.signal import butter, sosfilt

    sos = butter(2, hz, btype="high", fs=sampling_rate, output="sos")
    a = x.detach().cpu().double().numpy()
    if state is None:
        zi, offset = np.zeros((sos.shape[0], *a.shape[:-1], 2)), a[..., :1]
    else:
        zi, offset = state
    y, zi = sosfilt(sos, a - offset, axis=-1, zi=zi)
    return torch.from_numpy(y).to(x.dtype), (zi, offset)


def normalize(x: torch.Tensor, *, eps: float = 1e-10) -> torch.Tensor:
    """Demean each component and divide each window by its peak absolute value.

    One scale per window (not per component) keeps the relative amplitudes of Z, N and E,
    which carry the polarisation that separates P from S.

    Parameters
    ----------
    x
        ``(..., 3, samples)`` waveforms.

    Returns
    -------
    torch.Tensor
        Same shape; each window has zero-mean components and peak 1 (all-zero stays zero).
    """
    x = x - x.mean(dim=-1, keepdim=True)
    peak = x.abs().amax(dim=(-2, -1), keepdim=True)
    return x / (peak + eps)


def random_windows(
    data: LabelledWaveforms, *, samples: int, generator: torch.Generator
) -> LabelledWaveforms:
    """Cut one random window of ``samples`` from each trace; onsets move with the cut.

    Parameters
    ----------
    data
        Traces ``(n, 3, L)`` with ``L >= samples``.
    samples
        Output window length.
    generator
        Source of the random offsets.

    Returns
    -------
    LabelledWaveforms
        ``(n, 3, samples)``; onsets outside the window become NaN.
    """
    n, _, length = data.waveforms.shape
    if length < samples:
        raise InputError(None, f"traces of {length} samples are shorter than windows of {samples}")
    start = torch.randint(0, length - samples + 1, (n,), generator=generator)
    idx = start[:, None] + torch.arange(samples)
    idx = idx[:, None, :].expand(n, 3, samples).to(data.waveforms.device)
    w = torch.gather(data.waveforms, 2, idx)
    p = data.p_sample - start.to(data.p_sample.dtype)
    s = data.s_sample - start.to(data.s_sample.dtype)
    p = torch.where((p >= 0) & (p < samples), p, torch.full_like(p, float("nan")))
    s = torch.where((s >= 0) & (s < samples), s, torch.full_like(s, float("nan")))
    return LabelledWaveforms(w, p, s, data.sampling_rate)


def augment(x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Field-like corruptions of normalised windows, then normalised again.

    Per window, independently: polarity flip (50 %), extra Gaussian noise (30 %), gain
    mismatch between components (0.5-2x, 20 %), a single reversed component (5 %),
    clipping at 20-80 % of the peak (10 %, a saturated digitiser), a lost horizontal
    (5 %) or both horizontals (3 %, a vertical-only station), a zeroed gap of up to 5 %
    of the window (10 %).

    Parameters
    ----------
    x
        ``(batch, 3, samples)`` normalised windows.
    generator
        CPU generator (randomness is drawn on CPU, then moved to ``x``'s device).

    Returns
    -------
    torch.Tensor
        Augmented windows, same shape, normalised (`normalize`); onsets are unchanged.
    """
    b, c, n = x.shape

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(x.device, x.dtype)

    sign = torch.where(rand(b, 1, 1) < 0.5, -1.0, 1.0).to(x.dtype)
    noise = torch.randn(b, c, n, generator=generator).to(x.device, x.dtype)
    level = (rand(b, 1, 1) < 0.3) * rand(b, 1, 1) * 0.1
    gain = torch.where(rand(b, 1, 1) < 0.2, 2.0 ** (2 * rand(b, c, 1) - 1), 1.0)
    flip_one = (rand(b, 1, 1) < 0.05) & (torch.arange(c, device=x.device)[None, :, None]
                                         == (rand(b, 1, 1) * c).long())  # fmt: skip
    gain = torch.where(flip_one, -gain, gain)
    keep = torch.ones(b, c, 1, device=x.device, dtype=x.dtype)
    drop = rand(b) < 0.05  # lose one horizontal, as on a station with a dead channel
    which = 1 + (rand(b) < 0.5).long()
    keep[drop, which[drop], 0] = 0.0
    vertical_only = rand(b) < 0.03
    keep[vertical_only, 1:, 0] = 0.0
    y = sign * keep * gain * (x + level * noise)
    clip = torch.where(rand(b, 1, 1) < 0.1, 0.2 + 0.6 * rand(b, 1, 1), float("inf"))
    peak = y.abs().amax(dim=(-2, -1), keepdim=True)
    y = torch.maximum(torch.minimum(y, clip * peak), -clip * peak)
    t = torch.arange(n, device=x.device)
    g0 = (rand(b, 1, 1) * n).long()
    glen = (rand(b, 1, 1) * 0.05 * n).long() * (rand(b, 1, 1) < 0.1)
    gap = (t >= g0) & (t < g0 + glen)
    return normalize(torch.where(gap, 0.0, y))


def phase_labels(
    p_sample: torch.Tensor, s_sample: torch.Tensor, samples: int, *, sigma: float = 20.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample training targets: Gaussian P and S (width ``sigma``), noise, detection.

    Parameters
    ----------
    p_sample, s_sample
        ``(batch,)`` onsets in samples (NaN: none).
    samples
        Window length.
    sigma
        Standard deviation of the Gaussian labels in samples (20, as SeisBench and SeisLM).

    Returns
    -------
    phase
        ``(batch, 3, samples)`` P, S, noise probabilities (noise = 1 - P - S, clipped).
    detection
        ``(batch, samples)`` 1 from the P onset to ``S + 1.4 (S - P)`` (EQTransformer's
        event window), else 0.
    """
    t = torch.arange(samples, dtype=torch.float64, device=p_sample.device)

    def gauss(o: torch.Tensor) -> torch.Tensor:
        g = torch.exp(-0.5 * ((t - o[:, None]) / sigma) ** 2)
        return torch.nan_to_num(g, nan=0.0)

    p, s = gauss(p_sample), gauss(s_sample)
    noise = (1.0 - p - s).clamp(min=0.0)
    phase = torch.stack([p, s, noise], dim=1).float()
    end = s_sample + 1.4 * (s_sample - p_sample)
    det = (t >= p_sample[:, None]) & (t <= end[:, None])
    return phase, det.float()

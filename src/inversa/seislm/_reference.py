"""Real event recordings shipped with ObsPy and a classical reference P picker (AIC)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from inversa.core.optional import require
from inversa.seislm._stream import StationWaveform, split_stations

__all__ = ["aic_pick", "real_event_records"]

# ObsPy files with real local/regional events (never used as noise, see `_noise`).
_EVENT_FILES = (
    "io/seisan/tests/data/2005-07-23-1452-04S.CER___030",
    "io/seisan/tests/data/90010319.1320J90",
    "io/seisan/tests/data/9701-30-1048-54S.MVO_21_1",
)


def real_event_records() -> tuple[list[tuple[str, StationWaveform]], list[tuple[str, str]]]:
    """Three-component real event recordings available offline (ObsPy's own data).

    ``obspy.read()`` (BW.RJOB, a local event in Bavaria, 100 Hz), a regional event at
    CER (SEISAN test file, 150 Hz broadband), one at JMI (Jan Mayen, 50 Hz) and a
    Montserrat volcano-tectonic event on the MVO network (75.19 Hz; 5 complete stations,
    3 with one or two components only). All are resampled to 100 Hz.

    Returns
    -------
    (records, incomplete)
        ``(label, StationWaveform)`` per complete station, ``(seed_id, problem)`` for the
        stations that cannot be used.
    """
    obspy = require("obspy", extra="seismic")
    root = Path(obspy.__file__).parent
    records, incomplete = [], []
    streams = [("obspy.read()", obspy.read())]
    for rel in _EVENT_FILES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            streams.append((Path(rel).name, obspy.read(str(root / rel))))
    for name, st in streams:
        good, bad = split_stations(st, path=name)
        records += [(f"{name}:{w.station}", w) for w in good]
        incomplete += bad
    return records, incomplete


def aic_pick(
    z: np.ndarray, sampling_rate: float, *, band: tuple[float, float] = (1.0, 20.0)
) -> float:
    """Pick a reference P onset (s after the start): Maeda's AIC on the band-passed Z.

    The vertical is band-passed (causal Butterworth, 4 poles: a zero-phase filter would
    put filtered energy before the onset), and the onset is the
    minimum of ``AIC(k) = k log var(x[:k]) + (n - k - 1) log var(x[k:])`` over the samples
    before the envelope maximum (a single-event record: the P onset splits it into a
    quiet and a loud part). The record is detrended and its first and last second tapered
    first, and the envelope maximum is sought after the filter's start-up transient.

    Parameters
    ----------
    z
        ``(samples,)`` vertical component.
    sampling_rate
        Hz.
    band
        Band-pass corners in Hz (the upper one capped at 0.4 x the sampling rate).
    """
    from scipy.signal import butter, hilbert, sosfilt

    hi = min(band[1], 0.4 * sampling_rate)
    sos = butter(4, (band[0], hi), btype="band", fs=sampling_rate, output="sos")
    x = np.asarray(z, dtype=np.float64) - np.mean(z)
    x = x - np.linspace(x[0], x[-1], len(x))  # no step at the ends for the filter
    taper = min(len(x) // 4, int(sampling_rate))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, taper))
    x[:taper] *= ramp
    x[len(x) - taper :] *= ramp[::-1]
    x = sosfilt(sos, x)
    env = np.abs(hilbert(x))
    smooth = np.convolve(env, np.ones(25) / 25, mode="same")
    skip = min(len(x) // 4, 2 * taper)  # the filter's start-up transient
    end = min(len(x), skip + int(np.argmax(smooth[skip:])) + int(2 * sampling_rate))
    seg = x[:end]
    n = len(seg)
    margin = max(10, int(0.5 * sampling_rate))
    if n <= 2 * margin:
        return float(np.argmax(np.abs(seg))) / sampling_rate
    c1 = np.cumsum(seg**2)
    c2 = np.cumsum(seg[::-1] ** 2)[::-1]
    k = np.arange(margin, n - margin)
    var1 = c1[k - 1] / k
    var2 = c2[k] / (n - k)
    aic = k * np.log(var1 + 1e-30) + (n - k - 1) * np.log(var2 + 1e-30)
    return float(k[np.argmin(aic)]) / sampling_rate

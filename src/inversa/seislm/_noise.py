"""Real seismic noise windows from the recordings that ship with ObsPy (offline, no events).

The bank is a few hundred kB of 30 s, 100 Hz three-component windows cut from ObsPy's own
test recordings (broadband, short-period, geophone and borehole sensors in Germany, Japan,
Kazakhstan, New Zealand, the USA and Alaska), with the minutes of any visible event
removed. It is built once by `build_noise_bank` (shipped in ``data/``, see
``data/PROVENANCE.md``) and loaded by `load_noise_bank`. The recordings used to check the
picker on real events (`REAL_EVENT_FILES`) are never a noise source.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.io import atomic_write
from inversa.core.optional import require

__all__ = [
    "NOISE_SOURCES",
    "REAL_EVENT_FILES",
    "NoiseBank",
    "build_noise_bank",
    "load_noise_bank",
    "noise_bank_path",
]

WINDOW = 3001  # samples at 100 Hz
_RATE = 100.0

# (file under the installed obspy package, channel glob, kind): "3c" = the three channels of
# one sensor over the same time span; "1c" = single channels, three pieces from different
# times of one channel make a window (real spectra, independent components).
NOISE_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("io/reftek/tests/data/104800000_000093F8", "*", "3c"),
    ("io/win/tests/data/1070533011_1701260003.win", "*", "3c"),
    ("io/rg16/tests/data/three_chans_six_traces.fcnt", "*", "3c"),
    ("io/mseed/tests/data/dataquality-m.mseed", "*", "3c"),
    ("io/mseed/tests/data/fullseed.mseed", "*", "3c"),
    ("signal/tests/data/BW.UH3._.SHZ.D.2010.147.cut.slist.gz", "*", "1c"),
    ("signal/tests/data/BW.UH3._.SHN.D.2010.147.cut.slist.gz", "*", "1c"),
    ("signal/tests/data/BW.UH3._.SHE.D.2010.147.cut.slist.gz", "*", "1c"),
    ("signal/tests/data/CRLZ.HHZ.10.NZ.SAC", "*", "1c"),
    ("io/mseed/tests/data/timingquality.mseed", "*", "1c"),
    ("clients/fdsn/tests/data/dataselect_example_wildcards.mseed", "*", "1c"),
    *((f"io/win/tests/data/10030302.{i:02d}", "*", "1c") for i in range(11)),
)

# Real event recordings used only for evaluation (never cut into noise windows).
REAL_EVENT_FILES: tuple[str, ...] = (
    "core/data/example.npz (obspy.read(): BW.RJOB, 2009-08-24)",
    "io/seisan/tests/data/2005-07-23-1452-04S.CER___030",
    "io/seisan/tests/data/90010319.1320J90",
    "io/seisan/tests/data/9701-30-1048-54S.MVO_21_1",
)


@dataclass(frozen=True)
class NoiseBank:
    """Real noise windows.

    Attributes
    ----------
    waveforms
        ``(n, 3, 3001)`` float32, each component demeaned and of unit standard deviation.
    band_hz
        ``(n,)`` upper frequency the source recorded (0.45 x its sampling rate, at most 45 Hz):
        a synthetic signal put under this noise is low-passed there.
    sources
        ``(n,)`` index into `NOISE_SOURCES` of each window.
    """

    waveforms: torch.Tensor
    band_hz: torch.Tensor
    sources: torch.Tensor

    def __len__(self) -> int:
        return self.waveforms.shape[0]


def noise_bank_path() -> Path:
    """Path of the shipped noise bank (``inversa/seislm/data/real_noise.npz``)."""
    return Path(str(resources.files("inversa.seislm") / "data" / "real_noise.npz"))


def _quiet(x: np.ndarray) -> bool:
    """No event in a piece: the 1 s RMS envelope stays within 4x its median and no spike."""
    env = np.sqrt(np.convolve(x**2, np.ones(100) / 100, mode="valid"))
    med = np.median(env) + 1e-20
    return bool(env.max() < 4.0 * med and np.abs(x).max() < 10.0 * x.std())


def _pieces(data: np.ndarray) -> list[np.ndarray]:
    """``(c, WINDOW)`` pieces of a ``(c, n)`` 100 Hz record, overlapping by half."""
    hop = WINDOW // 2
    return [data[:, s : s + WINDOW] for s in range(0, data.shape[1] - WINDOW + 1, hop)]


def _prepare(tr) -> tuple[np.ndarray, float]:
    """One trace: float64, demeaned, detrended, resampled to 100 Hz; its band limit."""
    rate = float(tr.stats.sampling_rate)
    tr = tr.copy()
    tr.data = tr.data.astype(np.float64)
    tr.detrend("linear")
    if abs(rate - _RATE) > 1e-6:
        if rate > _RATE:
            tr.filter("lowpass", freq=0.45 * _RATE, corners=8, zerophase=True)
        tr.resample(_RATE)
    return np.asarray(tr.data, dtype=np.float64), min(0.45 * rate, 0.45 * _RATE)


def build_noise_bank(
    path: str | os.PathLike[str] | None = None, *, force: bool = False
) -> tuple[Path, list[str]]:
    """Cut the noise bank from ObsPy's shipped recordings and write it (``.npz``).

    Every source in `NOISE_SOURCES` is detrended, resampled to 100 Hz and cut into
    30.01 s pieces overlapping by half; a piece whose 1 s RMS envelope exceeds 4x its median
    or holds a spike (> 10 standard deviations) is dropped (events, glitches). Single
    channels of one station (``1c`` sources, pooled over files of the same station) are
    grouped three by three.

    Parameters
    ----------
    path
        Output ``.npz``; default the shipped file.
    force
        Overwrite.

    Returns
    -------
    (path, provenance)
        The written file and one line per source (file, channels, span, windows kept).
    """
    obspy = require("obspy", extra="seismic")
    root = Path(obspy.__file__).parent
    out = noise_bank_path() if path is None else Path(path)
    waves, bands, srcs, lines = [], [], [], []
    pooled: dict[str, list[tuple[np.ndarray, float, int]]] = {}
    for k, (rel, chan, kind) in enumerate(NOISE_SOURCES):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            st = obspy.read(str(root / rel)).select(channel=chan)
        st.merge(method=1, fill_value=0)
        kept = 0
        if kind == "3c":
            traces = sorted(st, key=lambda t: t.stats.channel)[-3:]
            prepared = [_prepare(tr) for tr in traces]
            n = min(len(d) for d, _ in prepared)
            data = np.stack([d[:n] for d, _ in prepared])
            band = min(b for _, b in prepared)
            if data.shape[1] < WINDOW:  # short record: mirror-extend (noise has no arrow)
                data = np.concatenate([data, data[:, ::-1]], axis=1)[:, :WINDOW]
            for piece in _pieces(data):
                if all(_quiet(c) for c in piece):
                    waves.append(piece)
                    bands.append(band)
                    srcs.append(k)
                    kept += 1
        else:
            pool = pooled.setdefault(st[0].stats.station, [])
            for tr in st:
                d, band = _prepare(tr)
                quiet = [(p[0], band, k) for p in _pieces(d[None]) if _quiet(p[0])]
                pool += quiet
                kept += len(quiet)
        ids = ",".join(sorted({tr.id for tr in st}))
        span = f"{min(t.stats.starttime for t in st)} - {max(t.stats.endtime for t in st)}"
        what = "window(s)" if kind == "3c" else "single-channel piece(s)"
        lines.append(f"{rel} | {ids} | {span} | {kind} | {kept} {what}")
    for singles in pooled.values():  # three pieces of one station -> one window
        for j in range(0, len(singles) - 2, 3):
            waves.append(np.stack([s for s, _, _ in singles[j : j + 3]]))
            bands.append(min(b for _, b, _ in singles[j : j + 3]))
            srcs.append(singles[j][2])
    if not waves:
        raise InputError(None, "no quiet noise windows found in ObsPy's recordings")
    arr = np.stack(waves)
    arr = arr - arr.mean(-1, keepdims=True)
    arr = arr / (arr.std(-1, keepdims=True) + 1e-20)
    with atomic_write(out, force=force) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            waveforms=arr.astype(np.float16),
            band_hz=np.asarray(bands, np.float32),
            sources=np.asarray(srcs, np.int16),
        )
    return out, lines


def load_noise_bank(path: str | os.PathLike[str] | None = None) -> NoiseBank:
    """Read a noise bank (default: the shipped one)."""
    path = noise_bank_path() if path is None else Path(path)
    if not path.is_file():
        raise InputError(path, "noise bank not found (build it with build_noise_bank)")
    with np.load(path) as z:
        w = torch.from_numpy(z["waveforms"].astype(np.float32))
        return NoiseBank(w, torch.from_numpy(z["band_hz"]), torch.from_numpy(z["sources"]))

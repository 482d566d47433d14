"""Synthetic labelled local earthquakes: P and S arrivals, coda and noise, exact onsets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from inversa.core.errors import InputError

__all__ = ["LabelledWaveforms", "SyntheticConfig", "synthetic_events"]

# Crustal velocities (km/s): the S-P delay grows by d * (1/VS - 1/VP) ~ 0.12 s per km.
_VP = 6.0
_VS = _VP / 1.73


@dataclass(frozen=True)
class LabelledWaveforms:
    """Three-component windows with their P and S onsets.

    Attributes
    ----------
    waveforms
        ``(n, 3, samples)`` float32, components in Z, N, E order.
    p_sample, s_sample
        ``(n,)`` float64 onset sample indices; NaN where the window holds no such phase.
    sampling_rate
        Samples per second.
    """

    waveforms: torch.Tensor
    p_sample: torch.Tensor
    s_sample: torch.Tensor
    sampling_rate: float = 100.0

    def __len__(self) -> int:
        return self.waveforms.shape[0]

    def subset(self, index: torch.Tensor | slice) -> LabelledWaveforms:
        """Select windows by ``index`` (a slice, integer or boolean tensor)."""
        return LabelledWaveforms(
            self.waveforms[index], self.p_sample[index], self.s_sample[index], self.sampling_rate
        )


@dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """Parameters of the synthetic local-event generator.

    Attributes
    ----------
    samples
        Window length in samples.
    sampling_rate
        Samples per second.
    noise_fraction
        Fraction of windows that hold noise only (for detection).
    distance_km
        Range of hypocentral distances (drawn log-uniformly); the S-P delay is
        ``d (1/vs - 1/vp)``.
    snr
        Range of P peak amplitude over noise standard deviation (log-uniform).
    corner_hz
        Range of the P corner frequency (log-uniform); S has a corner 1.7x lower.
    s_to_p
        Range of the S over P amplitude ratio (log-uniform).
    microseism
        Range of the synthetic microseism over the high-frequency floor (log-uniform;
        broadband stations in storms reach 30).
    real_noise
        Fraction of windows whose noise is a real noise window (`load_noise_bank`: random
        crop, time reversal and sign per component); their signal is low-passed at the
        source's band limit, as recorded by that instrument.
    response
        Random instrument response on the signal: a 1-4.5 Hz geophone high-pass (30 %),
        a broadband (70 %); and a random anti-alias low-pass at 15-45 Hz (30 %).
    p_rise_s
        Range of the P envelope's rise time (s, uniform): ``1 - exp(-t / rise)`` after
        the onset; 0.01 is impulsive, 0.5 an emergent onset whose first half second is
        buried in noise (volcano-tectonic and regional events).
    """

    samples: int = 3001
    sampling_rate: float = 100.0
    noise_fraction: float = 0.2
    distance_km: tuple[float, float] = (3.0, 150.0)
    snr: tuple[float, float] = (2.0, 100.0)
    corner_hz: tuple[float, float] = (0.8, 15.0)
    s_to_p: tuple[float, float] = (0.7, 8.0)
    microseism: tuple[float, float] = (0.1, 30.0)
    real_noise: float = 0.0
    response: bool = True
    p_rise_s: tuple[float, float] = (0.01, 0.15)

    def __post_init__(self) -> None:
        if self.samples < 200:
            raise InputError(None, f"synthetic windows need >= 200 samples, got {self.samples}")
        if not 0.0 <= self.noise_fraction <= 1.0:
            raise InputError(None, f"noise_fraction must be in [0, 1], got {self.noise_fraction}")
        if not 0.0 <= self.real_noise <= 1.0:
            raise InputError(None, f"real_noise must be in [0, 1], got {self.real_noise}")
        if not 0.0 < self.p_rise_s[0] <= self.p_rise_s[1]:
            raise InputError(None, f"p_rise_s must be 0 < low <= high, got {self.p_rise_s}")


def _coloured(rng: np.random.Generator, n: int, spectrum: np.ndarray) -> np.ndarray:
    """Gaussian noise of length ``n`` shaped by an amplitude ``spectrum`` (rfft bins)."""
    white = np.fft.rfft(rng.standard_normal(n))
    out = np.fft.irfft(white * spectrum, n)
    return out / (out.std() + 1e-12)


def _phase(
    rng: np.random.Generator,
    n: int,
    onset: int,
    freqs: np.ndarray,
    *,
    fc: float,
    tstar: float,
    rise_s: float,
    coda_s: float,
    fs: float,
) -> np.ndarray:
    """One arrival on 3 components: source spectrum x attenuation x envelope, zero before onset."""
    # Brune omega-squared source in velocity (flat-to-f below fc, f^-1 above) and t* attenuation.
    spec = (freqs / fc) / (1.0 + (freqs / fc) ** 2) * np.exp(-np.pi * freqs * tstar)
    t = (np.arange(n) - onset) / fs
    envelope = np.where(t >= 0, (1.0 - np.exp(-np.maximum(t, 0) / rise_s)), 0.0)
    envelope *= np.exp(-np.maximum(t, 0) / coda_s)
    # a coherent part (the direct wave) plus scattered energy that dominates the coda
    common = _coloured(rng, n, spec)
    scattered = np.stack([_coloured(rng, n, spec) for _ in range(3)])
    late = 1.0 - np.exp(-np.maximum(t, 0) / (3 * rise_s + 0.3))
    return envelope * (common[None] * (1.0 - 0.6 * late) + 0.6 * late * scattered)


def _noise(
    rng: np.random.Generator, n: int, freqs: np.ndarray, micro_range: tuple[float, float]
) -> np.ndarray:
    """Ambient noise: a microseism peak near 0.2 Hz plus a coloured high-frequency floor."""
    micro = np.exp(-0.5 * ((freqs - rng.uniform(0.12, 0.3)) / 0.06) ** 2)
    floor = 1.0 / (1.0 + (freqs / rng.uniform(2.0, 15.0)) ** rng.uniform(1.0, 2.5))
    ratio = 10 ** rng.uniform(*np.log10(micro_range))  # microseism over floor
    return np.stack([_coloured(rng, n, ratio * micro + floor) for _ in range(3)])


def _real_noise(rng: np.random.Generator, n: int, bank) -> tuple[np.ndarray, float]:
    """Draw a real noise window of ``n`` samples (crop, reversal, signs); its band limit."""
    k = int(rng.integers(len(bank)))
    w = bank.waveforms[k].numpy().astype(np.float64)
    if w.shape[1] < n:  # mirror-extend: noise has no arrow of time
        reps = -(-n // w.shape[1])
        w = np.concatenate([w if i % 2 == 0 else w[:, ::-1] for i in range(reps)], axis=1)
    s = int(rng.integers(w.shape[1] - n + 1))
    w = w[:, s : s + n]
    if rng.uniform() < 0.5:
        w = w[:, ::-1]
    w = w * rng.choice([-1.0, 1.0], size=(3, 1))
    w = w - w.mean(-1, keepdims=True)
    return w / (w.std() + 1e-12), float(bank.band_hz[k])


def _response(rng: np.random.Generator, freqs: np.ndarray, band_hz: float | None) -> np.ndarray:
    """Random instrument amplitude response (geophone or broadband, anti-alias low-pass)."""
    resp = np.ones_like(freqs)
    if rng.uniform() < 0.3:  # short-period geophone: second-order high-pass at 1-4.5 Hz
        f0 = rng.uniform(1.0, 4.5)
        resp *= (freqs / f0) ** 2 / np.sqrt((1 - (freqs / f0) ** 2) ** 2 + (1.4 * freqs / f0) ** 2)
    top = band_hz if band_hz is not None else (rng.uniform(15, 45) if rng.uniform() < 0.3 else 0)
    if top:
        resp *= 1.0 / np.sqrt(1.0 + (freqs / top) ** 16)
    return resp


def _response_band(freqs: np.ndarray, band_hz: float) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + (freqs / band_hz) ** 16)


def synthetic_events(
    n: int, *, config: SyntheticConfig = SyntheticConfig(), seed: int = 0
) -> LabelledWaveforms:
    """Generate ``n`` labelled three-component local-event windows.

    Each event window holds a P arrival (Brune source spectrum with corner frequency in
    ``config.corner_hz``, t* attenuation, impulsive-to-emergent rise, exponential coda),
    strongest on Z, and an S arrival ``d (1/vs - 1/vp)`` seconds later (1.7x lower corner
    frequency, ``config.s_to_p`` times the P amplitude, strongest on the horizontals),
    through a random instrument response, over microseism plus high-frequency noise or a
    real noise window. The signal is exactly zero before each onset, so the labels are
    exact. A fraction ``config.noise_fraction`` of the windows hold noise only (onsets NaN).

    Parameters
    ----------
    n
        Number of windows.
    config
        Window length, sampling rate and parameter ranges.
    seed
        Seed of the generator; the same seed gives the same windows.

    Returns
    -------
    LabelledWaveforms
        ``waveforms`` of shape ``(n, 3, config.samples)`` (Z, N, E), unnormalised.
    """
    if n < 0:
        raise InputError(None, f"number of windows must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    L, fs = config.samples, config.sampling_rate
    freqs = np.fft.rfftfreq(L, 1.0 / fs)
    data = np.zeros((n, 3, L), dtype=np.float32)
    p_out = np.full(n, np.nan)
    s_out = np.full(n, np.nan)
    slowness = 1.0 / _VS - 1.0 / _VP
    bank = None
    if config.real_noise > 0:
        from inversa.seislm._noise import load_noise_bank

        bank = load_noise_bank()
    for i in range(n):
        band = None
        if bank is not None and rng.uniform() < config.real_noise:
            noise, band = _real_noise(rng, L, bank)
        else:
            noise = _noise(rng, L, freqs, config.microseism)
        if rng.uniform() < config.noise_fraction:
            data[i] = noise
            continue
        # the S onset must fit in the window: cap the distance by the window length
        d_max = min(config.distance_km[1], 0.8 * L / fs / slowness)
        # log-uniform: near events (short S-P) are as common as distant ones
        lo = np.log(config.distance_km[0])
        d = float(np.exp(rng.uniform(lo, max(np.log(d_max), lo))))
        delay = round(d * slowness * fs)
        p = int(rng.integers(int(0.05 * L), max(int(0.9 * L) - delay, int(0.05 * L) + 1)))
        s = p + delay
        tt = d / _VP
        q = rng.uniform(150.0, 600.0)
        fc = 10 ** rng.uniform(*np.log10(config.corner_hz))
        coda = rng.uniform(0.3, 1.5) * (1.0 + d / 50.0)
        wp = _phase(
            rng, L, p, freqs, fc=fc, tstar=tt / q, rise_s=rng.uniform(*config.p_rise_s),
            coda_s=coda, fs=fs,
        )  # fmt: skip
        ws = _phase(
            rng, L, s, freqs, fc=fc / 1.7, tstar=tt * 1.73 / q, rise_s=rng.uniform(0.02, 0.3),
            coda_s=1.5 * coda, fs=fs,
        )  # fmt: skip
        inc = np.deg2rad(rng.uniform(5.0, 40.0))  # P incidence: near-vertical at the surface
        baz = rng.uniform(0.0, 2 * np.pi)
        p_pol = np.array([np.cos(inc), np.sin(inc) * np.cos(baz), np.sin(inc) * np.sin(baz)])
        s_az = rng.uniform(0.0, 2 * np.pi)
        s_pol = np.array([rng.uniform(0.1, 0.4), np.cos(s_az), np.sin(s_az)])
        # mostly-polarised direct waves; the scattered part spreads over the components
        wp = wp * (0.3 + 0.7 * np.abs(p_pol))[:, None] * np.sign(p_pol + 1e-9)[:, None]
        ws = ws * (0.3 + 0.7 * np.abs(s_pol))[:, None] * np.sign(s_pol + 1e-9)[:, None]
        amp_p = 10 ** rng.uniform(*np.log10(config.snr))
        signal = amp_p * wp + amp_p * 10 ** rng.uniform(*np.log10(config.s_to_p)) * ws
        if config.response or band is not None:
            resp = _response(rng, freqs, band) if config.response else _response_band(freqs, band)
            signal = np.fft.irfft(np.fft.rfft(signal, axis=-1) * resp, L, axis=-1)
            # a causal response would smear energy before the onset: keep the labels exact
            signal[:, :p] = 0.0
        data[i] = signal + noise
        p_out[i], s_out[i] = p, s
    return LabelledWaveforms(
        torch.from_numpy(data), torch.from_numpy(p_out), torch.from_numpy(s_out), fs
    )

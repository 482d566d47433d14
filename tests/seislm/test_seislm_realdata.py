"""Real noise bank, synthetic events under real noise, the AIC reference picker."""

import numpy as np
import pytest
import torch

from inversa.core.errors import InputError
from inversa.seislm import (
    NOISE_SOURCES,
    REAL_EVENT_FILES,
    SyntheticConfig,
    aic_pick,
    augment,
    build_noise_bank,
    highpass,
    load_noise_bank,
    noise_bank_path,
    synthetic_events,
)


def test_shipped_noise_bank_is_quiet_unit_noise_with_provenance():
    bank = load_noise_bank()
    assert len(bank) >= 30 and bank.waveforms.shape[1:] == (3, 3001)
    std = bank.waveforms.std(-1)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-2)
    assert set(bank.sources.tolist()) <= set(range(len(NOISE_SOURCES)))
    assert (bank.band_hz > 0).all() and (bank.band_hz <= 45).all()
    prov = (noise_bank_path().parent / "PROVENANCE.md").read_text()
    for rel, _, _ in NOISE_SOURCES:
        assert rel in prov
    # no evaluation recording is a noise source
    evaluated = {f.split(" ")[0] for f in REAL_EVENT_FILES}
    assert not evaluated & {rel for rel, _, _ in NOISE_SOURCES}
    with pytest.raises(InputError, match="not found"):
        load_noise_bank("/nonexistent/bank.npz")


def test_rebuilding_the_bank_reproduces_the_shipped_file(tmp_path):
    path, lines = build_noise_bank(tmp_path / "bank.npz")
    assert len(lines) == len(NOISE_SOURCES)
    assert torch.equal(load_noise_bank(path).waveforms, load_noise_bank().waveforms)


def test_real_noise_events_keep_exact_labels():
    cfg = SyntheticConfig(samples=1001, real_noise=1.0, noise_fraction=0.0, snr=(50, 60))
    d = synthetic_events(6, config=cfg, seed=4)
    assert torch.isfinite(d.waveforms).all()
    for i in range(6):
        p = int(d.p_sample[i])
        pre = d.waveforms[i, :, max(0, p - 50) : p].std()
        post = d.waveforms[i, :, p : p + 100].abs().amax()
        assert post > 5 * pre  # the signal starts at the labelled onset, not before
    with pytest.raises(InputError, match="real_noise"):
        SyntheticConfig(real_noise=1.5)


def test_augment_corruptions_are_seeded_and_normalised():
    x = torch.randn(64, 3, 500)
    a = augment(x, generator=torch.Generator().manual_seed(3))
    b = augment(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    peak = a.abs().amax(dim=(1, 2))
    assert torch.allclose(peak[peak > 0], torch.ones_like(peak[peak > 0]), atol=1e-4)


def test_aic_finds_the_onset_of_a_synthetic_arrival():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(3000)
    t = np.arange(3000 - 1200) / 100.0
    z[1200:] += 20 * np.sin(2 * np.pi * 5 * t) * np.exp(-t / 3)
    assert aic_pick(z, 100.0) == pytest.approx(12.0, abs=0.05)


def test_highpass_is_causal_chunkable_and_removes_microseism():
    x = torch.zeros(3, 4000, dtype=torch.float64) + 7.0
    x[:, 2000:] += torch.randn(3, 2000, generator=torch.Generator().manual_seed(0))
    y, _ = highpass(x, 1.0)
    assert y[:, :2000].abs().max() == 0  # causal: nothing before the onset
    a, state = highpass(x[:, :1500], 1.0)
    b, _ = highpass(x[:, 1500:], 1.0, state=state)
    assert torch.allclose(torch.cat([a, b], 1), y)
    t = torch.arange(20000, dtype=torch.float64) / 100
    micro, _ = highpass(torch.sin(2 * torch.pi * 0.2 * t)[None], 1.0)
    local, _ = highpass(torch.sin(2 * torch.pi * 10.0 * t)[None], 1.0)
    assert micro[0, 5000:].abs().max() < 0.05 and local[0, 5000:].abs().max() > 0.95
    same, _ = highpass(x, 0.0)
    assert same is x

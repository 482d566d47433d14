import numpy as np
import pytest
import torch

from inversa.core.errors import InputError
from inversa.seislm import (
    SyntheticConfig,
    augment,
    normalize,
    phase_labels,
    random_windows,
    read_seisbench,
    synthetic_events,
    write_seisbench,
)
from inversa.seislm._data import _seisbench_quiet
from inversa.seislm._synthetic import _phase

CFG = SyntheticConfig(samples=1001, noise_fraction=0.25)


def test_synthetic_is_seeded_and_labelled():
    a = synthetic_events(12, config=CFG, seed=5)
    b = synthetic_events(12, config=CFG, seed=5)
    c = synthetic_events(12, config=CFG, seed=6)
    assert a.waveforms.shape == (12, 3, 1001) and a.waveforms.dtype == torch.float32
    assert torch.equal(a.waveforms, b.waveforms) and not torch.equal(a.waveforms, c.waveforms)
    ev = ~torch.isnan(a.p_sample)
    assert 0 < ev.sum() < 12  # both events and noise windows at noise_fraction 0.25
    assert torch.equal(ev, ~torch.isnan(a.s_sample))
    assert (a.s_sample[ev] > a.p_sample[ev]).all() and (a.s_sample[ev] < 1001).all()


def test_phase_is_exactly_zero_before_onset():
    rng = np.random.default_rng(0)
    freqs = np.fft.rfftfreq(500, 0.01)
    w = _phase(rng, 500, 123, freqs, fc=5.0, tstar=0.01, rise_s=0.05, coda_s=1.0, fs=100.0)
    assert w.shape == (3, 500)
    assert np.all(w[:, :123] == 0) and np.all(np.abs(w[:, 124:130]).sum(0) > 0)


def test_s_minus_p_grows_with_distance():
    near = synthetic_events(
        30, config=SyntheticConfig(samples=1001, noise_fraction=0, distance_km=(3, 5)), seed=1
    )
    far = synthetic_events(
        30, config=SyntheticConfig(samples=1001, noise_fraction=0, distance_km=(40, 60)), seed=1
    )
    d_near = (near.s_sample - near.p_sample) / 100
    d_far = (far.s_sample - far.p_sample) / 100
    # S-P = d (1/vs - 1/vp) = 0.119 s/km
    assert d_near.max() < 0.7 and d_far.min() > 4.5


def test_seisbench_round_trip(tmp_path):
    import seisbench.data as sbd

    data = synthetic_events(6, config=CFG, seed=2)
    write_seisbench(data, tmp_path / "ds")
    back = read_seisbench(tmp_path / "ds")
    assert torch.allclose(back.waveforms, data.waveforms)
    assert torch.equal(torch.isnan(back.p_sample), torch.isnan(data.p_sample))
    ok = ~torch.isnan(data.p_sample)
    assert torch.equal(back.p_sample[ok], data.p_sample[ok])
    assert torch.equal(back.s_sample[ok], data.s_sample[ok])
    with _seisbench_quiet():  # SeisBench reads it itself
        ds = sbd.WaveformDataset(tmp_path / "ds", component_order="ZNE")
    assert len(ds) == 6 and np.allclose(ds.get_waveforms(0), data.waveforms[0].numpy())
    with pytest.raises(InputError, match="exists"):
        write_seisbench(data, tmp_path / "ds")
    with pytest.raises(InputError, match=r"metadata\.csv"):
        read_seisbench(tmp_path / "nothing")


def test_normalize_and_windows():
    data = synthetic_events(5, config=CFG, seed=3)
    x = normalize(data.waveforms.double())
    assert torch.allclose(x.mean(-1), torch.zeros(5, 3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(x.abs().amax((-2, -1)), torch.ones(5, dtype=torch.float64))
    assert torch.equal(normalize(torch.zeros(2, 3, 10)), torch.zeros(2, 3, 10))
    g = torch.Generator().manual_seed(0)
    w = random_windows(data, samples=400, generator=g)
    assert w.waveforms.shape == (5, 3, 400)
    for i in range(5):
        # find the window's offset: the cut must be a slice of the original trace
        start = [
            s for s in range(602) if torch.equal(data.waveforms[i, :, s : s + 400], w.waveforms[i])
        ]
        assert len(start) == 1
        p = data.p_sample[i] - start[0]
        expect = p if 0 <= p < 400 else torch.tensor(float("nan"), dtype=p.dtype)
        assert torch.equal(w.p_sample[i], expect) or (
            torch.isnan(expect) and torch.isnan(w.p_sample[i])
        )
    with pytest.raises(InputError):
        random_windows(data, samples=2000, generator=g)


def test_augment_keeps_shape_and_is_seeded():
    x = normalize(synthetic_events(8, config=CFG, seed=4).waveforms)
    a = augment(x, generator=torch.Generator().manual_seed(1))
    b = augment(x, generator=torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)


def test_phase_labels():
    p = torch.tensor([100.0, float("nan")], dtype=torch.float64)
    s = torch.tensor([300.0, float("nan")], dtype=torch.float64)
    phase, det = phase_labels(p, s, 1000, sigma=20)
    assert phase.shape == (2, 3, 1000) and det.shape == (2, 1000)
    assert phase[0, 0, 100] == 1 and phase[0, 1, 300] == 1
    assert torch.isclose(phase[0, 0, 120], torch.tensor(np.exp(-0.5), dtype=torch.float32))
    assert torch.allclose(phase[1, 2], torch.ones(1000))  # noise window
    assert det[0, 99] == 0 and det[0, 100] == 1 and det[0, 580] == 1 and det[0, 581] == 0
    assert det[1].sum() == 0

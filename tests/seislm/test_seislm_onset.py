"""Onset rules, onset SNR, held-out learning curves and the emergent-onset generator."""

import dataclasses

import pytest
import torch

from inversa.core.errors import InputError
from inversa.seislm import (
    CONFIGS,
    FinetuneConfig,
    SyntheticConfig,
    evaluate_picker,
    finetune,
    onset_snr_db,
    paired_onsets,
    synthetic_events,
)

MICRO = dataclasses.replace(
    CONFIGS["tiny"], conv_channels=16, hidden=16, layers=1, heads=2, ffn=32, pos_kernel=8,
    pos_groups=4, entries=16, codevector_dim=16, proj_dim=16,
)  # fmt: skip


def _bump(t: torch.Tensor, at: float, height: float) -> torch.Tensor:
    return height * torch.exp(-0.5 * ((t - at) / 10) ** 2)


def test_paired_onsets_prefer_a_p_that_precedes_an_s():
    t = torch.arange(1000.0)
    # window 0: a weak true P at 200, S at 400, and a stronger spurious P after the S
    p0 = _bump(t, 200, 0.4) + _bump(t, 700, 0.5)
    s0 = _bump(t, 400, 0.8)
    # window 1: the S curve has a spurious peak before the P
    p1 = _bump(t, 300, 0.9)
    s1 = _bump(t, 100, 0.5) + _bump(t, 600, 0.45)
    # window 2: no S at all: the plain argmax of the P curve
    p2 = _bump(t, 500, 0.7) + _bump(t, 800, 0.3)
    s2 = torch.zeros(1000)
    phase = torch.stack(
        [torch.stack([p0, s0]), torch.stack([p1, s1]), torch.stack([p2, s2])]
    )  # (3, 2, 1000)
    p, s = paired_onsets(phase)
    assert p.tolist() == [200, 300, 500]
    assert s.tolist() == [400, 600, 0]  # window 2: no S, the argmax of zeros
    # floor 1: the plain argmax of each curve
    p_plain, s_plain = paired_onsets(phase, floor=1.0)
    assert p_plain.tolist() == [700, 300, 500] and s_plain.tolist() == [400, 100, 0]


def test_onset_snr_db_known_ratio():
    x = (-1.0) ** torch.arange(2000.0).expand(2, 3, -1).clone()  # power 1
    x[0, :, 1000:] *= 10.0  # 20 dB louder from the onset on
    snr = onset_snr_db(x, torch.tensor([1000.0, float("nan")], dtype=torch.float64))
    assert snr[0].item() == pytest.approx(20.0, abs=1e-9)
    assert torch.isnan(snr[1])
    # an onset too close to the window start has no noise to compare with
    assert torch.isnan(onset_snr_db(x[:1], torch.tensor([5.0], dtype=torch.float64)))[0]


class _Late(torch.nn.Module):
    """P curve: a weak peak at the true P and a stronger one after the S (a coda burst)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        t = torch.arange(x.shape[-1], dtype=x.dtype)
        p = (_bump(t, 150, 0.4) + _bump(t, 500, 0.6)).expand(x.shape[0], -1)
        s = _bump(t, 400, 0.8).expand(x.shape[0], -1)
        return torch.stack([p, s, (1 - p - s).clamp(min=0)], dim=1)


def test_evaluate_picker_reports_argmax_and_paired_rmse():
    g = torch.Generator().manual_seed(1)
    x = 0.1 * torch.randn(4, 3, 600, generator=g)
    x[:, :, 150:] += torch.randn(4, 3, 450, generator=g)  # clear onsets (~20 dB)
    p = torch.full((4,), 150.0, dtype=torch.float64)
    s = torch.full((4,), 400.0, dtype=torch.float64)
    p[0] = s[0] = float("nan")
    x[0] = 0.1 * torch.randn(3, 600, generator=g)
    sc = evaluate_picker(_Late(), x, p, s)
    assert sc["p_rmse_s"] == pytest.approx(3.5)  # the argmax is the coda burst
    assert sc["p_rmse_paired_s"] == 0.0 and sc["p_abs_err_median_s"] == 0.0
    assert sc["p_outlier_fraction"] == 0.0
    assert sc["snr_fraction"] == 1.0 and sc["p_rmse_snr_s"] == 0.0
    assert sc["s_rmse_paired_s"] == 0.0


def test_finetune_logs_a_held_out_learning_curve():
    data = synthetic_events(12, config=SyntheticConfig(samples=401), seed=0)
    held = synthetic_events(6, config=SyntheticConfig(samples=401), seed=1)
    cfg = FinetuneConfig(steps=20, batch_size=2, samples=401, warmup=1, validate_every=10)
    _, result = finetune(data, model_config=MICRO, config=cfg, validation=held)
    val = [h for h in result.history if "val_p_rmse_s" in h]
    assert [h["step"] for h in val] == [10, 20]
    assert all(h["val_p_rmse_s"] >= 0 and h["val_p_rmse_paired_s"] >= 0 for h in val)
    with pytest.raises(InputError, match="multiple of 10"):
        FinetuneConfig(validate_every=15)


def test_p_rise_range_default_keeps_the_generator_and_emergent_onsets_are_slower():
    base = synthetic_events(4, config=SyntheticConfig(samples=600), seed=3)
    same = synthetic_events(4, config=SyntheticConfig(samples=600, p_rise_s=(0.01, 0.15)), seed=3)
    assert torch.equal(base.waveforms, same.waveforms)
    with pytest.raises(InputError, match="p_rise_s"):
        SyntheticConfig(p_rise_s=(0.0, 0.1))
    # the same events with long P rise times carry less energy in their first 0.2 s
    quiet = dict(samples=600, snr=(1e3, 1e3), noise_fraction=0.0, response=False)
    fast = synthetic_events(8, config=SyntheticConfig(**quiet, p_rise_s=(0.01, 0.01)), seed=4)
    slow = synthetic_events(8, config=SyntheticConfig(**quiet, p_rise_s=(0.5, 0.5)), seed=4)

    def early(d):
        return torch.stack(
            [d.waveforms[i, :, int(p) : int(p) + 20].pow(2).sum() for i, p in enumerate(d.p_sample)]
        )

    assert torch.equal(fast.p_sample, slow.p_sample)
    assert (early(slow) < 0.5 * early(fast)).all()

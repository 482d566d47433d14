import dataclasses

import obspy
import pytest
import torch

from inversa.core.errors import InputError
from inversa.seislm import (
    CONFIGS,
    SeisLMPicker,
    annotate,
    evaluate_picker,
    find_peaks,
    pick_waveform,
    roc_auc,
    stream_to_waveforms,
    write_picks,
)

MICRO = dataclasses.replace(
    CONFIGS["tiny"], conv_channels=16, hidden=16, layers=1, heads=2, ffn=32, pos_kernel=8,
    pos_groups=4, entries=16, codevector_dim=16, proj_dim=16,
)  # fmt: skip


class _Oracle(torch.nn.Module):
    """A 'picker' whose P/S curves peak where the true onsets are (tests the plumbing)."""

    def __init__(self, p: float, s: float) -> None:
        super().__init__()
        self.p, self.s = p, s
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        t = torch.arange(x.shape[-1], dtype=x.dtype)
        p = torch.exp(-0.5 * ((t - self.p) / 20) ** 2).expand(x.shape[0], -1)
        s = torch.exp(-0.5 * ((t - self.s) / 20) ** 2).expand(x.shape[0], -1)
        return torch.stack([p, s, (1 - p - s).clamp(min=0)], dim=1)


def test_roc_auc_known_values():
    y = torch.tensor([0, 0, 1, 1], dtype=torch.bool)
    assert roc_auc(torch.tensor([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert roc_auc(torch.tensor([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    assert roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), y) == 0.75
    assert roc_auc(torch.ones(4), y) == 0.5
    with pytest.raises(InputError):
        roc_auc(torch.ones(2), torch.ones(2, dtype=torch.bool))


def test_find_peaks():
    t = torch.arange(1000.0)
    prob = 0.9 * torch.exp(-0.5 * ((t - 200) / 20) ** 2) + 0.2 * torch.exp(
        -0.5 * ((t - 700) / 20) ** 2
    )
    assert [i for i, _ in find_peaks(prob, threshold=0.5)] == [200]
    assert [i for i, _ in find_peaks(prob, threshold=0.1)] == [200, 700]


def test_evaluate_with_an_oracle_is_perfect():
    n = 6
    x = torch.randn(n, 3, 600)
    p = torch.full((n,), 150.0, dtype=torch.float64)
    s = torch.full((n,), 400.0, dtype=torch.float64)
    p[:2] = s[:2] = float("nan")
    scores = evaluate_picker(_Oracle(150.0, 400.0), x, p, s)
    assert scores["p_rmse_s"] == 0 and scores["s_rmse_s"] == 0
    assert scores["p_rmse_detected_s"] == 0 and scores["p_detected"] == 1.0
    assert scores["recall"] == 1.0 and 0 < scores["precision"] < 1  # noise windows get picks too


def test_annotate_long_recording_and_picks_to_quakeml_and_csv(tmp_path):
    (w,) = stream_to_waveforms(obspy.read())
    picker = SeisLMPicker(MICRO).eval()
    phase, det = annotate(picker, w.data, window=1001, stride=500)
    assert phase.shape == (3, 3000) and det.shape == (3000,)
    assert torch.allclose(phase.sum(0), torch.ones(3000), atol=1e-5)
    picks = pick_waveform(_Oracle(250.0, 600.0), w, threshold=0.5)
    times = sorted((p.phase_hint, p.time - w.starttime) for p in picks)
    # windows of 3001 at stride 1500: the oracle peaks in the (only) window
    assert times == [("P", pytest.approx(2.5)), ("S", pytest.approx(6.0))]
    qml = write_picks(picks, tmp_path / "picks.xml")
    back = obspy.read_events(str(qml))[0].picks
    assert [(p.phase_hint, p.time) for p in back] == [(p.phase_hint, p.time) for p in picks]
    assert back[0].waveform_id.get_seed_string() == "BW.RJOB..EHZ"
    csv = write_picks(picks, tmp_path / "picks.csv").read_text().splitlines()
    assert csv[0] == "event,seed_id,phase,time,probability,uncertainty_s" and len(csv) == 3
    with pytest.raises(InputError, match="exists"):
        write_picks(picks, tmp_path / "picks.csv")
    with pytest.raises(InputError, match=r"\.csv"):
        write_picks(picks, tmp_path / "picks.txt")
    assert float(csv[1].split(",")[4]) == pytest.approx(1.0, abs=1e-3)

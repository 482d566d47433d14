"""``inversa bench cryolithe``: the issue's keys (slow), the wedge score and the figure."""

from __future__ import annotations

import json

import pytest
import torch

from inversa.bench.cryolithe import figures, wedge_correlation
from inversa.cli import main

KEYS = [
    f"{metric}_{m}{unit}{suffix}"
    for m in ("wbp", "sirt", "unet", "cryolithe", "cryolithe_wavelet")
    for metric, unit in (("psnr", "_db"), ("ssim", ""), ("fsc0143", "_A"))
    for suffix in ("", "_per_tomogram")
] + [
    "wedge_fsc_wbp",
    "wedge_fsc_cryolithe_wavelet",
    "psnr_unet_unseen_scheme_db",
    "psnr_cryolithe_unseen_scheme_db",
    "seconds_256",
    "points_per_s",
    "model_parameters",
    "training_seconds",
]


@pytest.mark.slow
def test_quick_cryolithe_bench_writes_the_issue_keys(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "cryolithe", "--quick", "--json", str(out)]) == 0
    values = json.loads(out.read_text())
    for key in KEYS:
        assert key in values, key
    assert values["points_per_s"] > 0


def test_wedge_correlation_sees_only_the_missing_wedge():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(16, 16, 16, generator=g, dtype=torch.float64)
    assert wedge_correlation(ref, ref, tilt_max=60) == pytest.approx(1.0)
    # a volume equal to ref outside the wedge and independent inside it scores about 0
    other = torch.randn(16, 16, 16, generator=g, dtype=torch.float64)
    from inversa.core.fourier import frequency_grid

    k = frequency_grid((16, 16, 16), rfft=True, dtype=torch.float64)
    wedge = torch.rad2deg(torch.atan2(k[..., 2].abs(), k[..., 0].abs())) > 60
    mixed = torch.fft.irfftn(
        torch.where(wedge, torch.fft.rfftn(other), torch.fft.rfftn(ref)), s=(16, 16, 16)
    )
    assert abs(wedge_correlation(mixed, ref, tilt_max=60)) < 0.15
    # a wider cone (beyond 30 degrees) holds the unchanged 30..60 band too: in between
    assert 0.3 < wedge_correlation(mixed, ref, tilt_max=30) < 0.8


def test_figure_from_saved_slices(tmp_path):
    plane = [[0.0, 1.0], [1.0, 0.0]]
    values = {"slices": {m: {"xy": plane, "xz": plane} for m in ("truth", "wbp", "cryolithe")}}
    (png,) = figures(values, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figures({}, tmp_path) == []

"""``inversa bench cryolithe``: the issue's keys (slow), the wedge score and the figure."""

from __future__ import annotations

import json
import math

import pytest
import torch

from inversa.bench.cryolithe import figures, fsc_resolution_without_dc, wedge_correlation
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
    "psnr_cryolithe_wavelet_unseen_scheme_db",
    "seconds_256",
    "points_per_s",
    "model_parameters",
    "model_parameters_wavelet",
    "training_seconds",
    "training_seconds_wavelet",
]


@pytest.mark.slow
def test_quick_cryolithe_bench_writes_the_issue_keys(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "cryolithe", "--quick", "--json", str(out)]) == 0
    values = json.loads(out.read_text())
    for key in KEYS:
        assert key in values, key
    assert values["points_per_s"] > 0
    assert values["output_streamed_to_disk"] is True and values["peak_mib_32"] >= 0
    # the keys are medians over the repeats (one in a quick run), every run listed
    assert values["memory_repeats"] == 1 and values["peak_mib_48_runs"] == [values["peak_mib_48"]]
    assert values["unet_budget_clock"] in ("cpu", "wall")
    assert values["voxels_per_s"] == pytest.approx(8 * values["points_per_s"], rel=1e-3)
    # keys without "wavelet" are the pixel head's: its unseen-scheme PSNR is the mean of the
    # pixel head's per-scheme values on the unseen schemes, the wavelet head's likewise
    for m, key in (
        ("cryolithe", "psnr_cryolithe_unseen_scheme_db"),
        ("cryolithe_wavelet", "psnr_cryolithe_wavelet_unseen_scheme_db"),
    ):
        by_scheme = values["psnr_by_scheme_db"]
        unseen = [x for k, x in by_scheme.items() if k.startswith(f"{m}_unseen")]
        assert unseen and values[key] == pytest.approx(sum(unseen) / len(unseen), abs=1e-3)
    assert values["speed_head"] == "wavelet" and set(values["heads"]) == {"pixel", "wavelet"}
    for key in KEYS:  # no inf / NaN means (the DC shell is left out of the FSC)
        if key.startswith(("psnr", "ssim", "fsc0143")) and not key.endswith("tomogram"):
            assert math.isfinite(values[key]), key


def test_fsc_resolution_leaves_out_the_zero_frequency_shell():
    # shell s is s / 32 cycles per voxel; 4 A voxels
    start_negative = torch.tensor([-1.0, 0.9, 0.5, 0.1, 0.0] + [0.0] * 12)
    value = fsc_resolution_without_dc(start_negative, voxel=4.0, box=32)
    # crosses 0.143 between shell 2 (0.5) and 3 (0.1): 0.8925 of the way
    assert value == pytest.approx(4.0 * 32 / (2 + (0.5 - 0.143) / 0.4), rel=1e-6)
    nothing = fsc_resolution_without_dc(torch.tensor([1.0, 0.0, 0.0]), voxel=4.0, box=32)
    assert math.isfinite(nothing) and nothing == pytest.approx(4.0 * 32 / (0.857 / 1.0))
    assert fsc_resolution_without_dc(torch.ones(17), voxel=4.0, box=32) == 8.0


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

"""``inversa bench lofi``: the issue's keys (slow), the figures from saved values, the probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inversa.cli import main

MODELS = ("lofi", "unet", "fbp")
TASKS = ("sparse_ct", "limited_ct", "lowdose_ct", "denoise")
KEYS = (
    [
        f"{metric}_{m}_{t}_{split}"
        for metric in ("psnr", "ssim")
        for m in MODELS
        for t in TASKS
        for split in ("ind", "ood")
    ]
    + [
        f"{kind}_{m}_{s}"
        for kind in ("peak_mib", "seconds_per_step")
        for m in ("lofi", "unet")
        for s in (256, 512, 1024)
    ]
    + ["psnr_pnp_lofi_db", "psnr_pnp_tv_db", "psnr_tv_db", "training_images"]
)
QUICK = Path(__file__).parents[2] / "benchmarks" / "results" / "lofi_quick.json"


@pytest.mark.slow  # trains 8 small networks and measures 1024^2 steps: about a minute
def test_quick_lofi_bench_writes_the_issue_keys(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "lofi", "--quick", "--json", str(out)]) == 0
    values = json.loads(out.read_text())
    for key in KEYS:
        assert key in values, key
        assert isinstance(values[key], (int, float)), key
    assert values["training_images"] <= 10


def test_saved_quick_results_hold_the_issue_keys_and_redraw(tmp_path):
    values = json.loads(QUICK.read_text())
    for key in KEYS:
        assert key in values, key
    figs = tmp_path / "figs"
    assert main(["bench", "lofi", "--from-json", str(QUICK), "--figures", str(figs)]) == 0
    names = sorted(p.name for p in figs.iterdir())
    assert names == ["lofi_memory.png", "lofi_pnp.png", "lofi_real_images.png"]


def test_image_packing_round_trip():
    from inversa.bench.lofi import _pack, _unpack

    img = torch.rand(7, 9, generator=torch.Generator().manual_seed(0))
    back = _unpack(json.loads(json.dumps(_pack(img))))
    assert back.shape == (7, 9)
    assert float(abs(torch.from_numpy(back) - img).max()) <= 0.5 / 255 + 1e-6


def test_probe_training_step_measures_its_own_growth():
    from inversa.bench._harness import SpawnedProbe
    from inversa.bench.lofi import _train_step_point
    from inversa.lofi import quick_config

    cfg = quick_config()
    torch.ones(8).sum()  # torch's thread pool is up: a fork here could deadlock, a spawn not
    with SpawnedProbe() as probe:
        small = probe(_train_step_point, "unet", 32, cfg, 0)
        large = probe(_train_step_point, "unet", 192, cfg, 0)
    assert small[0] >= 0 and small[1] > 0
    # 36x the pixels: the U-Net's activations (about 9 MiB) must show in the child's peak.
    assert large[0] > small[0] + 3.0

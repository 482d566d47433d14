"""``inversa bench icetide``: the quick run writes the issue's keys; figures redraw from JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inversa.bench.icetide import LEVELS, METHODS
from inversa.cli import main

KEYS = [
    f"{key}_{method}_{level}"
    for key in ("shift_err_median_px", "rotation_err_deg", "fsc0143_A", "fsc05_A")
    for method in METHODS
    for level in LEVELS
] + [
    "local_field_rmse_px_icetide_local",
    "seconds_icetide",
    "seconds_xcorr",
    "seconds_projmatch",
    "hashgrid_points_per_s",
]


@pytest.mark.slow
def test_quick_icetide_bench_writes_the_issue_keys(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "icetide", "--quick", "--json", str(out)]) == 0
    values = json.loads(out.read_text())
    for key in KEYS:
        assert key in values, key
    for level in LEVELS:  # the oracle is exact, and ICE-TIDE aligns to well below 1 px
        assert values[f"shift_err_median_px_oracle_{level}"] < 1e-9
        assert values[f"shift_err_median_px_icetide_{level}"] < 1.0


def test_bench_module_imports_no_plotting():
    code = "import sys, inversa.bench.icetide; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_figures_redraw_from_saved_values(tmp_path):
    n = 5
    values = {"angles_local": [-60.0, -30.0, 0.0, 30.0, 60.0]}
    for name in ("truth", *METHODS):
        for level in ("local", "local_ctf"):
            values[f"slice_{name}_{level}"] = [[float(i + j) for j in range(6)] for i in range(6)]
    for method in METHODS:
        values[f"fsc0143_A_{method}_local"] = 20.0
        values[f"fsc0143_A_{method}_local_ctf"] = 25.0
        values[f"shifts_{method}_local"] = [[0.1 * k, -0.1 * k] for k in range(n)]
    src = tmp_path / "icetide.json"
    src.write_text(json.dumps(values))
    figs = tmp_path / "figs"
    args = ["bench", "icetide", "--from-json", str(src), "--figures", str(figs)]
    assert main(args) == 0
    names = ("icetide_slices_local.png", "icetide_slices_local_ctf.png", "icetide_shifts_local.png")
    for name in names:
        assert (figs / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args) == 2  # never overwritten without --force

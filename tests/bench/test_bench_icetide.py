"""``inversa bench icetide``: the quick run writes the issue's keys; figures redraw from JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from inversa.bench.icetide import LEVELS, METHODS
from inversa.cli import main
from inversa.core.errors import InputError
from inversa.icetide import refine_rigid, xf_to_rigid
from inversa.tomography import CTFParams, apply_ctf, warp_images

KEYS = (
    [
        f"{key}_{method}_{level}"
        for key in ("shift_err_median_px", "rotation_err_deg", "fsc0143_A", "fsc05_A")
        for method in METHODS
        for level in LEVELS
    ]
    + [
        "local_field_rmse_px_icetide_local",
        "seconds_icetide",
        "seconds_xcorr",
        "seconds_projmatch",
        "hashgrid_points_per_s",
    ]
    + [
        f"{key}_floor_{level}"
        for key in ("rotation_err_deg", "shift_err_median_px")
        for level in LEVELS
    ]
)


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
        # the oracle floor converged: no rotation beyond one scan step beside it is lower
        assert values[f"floor_scan_offset_deg_max_{level}"] <= values["floor_scan_step_deg"]


def _blobs(n: int, size: int) -> torch.Tensor:
    """``(n, size, size)`` smooth images: a few Gaussian blobs away from the border."""
    g = torch.Generator().manual_seed(3)
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float64) - size // 2,
        torch.arange(size, dtype=torch.float64) - size // 2,
        indexing="ij",
    )
    images = torch.zeros(n, size, size, dtype=torch.float64)
    for t in range(n):
        for _ in range(5):
            cx, cy = (torch.rand(2, generator=g, dtype=torch.float64) - 0.5) * size * 0.6
            width = 1.5 + 2 * float(torch.rand(1, generator=g))
            images[t] += torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * width**2))
    return images


def _xf(rot_deg: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    rad = torch.deg2rad(rot_deg)
    xf = torch.zeros(len(rot_deg), 2, 3, dtype=torch.float64)
    xf[:, 0, 0], xf[:, 0, 1], xf[:, 1, 0], xf[:, 1, 1] = rad.cos(), -rad.sin(), rad.sin(), rad.cos()
    xf[:, :, 2] = shift
    return xf


def test_oracle_floor_recovers_a_known_rotation_on_noise_free_data():
    ideal = _blobs(3, 32)
    rot = torch.tensor([1.2, -0.7, 0.35], dtype=torch.float64)
    shift = torch.tensor([[0.6, -0.4], [-1.1, 0.3], [0.2, 0.9]], dtype=torch.float64)
    ctf = CTFParams(pixel_size_A=8.0, defocus_um=3.0)
    # counts-like data: an affine map of the model (the fit has a free a + b * model)
    data = 100.0 - 20.0 * apply_ctf(warp_images(ideal, _xf(rot, shift)), ctf)
    start = _xf(torch.zeros(3, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64))
    xf, info = refine_rigid(data, ideal, start, ctf=ctf)
    found_rot, found_shift = xf_to_rigid(xf)
    assert torch.allclose(found_rot, rot, atol=2e-3), found_rot
    assert torch.allclose(found_shift, shift, atol=2e-3), found_shift
    assert info["scan_offset_deg_max"] == 0.0
    assert info["last_step_rot_deg_max"] < 1e-6


def test_oracle_floor_refuses_mismatched_shapes():
    ideal = _blobs(3, 16)
    with pytest.raises(InputError, match="one shape"):
        refine_rigid(ideal[:2], ideal, torch.eye(2, 3).repeat(3, 1, 1))


def test_bench_module_imports_no_plotting():
    code = "import sys, inversa.bench.icetide; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_figures_redraw_from_saved_values(tmp_path):
    n = 5
    values = {"angles_local": [-60.0, -30.0, 0.0, 30.0, 60.0]}
    for name in ("truth", *METHODS):
        values[f"slice_{name}_local"] = [[float(i + j) for j in range(6)] for i in range(6)]
    for method in METHODS:
        values[f"fsc0143_A_{method}_local"] = 20.0
        values[f"shifts_{method}_local"] = [[0.1 * k, -0.1 * k] for k in range(n)]
    src = tmp_path / "icetide.json"
    src.write_text(json.dumps(values))
    figs = tmp_path / "figs"
    args = ["bench", "icetide", "--from-json", str(src), "--figures", str(figs)]
    assert main(args) == 0
    for name in ("icetide_slices_local.png", "icetide_shifts_local.png"):
        assert (figs / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in figs.iterdir()) == [
        "icetide_shifts_local.png",
        "icetide_slices_local.png",
    ]
    assert main(args) == 2  # never overwritten without --force

"""``inversa fibration learn`` and ``inversa bench fibration``: outputs and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inversa.cli import main

TINY = ["--size", "16", "--bandwidth", "3", "--steps", "3"]


def _learn(tmp_path, transform="radon", *extra):
    out = tmp_path / "run"
    args = ["fibration", "learn", transform, "--samples", "4", "--out", str(out), *TINY, *extra]
    return main(args), out


def test_learn_writes_a_model_and_a_summary_and_refuses_to_overwrite(tmp_path, capsys):
    code, out = _learn(tmp_path)
    assert code == 0
    summary = json.loads((out / "summary_radon.json").read_text())
    assert summary["transform"] == "radon" and summary["samples"] == 4
    assert 0 < summary["rel_error"] and summary["codimension"] in (1, 2)
    assert {"rel_error_shepp_logan", "rel_error_ct_small"} <= set(summary)
    assert (out / "levelset_radon.safetensors").is_file()
    assert "levelset_radon.safetensors" in capsys.readouterr().out
    code, _ = _learn(tmp_path)
    assert code == 2  # outputs exist, no --force
    code, _ = _learn(tmp_path, "radon", "--force")
    assert code == 0


def test_a_model_of_another_transform_is_refused_and_nothing_is_written(tmp_path, capsys):
    code, out = _learn(tmp_path)
    assert code == 0
    model = out / "levelset_radon.safetensors"
    other = tmp_path / "other"
    args = ["fibration", "learn", "circular", "--samples", "4", "--out", str(other), *TINY]
    assert main([*args, "--init", str(model)]) == 2
    err = capsys.readouterr().err
    assert "radon transform, not circular" in err
    assert not other.exists()
    # the same transform continues
    same = ["fibration", "learn", "radon", "--samples", "4", "--out", str(other), *TINY]
    assert main([*same, "--init", str(model)]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--samples", "0"], "sample count"),
        (["--samples", "100001"], "sample count"),
        (["--bandwidth", "9"], "bandwidth"),
        (["--bandwidth", "0"], "bandwidth"),
        (["--size", "4"], "size"),
    ],
)
def test_out_of_range_values_exit_2_and_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    args = ["fibration", "learn", "radon", "--samples", "4", "--out", str(out), *TINY, *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_bad_speed_maps_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["fibration", "learn", "geodesic", "--samples", "4", "--out", str(out), *TINY]
    bad = tmp_path / "speed.npy"
    speed = np.ones((16, 16))
    speed[3, 4] = -0.5
    np.save(bad, speed)
    assert main([*base, "--speed", str(bad)]) == 2
    assert "positive" in capsys.readouterr().err
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones((8, 8)))
    assert main([*base, "--speed", str(wrong)]) == 2
    assert "expected (16, 16)" in capsys.readouterr().err
    assert main([*base, "--speed", str(tmp_path / "missing.npy")]) == 2
    radon = ["fibration", "learn", "radon", "--samples", "4", "--out", str(out), *TINY]
    assert main([*radon, "--speed", str(bad)]) == 2
    assert not out.exists()


def test_a_good_speed_map_is_used(tmp_path):
    out = tmp_path / "run"
    good = tmp_path / "speed.npy"
    np.save(good, np.full((16, 16), 1.5))
    args = ["fibration", "learn", "geodesic", "--samples", "4", "--out", str(out), *TINY]
    assert main([*args, "--speed", str(good)]) == 0
    summary = json.loads((out / "summary_geodesic.json").read_text())
    assert "speed_map_rel_error" in summary


@pytest.mark.slow  # trains 24 small networks: about a minute on two cores
def test_quick_bench_writes_the_issue_keys_and_redraws_figures(tmp_path):
    out = tmp_path / "fib.json"
    assert main(["bench", "fibration", "--quick", "--json", str(out)]) == 0
    values = json.loads(out.read_text())
    counts = values["sample_counts"]
    for t in ("radon", "circular", "geodesic"):
        assert values[f"codimension_{t}"] in (0, 1, 2)
        for m in ("levelset", "ridge", "deeponet", "fno", "attention"):
            assert len(values[f"rel_error_{m}_{t}"]) == len(counts)
            assert len(values[f"rel_error_ood_{m}_{t}"]) == len(counts)
            assert isinstance(values[f"slope_{m}_{t}"], float)
            assert values[f"seconds_{m}_{t}"] >= 0
    assert 0 <= values["speed_map_rel_error"]
    figs = tmp_path / "figs"
    assert main(["bench", "fibration", "--from-json", str(out), "--figures", str(figs)]) == 0
    assert (figs / "fibration_learning_curves.png").is_file()
    assert (figs / "fibration_level_sets.png").is_file()

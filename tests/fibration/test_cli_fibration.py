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
    code, _ = _learn(tmp_path, "radon", "--force", "--delta", "gaussian", "--eps-px", "0.5")
    assert code == 0
    meta = json.loads((out / "summary_radon.json").read_text())
    assert meta["levelset"]["delta"] == "gaussian" and meta["levelset"]["eps_px"] == 0.5


def test_a_fit_that_found_no_curves_says_so(tmp_path, capsys):
    code, out = _learn(tmp_path, "radon", "--steps", "0")  # untrained: no curves
    assert code == 0
    summary = json.loads((out / "summary_radon.json").read_text())
    err = capsys.readouterr().err
    assert (summary["rel_error"] >= 0.95) == ("did not find the radon curves" in err)
    assert summary["rel_error"] >= 0.95  # the case this test is about
    code, _ = _learn(tmp_path / "trained", "radon", "--steps", "300", "--samples", "16")
    summary = json.loads((tmp_path / "trained" / "run" / "summary_radon.json").read_text())
    assert summary["rel_error"] < 0.95 and "did not find" not in capsys.readouterr().err


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
        (["--eps-px", "0"], "eps_px"),
        (["--eps-px", "9"], "eps_px"),
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
    assert values["levelset_delta"].endswith("ensemble 2")  # QUICK averages two networks
    figs = tmp_path / "figs"
    assert main(["bench", "fibration", "--from-json", str(out), "--figures", str(figs)]) == 0
    assert (figs / "fibration_learning_curves.png").is_file()
    assert (figs / "fibration_level_sets.png").is_file()


def test_learning_rate_sweep_picks_the_best_validation_error_and_checkpoints(tmp_path):
    """A tiny plan: every network swept over two rates, partial JSON after each block."""
    from inversa.bench.fibration import BenchPlan, run_plan

    plan = BenchPlan(
        size=16,
        counts=(4,),
        seeds=(0,),
        steps=2,
        lr_grid=(1e-4, 1e-2),
        tune_samples=4,
        outputs=32,
        batch=4,
        n_test=4,
        n_val=4,
        bandwidth=4.0,
    )
    out = tmp_path / "partial.json"
    report = run_plan(plan, checkpoint=out)
    values = report.values
    for m in ("levelset", "deeponet", "fno", "attention"):
        errs = values[f"tune_val_error_{m}"]
        assert len(errs) == 2
        assert values["tune_lr"][m] == plan.lr_grid[errs.index(min(errs))]
    saved = json.loads(out.read_text())
    assert saved["completed"] == [[t, 0] for t in plan.transforms]
    assert len(saved["rel_error_ridge_geodesic_seeds"][0]) == 1


def test_runs_on_disjoint_parts_merge_and_disagreements_are_refused():
    from inversa.bench.fibration import merge_values

    a = {"sample_counts": [4, 8], "rel_error_ridge_radon": [0.9, 0.8], "completed": [["radon", 0]]}
    b = {"sample_counts": [4, 8], "rel_error_levelset_radon": [0.5, 0.1], "level_sets": {"r": 1}}
    merged = merge_values(a, b)
    assert merged["rel_error_ridge_radon"] == [0.9, 0.8]
    assert merged["rel_error_levelset_radon"] == [0.5, 0.1]
    assert merged["merged_runs"] == 2 and merged["completed"] == [["radon", 0]]
    with pytest.raises(ValueError, match="sample_counts"):
        merge_values(a, {"sample_counts": [4]})


def test_the_headline_fit_runs_every_model_with_the_long_budget(tmp_path):
    """``long_steps``: one more fit per model on the Radon pairs, keys of its own."""
    from inversa.bench.fibration import BenchPlan, run_plan

    plan = BenchPlan(
        size=16,
        counts=(),
        seeds=(0,),
        steps=2,
        patience=1,
        lr=(("levelset", 1e-2), ("deeponet", 1e-3), ("fno", 1e-3), ("attention", 1e-2)),
        outputs=32,
        n_test=4,
        bandwidth=4.0,
        transforms=("radon",),
        long_steps=6,
        long_samples=4,
        long_batch=2,
    )
    out = tmp_path / "long.json"
    values = run_plan(plan, checkpoint=out).values
    for m in ("levelset", "ridge", "deeponet", "fno", "attention"):
        assert 0 < values[f"long_rel_error_{m}_radon"] < 10
        assert values[f"long_rel_error_ood_{m}_radon"] > 0
    assert values["long_steps_run_ridge_radon"] == 0
    assert 0 < values["long_steps_run_deeponet_radon"] <= 6
    assert "6 steps" in values["long_setting"] and "patience 3" in values["long_setting"]
    assert "rel_error_levelset_radon" not in values  # no learning curves in this plan
    assert json.loads(out.read_text())["long_rel_error_attention_radon"] > 0

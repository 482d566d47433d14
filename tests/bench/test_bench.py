import json

from inversa.cli import main

KEYS = (
    "radon_adjoint_rel_error",
    "tilt_adjoint_rel_error",
    "radon_forward_s",
    "radon_adjoint_s",
    "astra_forward_s",
    "astra_backproject_s",
    "skimage_radon_s",
    "tilt_forward_s",
    "tilt_adjoint_s",
    "fbp_psnr_db",
    "astra_fbp_psnr_db",
    "radon_size",
    "tilt_size",
    "fbp_size",
)


def test_quick_tomography_bench_writes_the_issue_keys(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "tomography", "--quick", "--json", str(out)]) == 0
    values = json.loads(out.read_text())
    for key in KEYS:
        assert key in values, key
    assert values["quick"] is True
    assert values["radon_adjoint_rel_error"] < 1e-5
    assert values["tilt_adjoint_rel_error"] < 1e-5
    # the same noise-free experiment as ASTRA: within 0.5 dB of it or better
    assert values["fbp_psnr_db"] > values["astra_fbp_psnr_db"] - 0.5
    assert values["radon_forward_s"] > 0 and values["tilt_adjoint_s"] > 0


def test_figures_are_redrawn_from_saved_json(tmp_path):
    saved = {
        "doses": [0.1, 1.0],
        "study_size": 24,
        "study_angles": 18,
        **{f"mse_{e}": [0.1, 0.01] for e in ("ml", "map", "hg", "og")},
        **{f"mse_{e}_ci95": [0.01, 0.001] for e in ("ml", "map", "hg", "og")},
    }
    src = tmp_path / "poisson.json"
    src.write_text(json.dumps(saved))
    figs = tmp_path / "figs"
    assert main(["bench", "poisson", "--from-json", str(src), "--figures", str(figs)]) == 0
    png = figs / "poisson_mse_vs_dose.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # never overwritten without --force; a rerun with --force succeeds
    assert main(["bench", "poisson", "--from-json", str(src), "--figures", str(figs)]) == 2
    args = ["bench", "poisson", "--from-json", str(src), "--figures", str(figs), "--force"]
    assert main(args) == 0


def test_figure_redraw_errors_exit_2(tmp_path):
    src = tmp_path / "bad.json"
    src.write_text("{not json")
    figs = str(tmp_path / "figs")
    assert main(["bench", "poisson", "--from-json", str(src), "--figures", figs]) == 2
    src.write_text(json.dumps({"doses": [1.0]}))
    assert main(["bench", "poisson", "--from-json", str(src), "--figures", figs]) == 2
    assert main(["bench", "poisson", "--from-json", str(src)]) == 2
    assert main(["bench", "tomography", "--from-json", str(src), "--figures", figs]) == 2


def test_jdr_bench_resumes_finished_phis_and_refuses_other_settings(tmp_path, monkeypatch):
    import pytest

    import inversa.bench.jdr as jdr_bench
    from inversa.bench import run_benchmark
    from inversa.core.errors import InputError

    class Interrupted(Exception):
        pass

    calls, interrupt_at = [], [0.5]

    def fake_row(phi, index, **kw):
        if phi in interrupt_at:
            raise Interrupted
        calls.append(phi)
        row = {"config": {"phi": phi}}
        for key in ("gcn", "gcn_jdr", "gcn_digl", "gcn_rewire_baseline"):
            row[key] = 50.0 + index + (key == "gcn_jdr")
            row[f"ci95_{key}"] = 1.0
        return row

    monkeypatch.setattr(jdr_bench, "_phi_row", fake_row)
    monkeypatch.setattr(jdr_bench, "paper_speed", lambda n, f: {"seconds_jdr_5000": 1.0})
    monkeypatch.setattr(
        jdr_bench,
        "scaling",
        lambda nodes: {
            "scaling_nodes": nodes,
            "scaling_seconds": [1.0] * len(nodes),
            "scaling_peak_gb": [0.1] * len(nodes),
        },
    )
    resume = tmp_path / "resume.json"
    with pytest.raises(Interrupted):
        run_benchmark("jdr", quick=True, resume=resume)  # stops during phi = 0.5
    assert calls == [0.0, -0.5]  # small |phi| first
    assert sorted(json.loads(resume.read_text())["rows"]) == ["+0.00", "-0.50"]
    calls.clear()
    interrupt_at.clear()
    report = run_benchmark("jdr", quick=True, resume=resume)
    assert calls == [0.5]  # the others came from the file
    assert report.values["acc_gcn_jdr"] == [51.0, 52.0, 53.0]
    assert report.values["mean_gain_abs_phi_le_half"] == 1.0

    # Workers on disjoint phis share one file; their rows merge.
    import inversa.bench.jdr as jb

    shared = tmp_path / "shared.json"
    settings = jb.sweep_settings(quick=True)
    calls.clear()
    jb.sweep(settings, resume=shared, only=[0.5])
    jb.sweep(settings, resume=shared, only=[0.0, -0.5])
    assert calls == [0.5, 0.0, -0.5]
    assert sorted(jb.sweep(settings, resume=shared)) == ["+0.00", "+0.50", "-0.50"]
    assert calls == [0.5, 0.0, -0.5]  # nothing recomputed
    with pytest.raises(InputError, match="not in the sweep"):
        jb.sweep(settings, resume=shared, only=[0.3])

    # A sweep with another JDR search takes the baseline columns of the earlier rows.
    seen = {}

    def row_seeing_baseline(phi, index, **kw):
        seen[phi] = kw["baseline"]
        return fake_row(phi, index)

    monkeypatch.setattr(jdr_bench, "_phi_row", row_seeing_baseline)
    other = dict(settings, trials=settings["trials"] + 1)
    jb.sweep(other, resume=tmp_path / "other.json", only=[0.5], reuse=shared)
    assert seen[0.5]["gcn"] == 52.0 and seen[0.5]["config"] == {"phi": 0.5}
    with pytest.raises(InputError, match="other splits"):
        jb.sweep(dict(other, splits=99), only=[0.5], reuse=shared)
    monkeypatch.setattr(jdr_bench, "_phi_row", fake_row)

    saved = json.loads(resume.read_text())
    saved["settings"]["splits"] = 99
    resume.write_text(json.dumps(saved))
    with pytest.raises(InputError, match="other settings"):
        run_benchmark("jdr", quick=True, resume=resume)
    with pytest.raises(InputError, match="cannot resume"):
        run_benchmark("tomography", quick=True, resume=resume)


def test_jdr_row_takes_baseline_columns_and_recomputes_jdr():
    from inversa.bench.jdr import _phi_row
    from inversa.jdr import JDRConfig, TrainConfig

    baseline = {"config": {"digl_alpha": 0.2, "fosr_edges": 6}}
    for i, key in enumerate(("gcn", "gcn_digl", "gcn_rewire_baseline")):
        baseline[key], baseline[f"ci95_{key}"] = 10.0 + i, 1.0 + i
    cand = JDRConfig(iterations=2, l_a=2, l_x=2)
    kw = dict(n=120, f=40, splits=2, trials=0, search_splits=1, initial=[cand])
    train = TrainConfig(max_epochs=15, patience=5)
    row = _phi_row(0.5, 0, train=train, baseline=baseline, **kw)
    fresh = _phi_row(0.5, 0, train=train, **kw)
    assert [row[k] for k in ("gcn", "ci95_gcn_digl", "gcn_rewire_baseline")] == [10.0, 2.0, 12.0]
    assert row["config"]["digl_alpha"] == 0.2 and row["config"]["fosr_edges"] == 6
    assert row["gcn_jdr"] == fresh["gcn_jdr"] and row["config"]["denoised"] == "graph+features"
    assert fresh["gcn"] != 10.0 and "baselines_from" not in fresh["config"]


def test_jdr_scaling_peak_is_the_workers_own_not_its_parents():
    import numpy as np

    from inversa.bench.jdr import scaling

    ballast = np.ones(150_000_000)  # 1.2 GB resident in the parent
    peak = scaling([300])["scaling_peak_gb"][0]
    assert ballast[-1] == 1.0 and 0.05 < peak < 1.0


def test_alignment_ctf_figures_are_drawn_from_json_values(tmp_path):
    from inversa.bench import benchmark_figures

    n = 8
    values = {
        "ctf_weight_section_xz": [[0.1 * (i - j) for j in range(n)] for i in range(n)],
        "ctf_weight_section_xy": [[0.05 * i for _ in range(n)] for i in range(n)],
        "ctf_average_fsc": [1.0, 0.9, 0.6, 0.3, 0.1],
        "plain_average_fsc": [1.0, 0.8, 0.2, -0.1, 0.0],
        "ctf_voxel_A": 7.0,
        "ctf_box": n,
    }
    paths = benchmark_figures("alignment", values, tmp_path)
    assert [p.name for p in paths] == ["alignment_ctf_weight.png", "alignment_ctf_fsc.png"]
    assert all(p.stat().st_size > 1000 for p in paths)

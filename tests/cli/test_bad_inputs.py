"""Every bad input to every command ends in one line on stderr and exit code 2.

A table of bad command lines, run in-process through `inversa.cli.main`. For each one:
exit code 2, exactly one non-empty line on stderr, no traceback, nothing written where
the outputs would go (nor in the working directory), and the input files unchanged. All
cases fail before any work, so the whole table runs in seconds.

`run_case` is also used to tally the table against other versions of the code (see the
report in the project's history), so it never raises for a wrong outcome: it classifies.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from inversa.cli import main

# Placeholders in the table: inputs live in {env} (built once); output folders go to {o}
# (absent) and output files into {od} (an existing, empty folder).

# (id, argv). Formatted with the paths of `_paths`.
CASES: list[tuple[str, list[str]]] = [
    # --- usage errors
    ("unknown-command", ["nosuchcommand"]),
    ("simulate-missing-arg", ["simulate"]),
    ("simulate-unknown-option", ["simulate", "{o}", "--bogus"]),
    ("simulate-shape-2", ["simulate", "{o}", "--shape", "48,128"]),
    ("simulate-shape-text", ["simulate", "{o}", "--shape", "a,b,c"]),
    ("simulate-shape-zero", ["simulate", "{o}", "--shape", "0,8,8"]),
    ("simulate-shape-frac", ["simulate", "{o}", "--shape", "8.5,8,8"]),
    ("simulate-dose-neg", ["simulate", "{o}", "--dose", "-1"]),
    ("simulate-tilt-range-rev", ["simulate", "{o}", "--tilt-range", "60,-60"]),
    ("simulate-tilt-range-wide", ["simulate", "{o}", "--tilt-range", "-100,60"]),
    ("simulate-tilt-step-zero", ["simulate", "{o}", "--tilt-step", "0"]),
    ("simulate-voxel-neg", ["simulate", "{o}", "--voxel-size", "-5"]),
    ("simulate-particles-neg", ["simulate", "{o}", "--n-particles", "-1"]),
    ("simulate-int-text", ["simulate", "{o}", "--n-particles", "many"]),
    ("simulate-structure-missing", ["simulate", "{o}", "--structure", "{missing}"]),
    ("simulate-out-is-file", ["simulate", "{ofile}"]),
    # --- reconstruct
    ("reconstruct-no-out", ["reconstruct", "{ts}"]),
    ("reconstruct-filter", ["reconstruct", "{ts}", "--out", "{od}/t.mrc", "--filter", "nope"]),
    ("reconstruct-cutoff", ["reconstruct", "{ts}", "--out", "{od}/t.mrc", "--cutoff", "-1"]),
    ("reconstruct-method", ["reconstruct", "{ts}", "--out", "{od}/t.mrc", "--method", "art"]),
    ("reconstruct-iter-0", ["reconstruct", "{ts}", "--out", "{od}/t.mrc", "--iterations", "0"]),
    ("reconstruct-thick-0", ["reconstruct", "{ts}", "--out", "{od}/t.mrc", "--thickness", "0"]),
    ("reconstruct-preproc", ["reconstruct", "{ts}", "--out", "{od}/t.mrc", "--preprocess", "x"]),
    ("reconstruct-device", ["reconstruct", "{ts}", "--out", "{od}/t.mrc", "--device", "gpu7"]),
    ("reconstruct-voxel-0", ["reconstruct", "{ts}", "--out", "{od}/t.mrc", "--voxel-size", "0"]),
    (
        "reconstruct-scheduler-down",
        ["reconstruct", "{ts}", "{ts2}", "--out", "{o}", "--scheduler", "tcp://127.0.0.1:1"],
    ),
    (
        "reconstruct-scheduler-form",
        ["reconstruct", "{ts}", "{ts2}", "--out", "{o}", "--scheduler", "nonsense"],
    ),
    ("reconstruct-missing", ["reconstruct", "{missing}", "--out", "{od}/t.mrc"]),
    ("reconstruct-not-mrc", ["reconstruct", "{txt}", "--out", "{od}/t.mrc"]),
    ("reconstruct-empty", ["reconstruct", "{empty}", "--out", "{od}/t.mrc"]),
    ("reconstruct-dir-input", ["reconstruct", "{dir}", "--out", "{od}/t.mrc"]),
    ("reconstruct-second-bad", ["reconstruct", "{ts}", "{txt}", "--out", "{o}"]),
    ("reconstruct-second-missing", ["reconstruct", "{ts}", "{missing}", "--out", "{o}"]),
    ("reconstruct-collision", ["reconstruct", "{ts}", "{ts_twin}", "--out", "{o}"]),
    ("reconstruct-out-exists", ["reconstruct", "{ts}", "--out", "{exists_mrc}"]),
    ("reconstruct-out-is-input", ["reconstruct", "{ts}", "--out", "{ts}", "--force"]),
    ("reconstruct-out-is-dir", ["reconstruct", "{ts}", "--out", "{dir_mrc}"]),
    ("reconstruct-out-parent-missing", ["reconstruct", "{ts}", "--out", "{o}/a/b/t.mrc"]),
    ("reconstruct-outdir-is-file", ["reconstruct", "{ts}", "{ts2}", "--out", "{ofile}"]),
    ("reconstruct-outdir-under-file", ["reconstruct", "{ts}", "{ts2}", "--out", "{ofile}/x"]),
    # --- subtomogram commands
    (
        "extract-star-missing",
        ["extract", "{vol}", "--particles", "{missing}", "--box", "8", "--out", "{o}"],
    ),
    (
        "extract-star-not-star",
        ["extract", "{vol}", "--particles", "{txt}", "--box", "100000", "--out", "{o}"],
    ),
    ("align-star-missing", ["align", "{missing}", "--reference", "{vol}", "--out", "{od}/a.star"]),
    (
        "align-max-shift",
        ["align", "{txt}", "--reference", "{vol}", "--out", "{od}/a.star", "--max-shift", "-3"],
    ),
    (
        "align-wedge",
        ["align", "{txt}", "--reference", "{vol}", "--out", "{od}/a.star", "--wedge", "60,-60"],
    ),
    ("average-star-missing", ["average", "{missing}", "--out", "{od}/avg.mrc"]),
    # --- demo
    ("demo-out-is-file", ["demo", "--out", "{ofile}"]),
    ("demo-device", ["demo", "--out", "{o}", "--device", "cuda:99"]),
    # --- bench
    ("bench-unknown", ["bench", "nothing"]),
    ("bench-json-is-dir", ["bench", "tomography", "--json", "{dir}"]),
    ("bench-json-exists", ["bench", "tomography", "--json", "{exists}"]),
    ("bench-figures-is-file", ["bench", "tomography", "--quick", "--figures", "{ofile}"]),
    (
        "bench-from-json-missing",
        ["bench", "tomography", "--from-json", "{missing}", "--figures", "{o}"],
    ),
    (
        "bench-from-json-bad",
        ["bench", "tomography", "--from-json", "{badjson}", "--figures", "{o}"],
    ),
    ("bench-from-json-no-figures", ["bench", "tomography", "--from-json", "{badjson}"]),
    # --- poisson
    ("poisson-penalty", ["poisson", "study", "--out", "{o}", "--penalty", "l1"]),
    ("poisson-out-is-file", ["poisson", "study", "--out", "{ofile}"]),
    # --- jdr
    ("jdr-missing", ["jdr", "rewire", "{missing}", "--out", "{od}/g.pt"]),
    ("jdr-not-graph", ["jdr", "rewire", "{txt}", "--out", "{od}/g.pt"]),
    ("jdr-empty", ["jdr", "rewire", "{empty}", "--out", "{od}/g.pt"]),
    ("jdr-dir", ["jdr", "rewire", "{dir}", "--out", "{od}/g.pt"]),
    ("jdr-eta", ["jdr", "rewire", "{edges}", "--out", "{od}/g.pt", "--eta-a", "2"]),
    ("jdr-denoise", ["jdr", "rewire", "{edges}", "--out", "{od}/g.pt", "--denoise", "nope"]),
    ("jdr-method", ["jdr", "rewire", "{edges}", "--out", "{od}/g.pt", "--method", "nope"]),
    ("jdr-K-neg", ["jdr", "rewire", "{edges}", "--out", "{od}/g.pt", "-K", "-1"]),
    ("jdr-device", ["jdr", "rewire", "{edges}", "--out", "{od}/g.pt", "--device", "tpu"]),
    ("jdr-out-exists", ["jdr", "rewire", "{edges}", "--out", "{exists}"]),
    ("jdr-out-is-input", ["jdr", "rewire", "{edges}", "--out", "{edges}", "--force"]),
    # --- neurde
    ("neurde-case", ["neurde", "simulate", "nope", "--out", "{o}"]),
    ("neurde-steps-0", ["neurde", "simulate", "sod1", "--steps", "0", "--out", "{o}"]),
    ("neurde-scale-neg", ["neurde", "simulate", "sod1", "--scale", "-1", "--out", "{o}"]),
    ("neurde-out-is-file", ["neurde", "simulate", "sod1", "--out", "{ofile}"]),
    (
        "neurde-weights-missing",
        ["neurde", "simulate", "sod1", "--weights", "{missing}", "--out", "{o}"],
    ),
    ("neurde-equilibrium", ["neurde", "simulate", "sod1", "--equilibrium", "x", "--out", "{o}"]),
    ("neurde-train-case", ["neurde", "train", "lax", "--out", "{od}/w.safetensors"]),
    ("neurde-train-out-exists", ["neurde", "train", "sod1", "--out", "{exists}"]),
    ("neurde-figures-out-is-file", ["neurde", "figures", "--out", "{ofile}"]),
    # --- seislm
    ("seislm-synth-n-0", ["seislm", "synth", "{o}", "--n", "0"]),
    ("seislm-synth-noise-frac", ["seislm", "synth", "{o}", "--noise-fraction", "2"]),
    ("seislm-synth-out-is-file", ["seislm", "synth", "{ofile}", "--n", "2"]),
    (
        "seislm-pretrain-steps-0",
        ["seislm", "pretrain", "--out", "{od}/e.safetensors", "--steps", "0"],
    ),
    (
        "seislm-pretrain-batch-0",
        ["seislm", "pretrain", "--out", "{od}/e.safetensors", "--batch-size", "0"],
    ),
    (
        "seislm-pretrain-config",
        ["seislm", "pretrain", "--out", "{od}/e.safetensors", "--config", "huge"],
    ),
    (
        "seislm-pretrain-data-missing",
        ["seislm", "pretrain", "--out", "{od}/e.safetensors", "--data", "{missing}"],
    ),
    (
        "seislm-pretrain-device",
        ["seislm", "pretrain", "--out", "{od}/e.safetensors", "--device", "cuda:x"],
    ),
    ("seislm-pretrain-lr", ["seislm", "pretrain", "--out", "{od}/e.safetensors", "--lr", "0"]),
    (
        "seislm-finetune-steps-0",
        ["seislm", "finetune", "--out", "{od}/p.safetensors", "--steps", "0"],
    ),
    ("seislm-finetune-out-exists", ["seislm", "finetune", "--out", "{exists}"]),
    ("seislm-pick-missing", ["seislm", "pick", "{missing}"]),
    ("seislm-pick-threshold", ["seislm", "pick", "{txt}", "--threshold", "2"]),
    ("seislm-ship-out-exists", ["seislm", "ship", "{exists}"]),
    # --- springblock
    ("sb-phase-epochs", ["springblock", "phase-diagram", "--out", "{o}", "--epochs", "-1"]),
    ("sb-phase-alphas-text", ["springblock", "phase-diagram", "--out", "{o}", "--alphas", "a,b"]),
    ("sb-phase-alphas-range", ["springblock", "phase-diagram", "--out", "{o}", "--alphas", "2"]),
    ("sb-phase-seeds-0", ["springblock", "phase-diagram", "--out", "{o}", "--seeds", "0"]),
    ("sb-phase-out-is-file", ["springblock", "phase-diagram", "--out", "{ofile}"]),
    (
        "sb-phase-data-missing",
        ["springblock", "phase-diagram", "--out", "{o}", "--data", "{missing}.npz"],
    ),
    ("sb-curve-model-missing", ["springblock", "curve", "--model", "{missing}"]),
    ("sb-curve-model-text", ["springblock", "curve", "--model", "{txt}"]),
    ("sb-refit-missing", ["springblock", "refit", "--from-json", "{missing}"]),
    ("sb-refit-bad", ["springblock", "refit", "--from-json", "{badjson}"]),
    (
        "sb-refit-out-is-input",
        ["springblock", "refit", "--from-json", "{badjson}", "--out", "{badjson}", "--force"],
    ),
    ("sb-simulate-friction", ["springblock", "simulate", "--friction", "-1"]),
    ("sb-simulate-order", ["springblock", "simulate", "--order", "3"]),
    ("sb-simulate-blocks", ["springblock", "simulate", "--blocks", "0"]),
    ("sb-simulate-backward", ["springblock", "simulate", "--backward-excess", "-1"]),
    ("sb-simulate-out-is-dir", ["springblock", "simulate", "--steps", "5", "--out", "{dir}"]),
]


def _write_stack(path: Path, n: int = 3) -> None:
    mrcfile.write(path, np.ones((n, 8, 8), dtype=np.float32), voxel_size=4.0)
    path.with_suffix(".tlt").write_text("".join(f"{a}\n" for a in np.linspace(-30, 30, n)))


def build_env(root: Path) -> dict[str, str]:
    """Create the inputs of the table under ``root``; return the placeholder values."""
    env = root / "env"
    (env / "a").mkdir(parents=True)
    (env / "b").mkdir()
    (env / "dir").mkdir()
    (env / "dir.mrc").mkdir()
    _write_stack(env / "a" / "tiltseries.mrc")
    _write_stack(env / "b" / "tiltseries.mrc")  # same file name: a collision
    _write_stack(env / "a" / "other.mrc")
    mrcfile.write(env / "vol.mrc", np.zeros((8, 8, 8), dtype=np.float32), voxel_size=4.0)
    (env / "text.mrc").write_text("this is not an MRC file\n" * 4)
    (env / "text.tlt").write_text("0\n")
    (env / "empty.mrc").write_bytes(b"")
    (env / "empty.tlt").write_text("0\n")
    (env / "a_file").write_text("a file where a folder is expected\n")
    (env / "exists.out").write_text("an existing output\n")
    mrcfile.write(env / "exists.mrc", np.zeros((2, 2, 2), dtype=np.float32))
    (env / "bad.json").write_text("{not json")
    (env / "edges.txt").write_text("0 1\n1 2\n2 0\n")
    return {
        "env": str(env),
        "ts": str(env / "a" / "tiltseries.mrc"),
        "ts_twin": str(env / "b" / "tiltseries.mrc"),
        "ts2": str(env / "a" / "other.mrc"),
        "vol": str(env / "vol.mrc"),
        "txt": str(env / "text.mrc"),
        "empty": str(env / "empty.mrc"),
        "dir": str(env / "dir"),
        "dir_mrc": str(env / "dir.mrc"),
        "ofile": str(env / "a_file"),
        "exists": str(env / "exists.out"),
        "exists_mrc": str(env / "exists.mrc"),
        "badjson": str(env / "bad.json"),
        "edges": str(env / "edges.txt"),
        "missing": str(root / "missing" / "nothing-here"),
        "o": str(root / "out"),
        "od": str(root / "out-files"),
    }


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with a hash of its content ("dir" for folders)."""
    found = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        found[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def run_case(argv: list[str], paths: dict[str, str], cwd: Path) -> dict:
    """Run one command line in-process and classify the outcome (never raises)."""
    args = [a.format(**paths) for a in argv]
    env, out, out_files = Path(paths["env"]), Path(paths["o"]), Path(paths["od"])
    out_files.mkdir(exist_ok=True)
    before = _snapshot(env)
    err, std = io.StringIO(), io.StringIO()
    traceback = False
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std), contextlib.chdir(cwd):
        try:
            code = main(args)
        except SystemExit as exc:  # pragma: no cover - main should not exit itself
            code = exc.code
        except BaseException:  # a traceback is what is being counted
            import traceback as tb

            tb.print_exc(file=err)
            traceback, code = True, 1
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    traceback = traceback or "Traceback" in err.getvalue() + std.getvalue()
    return {
        "args": args,
        "code": code,
        "lines": lines,
        "traceback": traceback,
        "written": out.exists() or any(out_files.iterdir()) or any(cwd.iterdir()),
        "modified": _snapshot(env) != before,
    }


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return build_env(tmp_path_factory.mktemp("bad-inputs"))


@pytest.fixture
def cwd(tmp_path):
    folder = tmp_path / "cwd"  # commands with default output folders must not write here
    folder.mkdir()
    return folder


def _assert_clean(result: dict, *, mentions: str | None = None) -> None:
    assert not result["traceback"], result
    assert result["code"] == 2, result
    assert len(result["lines"]) == 1, result
    assert result["lines"][0].startswith("error: "), result
    assert not result["written"], result
    assert not result["modified"], result
    if mentions is not None:
        assert mentions in result["lines"][0], result


@pytest.mark.parametrize("argv", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, paths, cwd, tmp_path):
    own = {"o": str(tmp_path / "out"), "od": str(tmp_path / "out-files")}
    _assert_clean(run_case(argv, {**paths, **own}, cwd))


def test_messages_name_the_problem(paths, cwd):
    """A few messages checked for content, not only form."""
    cases = {
        "tiltseries.mrc": ["reconstruct", "{ts}", "{ts_twin}", "--out", "{o}"],
        "127.0.0.1:1": [
            "reconstruct",
            "{ts}",
            "{ts2}",
            "--out",
            "{o}",
            "--scheduler",
            "tcp://127.0.0.1:1",
        ],
        "--shape": ["simulate", "{o}", "--shape", "48,128"],
        "--bogus": ["simulate", "{o}", "--bogus"],
        "a_file": ["simulate", "{ofile}"],
        "text.mrc": ["reconstruct", "{ts}", "{txt}", "--out", "{o}"],
        "--help": ["simulate", "{o}", "--dose", "-1"],
    }
    for needle, argv in cases.items():
        _assert_clean(run_case(argv, paths, cwd), mentions=needle)


def test_cuda_device_without_cuda(paths, cwd):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    argv = ["reconstruct", "{ts}", "--out", "{o}/t.mrc", "--device", "cuda"]
    _assert_clean(run_case(argv, paths, cwd), mentions="CUDA")


@pytest.mark.parametrize(
    ("module", "extra", "argv"),
    [
        ("pydicom", "poisson", ["poisson", "study", "--quick", "--out", "{o}"]),
        ("sklearn", "springblock", ["springblock", "phase-diagram", "--quick", "--out", "{o}"]),
    ],
)
def test_missing_optional_dependency_names_the_extra(module, extra, argv, paths, cwd, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # hidden: importing it fails
    for name in [m for m in sys.modules if m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    _assert_clean(run_case(argv, paths, cwd), mentions=f'pip install "inversa[{extra}]"')


def test_disk_full_while_writing_is_one_line(paths, cwd, monkeypatch):
    from inversa.cli import _springblock

    target = Path(paths["o"]).parent / "full.json"

    def full(path, payload, *, force):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(_springblock, "_write_json", full)
    argv = ["springblock", "simulate", "--steps", "5", "--out", str(target)]
    result = run_case(argv, paths, cwd)
    assert result["code"] == 2 and len(result["lines"]) == 1, result
    assert "full.json" in result["lines"][0] and "No space" in result["lines"][0], result
    assert not result["traceback"]


def test_a_bug_keeps_its_traceback(paths, cwd, monkeypatch):
    from inversa.cli import _springblock

    def bug(path, payload, *, force):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(_springblock, "_write_json", bug)
    out = Path(paths["o"]).parent / "bug.json"
    with pytest.raises(ZeroDivisionError):
        main(["springblock", "simulate", "--steps", "5", "--out", str(out)])


def test_table_is_broad():
    commands = {" ".join(a for a in argv[:2] if not a.startswith(("-", "{"))) for _, argv in CASES}
    assert len(CASES) >= 60
    assert len(commands) >= 20, sorted(commands)


if __name__ == "__main__":  # tally: python tests/cli/test_bad_inputs.py
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths_ = build_env(root)
        tally = {"tried": 0, "clean": 0, "traceback": 0, "partial": 0, "modified": 0}
        bad = []
        for i, (name, argv) in enumerate(CASES):
            case_dir = root / f"case{i}"
            (case_dir / "cwd").mkdir(parents=True)
            own = {"o": str(case_dir / "out"), "od": str(case_dir / "out-files")}
            r = run_case(argv, {**paths_, **own}, case_dir / "cwd")
            clean = r["code"] == 2 and len(r["lines"]) == 1 and not r["traceback"]
            tally["tried"] += 1
            tally["clean"] += clean
            tally["traceback"] += r["traceback"]
            tally["partial"] += r["written"]
            tally["modified"] += r["modified"]
            if not clean or r["written"] or r["modified"]:
                last = r["lines"][-1:] if r["lines"] else []
                bad.append((name, r["code"], r["traceback"], r["written"], last))
        print(json.dumps(tally))
        for row in bad:
            print(*row)

"""The README's command-line section works as written.

The section's first ``bash`` block (the cryo-ET chain) runs in the default suite, the second
(the other methods, minutes each) with ``-m slow``. Each line runs in one temporary folder,
in order, as a user would type it: ``inversa ...`` in-process through the CLI's ``main``,
``python ...`` as a subprocess. Every line must exit 0 and leave the outputs it names.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from inversa.cli._app import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# Options whose value is a file or folder the command writes.
_OUTPUT_OPTIONS = ("--out", "-o", "--json")
# Files a `python -c` line writes: quoted names with a suffix inside the code.
_INPUT_FILE = re.compile(r"[\w./-]+\.(mrc|star|pt|safetensors|mseed|npy)")
_QUOTED_FILE = re.compile(r"""['"]([\w./-]+\.\w+)['"]""")


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def _bash_blocks(text: str) -> list[list[str]]:
    """Command lines of each ```bash block, comments and blank lines dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [
        [line for line in block.splitlines() if shlex.split(line, comments=True)]
        for block in blocks
    ]


def _outputs(argv: list[str]) -> list[str]:
    """What a command line says it writes."""
    if argv[0] == "python":
        return _QUOTED_FILE.findall(argv[-1])
    found = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in _OUTPUT_OPTIONS]
    if argv[1] == "simulate":  # its output folder is the positional argument
        found.append(argv[2])
    return found


def _run(line: str, folder: Path, capfd) -> str | None:
    """Run one README line; return what went wrong, or ``None``."""
    argv = shlex.split(line, comments=True)
    if argv[0] == "inversa":
        try:
            code = main(argv[1:])
        except Exception as exc:  # a traceback is a failure of this line, not of the test
            return f"`{line}` raised {exc!r}"
    elif argv[0] == "python":
        code = subprocess.run([sys.executable, *argv[1:]], cwd=folder, check=False).returncode
    else:
        return f"`{line}` is neither an `inversa` nor a `python` line"
    _, err = capfd.readouterr()
    if code != 0:
        return f"`{line}` exited {code}: {err.strip()[-1500:]}"
    for name in _outputs(argv):
        path = folder / name
        if not path.exists():
            return f"`{line}` did not write {name}"
        if path.is_dir() and not any(path.iterdir()):
            return f"`{line}` left {name} empty"
        if path.is_file() and path.stat().st_size == 0:
            return f"`{line}` wrote an empty {name}"
    return None


def _blocks() -> list[list[str]]:
    blocks = _bash_blocks(_section("Command line"))
    assert len(blocks) == 2, "the section has the cryo-ET chain and the other methods"
    return blocks


def test_readme_opens_with_the_two_make_commands():
    text = README.read_text(encoding="utf-8")
    first = _bash_blocks(text)[0]
    assert [shlex.split(line, comments=True) for line in first] == [
        ["make", "demo"],
        ["make", "test"],
    ]
    assert text.index("```bash") < text.index("\n## ")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, flags=re.M) and re.search(r"^test:", makefile, flags=re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_lines_name_their_inputs():
    """Every file a line reads is made by an earlier line (the section is self-consistent)."""
    made: set[str] = set()
    for block in _blocks():
        for line in block:
            argv = shlex.split(line, comments=True)
            reads = [a for a in argv[2:] if _INPUT_FILE.fullmatch(a)]
            for name in reads:
                if name in _outputs(argv):
                    continue
                assert any(name == m or name.startswith(m.rstrip("/") + "/") for m in made), (
                    f"`{line}` reads {name}, which no earlier README line writes"
                )
            made.update(_outputs(argv))


def test_readme_cryo_et_chain(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    chain = _blocks()[0]
    assert shlex.split(chain[0])[:2] == ["inversa", "simulate"]
    for line in chain:  # each line reads what the earlier ones wrote: stop at the first
        problem = _run(line, tmp_path, capfd)
        assert problem is None, problem
    # The chain is a working one: the refined poses are those of the simulated particles.
    from inversa.alignment import poses_from_table
    from inversa.core import metrics
    from inversa.core.io import read_particles

    truth, optics = read_particles(tmp_path / "data" / "particles.star")
    refined, _ = read_particles(tmp_path / "refined" / "run_data.star")
    pixel = float(optics["rlnImagePixelSize"].iloc[0])
    true_rot = poses_from_table(truth, pixel_size=pixel)[0].double()
    found = poses_from_table(refined, pixel_size=pixel)[0].double()
    stats = metrics.angular_error_stats(found, true_rot)
    assert stats["median"] < 20.0, stats


@pytest.mark.slow
def test_readme_other_methods(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    problems = [_run(line, tmp_path, capfd) for line in _blocks()[1]]
    problems = [p for p in problems if p is not None]
    assert not problems, "\n".join(problems)

"""A missing input is reported in the same words everywhere: "file not found"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import inversa
from inversa.cli import main

SOURCE = Path(inversa.__file__).parent


def test_no_other_wording_in_the_sources():
    other = re.compile(r"no such (file|folder)", re.IGNORECASE)
    hits = [
        f"{path.relative_to(SOURCE)}:{n}"
        for path in sorted(SOURCE.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if other.search(line)
    ]
    assert hits == []


@pytest.mark.parametrize(
    "argv",
    [
        ["reconstruct", "{missing}", "--angles", "{tlt}", "--out", "{tmp}/o.mrc"],
        ["neurde", "simulate", "sod2", "--weights", "{missing}", "--out", "{tmp}/run"],
    ],
    ids=["reconstruct", "neurde-weights"],
)
def test_missing_input_says_file_not_found(tmp_path, capsys, argv):
    missing = tmp_path / "nope.mrc"
    (tmp_path / "nope.tlt").write_text("0\n")
    paths = {"missing": missing, "tlt": tmp_path / "nope.tlt", "tmp": tmp_path}
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.mrc" in err[0] and "file not found" in err[0]

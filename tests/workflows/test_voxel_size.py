"""``--voxel-size`` on extract, align, average and refine: it replaces the MRC headers'."""

from __future__ import annotations

import json
import warnings

import mrcfile
import numpy as np
import pandas as pd
import pytest

import inversa.cli._alignment  # noqa: F401  (registers the commands)
from inversa.cli import main
from inversa.core.io import read_particles, write_particles

BOX = 8
N = 4
STAR_PIXEL = 5.0


def _unset_mrc(path, data):
    """Write ``data`` as an MRC whose header leaves the voxel size unset (0)."""
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        mrc.voxel_size = 0.0


def _voxel(path) -> float:
    with mrcfile.open(path, header_only=True) as mrc:
        return float(mrc.voxel_size.x)


@pytest.fixture
def project(tmp_path):
    """A tomogram and subtomograms with unset headers, their STAR files, a reference."""
    rng = np.random.default_rng(0)
    _unset_mrc(tmp_path / "ts_01.mrc", rng.random((20, 20, 40)))
    _unset_mrc(tmp_path / "ref.mrc", rng.random((BOX,) * 3))
    (tmp_path / "sub").mkdir()
    names = []
    for i in range(N):
        _unset_mrc(tmp_path / "sub" / f"p{i}.mrc", rng.random((BOX,) * 3))
        names.append(f"sub/p{i}.mrc")
    common = {
        "rlnAngleRot": [0.0, 30.0, 60.0, 90.0],
        "rlnAngleTilt": [10.0, 20.0, 30.0, 40.0],
        "rlnAnglePsi": [0.0] * N,
        "rlnOpticsGroup": [1] * N,
        "rlnRandomSubset": [1, 2] * (N // 2),
    }
    # A RELION 5 picking table: centred coordinates, only the tilt series' pixel size.
    picks = pd.DataFrame(
        {
            "rlnTomoName": ["ts_01"] * N,
            "rlnCenteredCoordinateXAngst": [-10.0, 0.0, 10.0, 5.0],
            "rlnCenteredCoordinateYAngst": [0.0] * N,
            "rlnCenteredCoordinateZAngst": [0.0] * N,
            **common,
        }
    )
    optics = pd.DataFrame(
        {"rlnOpticsGroup": [1], "rlnOpticsGroupName": ["g1"], "rlnTomoTiltSeriesPixelSize": [2.5]}
    )
    write_particles(tmp_path / "picks.star", picks, optics)
    subtomos = pd.DataFrame({"rlnImageName": names, **common})
    optics = pd.DataFrame(
        {"rlnOpticsGroup": [1], "rlnOpticsGroupName": ["g1"], "rlnImagePixelSize": [STAR_PIXEL]}
    )
    write_particles(tmp_path / "subtomos.star", subtomos, optics)
    return tmp_path


def _run(*args) -> int:
    return main([str(a) for a in args])


def _warned(*args) -> tuple[int, list[str]]:
    """Run a command; return its exit code and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = _run(*args)
    return code, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def _quiet(*args) -> int:
    """Run a command and fail on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return _run(*args)


def test_extract_warns_on_an_unset_header_and_takes_voxel_size(project):
    tomo = project / "ts_01.mrc"
    args = ("extract", tomo, "--particles", project / "picks.star", "--box", BOX)
    code, said = _warned(*args, "--out", project / "guessed")
    assert code == 0 and said and all(m.startswith(f"{tomo}: ") for m in said)
    assert _voxel(project / "guessed" / "subtomograms" / "ts_01_000001.mrc") == 1.0

    assert _quiet(*args, "--out", project / "ex", "--voxel-size", 5) == 0
    assert _voxel(project / "ex" / "subtomograms" / "ts_01_000001.mrc") == pytest.approx(5.0)
    table, optics = read_particles(project / "ex" / "particles.star", required=())
    assert float(optics["rlnImagePixelSize"][0]) == pytest.approx(5.0)
    centred = table["rlnCenteredCoordinateXAngst"] - table["rlnOriginXAngst"]
    np.testing.assert_allclose(centred, [-10.0, 0.0, 10.0, 5.0], atol=1e-6)


def test_average_subtomograms_with_unset_headers(project, capsys):
    star = project / "subtomos.star"
    code, said = _warned("average", star, "--out", project / "guessed.mrc")
    files = {m.split(": ")[0] for m in said}
    assert code == 0 and files == {str(project / "sub" / f"p{i}.mrc") for i in range(N)}
    assert _quiet("average", star, "--out", project / "avg.mrc", "--voxel-size", 5) == 0
    assert _voxel(project / "avg.mrc") == pytest.approx(5.0)
    assert _voxel(project / "avg_half1.mrc") == pytest.approx(5.0)
    fsc = json.loads((project / "avg_fsc.json").read_text())
    assert fsc["pixel_size_A"] == pytest.approx(5.0)
    capsys.readouterr()
    # The STAR file says 5 A: another voxel size is refused, in one line, before work.
    assert _quiet("average", star, "--out", project / "other.mrc", "--voxel-size", 4) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--voxel-size" in err[0] and "5" in err[0]
    assert not (project / "other.mrc").exists()


def test_average_from_a_tomogram_takes_voxel_size(project):
    args = ("average", project / "picks.star", "--tomogram", project / "ts_01.mrc", "--box", BOX)
    assert _quiet(*args, "--out", project / "avg.mrc", "--voxel-size", 5) == 0
    assert _voxel(project / "avg.mrc") == pytest.approx(5.0)


def test_align_and_refine_read_the_reference_with_voxel_size(project, capsys):
    star = project / "subtomos.star"
    ref = project / "ref.mrc"
    # Unset, the reference reads as 1 A: a warning naming it, then a mismatch (exit 2).
    code, said = _warned("align", star, "--reference", ref, "--out", project / "a.star")
    assert code == 2 and said and all(m.startswith(f"{ref}: ") for m in said)
    assert "differs" in capsys.readouterr().err
    args = ("--reference", ref, "--method", "exhaustive", "--max-angle-deg", "10")
    assert _quiet("align", star, *args, "--out", project / "a.star", "--voxel-size", 5) == 0
    aligned, optics = read_particles(project / "a.star", required=())
    assert len(aligned) == N and float(optics["rlnImagePixelSize"][0]) == STAR_PIXEL
    out = project / "refine"
    assert _quiet("refine", star, "--reference", ref, "--out", out, "--iterations", "1",
                  "--voxel-size", 5) == 0  # fmt: skip
    assert _voxel(out / "run_class001.mrc") == pytest.approx(5.0)

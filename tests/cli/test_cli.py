import hashlib

import mrcfile
import numpy as np
import pytest
import starfile

from inversa.cli import main
from inversa.core import phantoms

SIM = [
    "--structure",  # the default ribosome does not fit this small volume
    str(phantoms.builtin_structure_path("1ake")),
    "--shape",
    "16,32,32",
    "--voxel-size",
    "8",
    "--n-particles",
    "2",
    "--n-membranes",
    "1",
    "--tilt-range",
    "-45,45",
    "--tilt-step",
    "15",
    "--seed",
    "3",
    "--dose",
    "200",
]


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", str(out), *SIM, "--shift", "1.5", "--rotation", "1"]) == 0
    return out


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "reconstruct" in capsys.readouterr().out


def test_simulate_writes_consistent_dataset(dataset):
    with mrcfile.open(dataset / "tiltseries.mrc") as f:
        stack = f.data.copy()
        assert f.voxel_size.x == pytest.approx(8.0)
    angles = np.loadtxt(dataset / "tiltseries.tlt")
    assert stack.shape == (len(angles), 32, 32)
    np.testing.assert_allclose(angles, np.arange(-45, 46, 15))
    assert np.loadtxt(dataset / "tiltseries.xf").shape == (len(angles), 6)
    star = starfile.read(dataset / "particles.star", always_dict=True)
    particles = star["particles"]
    assert len(particles) == 2
    for col in (
        "rlnTomoName",
        "rlnCenteredCoordinateXAngst",
        "rlnAngleRot",
        "rlnAngleTilt",
        "rlnAnglePsi",
        "rlnOriginXAngst",
        "rlnOpticsGroup",
        "rlnRandomSubset",
    ):
        assert col in particles.columns
    assert "optics" in star
    with mrcfile.open(dataset / "ground_truth.mrc") as f:
        assert f.data.shape == (16, 32, 32)
    assert (stack >= 0).all() and stack.mean() > 0  # electron counts


def test_simulate_same_seed_same_data(dataset, tmp_path):
    assert main(["simulate", str(tmp_path), *SIM, "--shift", "1.5", "--rotation", "1"]) == 0
    for name in ("tiltseries.mrc", "ground_truth.mrc"):  # headers carry a timestamp label
        np.testing.assert_array_equal(mrcfile.read(tmp_path / name), mrcfile.read(dataset / name))
    # the STAR header carries a timestamp too: compare the tables
    ours = starfile.read(tmp_path / "particles.star", always_dict=True)
    theirs = starfile.read(dataset / "particles.star", always_dict=True)
    for block in ("optics", "particles"):
        assert ours[block].equals(theirs[block])


@pytest.mark.parametrize("method", ["wbp", "sirt", "cgls"])
def test_reconstruct_methods_correlate_with_truth(dataset, tmp_path, method):
    before = _digest(dataset / "tiltseries.mrc")
    out = tmp_path / f"{method}.mrc"
    args = [
        "reconstruct",
        str(dataset / "tiltseries.mrc"),
        "--method",
        method,
        "--thickness",
        "16",
        "--iterations",
        "20",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert _digest(dataset / "tiltseries.mrc") == before  # input untouched
    with mrcfile.open(out) as f:
        rec = f.data.astype(np.float64)
        assert f.voxel_size.x == pytest.approx(8.0)
    with mrcfile.open(dataset / "ground_truth.mrc") as f:
        truth = f.data.astype(np.float64)
    assert rec.shape == truth.shape
    corr = np.corrcoef(rec.ravel(), truth.ravel())[0, 1]
    assert corr > 0.3, corr


def test_existing_output_needs_force(dataset, tmp_path, capsys):
    out = tmp_path / "t.mrc"
    args = ["reconstruct", str(dataset / "tiltseries.mrc"), "--out", str(out)]
    assert main(args) == 0
    stamp = _digest(out)
    assert main(args) == 2
    assert str(out) in capsys.readouterr().err
    assert _digest(out) == stamp
    assert main([*args, "--force"]) == 0


def test_many_stacks_go_through_parallel_map(dataset, tmp_path):
    for name in ("a", "b"):
        for ext in ("mrc", "tlt", "xf"):
            (tmp_path / f"{name}.{ext}").write_bytes((dataset / f"tiltseries.{ext}").read_bytes())
    out = tmp_path / "tomos"
    assert (
        main(
            [
                "reconstruct",
                str(tmp_path / "a.mrc"),
                str(tmp_path / "b.mrc"),
                "--out",
                str(out),
                "--thickness",
                "16",
            ]
        )
        == 0
    )
    a = mrcfile.read(out / "a_rec.mrc")
    b = mrcfile.read(out / "b_rec.mrc")
    np.testing.assert_array_equal(a, b)


def _no_leftovers(folder, allowed):
    assert sorted(p.name for p in folder.iterdir()) == sorted(allowed)


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.mrc"
    assert (
        main(
            [
                "reconstruct",
                str(missing),
                "--angles",
                str(missing.with_suffix(".tlt")),
                "--out",
                str(tmp_path / "o.mrc"),
            ]
        )
        == 2
    )
    assert "nope" in capsys.readouterr().err
    _no_leftovers(tmp_path, [])


def test_tlt_count_mismatch(dataset, tmp_path, capsys):
    tlt = tmp_path / "short.tlt"
    tlt.write_text("-10\n0\n10\n")
    assert (
        main(
            [
                "reconstruct",
                str(dataset / "tiltseries.mrc"),
                "--angles",
                str(tlt),
                "--out",
                str(tmp_path / "o.mrc"),
            ]
        )
        == 2
    )
    assert "short.tlt" in capsys.readouterr().err
    _no_leftovers(tmp_path, ["short.tlt"])


def test_wrong_dimensionality(tmp_path, capsys):
    img = tmp_path / "image.mrc"
    mrcfile.write(img, np.zeros((8, 8), dtype=np.float32))
    (tmp_path / "image.tlt").write_text("0\n")
    assert main(["reconstruct", str(img), "--out", str(tmp_path / "o.mrc")]) == 2
    assert "image.mrc" in capsys.readouterr().err
    _no_leftovers(tmp_path, ["image.mrc", "image.tlt"])


def test_non_finite_values(tmp_path, capsys):
    stack = np.ones((3, 8, 8), dtype=np.float32)
    stack[1, 2, 2] = np.nan
    path = tmp_path / "nan.mrc"
    with pytest.warns(RuntimeWarning, match="NaN"):
        mrcfile.write(path, stack)
    (tmp_path / "nan.tlt").write_text("-10\n0\n10\n")
    assert main(["reconstruct", str(path), "--out", str(tmp_path / "o.mrc")]) == 2
    assert "nan.mrc" in capsys.readouterr().err
    _no_leftovers(tmp_path, ["nan.mrc", "nan.tlt"])


def test_not_an_mrc(tmp_path, capsys):
    path = tmp_path / "text.mrc"
    path.write_text("hello")
    (tmp_path / "text.tlt").write_text("0\n")
    assert main(["reconstruct", str(path), "--out", str(tmp_path / "o.mrc")]) == 2
    assert "text.mrc" in capsys.readouterr().err


def test_bad_method_is_usage_error(dataset, tmp_path, capsys):
    assert (
        main(
            [
                "reconstruct",
                str(dataset / "tiltseries.mrc"),
                "--method",
                "magic",
                "--out",
                str(tmp_path / "o.mrc"),
            ]
        )
        == 2
    )
    assert "magic" in capsys.readouterr().err


def test_unknown_benchmark(capsys):
    assert main(["bench", "nothing"]) == 2
    assert "nothing" in capsys.readouterr().err

"""The shared option parsers and output checks of the command line."""

from __future__ import annotations

import sys
import time

import mrcfile
import numpy as np
import pytest
import typer

from inversa.cli import main
from inversa.cli._options import (
    check_device,
    check_outputs,
    check_scheduler,
    float_list,
    parse_floats,
    parse_wedge,
)
from inversa.core.errors import InputError
from inversa.core.optional import MissingDependencyError, missing_dependency, require


def test_parse_floats_counts_and_bounds():
    assert parse_floats("1, 2.5", name="--x", count=2) == (1.0, 2.5)
    for bad in ("1", "1,2,3", "a,b", "1,,2", "nan,1", "inf,1"):
        with pytest.raises(typer.BadParameter):
            parse_floats(bad, name="--x", count=2)
    with pytest.raises(typer.BadParameter, match="below 0"):
        parse_floats("-1,2", name="--x", minimum=0)


def test_float_list_callback():
    shape = float_list("--shape", count=3, integers=True, minimum=1)
    assert shape("4,5,6") == (4, 5, 6) and all(isinstance(v, int) for v in shape("4,5,6"))
    assert shape(None) is None
    with pytest.raises(typer.BadParameter, match="whole"):
        shape("4.5,5,6")
    rising = float_list("--r", increasing=True)
    with pytest.raises(typer.BadParameter, match="increase"):
        rising("3,1")


def test_parse_wedge():
    assert parse_wedge("-60,60") == (-60.0, 60.0)
    assert parse_wedge(None) is None
    for bad in ("60,-60", "-100,60", "10,10"):
        with pytest.raises(typer.BadParameter):
            parse_wedge(bad)


def test_check_device():
    import torch

    assert check_device("cpu") == "cpu"
    with pytest.raises(typer.BadParameter):
        check_device("nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(typer.BadParameter, match="CUDA"):
            check_device("cuda")
    else:
        with pytest.raises(typer.BadParameter, match="visible"):
            check_device(f"cuda:{torch.cuda.device_count()}")


def test_unreachable_scheduler_fails_fast():
    assert check_scheduler(None) is None and check_scheduler("processes") == "processes"
    start = time.monotonic()
    with pytest.raises(typer.BadParameter, match=r"127\.0\.0\.1:1"):
        check_scheduler("tcp://127.0.0.1:1")
    with pytest.raises(typer.BadParameter, match="address"):
        check_scheduler("tcp://nohost")
    assert time.monotonic() - start < 10


def test_map_items_unreachable_scheduler_is_input_error():
    from inversa.core.parallel import map_items

    start = time.monotonic()
    with pytest.raises(InputError, match=r"127\.0\.0\.1:1"):
        map_items(abs, [1, 2], scheduler="tcp://127.0.0.1:1", progress=False)
    assert time.monotonic() - start < 20  # distributed's own default waits 30 s


def test_require_names_the_extra(monkeypatch):
    assert require("json").dumps({}) == "{}"
    monkeypatch.setitem(sys.modules, "obspy", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "inversa\[seismic\]"'):
        require("obspy")
    with pytest.raises(MissingDependencyError, match=r"inversa\[all\]"):
        require("inversa_no_such_module")  # not listed: the catch-all extra
    with pytest.raises(ModuleNotFoundError) as info:  # json is installed: a real error
        require("json.no_such_submodule")
    assert not isinstance(info.value, MissingDependencyError)
    exc = ModuleNotFoundError("x", name="torch_geometric")
    assert "inversa[graphs]" in str(missing_dependency(exc))
    assert missing_dependency(ModuleNotFoundError("x", name="numpyy")) is None


def test_phase_diagram_quick_preset_lives_in_the_library():
    from inversa.springblock import PhaseDiagramGrid

    quick, paper = PhaseDiagramGrid.quick(), PhaseDiagramGrid()
    assert len(quick.alphas) * len(quick.noises) * len(quick.seeds) == 18
    assert quick.epochs == 40
    assert len(paper.alphas) * len(paper.noises) * len(paper.seeds) == 540
    with pytest.raises(InputError):
        PhaseDiagramGrid(epochs=0)


def _stack(path, n=3):
    data = np.random.default_rng(0).random((n, 8, 8), dtype=np.float32)
    mrcfile.write(path, data, voxel_size=3.0)
    path.with_suffix(".tlt").write_text("-30\n0\n30\n")


def test_reconstruct_many_creates_folder_and_takes_voxel_size(tmp_path):
    (tmp_path / "a").mkdir()
    _stack(tmp_path / "a" / "one.mrc")
    _stack(tmp_path / "a" / "two.mrc")
    out = tmp_path / "tomos" / "deep"
    args = ["reconstruct", str(tmp_path / "a" / "one.mrc"), str(tmp_path / "a" / "two.mrc")]
    assert main([*args, "--out", str(out), "--voxel-size", "7.5", "--thickness", "4"]) == 0
    for name in ("one_rec.mrc", "two_rec.mrc"):
        with mrcfile.open(out / name) as f:
            assert f.voxel_size.x == pytest.approx(7.5)
            assert f.data.shape == (4, 8, 8)


def test_unwritable_output_folder_is_refused_before_work(tmp_path, monkeypatch, capsys):
    import errno
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    # Root ignores permission bits, so the read-only mount is simulated at the probe.
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(InputError, match="Read-only"):
        check_outputs(folders=[tmp_path / "new"])
    assert main(["springblock", "simulate", "--steps", "5", "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "o.json" in err[0] and "Read-only" in err[0]


def _disk_full(item):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device", f"out/{item}.mrc")


def test_disk_full_in_a_batch_is_a_user_error():
    from inversa.core.parallel import map_items, raise_failures

    results = map_items(_disk_full, [1, 2], progress=False)
    assert all(r.input_error for r in results)
    with pytest.raises(InputError, match="No space"):
        raise_failures(results)


def test_failed_batch_leaves_no_tomograms(tmp_path, capsys):
    _stack(tmp_path / "good.mrc")
    _stack(tmp_path / "nan.mrc")
    data = mrcfile.read(tmp_path / "nan.mrc").copy()
    data[1, 2, 3] = np.nan  # a valid header: found only while reconstructing
    with pytest.warns(RuntimeWarning, match="NaN"):  # mrcfile warns, and writes it
        mrcfile.write(tmp_path / "nan.mrc", data, voxel_size=3.0, overwrite=True)
    out = tmp_path / "tomos"
    args = ["reconstruct", str(tmp_path / "good.mrc"), str(tmp_path / "nan.mrc"), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nan.mrc" in err[0]
    assert not out.exists()  # good_rec.mrc was written, then removed with the folder

"""``inversa icetide`` and ``inversa align-tilts``: outputs, and bad inputs -> exit 2."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import torch

from inversa.cli import main
from inversa.core import io
from inversa.icetide import rigid_xf
from inversa.tomography import TiltGeometry, TiltSeriesProjector


def _series(tmp_path, *, t=7, size=16, name="ts"):
    g = torch.Generator().manual_seed(0)
    volume = torch.zeros(6, size, size, dtype=torch.float64)
    volume[2:4, 4:9, 5:11] = 1.0
    volume[1:5, 9:13, 3:6] = 0.5
    geometry = TiltGeometry.from_range(-45, 45, 90 / (t - 1))
    shifts = torch.randn(t, 2, generator=g, dtype=torch.float64)
    xf = rigid_xf(torch.zeros(t, dtype=torch.float64), shifts)
    raw = TiltSeriesProjector(volume_shape=volume.shape, geometry=geometry.replace(xf=xf))
    stack = 10.0 - raw.forward(volume).float()
    path = tmp_path / f"{name}.mrc"
    io.write_mrc(path, stack, voxel_size=10.0)
    io.write_tlt(path.with_suffix(".tlt"), geometry.angles)
    return path, stack, geometry


def test_icetide_writes_every_output_and_refuses_to_overwrite(tmp_path, capsys):
    path, _, _ = _series(tmp_path)
    out = tmp_path / "out"
    args = ["icetide", str(path), "--out", str(out), "--steps", "4", "--rays", "32"]
    args += ["--samples", "8", "--local-grid", "4", "--thickness", "6"]
    assert main(args) == 0
    volume, voxel = io.read_mrc(out / "volume.mrc")
    assert volume.shape == (6, 16, 16) and voxel == pytest.approx(10.0)
    assert io.read_xf(out / "aligned.xf").shape == (7, 2, 3)
    fields = np.load(out / "local_fields.npz")
    assert fields["control"].shape == (7, 4, 4, 2)
    assert fields["displacement"].shape == (7, 16, 16, 2)
    assert io.read_mrc(out / "corrected_wbp.mrc")[0].shape == (6, 16, 16)
    log = io.read_json(out / "log.json")
    assert log["config"]["steps"] == 4 and log["config"]["polish"] is True
    assert set(log["polish"]) >= {"last_step_rot_deg_max", "scan_offset_deg_max"}
    assert (out / "checkpoint.pt").is_file()
    before = (out / "volume.mrc").read_bytes()
    assert main(args) == 2  # outputs exist: nothing redone without --force
    assert (out / "volume.mrc").read_bytes() == before
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["xcorr", "projmatch"])
def test_align_tilts_writes_an_xf(tmp_path, method):
    path, _, _ = _series(tmp_path, size=32)
    out = tmp_path / f"{method}.xf"
    assert main(["align-tilts", str(path), "--method", method, "--out", str(out)]) == 0
    assert io.read_xf(out).shape == (7, 2, 3)


def _bad(tmp_path, kind):
    path, stack, geometry = _series(tmp_path)
    extra = []
    if kind == "count":
        io.write_tlt(path.with_suffix(".tlt"), geometry.angles[:-1], force=True)
    elif kind == "nonsquare":
        io.write_mrc(path, stack[:, :, :14], force=True)
    elif kind == "odd":
        io.write_mrc(path, stack[:, :15, :15], force=True)
    elif kind == "nan":
        with mrcfile.open(path, mode="r+") as mrc:  # write_mrc refuses NaN: patch in place
            mrc.data[2, 3, 4] = np.nan
    elif kind == "xf":
        bad_xf = tmp_path / "start.xf"
        io.write_xf(bad_xf, torch.eye(2, 3).repeat(5, 1, 1))
        extra = ["--xf", str(bad_xf)]
    return path, extra


@pytest.mark.parametrize("kind", ["count", "nonsquare", "odd", "nan", "xf"])
def test_bad_inputs_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, kind):
    path, extra = _bad(tmp_path, kind)
    out = tmp_path / "out"
    assert main(["icetide", str(path), "--out", str(out), "--steps", "2", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    assert str(path.name) in err or "start.xf" in err or ".tlt" in err
    assert not out.exists()
    xf_out = tmp_path / "a.xf"
    if kind != "xf":
        assert main(["align-tilts", str(path), "--out", str(xf_out)]) == 2
        assert not xf_out.exists()


def test_local_grid_below_four_is_refused(tmp_path, capsys):
    path, _, _ = _series(tmp_path)
    out = tmp_path / "out"
    assert main(["icetide", str(path), "--out", str(out), "--local-grid", "3"]) == 2
    assert "--local-grid" in capsys.readouterr().err
    assert not out.exists()


def test_resume_with_another_steps_exits_2_and_keeps_the_outputs(tmp_path, capsys):
    path, _, _ = _series(tmp_path)
    out = tmp_path / "out"
    args = ["icetide", str(path), "--out", str(out), "--rays", "32", "--samples", "8"]
    args += ["--local-grid", "4", "--thickness", "6", "--force"]
    assert main([*args, "--steps", "4", "--sirt", "2"]) == 0
    assert io.read_mrc(out / "corrected_sirt.mrc")[0].shape == (6, 16, 16)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main([*args, "--steps", "6"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "checkpoint.pt" in err and "--steps 4" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main([*args, "--steps", "4"]) == 0  # the same schedule resumes (nothing left to run)


def test_icetide_with_defocus_models_the_ctf(tmp_path):
    path, _, _ = _series(tmp_path)
    defocus = tmp_path / "ts.defocus"  # IMOD ctfplotter, version 2: one row per view
    rows = [f"{k + 1} {k + 1} 0.0 0.0 {2000 + 100 * k}" for k in range(7)]
    defocus.write_text(rows[0] + " 2\n" + "\n".join(rows[1:]) + "\n")
    out = tmp_path / "out"
    args = ["icetide", str(path), "--out", str(out), "--steps", "3", "--rays", "64"]
    args += ["--samples", "8", "--local-grid", "0", "--thickness", "6", "--ctf-patch", "8"]
    assert main([*args, "--defocus", str(defocus), "--voltage", "200"]) == 0
    log = io.read_json(out / "log.json")
    assert log["ctf"]["defocus_u_um"] == pytest.approx([2.0 + 0.1 * k for k in range(7)])
    assert log["ctf"]["voltage_kv"] == 200.0 and log["ctf"]["pixel_size_A"] == 10.0
    assert log["config"]["ctf_patch"] == 8 and log["config"]["ctf_lowpass"] == 0.5
    assert io.read_mrc(out / "corrected_wbp.mrc")[0].shape == (6, 16, 16)
    one = tmp_path / "one"  # one defocus for every tilt, in micrometres
    assert main(["icetide", *args[1:3], str(one), *args[4:], "--defocus", "2.5"]) == 0
    assert io.read_json(one / "log.json")["ctf"]["defocus_u_um"] == [2.5] * 7


@pytest.mark.parametrize("kind", ["missing", "rows"])
def test_bad_defocus_file_exits_2_naming_it(tmp_path, capsys, kind):
    path, _, _ = _series(tmp_path)
    defocus = tmp_path / "bad.defocus"
    if kind == "rows":
        defocus.write_text("1 1 0.0 0.0 2000 2\n2 2 0.0 0.0 2000\n")
    out = tmp_path / "out"
    assert main(["icetide", str(path), "--out", str(out), "--defocus", str(defocus)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.defocus" in err
    assert not out.exists()


def test_init_xcorr_or_a_file_and_not_both(tmp_path, capsys):
    path, _, _ = _series(tmp_path, size=32)
    args = ["icetide", str(path), "--steps", "1", "--rays", "16", "--samples", "4"]
    args += ["--local-grid", "0", "--thickness", "6"]
    out = tmp_path / "xc"
    assert main([*args, "--out", str(out), "--init", "xcorr", "--ctf-lowpass", "0.2"]) == 0
    config = io.read_json(out / "log.json")["config"]
    assert config["init"] == "xcorr" and config["ctf_lowpass"] == 0.2
    start = tmp_path / "start.xf"
    given = rigid_xf(torch.zeros(7, dtype=torch.float64), torch.full((7, 2), 2.0))
    io.write_xf(start, given)
    out2 = tmp_path / "file"
    # without the polish, which would move it against a one-step volume
    assert main([*args, "--out", str(out2), "--init", str(start), "--no-polish"]) == 0
    log = io.read_json(out2 / "log.json")
    assert log["config"]["init"] == "zero" and log["config"]["polish"] is False
    assert log["polish"] == {}
    found = torch.as_tensor(io.read_xf(out2 / "aligned.xf"))
    assert torch.allclose(found.double(), given, atol=0.1)  # one step from the given start
    capsys.readouterr()
    out3 = tmp_path / "both"
    assert main([*args, "--out", str(out3), "--init", str(start), "--xf", str(start)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not both" in err and not out3.exists()

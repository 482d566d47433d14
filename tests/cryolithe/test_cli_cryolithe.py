"""CryoLithe on the command line: reconstruct --method cryolithe, train, bad inputs."""

from __future__ import annotations

import json

import pytest
import torch

from inversa.cli import main
from inversa.core import io
from inversa.core.training import save_weights
from inversa.cryolithe import SliceSet, SliceSetConfig, save_model


def _stack(tmp_path, n_tilts=5, size=12):
    g = torch.Generator().manual_seed(0)
    stack = 100.0 + torch.randn(n_tilts, size, size, generator=g)
    path = tmp_path / "ts.mrc"
    io.write_mrc(path, stack, voxel_size=10.0)
    io.write_tlt(tmp_path / "ts.tlt", torch.linspace(-40, 40, n_tilts))
    return path


def test_reconstruct_with_a_model_file(tmp_path):
    stack = _stack(tmp_path)
    model = tmp_path / "m.safetensors"
    save_model(model, SliceSet(SliceSetConfig(patch_size=3, head="wavelet")))
    out = tmp_path / "tomo.mrc"
    args = ["reconstruct", str(stack), "--method", "cryolithe", "--model", str(model)]
    assert main([*args, "--thickness", "6", "--out", str(out)]) == 0
    volume, _ = io.read_mrc(out, ndim=3)
    assert tuple(volume.shape) == (6, 12, 12)
    assert bool(torch.isfinite(volume).all())


def test_bad_model_file_exits_2_and_writes_nothing(tmp_path, capsys):
    stack = _stack(tmp_path)
    bad = tmp_path / "other.safetensors"
    save_weights(bad, {"w": torch.zeros(3)}, metadata={"kind": "not cryolithe"})
    out = tmp_path / "tomo.mrc"
    args = ["reconstruct", str(stack), "--method", "cryolithe", "--model", str(bad)]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "other.safetensors" in err and "not a CryoLithe model" in err
    assert not out.exists()


def test_stack_without_angles_exits_2(tmp_path):
    stack = _stack(tmp_path)
    (tmp_path / "ts.tlt").unlink()
    out = tmp_path / "tomo.mrc"
    assert main(["reconstruct", str(stack), "--method", "cryolithe", "--out", str(out)]) == 2
    assert not out.exists()


@pytest.mark.slow  # renders ribosome scenes: about 30 s on a shared 2-core machine
def test_train_quick_writes_a_loadable_model_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "run"
    args = ["cryolithe", "train", str(out), "--quick", "--head", "pixel", "--steps", "2"]
    assert main(args) == 0
    record = json.loads((out / "training_pixel.json").read_text())
    assert record["steps_run"] == 2 and record["training_seconds"] > 0
    assert (out / "cryolithe_pixel.safetensors").is_file()
    assert main(args) == 2  # outputs exist, no --force
    # network widths are options (the wider attempt of docs/cryolithe.md)
    wide = [*args, "--force", "--set-features", "12", "--row-out", "3", "--head-hidden", "20,10"]
    assert main([*wide, "--patch-size", "5", "--scenes", "2"]) == 0
    from inversa.cryolithe import load_model

    config = load_model(out / "cryolithe_pixel.safetensors")[0].config
    assert (config.set_features, config.row_out, config.head_hidden) == (12, 3, (20, 10))
    assert config.patch_size == 5
    assert config.row_features == SliceSetConfig().row_features and config.head == "pixel"
    assert json.loads((out / "training_pixel.json").read_text())["n_scenes"] == 2
    assert main([*wide, "--patch-size", "4"]) == 2  # patches are odd


@pytest.mark.parametrize("bad", ["", "a,b", "16,0"])
def test_train_refuses_bad_head_widths(tmp_path, bad):
    args = ["cryolithe", "train", str(tmp_path / "r"), "--quick", "--head-hidden", bad]
    assert main(args) == 2
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("option", [["--patch-size", "4"], ["--scenes", "0"]])
def test_train_refuses_a_bad_patch_size_or_scene_count(tmp_path, option):
    args = ["cryolithe", "train", str(tmp_path / "r"), "--quick", "--head", "pixel", *option]
    assert main(args) == 2
    assert not (tmp_path / "r").exists()

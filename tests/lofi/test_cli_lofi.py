"""LoFi on the command line: train, apply, and the bad inputs (exit 2, nothing written)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inversa.cli import main
from inversa.core.phantoms import shepp_logan_2d
from inversa.lofi import LoFi, LoFiConfig, load_model, save_model, task_config, task_operator

SMALL = LoFiConfig(
    reference_size=16, n_spokes=4, n_radii=3, spoke_hidden=8, spoke_features=4, mixer_hidden=(8,)
)


@pytest.fixture
def ct_model(tmp_path):
    return save_model(tmp_path / "sparse.safetensors", LoFi(SMALL), task="sparse-ct")


def _sinogram(tmp_path, n=16, n_angles=30, name="sino.npy"):
    task = task_config("sparse-ct")
    op = task_operator(task, n)
    sino = op.forward(shepp_logan_2d(n)[None])[0][:n_angles].numpy()
    path = tmp_path / name
    np.save(path, sino)
    return path


def test_apply_sinogram_writes_an_image(tmp_path, ct_model, capsys):
    out = tmp_path / "rec.npy"
    assert main(["lofi", "apply", str(ct_model), str(_sinogram(tmp_path)), "--out", str(out)]) == 0
    rec = np.load(out)
    assert rec.shape == (16, 16) and np.isfinite(rec).all()
    out2 = tmp_path / "rec32.tif"
    args = ["lofi", "apply", str(ct_model), str(_sinogram(tmp_path)), "--out", str(out2)]
    assert main([*args, "--size", "32", "--task", "sparse-ct"]) == 0
    assert out2.is_file()
    assert main(["lofi", "apply", str(ct_model), str(_sinogram(tmp_path)), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_apply_denoise_png(tmp_path):
    model = save_model(tmp_path / "d.safetensors", LoFi(SMALL), task="denoise")
    from inversa.lofi import write_array

    img = write_array(tmp_path / "noisy.png", torch.rand(20, 20))
    out = tmp_path / "clean.png"
    assert main(["lofi", "apply", str(model), str(img), "--out", str(out)]) == 0
    assert out.is_file()


def _refused(capsys, args, out, *needles):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    assert not out.exists()


def test_bad_inputs_exit_2_name_the_file_and_write_nothing(tmp_path, ct_model, capsys):
    out = tmp_path / "out.npy"
    # A sinogram whose angle count is not the model's task.
    wrong = _sinogram(tmp_path, n_angles=20, name="wrong.npy")
    _refused(
        capsys,
        ["lofi", "apply", str(ct_model), str(wrong), "--out", str(out)],
        out,
        "wrong.npy",
        "20 angles",
    )
    # NaN in the input.
    nan = tmp_path / "nan.npy"
    arr = np.zeros((30, 24), dtype=np.float32)
    arr[3, 4] = np.nan
    np.save(nan, arr)
    _refused(
        capsys, ["lofi", "apply", str(ct_model), str(nan), "--out", str(out)], out, "nan.npy", "NaN"
    )
    # A 3-D array where 2-D is needed.
    cube = tmp_path / "cube.npy"
    np.save(cube, np.zeros((3, 30, 24), dtype=np.float32))
    _refused(
        capsys,
        ["lofi", "apply", str(ct_model), str(cube), "--out", str(out)],
        out,
        "cube.npy",
        "2-D",
    )
    # A model file of another task (asked for with --task), and a file that is no model.
    sino = _sinogram(tmp_path)
    args = ["lofi", "apply", str(ct_model), str(sino), "--out", str(out), "--task", "denoise"]
    _refused(capsys, args, out, "sparse.safetensors", "trained for task sparse-ct")
    from inversa.core.training import save_weights

    other = tmp_path / "other.safetensors"
    save_weights(other, {"w": torch.zeros(2)}, metadata={"format": "inversa-cryolithe-v1"})
    _refused(
        capsys,
        ["lofi", "apply", str(other), str(sino), "--out", str(out)],
        out,
        "other.safetensors",
        "not a LoFi model",
    )


def test_train_quick_writes_a_loadable_model(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    args = ["lofi", "train", "--task", "denoise", "--out", str(out), "--quick", "--steps", "3"]
    assert main(args) == 0
    _, meta = load_model(out, task="denoise")
    assert meta["info"]["steps"] == 3 and meta["info"]["n_images"] <= 10
    assert not (tmp_path / "m.safetensors.ckpt.pt").exists()
    capsys.readouterr()
    assert main(args) == 2  # exists, no --force
    assert "exists" in capsys.readouterr().err
    assert main(["lofi", "train", "--task", "ct", "--out", str(out), "--quick"]) == 2

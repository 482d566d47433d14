"""Loading a user's model and data: safe by default, every bad file an InputError."""

import io
import os
import zipfile

import numpy as np
import pytest
import torch

import inversa.cli._springblock  # noqa: F401  (registers the commands)
from inversa.cli import main
from inversa.core.errors import InputError
from inversa.core.training import save_weights
from inversa.springblock import load_dataset, load_model, make_mlp, save_mlp


class _MakesDirectory:
    """Unpickling this object calls os.mkdir(marker): a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_load_dataset_bad_npz(tmp_path):
    good = _npz(tmp_path / "good.npz", x=np.ones((4, 3)), y=np.array([0, 1, 0, 1]))
    assert load_dataset(good).x_train.shape == (4, 3)
    raw = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "single.npy", np.ones(3))
    os.replace(tmp_path / "single.npy", tmp_path / "single.npz")
    for name in ("cut.npz", "junk.npz", "empty.npz", "single.npz"):
        with pytest.raises(InputError, match=name.replace(".", r"\.")):
            load_dataset(tmp_path / name)
    cases = [
        ({"x": np.ones((2, 3)), "y": np.array([], dtype=int)}, "'y' must be integer labels"),
        ({"x": np.ones((2, 3)), "y": np.array([0, -1])}, "negative labels"),
        ({"x": np.ones(2), "y": np.array([0, 1])}, "'x' must be finite"),
        ({"x": np.array([[np.nan], [1.0]]), "y": np.array([0, 1])}, "'x' must be finite"),
        ({"x": np.ones((2, 3)), "y": np.array([0, 1]), "x_test": np.ones((1, 3))}, "both"),
        (
            {"x": np.ones((2, 3)), "y": np.array([0, 1]), "x_test": np.ones((1, 4)), "y_test": [0]},
            "differ in sample shape",
        ),
        (
            {
                "x": np.ones((2, 3)),
                "y": np.array([0, 1]),
                "x_test": np.ones((1, 3)),
                "y_test": [-2],
            },
            "'y_test' holds negative",
        ),
    ]
    for i, (arrays, problem) in enumerate(cases):
        with pytest.raises(InputError, match=problem):
            load_dataset(_npz(tmp_path / f"c{i}.npz", **arrays))
    with pytest.raises(InputError, match=r"absent\.npz: file not found"):
        load_dataset(tmp_path / "absent.npz")


def test_pickled_payload_refused_without_trust(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save(_MakesDirectory(marker), path)
    with pytest.raises(InputError, match="pass --trust"):
        load_model(path)
    assert main(["springblock", "curve", "--model", str(path), "--data", "gmm"]) == 2
    assert not marker.exists()
    # The payload is live: only an explicit trust would run it.
    with pytest.raises(InputError, match="no model architecture"):
        load_model(path, trust=True)
    assert marker.is_dir()


def test_damaged_model_files(tmp_path):
    net = make_mlp(in_features=4, classes=3, width=8, depth=2, alpha=0.1, dropout=0.0)
    good = tmp_path / "m.safetensors"
    save_mlp(good, net)
    assert isinstance(load_model(good), torch.nn.Module)
    raw = good.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="not a readable safetensors"):
        load_model(tmp_path / "cut.safetensors")
    save_weights(tmp_path / "meta.safetensors", net.state_dict(), metadata={"architecture": "x"})
    with pytest.raises(InputError, match=r"without springblock\.make_mlp"):
        load_model(tmp_path / "meta.safetensors")
    save_weights(
        tmp_path / "keys.safetensors",
        net.state_dict(),
        metadata={"architecture": "springblock.make_mlp", "width": 8},
    )
    with pytest.raises(InputError, match="configuration lacks"):
        load_model(tmp_path / "keys.safetensors")
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    raw = buffer.getvalue()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.pt").write_bytes(b"hello")
    for name in ("cut.pt", "text.pt"):
        with pytest.raises(InputError, match=r"cannot load the file"):
            load_model(tmp_path / name)
    assert zipfile.is_zipfile(io.BytesIO(raw))


def test_refit_from_corrupt_json_exits_2(tmp_path):
    bad = tmp_path / "run.json"
    bad.write_text('{"values": [1, 2')
    assert main(["springblock", "refit", "--from-json", str(bad)]) == 2

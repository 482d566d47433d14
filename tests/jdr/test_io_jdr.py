"""Graph files: PyG .pt files are loaded without running code; bad files are InputErrors."""

import os
import re
import zipfile

import numpy as np
import pytest
import torch

import inversa.cli._jdr  # noqa: F401  (registers the commands)
from inversa.cli import main
from inversa.core.errors import InputError
from inversa.jdr import csbm, read_graph, write_graph


class _MakesDirectory:
    """Unpickling this object calls os.mkdir(marker): a stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _graph():
    return csbm(n_nodes=30, n_features=5, avg_degree=3, phi=0.5, seed=0)


def test_pt_round_trip_with_weights_only(tmp_path):
    g = _graph()
    (path,) = write_graph(g, tmp_path / "g.pt")
    back = read_graph(path)
    assert torch.equal(back.x, g.x) and torch.equal(back.edge_index, g.edge_index)
    assert set(back.keys()) == set(g.keys())


@pytest.mark.parametrize("wrap", [False, True])
def test_crafted_pickle_is_refused_and_never_runs(tmp_path, wrap):
    marker = tmp_path / "marker"
    payload = _MakesDirectory(marker)
    if wrap:  # hidden inside an otherwise valid Data object
        g = _graph()
        g.extra = payload
        payload = g
    path = tmp_path / "evil.pt"
    torch.save(payload, path)
    with pytest.raises(InputError, match=r"evil\.pt: refusing to load .*mkdir"):
        read_graph(path)
    assert not marker.exists()
    assert main(["jdr", "rewire", str(path), "--out", str(tmp_path / "o.pt")]) == 2
    assert not marker.exists() and not (tmp_path / "o.pt").exists()
    # The payload is live: an unsafe load would have run it (so the check above can fail).
    torch.load(path, weights_only=False)
    assert marker.is_dir()


def test_damaged_pt_files(tmp_path):
    path = tmp_path / "g.pt"
    write_graph(_graph(), path)
    raw = path.read_bytes()
    for name, data in (
        ("empty.pt", b""),
        ("text.pt", b"hello"),
        ("cut.pt", raw[: len(raw) // 2]),
    ):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=re.escape(name)):
            read_graph(tmp_path / name)
    torch.save({"x": torch.ones(2, 2)}, tmp_path / "dict.pt")
    with pytest.raises(InputError, match="expected a torch_geometric Data"):
        read_graph(tmp_path / "dict.pt")
    g = _graph()
    g.edge_index = g.edge_index + 1000
    torch.save(g, tmp_path / "ids.pt")
    with pytest.raises(InputError, match="edge_index must be"):
        read_graph(tmp_path / "ids.pt")
    assert zipfile.is_zipfile(path)  # the real format is a zip, so 'cut' hit a real failure


def test_edge_list_and_feature_errors(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.ones((3, 2)))
    edges = tmp_path / "e.txt"
    cases = [
        ("", "no edges"),
        ("# only a comment\n", "no edges"),
        ("0 1 nan\n", "NaN or infinite"),
        ("0 1\n1\n", "cannot parse edge list"),
        ("0 1e30\n", "node ids must lie in"),
        ("0 -1\n", "node ids must lie in"),
        ("0 1.5\n", "integer ids"),
    ]
    for text, problem in cases:
        edges.write_text(text)
        with pytest.raises(InputError, match=problem):
            read_graph(edges, features=x)
    edges.write_text("0 1\n1 2\n")
    for name, data, problem in (
        ("bad.npy", b"\x93NUMPY garbage", "cannot parse features"),
        ("empty.npy", b"", "cannot parse features"),
        ("bad.txt", b"1 2\n3\n", "cannot parse features"),
        ("nan.txt", b"1 nan\n", "features must be finite"),
    ):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError, match=re.escape(name) + ": " + problem):
            read_graph(edges, features=tmp_path / name)
    np.save(tmp_path / "obj.npy", np.array(["a", "b"], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="obj"):
        read_graph(edges, features=tmp_path / "obj.npy")
    with pytest.raises(InputError, match=r"missing\.npy: file not found"):
        read_graph(edges, features=tmp_path / "missing.npy")
    with pytest.raises(InputError, match=r"nope\.txt: file not found"):
        read_graph(tmp_path / "nope.txt", features=x)
    g = read_graph(edges, features=x)
    assert g.edge_index.shape == (2, 4) and g.x.shape == (3, 2)

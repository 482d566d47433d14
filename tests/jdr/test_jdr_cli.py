import numpy as np
import torch

import inversa.cli._jdr  # noqa: F401  (registers the commands)
from inversa.cli import main
from inversa.jdr import csbm


def test_rewire_pt_and_edge_list(tmp_path):
    g = csbm(n_nodes=80, n_features=20, avg_degree=4, phi=0.5, seed=0)
    src = tmp_path / "g.pt"
    torch.save(g, src)
    out = tmp_path / "out.pt"
    args = ["jdr", "rewire", str(src), "--out", str(out), "-K", "2", "--l-a", "3", "--l-x", "3"]
    assert main(args) == 0
    res = torch.load(out, weights_only=False)
    assert res.x.shape == g.x.shape and res.edge_attr.shape[0] == res.edge_index.shape[1]
    assert main(args) == 2  # exists, no --force
    assert main([*args, "--force"]) == 0
    # Features only (the public phi = +-1 setting): the graph is written back unchanged.
    assert main([*args, "--force", "--denoise", "features", "--offset", "1"]) == 0
    res = torch.load(out, weights_only=False)
    assert torch.equal(res.edge_index, g.edge_index) and not torch.equal(res.x, g.x)
    assert main([*args, "--force", "--denoise", "nothing"]) == 2

    edges = tmp_path / "g.txt"
    half = g.edge_index[:, g.edge_index[0] < g.edge_index[1]].T.numpy()
    np.savetxt(edges, half, fmt="%d")
    np.save(tmp_path / "x.npy", g.x.numpy())
    out_txt = tmp_path / "out.txt"
    assert (
        main(
            [
                "jdr",
                "rewire",
                str(edges),
                "--features",
                str(tmp_path / "x.npy"),
                "--out",
                str(out_txt),
                "-K",
                "1",
                "--l-a",
                "2",
                "--l-x",
                "2",
            ]
        )
        == 0
    )
    table = np.loadtxt(out_txt, ndmin=2)
    assert table.shape[1] == 3 and np.load(str(out_txt) + ".x.npy").shape == (80, 20)


def test_rewire_bad_input_exit_code(tmp_path):
    edges = tmp_path / "bad.txt"
    edges.write_text("0 0\n0 1\n")
    np.save(tmp_path / "x.npy", np.ones((2, 3)))
    code = main(
        [
            "jdr",
            "rewire",
            str(edges),
            "--features",
            str(tmp_path / "x.npy"),
            "--out",
            str(tmp_path / "o.pt"),
            "--l-a",
            "1",
            "--l-x",
            "1",
        ]
    )
    assert code == 2
    assert (
        main(["jdr", "rewire", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o.pt")]) == 2
    )

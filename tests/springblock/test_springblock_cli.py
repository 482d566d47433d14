import json

import numpy as np
import torch
from torch import nn

import inversa.cli._springblock  # noqa: F401  (registers the commands)
from inversa.cli import main


def _model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10)
    )


def test_curve_on_exported_and_pickled_models(tmp_path):
    net = _model()
    full = tmp_path / "full.pt"
    torch.save(net, full)
    # a pickled module is refused without --trust
    assert main(["springblock", "curve", "--model", str(full), "--data", "gmm"]) == 2
    out = tmp_path / "curve.json"
    rc = main(
        ["springblock", "curve", "--model", str(full), "--data", "gmm", "--trust", "-o", str(out)]
    )
    assert rc == 0
    got = json.loads(out.read_text())
    assert got["layers"] == ["input", "1", "3"] and len(got["load"]) == 2
    np.testing.assert_allclose(np.diff(got["log_separation"]), -np.array(got["load"]), atol=1e-12)
    # torch.export archives inline their layers: refused with a message
    ep = tmp_path / "m.pt2"
    batch = {"input": {0: torch.export.Dim("batch")}}
    exported = torch.export.export(net.eval(), (torch.randn(4, 64),), dynamic_shapes=batch)
    torch.export.save(exported, ep)
    assert main(["springblock", "curve", "--model", str(ep), "--data", "gmm"]) == 2
    # a make_mlp network saved as safetensors loads safely and gives the same curve
    from inversa.springblock import load_model, make_mlp, save_mlp

    mlp = make_mlp(in_features=64, classes=10, width=12, depth=3, alpha=0.1, seed=3)
    st = tmp_path / "mlp.safetensors"
    save_mlp(st, mlp)
    back = load_model(st)
    assert all(
        torch.equal(a, b)
        for a, b in zip(mlp.state_dict().values(), back.state_dict().values(), strict=True)
    )
    assert main(["springblock", "curve", "--model", str(st), "--data", "digits"]) == 0
    # a state dict has no architecture
    sd = tmp_path / "sd.pt"
    torch.save(net.state_dict(), sd)
    assert main(["springblock", "curve", "--model", str(sd), "--data", "gmm"]) == 2
    assert main(["springblock", "curve", "--model", str(tmp_path / "no.pt")]) == 2
    # digits inputs are 64-dimensional too; a model for other sizes gives a clear error
    small = tmp_path / "small.pt"
    torch.save(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU()), small)
    assert main(["springblock", "curve", "--model", str(small), "--trust"]) == 2


def test_curve_on_user_npz_with_single_sample_class(tmp_path):
    net = _model()
    full = tmp_path / "full.pt"
    torch.save(net, full)
    f = tmp_path / "d.npz"
    y = np.array([0, 0, 1, 1, 2])
    np.savez(f, x=np.random.default_rng(0).normal(size=(5, 64)).astype(np.float32), y=y)
    assert main(["springblock", "curve", "--model", str(full), "--data", str(f), "--trust"]) == 2


def test_simulate_and_tiny_phase_diagram(tmp_path):
    out = tmp_path / "sim.json"
    assert (
        main(["springblock", "simulate", "--friction", "0,0.1,2", "--noise", "0", "-o", str(out)])
        == 0
    )
    got = json.loads(out.read_text())
    assert got["curvature"][0] < 1e-3 < got["curvature"][1] and got["curvature"][2] is None
    assert main(["springblock", "simulate", "-o", str(out)]) == 2  # exists, no --force
    rc = main(
        [
            "springblock",
            "phase-diagram",
            "--out",
            str(tmp_path),
            "--data",
            "gmm",
            "--alphas",
            "0,1",
            "--noises",
            "0",
            "--seeds",
            "1",
            "--epochs",
            "20",
        ]
    )
    assert rc == 0
    js = json.loads((tmp_path / "springblock_phase_diagram.json").read_text())
    assert js["networks"] == 2 and len(js["curvature"]) == 2
    assert (tmp_path / "springblock_phase_diagram.png").stat().st_size > 1000
    # re-plot a saved run from its JSON without retraining
    from inversa.springblock import plot_phase_diagram

    again = plot_phase_diagram(js, tmp_path / "again.png")
    assert again.stat().st_size > 1000
    # refit the model side from the saved loads, without retraining
    refit = tmp_path / "refit.json"
    args = ["springblock", "refit", "--from-json", str(tmp_path / "springblock_phase_diagram.json")]
    assert main([*args, "-o", str(refit)]) == 0
    new = json.loads(refit.read_text())
    assert new["curvature"] == js["curvature"] and new["sign_agreement_heldout_seeds"] is None
    assert len(js["network_loads"][0][0][0]) == 7  # (alpha, noise, seed, layer)
    assert main(["springblock", "simulate", "--backward-excess", "-1"]) == 2

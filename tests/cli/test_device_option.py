"""``--device`` on the commands that train or compute: checked when parsed, then passed on."""

from __future__ import annotations

import dataclasses
import types

import pytest
import torch

from inversa.cli import main
from inversa.core.errors import InputError


def _argv(command: str, tmp_path) -> list[str]:
    model = tmp_path / "net.safetensors"
    model.write_bytes(b"")  # never read: refused or stopped before
    return {
        "neurde-train": ["neurde", "train", "sod1", "--out", str(tmp_path / "w.safetensors")],
        "springblock-curve": ["springblock", "curve", "--model", str(model), "--data", "gmm"],
        "springblock-phase": ["springblock", "phase-diagram", "--out", str(tmp_path / "pd")],
        "poisson-study": ["poisson", "study", "--out", str(tmp_path / "study")],
        "bench": ["bench", "tomography", "--quick"],
    }[command]


COMMANDS = ["neurde-train", "springblock-curve", "springblock-phase", "poisson-study", "bench"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", COMMANDS)
def test_cuda_without_cuda_is_one_line_and_exit_2(tmp_path, capsys, command):
    argv = _argv(command, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main([*argv, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA is not available" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def _stop(seen: list, name: str):
    """A stand-in for a library function: record its device, then stop the command."""

    def fake(*args, **kwargs):
        seen.append((name, kwargs.get("device")))
        raise InputError(None, "stopped by the test")

    return fake


@pytest.mark.parametrize("command", COMMANDS)
def test_device_reaches_the_library_function(tmp_path, monkeypatch, capsys, command):
    import inversa.bench
    import inversa.neurde
    import inversa.poisson
    import inversa.springblock

    # Pretend a GPU is there so that the parse-time check lets cuda:0 through.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    seen: list = []
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2))
    x = torch.zeros(4, 2)
    data = types.SimpleNamespace(x_train=x, y_train=torch.zeros(4, dtype=torch.long))
    monkeypatch.setattr(inversa.springblock, "load_model", lambda *a, **k: net)
    monkeypatch.setattr(inversa.springblock, "load_dataset", lambda *a, **k: data)
    monkeypatch.setattr(inversa.neurde, "train_and_save", _stop(seen, "neurde"))
    monkeypatch.setattr(inversa.springblock, "separation_curve", _stop(seen, "curve"))
    monkeypatch.setattr(inversa.springblock, "phase_diagram", _stop(seen, "phase"))
    monkeypatch.setattr(inversa.poisson, "run_study", _stop(seen, "poisson"))
    monkeypatch.setattr(inversa.bench, "run_benchmark", _stop(seen, "bench"))
    assert main([*_argv(command, tmp_path), "--device", "cuda:0"]) == 2
    assert "stopped by the test" in capsys.readouterr().err
    assert len(seen) == 1 and seen[0][1] == "cuda:0"
    assert main([*_argv(command, tmp_path)]) == 2  # the default
    assert seen[1][1] == "cpu"


def test_bench_passes_the_device_only_to_a_run_that_takes_it(monkeypatch):
    import inversa.bench

    calls = []

    def with_device(*, quick, device):
        calls.append(device)
        return "report"

    def cpu_only(*, quick):
        calls.append("cpu-only ran")
        return "report"

    def module(run):
        return lambda name: types.SimpleNamespace(run=run)

    monkeypatch.setattr(inversa.bench, "_module", module(with_device))
    assert inversa.bench.run_benchmark("x", quick=True, device="cuda:1") == "report"
    assert calls == ["cuda:1"]
    monkeypatch.setattr(inversa.bench, "_module", module(cpu_only))
    assert inversa.bench.run_benchmark("x", quick=True) == "report"
    assert inversa.bench.run_benchmark("x", quick=True, device="cpu") == "report"
    with pytest.raises(InputError, match="CPU only"):
        inversa.bench.run_benchmark("x", quick=True, device="cuda")
    assert calls == ["cuda:1", "cpu-only ran", "cpu-only ran"]  # refused before running


def test_library_functions_take_a_device_and_keep_cpu_results():
    from inversa.poisson import StudyConfig, run_study
    from inversa.springblock import Dataset, NetworkSetting, separation_curve, train_networks

    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    x = torch.randn(60, 5, generator=g) + 2 * torch.randn(3, 5, generator=g)[y]
    data = Dataset("tiny", x[:40], y[:40], x[40:], y[40:], 3)
    settings = [
        NetworkSetting(alpha=0.0, noise=0.2, seed=0),
        NetworkSetting(alpha=1.0, seed=1, dropout=0.1),
    ]
    a = train_networks(data, settings, epochs=2, width=8, depth=3)
    b = train_networks(data, settings, epochs=2, width=8, depth=3, device=torch.device("cpu"))
    torch.testing.assert_close(a.curvature, b.curvature, rtol=0, atol=0)
    assert a.curvature.device.type == "cpu" and a.test_accuracy.device.type == "cpu"

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 6), torch.nn.ReLU(), torch.nn.Linear(6, 6), torch.nn.ReLU()
    )
    plain = separation_curve(net, data.x_train, data.y_train)
    on_cpu = separation_curve(net, data.x_train, data.y_train, device="cpu")
    torch.testing.assert_close(plain.log_separation, on_cpu.log_separation, rtol=0, atol=0)

    cfg = dataclasses.replace(
        StudyConfig.quick(), size=16, n_angles=8, doses=(5.0,), n_validation=2, n_realisations=2,
        reg_grid=(0.1,), n_iter=3,
    )  # fmt: skip
    one = run_study(cfg)
    two = run_study(cfg, device="cpu")
    assert one.mse == two.mse and one.reg == two.reg


def test_neurde_training_takes_a_device():
    from inversa.neurde import NeurdeTrainConfig, make_case, reference_trajectory, train_equilibrium

    case = make_case("sod2", scale=0.02)
    cfg = NeurdeTrainConfig(
        window=4, stage1_steps=5, stage2_steps=0, unroll=2, batch=64, width=8, depth=2, features=8
    )
    traj = reference_trajectory(case, steps=4, rows=1, device="cpu")
    assert traj[0].shape == (5, 9, 1, 61) and traj[0].device.type == "cpu"
    net_a, sum_a = train_equilibrium(case, config=cfg, trajectory=traj)
    net_b, sum_b = train_equilibrium(case, config=cfg, trajectory=traj, device="cpu")
    assert sum_a["stage1_loss"] == sum_b["stage1_loss"]
    for p, q in zip(net_a.parameters(), net_b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)

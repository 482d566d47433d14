import numpy as np

import inversa.cli._neurde  # noqa: F401 - registers the commands
from inversa.cli import main


def test_simulate_writes_fields_and_a_figure(tmp_path):
    out = tmp_path / "run"
    args = ["neurde", "simulate", "sod2", "--steps", "20", "--scale", "0.02", "--out", str(out)]
    assert main([*args, "--threads", "1"]) == 0
    data = np.load(out / "fields.npz")
    assert data["rho"].shape == (1, 61) and int(data["step"]) == 20
    assert (out / "fields.png").stat().st_size > 1000
    assert main(args) == 2  # outputs exist, no --force
    assert main([*args, "--force"]) == 0


def test_bad_input_exits_with_code_2(tmp_path):
    out = str(tmp_path / "x")
    assert main(["neurde", "simulate", "nosuchcase", "--out", out]) == 2
    assert main(["neurde", "simulate", "sod1", "--equilibrium", "magic", "--out", out]) == 2
    assert main(["neurde", "simulate", "sod1", "--steps", "0", "--out", out]) == 2
    assert main(["neurde", "train", "lax", "--out", str(tmp_path / "w.safetensors")]) == 2


def test_simulate_cylinder_writes_maps(tmp_path):
    out = tmp_path / "cyl"
    args = ["neurde", "simulate", "cylinder", "--steps", "5", "--scale", "0.1", "--out", str(out)]
    assert main([*args, "--threads", "1"]) == 0
    data = np.load(out / "fields.npz")
    assert data["rho"].shape == (24, 28) and float(data["rho"].max()) > 1.0
    assert (out / "fields.png").stat().st_size > 1000

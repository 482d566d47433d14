"""simulate_dataset on disk: the true misalignment is written beside the tilt series."""

import numpy as np
import pytest
import torch

from inversa.cli import main
from inversa.core import io, phantoms
from inversa.core.errors import InputError, OutputExistsError
from inversa.tomography import TiltGeometry
from inversa.workflows import SimulationConfig, dataset_paths, read_deformation, simulate_dataset

SMALL = SimulationConfig(
    shape=(24, 40, 40),
    voxel_size=5.0,
    structure=str(phantoms.builtin_structure_path("1ake")),
    reference_box=32,
    n_particles=2,
    n_membranes=1,
    tilt_step=10.0,
    dose=50.0,
    seed=3,
    shift_px=1.5,
    rotation_deg=1.0,
    local_deformation_px=2.0,
)


def test_true_misalignment_is_written_beside_the_stack(tmp_path):
    data = simulate_dataset(tmp_path, config=SMALL, name="ts")
    assert data.files == dataset_paths(tmp_path, config=SMALL, name="ts")
    for role in ("stack", "angles", "xf", "deformation"):
        assert data.files[role].parent == tmp_path and data.files[role].name.startswith("ts")
    geometry = TiltGeometry.from_files(data.files["angles"], data.files["xf"])
    torch.testing.assert_close(geometry.angles, data.angles, atol=1e-2, rtol=0)
    torch.testing.assert_close(geometry.xf, data.xf, atol=5e-4, rtol=0)  # IMOD precision
    saved = read_deformation(data.files["deformation"])
    np.testing.assert_array_equal(saved["displacement"], data.displacement.float().numpy())
    np.testing.assert_array_equal(saved["control"], data.control.numpy())
    assert float(saved["amplitude_px"]) == 2.0
    assert saved["displacement"].shape == (len(data.angles), 40, 40, 2)
    stack, _ = io.read_mrc(data.files["stack"])
    assert torch.equal(stack, data.stack.to(stack.dtype))
    with pytest.raises(OutputExistsError):
        simulate_dataset(tmp_path, config=SMALL, name="ts")


def test_no_deformation_file_without_deformation(tmp_path):
    config = SimulationConfig(**{**vars(SMALL), "local_deformation_px": 0.0})
    assert "deformation" not in dataset_paths(tmp_path, config=config)
    data = simulate_dataset(tmp_path, config=config)
    assert data.displacement is None and "deformation" not in data.files
    assert not list(tmp_path.glob("*.npz"))


def test_read_deformation_refuses_other_npz(tmp_path):
    np.savez(tmp_path / "x.npz", displacement=np.zeros(3))
    with pytest.raises(InputError, match="local-deformation"):
        read_deformation(tmp_path / "x.npz")


def test_cli_local_deformation_option(tmp_path):
    args = [
        "simulate",
        str(tmp_path),
        "--structure",
        str(phantoms.builtin_structure_path("1ake")),
        "--shape",
        "24,40,40",
        "--voxel-size",
        "5",
        "--n-particles",
        "2",
        "--n-membranes",
        "1",
        "--tilt-step",
        "20",
        "--seed",
        "3",
        "--local-deformation",
        "1.5",
    ]
    assert main(args) == 0
    saved = read_deformation(tmp_path / "tiltseries_deformation.npz")
    assert 0 < np.linalg.norm(saved["displacement"], axis=-1).max() <= 1.5 + 1e-6
    assert main(args) == 2  # every output, the deformation file included, needs --force

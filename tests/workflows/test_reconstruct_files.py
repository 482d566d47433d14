"""reconstruct_file: one sidecar rule for the .tlt and .xf beside a stack."""

import torch

from inversa.core import io, phantoms
from inversa.workflows import (
    ReconstructionConfig,
    SimulationConfig,
    reconstruct_file,
    reconstruct_paths,
    reconstruct_stack,
    simulate_dataset,
)

MISALIGNED = SimulationConfig(
    shape=(24, 40, 40),
    voxel_size=5.0,
    structure=str(phantoms.builtin_structure_path("1ake")),
    reference_box=32,
    n_particles=2,
    n_membranes=1,
    tilt_step=10.0,
    dose=500.0,
    seed=3,
    shift_px=3.0,
    rotation_deg=2.0,
)
CONFIG = ReconstructionConfig(thickness=24)


def test_the_xf_sidecar_is_applied_by_default(tmp_path):
    data = simulate_dataset(tmp_path / "data", config=MISALIGNED)
    stack = data.files["stack"]
    default = reconstruct_file(stack, out_path=tmp_path / "a.mrc", config=CONFIG)
    explicit = reconstruct_file(
        stack, out_path=tmp_path / "b.mrc", config=CONFIG, xf_path=data.files["xf"]
    )
    a, _ = io.read_mrc(default)
    b, _ = io.read_mrc(explicit)
    assert torch.equal(a, b)
    # the same as the in-memory path with the true geometry, not the unaligned one
    in_memory = reconstruct_stack(data.stack, data.geometry, config=CONFIG)
    torch.testing.assert_close(a, in_memory, atol=1e-5, rtol=1e-5)
    unaligned = reconstruct_stack(data.stack, data.geometry.replace(xf=None), config=CONFIG)
    assert not torch.allclose(a, unaligned, atol=1e-3)


def test_reconstruct_paths_writes_a_file_or_a_folder(tmp_path):
    data = simulate_dataset(tmp_path / "data", config=MISALIGNED)
    stack = data.files["stack"]
    one = reconstruct_paths([stack], out=tmp_path / "one.mrc", config=CONFIG)
    assert one == [tmp_path / "one.mrc"]
    many = reconstruct_paths([stack], out=tmp_path / "tomos", config=CONFIG)
    assert many == [tmp_path / "tomos" / "tiltseries_rec.mrc"]
    x, _ = io.read_mrc(one[0])
    y, _ = io.read_mrc(many[0])
    assert torch.equal(x, y)  # both took the .xf sidecar

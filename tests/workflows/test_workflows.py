import pytest
import torch

from inversa.core import metrics, phantoms
from inversa.core.errors import InputError
from inversa.tomography import TiltGeometry
from inversa.workflows import (
    ReconstructionConfig,
    SimulationConfig,
    preprocess_stack,
    reconstruct_stack,
    simulate_dataset,
)

TINY = SimulationConfig(
    shape=(24, 64, 64),
    voxel_size=5.0,
    structure=str(phantoms.builtin_structure_path("1ake")),
    reference_box=32,
    n_particles=4,
    n_membranes=1,
    tilt_step=5.0,
    dose=500.0,
    seed=1,
)


# The demo's tests are in test_demo.py.


def test_ctf_phase_flip_improves_reconstruction():
    config = SimulationConfig(**{**vars(TINY), "ctf": True, "defocus_um": 2.0})
    data = simulate_dataset(None, config=config)
    corr = {}
    for defocus in (None, 2.0):
        rec = reconstruct_stack(
            data.stack,
            data.geometry,
            config=ReconstructionConfig(thickness=24, defocus_um=defocus),
            pixel_size=config.voxel_size,
        )
        corr[defocus] = float(metrics.pearson_correlation(rec, data.volume))
    assert corr[2.0] > corr[None] + 0.05, corr


def test_misaligned_series_needs_its_xf():
    config = SimulationConfig(**{**vars(TINY), "shift_px": 3.0, "rotation_deg": 2.0})
    data = simulate_dataset(None, config=config)
    cfg = ReconstructionConfig(thickness=24)
    with_xf = reconstruct_stack(data.stack, data.geometry, config=cfg)
    without = reconstruct_stack(data.stack, data.geometry.replace(xf=None), config=cfg)
    c_with = float(metrics.pearson_correlation(with_xf, data.volume))
    c_without = float(metrics.pearson_correlation(without, data.volume))
    assert c_with > 0.6 and c_with > c_without + 0.1, (c_with, c_without)


def test_particles_star_positions_point_at_particles(tmp_path):
    data = simulate_dataset(tmp_path, config=TINY)
    from inversa.core.io import read_particles

    particles, optics = read_particles(data.files["particles"])
    d, h, w = TINY.shape
    assert float(optics["rlnImagePixelSize"].iloc[0]) == TINY.voxel_size
    for i, row in particles.iterrows():
        x = row["rlnCenteredCoordinateXAngst"] / TINY.voxel_size + w // 2
        y = row["rlnCenteredCoordinateYAngst"] / TINY.voxel_size + h // 2
        z = row["rlnCenteredCoordinateZAngst"] / TINY.voxel_size + d // 2
        torch.testing.assert_close(
            torch.tensor([x, y, z], dtype=torch.float64), data.scene.positions[i].double()
        )
        # the volume is dense where a particle sits (empty solvent is zero)
        zi, yi, xi = round(z), round(y), round(x)
        assert data.volume[zi - 2 : zi + 3, yi - 2 : yi + 3, xi - 2 : xi + 3].mean() > 0.1


@pytest.mark.parametrize("mode", ["normalize", "log", "none"])
def test_preprocess_modes(mode):
    counts = torch.full((2, 4, 4), 100.0)
    counts[:, 1, 1] = 50.0  # a dark (dense) pixel
    out = preprocess_stack(counts, mode=mode)
    if mode == "none":
        assert torch.equal(out, counts)
    else:
        assert (out[:, 1, 1] > out[:, 0, 0]).all()  # density becomes bright
        assert abs(float(out[0].mean())) < 0.05 if mode == "normalize" else True


def test_bad_configuration_is_input_error():
    with pytest.raises(InputError, match="method"):
        ReconstructionConfig(method="fourier")
    with pytest.raises(InputError, match="log"):
        preprocess_stack(torch.zeros(1, 2, 2), mode="log")
    with pytest.raises(InputError, match="tilt angles"):
        reconstruct_stack(
            torch.ones(3, 8, 8),
            TiltGeometry(angles=torch.zeros(2)),
            config=ReconstructionConfig(thickness=4),
        )

import numpy as np
import pandas as pd
import pytest
import torch

from inversa.alignment._extract import extract_subtomograms
from inversa.core.errors import InputError
from inversa.core.io import make_optics_table, read_mrc, read_particles, write_mrc, write_particles
from inversa.workflows import extract_particles_file


def _tomogram():
    tomo = torch.zeros(20, 30, 40)
    tomo[5, 12, 30] = 1.0  # x=30, y=12, z=5
    tomo[10, 15, 8] = 2.0
    return tomo


def test_boxes_are_centred_on_the_nearest_voxel():
    tomo = _tomogram()
    positions = torch.tensor([[30.2, 11.7, 5.4], [8.0, 15.0, 10.0], [1.0, 1.0, 1.0]])
    cut = extract_subtomograms(tomo, positions, box=8)
    assert cut.volumes.shape == (3, 8, 8, 8)
    assert float(cut.volumes[0, 4, 4, 4]) == 1.0
    assert float(cut.volumes[1, 4, 4, 4]) == 2.0
    assert cut.centres[0].tolist() == [30, 12, 5]
    torch.testing.assert_close(
        cut.residuals[0], torch.tensor([0.2, -0.3, 0.4], dtype=torch.float64), atol=1e-6, rtol=0
    )
    assert cut.clipped.tolist() == [False, False, True]
    assert cut.inside.all()


def test_particles_outside_are_flagged():
    cut = extract_subtomograms(_tomogram(), torch.tensor([[-3.0, 4.0, 4.0]]), box=6)
    assert not bool(cut.inside[0])
    assert float(cut.volumes.abs().sum()) == 0.0
    with pytest.raises(InputError, match="box"):
        extract_subtomograms(_tomogram(), torch.zeros(1, 3), box=1)


def _star(path, positions_vox, shape, pixel):
    centre = np.array([shape[2] // 2, shape[1] // 2, shape[0] // 2], dtype=float)
    coords = (np.asarray(positions_vox, float) - centre) * pixel
    n = len(coords)
    table = pd.DataFrame(
        {
            "rlnTomoName": ["tomo"] * n,
            "rlnCenteredCoordinateXAngst": coords[:, 0],
            "rlnCenteredCoordinateYAngst": coords[:, 1],
            "rlnCenteredCoordinateZAngst": coords[:, 2],
            "rlnOpticsGroup": [1] * n,
        }
    )
    write_particles(path, table, make_optics_table(pixel_size=pixel))


def test_extract_job_keeps_positions_and_writes_subtomograms(tmp_path):
    tomo = _tomogram()
    write_mrc(tmp_path / "tomo.mrc", tomo, voxel_size=3.0)
    _star(tmp_path / "in.star", [[30.2, 11.7, 5.4], [8.0, 15.0, 10.0]], tomo.shape, 3.0)
    result = extract_particles_file(
        [tmp_path / "tomo.mrc"], tmp_path / "in.star", box=8, out_dir=tmp_path / "out"
    )
    particles, optics = read_particles(result.star)
    assert int(optics["rlnImageSize"].iloc[0]) == 8
    vol, voxel = read_mrc(tmp_path / "out" / particles["rlnImageName"].iloc[1])
    assert voxel == pytest.approx(3.0) and float(vol[4, 4, 4]) == 2.0
    # coordinate - origin still points at the particle; the origin holds the remainder
    before = particles[["rlnCenteredCoordinateXAngst"]].to_numpy()[0, 0] - float(
        particles["rlnOriginXAngst"].iloc[0]
    )
    assert before == pytest.approx((30.2 - 20) * 3.0, abs=1e-4)
    assert float(particles["rlnOriginXAngst"].iloc[0]) == pytest.approx(-0.2 * 3.0, abs=1e-4)


def test_extract_job_rejects_outside_particles_and_writes_nothing(tmp_path):
    tomo = _tomogram()
    write_mrc(tmp_path / "tomo.mrc", tomo, voxel_size=3.0)
    _star(tmp_path / "in.star", [[30.0, 12.0, 5.0], [30.0, 12.0, 40.0]], tomo.shape, 3.0)
    with pytest.raises(InputError, match="outside") as err:
        extract_particles_file(
            [tmp_path / "tomo.mrc"], tmp_path / "in.star", box=8, out_dir=tmp_path / "out"
        )
    assert err.value.path == str(tmp_path / "tomo.mrc")
    assert not (tmp_path / "out").exists()

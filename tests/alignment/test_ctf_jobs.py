"""The file jobs with tilt-series CTF metadata (RELION 5 tomograms.star)."""

import pandas as pd
import pytest
import torch

from inversa.alignment import poses_to_table
from inversa.bench.alignment import make_ctf_particles
from inversa.cli import main
from inversa.core.errors import InputError
from inversa.core.io import make_optics_table, write_mrc, write_particles
from inversa.tomography import write_relion5_tilt_series
from inversa.workflows import average_particles_file
from inversa.workflows._particles import load_source, particle_ctf


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Four CTF'd subtomograms, their STAR file (true poses) and a tomograms.star."""
    root = tmp_path_factory.mktemp("ctf_project")
    _, parts, rots, shifts, ctf, voxel = make_ctf_particles(
        24, 4, snr_db=None, seed=3, max_shift=1.0
    )
    names = []
    for i, vol in enumerate(parts):
        names.append(f"p{i}.mrc")
        write_mrc(root / names[-1], vol, voxel_size=voxel)
    table = pd.DataFrame(
        {
            "rlnTomoName": [f"TS_{int(j):02d}" for j in ctf.series_index],
            "rlnImageName": names,
            "rlnCenteredCoordinateXAngst": ctf.positions_A[:, 0].numpy(),
            "rlnCenteredCoordinateYAngst": ctf.positions_A[:, 1].numpy(),
            "rlnCenteredCoordinateZAngst": ctf.positions_A[:, 2].numpy(),
            "rlnOpticsGroup": [1] * 4,
            "rlnRandomSubset": [1, 2, 1, 2],
        }
    )
    table = poses_to_table(table, rots, shifts, pixel_size=voxel)
    star = root / "particles.star"
    write_particles(star, table, make_optics_table(pixel_size=voxel))
    series = {f"TS_{j:02d}": s for j, s in enumerate(ctf.series)}
    tomograms = root / "tomograms.star"
    write_relion5_tilt_series(tomograms, series, pixel_size_A=voxel)
    return {"star": star, "tomograms": tomograms, "ctf": ctf, "voxel": voxel, "root": root}


def test_particle_ctf_from_the_relion5_files_matches_the_simulation(project):
    source = load_source(project["star"], tomograms=None, box=None)
    read = particle_ctf(source, project["tomograms"])
    truth = project["ctf"]
    k = torch.rand(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) - 0.5
    torch.testing.assert_close(read.weights(k), truth.weights(k), atol=1e-4, rtol=0)
    with pytest.raises(InputError):
        particle_ctf(source, {"other": truth.series[0]})


def test_ctf_corrected_average_job_and_cli(project, tmp_path):
    out = tmp_path / "avg.mrc"
    result = average_particles_file(project["star"], out, tilt_series=project["tomograms"])
    assert out.exists() and (tmp_path / "avg_half1.mrc").exists()
    assert result.fsc[1] > 0.5
    cli_out = tmp_path / "cli_avg.mrc"
    code = main(
        [
            "average",
            str(project["star"]),
            "--out",
            str(cli_out),
            "--tilt-series",
            str(project["tomograms"]),
        ]
    )
    assert code == 0
    assert cli_out.exists()

import json
import warnings

import mrcfile
import numpy as np
import pandas as pd
import pytest
import torch

import inversa.cli._alignment  # noqa: F401  (registers the commands)
from inversa.alignment._volumes import rotate_volume, shift_volume
from inversa.cli import main
from inversa.core import phantoms, rotations
from inversa.core.io import make_optics_table, read_mrc, read_particles, write_mrc, write_particles
from inversa.workflows import _align_job

PIXEL = 4.0
BOX = 16
N = 6


@pytest.fixture(scope="module")
def truth():
    model = phantoms.read_atomic_model(phantoms.builtin_structure_path())
    ref = phantoms.reference_density(model, voxel_size=PIXEL, box=BOX, resolution=8.0)
    g = torch.Generator().manual_seed(11)
    rots = rotations.random_rotations(N, generator=g)
    shifts = (torch.rand(N, 3, generator=g) - 0.5) * 2
    particles = shift_volume(rotate_volume(ref, rots), shifts)
    particles = particles + 0.2 * ref.std() * torch.randn(particles.shape, generator=g)
    kick = rotations.axis_angle_to_matrix(0.06 * torch.randn(N, 3, generator=g))
    return ref, rots, shifts, particles, rots @ kick


def _table(priors, **columns):
    euler = rotations.matrix_to_euler(priors.double()).numpy()
    n = len(euler)
    return pd.DataFrame(
        {
            "rlnTomoName": ["ts"] * n,
            "rlnCenteredCoordinateXAngst": np.zeros(n),
            "rlnCenteredCoordinateYAngst": np.zeros(n),
            "rlnCenteredCoordinateZAngst": np.zeros(n),
            "rlnAngleRot": euler[:, 0],
            "rlnAngleTilt": euler[:, 1],
            "rlnAnglePsi": euler[:, 2],
            "rlnOpticsGroup": [1] * n,
            "rlnRandomSubset": [1, 2] * (n // 2),
            **columns,
        }
    )


@pytest.fixture()
def subtomos(tmp_path, truth):
    ref, _, _, particles, priors = truth
    (tmp_path / "sub").mkdir()
    names = []
    for i in range(N):
        write_mrc(tmp_path / "sub" / f"p{i}.mrc", particles[i], voxel_size=PIXEL)
        names.append(f"sub/p{i}.mrc")
    write_particles(
        tmp_path / "in.star",
        _table(priors, rlnImageName=names),
        make_optics_table(pixel_size=PIXEL),
    )
    write_mrc(tmp_path / "ref.mrc", ref, voxel_size=PIXEL)
    return tmp_path


ALIGN = ["--max-angle-deg", "10", "--chunk-size", "3"]


def _poke(path, array):
    """Write non-finite data that write_mrc refuses (as a broken file would hold)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(array)
            mrc.voxel_size = PIXEL


def test_align_writes_relion_poses(subtomos, truth):
    _, rots, shifts, _, _ = truth
    out = subtomos / "out.star"
    code = main(
        [
            "align",
            str(subtomos / "in.star"),
            "--reference",
            str(subtomos / "ref.mrc"),
            "--out",
            str(out),
            *ALIGN,
        ]
    )
    assert code == 0
    particles, _ = read_particles(out)
    euler = torch.tensor(particles[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy())
    err = rotations.geodesic_distance(rotations.euler_to_matrix(euler), rots.double())
    assert float(err.max()) < 3.0, err
    origins = particles[["rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst"]].to_numpy()
    np.testing.assert_allclose(origins, -shifts.numpy() * PIXEL, atol=0.3 * PIXEL)
    assert not (subtomos / "out.star.partial").exists()


def _align(folder, *extra):
    return main(
        [
            "align",
            str(folder / "in.star"),
            "--reference",
            str(folder / "ref.mrc"),
            "--out",
            str(folder / "out.star"),
            *ALIGN,
            *extra,
        ]
    )


def test_bad_inputs_exit_2_and_write_nothing(subtomos, truth, capsys):
    ref = truth[0]
    write_mrc(subtomos / "ref.mrc", ref[:-2, :-2, :-2], voxel_size=PIXEL, force=True)
    assert _align(subtomos) == 2
    assert "ref.mrc" in capsys.readouterr().err
    write_mrc(subtomos / "ref.mrc", ref, voxel_size=2 * PIXEL, force=True)
    assert _align(subtomos) == 2
    assert "voxel size" in capsys.readouterr().err
    nan = ref.clone()
    nan[3, 3, 3] = float("nan")
    _poke(subtomos / "ref.mrc", nan.numpy())
    assert _align(subtomos) == 2
    assert "NaN" in capsys.readouterr().err
    write_mrc(subtomos / "ref.mrc", ref, voxel_size=PIXEL, force=True)
    particles, optics = read_particles(subtomos / "in.star")
    write_particles(
        subtomos / "in.star", particles.drop(columns="rlnImageName"), optics, force=True
    )
    assert _align(subtomos) == 2
    assert "in.star" in capsys.readouterr().err
    assert not (subtomos / "out.star").exists()
    assert not (subtomos / "out.star.partial").exists()


def test_one_bad_particle_is_reported_and_skipped(subtomos, capsys):
    data, _ = read_mrc(subtomos / "sub" / "p2.mrc")
    data[0, 0, 0] = float("inf")
    _poke(subtomos / "sub" / "p2.mrc", data.numpy())
    assert _align(subtomos) == 0
    assert "skipped particle 2" in capsys.readouterr().err
    particles, _ = read_particles(subtomos / "out.star")
    assert len(particles) == N - 1 and "sub/p2.mrc" not in set(particles["rlnImageName"])


def test_killed_run_resumes_from_its_checkpoint(subtomos, monkeypatch):
    original = _align_job._align_chunk

    def dies_on_second_chunk(chunk, **kwargs):
        if chunk.index == 1:
            raise RuntimeError("killed")
        return original(chunk, **kwargs)

    monkeypatch.setattr(_align_job, "_align_chunk", dies_on_second_chunk)
    with pytest.raises(RuntimeError, match="rerun to resume"):
        _align(subtomos)
    partial = subtomos / "out.star.partial"
    first = partial / "chunk-000000.json"
    assert first.exists() and not (subtomos / "out.star").exists()
    saved = first.read_text()

    calls = []

    def counting(chunk, **kwargs):
        calls.append(chunk.index)
        return original(chunk, **kwargs)

    monkeypatch.setattr(_align_job, "_align_chunk", counting)
    assert _align(subtomos) == 0
    assert calls == [1]  # the finished chunk was not redone
    particles, _ = read_particles(subtomos / "out.star")
    assert len(particles) == N and not partial.exists()
    assert json.loads(saved)["rows"] == [0, 1, 2]


def test_extract_average_refine_from_a_tomogram(tmp_path, truth):
    ref, rots, _, _, _ = truth
    shape = (24, 40, 64)
    tomo = torch.zeros(shape)
    centres = [(12, 20, 10 + 9 * i) for i in range(N)]  # (z, y, x), boxes overlap a little
    rotated = rotate_volume(ref, rots)
    h = BOX // 2
    for (z, y, x), vol in zip(centres, rotated, strict=True):
        tomo[z - h : z + h, y - h : y + h, x - h : x + h] += vol
    write_mrc(tmp_path / "ts.mrc", tomo, voxel_size=PIXEL)
    coords = {
        "rlnCenteredCoordinate" + a + "Angst": [(c[k] - shape[k] // 2) * PIXEL for c in centres]
        for a, k in (("X", 2), ("Y", 1), ("Z", 0))
    }
    table = _table(rots).assign(**coords)
    write_particles(tmp_path / "in.star", table, make_optics_table(pixel_size=PIXEL))
    out = tmp_path / "ex"
    assert (
        main(
            [
                "extract",
                str(tmp_path / "ts.mrc"),
                "--particles",
                str(tmp_path / "in.star"),
                "--box",
                str(BOX),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert main(["average", str(out / "particles.star"), "--out", str(tmp_path / "avg.mrc")]) == 0
    avg, voxel = read_mrc(tmp_path / "avg.mrc")
    assert voxel == pytest.approx(PIXEL)
    corr = float(torch.corrcoef(torch.stack([avg.flatten(), ref.flatten()]))[0, 1])
    assert corr > 0.8, corr
    fsc = json.loads((tmp_path / "avg_fsc.json").read_text())
    assert len(fsc["fsc"]) == BOX // 2 + 1 and (tmp_path / "avg_half2.mrc").exists()
    assert (
        main(
            [
                "refine",
                str(out / "particles.star"),
                "--out",
                str(tmp_path / "ref"),
                "--reference",
                str(tmp_path / "ts.mrc"),
                "--iterations",
                "1",
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "refine",
                str(out / "particles.star"),
                "--out",
                str(tmp_path / "ref"),
                "--use-priors",
                "--max-angle-deg",
                "6",
                "--iterations",
                "1",
            ]
        )
        == 0
    )
    model = json.loads((tmp_path / "ref" / "run_model.json").read_text())
    assert len(model["iterations"]) == 1 and (tmp_path / "ref" / "run_data.star").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", ["align", "average", "refine"])
def test_unavailable_device_is_refused_before_work(subtomos, capsys, command):
    args = {
        "align": ["--reference", str(subtomos / "ref.mrc"), "--out", str(subtomos / "o.star")],
        "average": ["--out", str(subtomos / "avg.mrc")],
        "refine": ["--out", str(subtomos / "run")],
    }[command]
    assert main([command, str(subtomos / "in.star"), *args, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "CUDA is not available" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in subtomos.iterdir()) == ["in.star", "ref.mrc", "sub"]

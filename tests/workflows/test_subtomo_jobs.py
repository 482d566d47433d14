"""Subtomogram jobs on files: paths, safety, checks before work, resume, lock, RELION 5."""

import json
import os
import socket

import numpy as np
import pandas as pd
import pytest
import torch

import inversa.cli._alignment  # noqa: F401  (registers the commands)
from inversa.alignment import poses_from_table, rotate_volume
from inversa.cli import main
from inversa.core import phantoms, rotations
from inversa.core.errors import InputError
from inversa.core.io import (
    make_optics_table,
    read_mrc,
    read_particles,
    write_mrc,
    write_particles,
    write_star,
)
from inversa.workflows import _align_job, average_particles_file

PIXEL = 4.0
BOX = 16
N = 6
SHAPE = (24, 40, 64)  # (z, y, x)
CENTRES = [(12, 20, 10 + 9 * i) for i in range(N)]  # (z, y, x) voxels


@pytest.fixture(scope="module")
def truth():
    model = phantoms.read_atomic_model(phantoms.builtin_structure_path())
    ref = phantoms.reference_density(model, voxel_size=PIXEL, box=BOX, resolution=8.0)
    g = torch.Generator().manual_seed(7)
    rots = rotations.random_rotations(N, generator=g, dtype=torch.float64)
    tomo = torch.zeros(SHAPE)
    h = BOX // 2
    for (z, y, x), vol in zip(CENTRES, rotate_volume(ref, rots.float()), strict=True):
        tomo[z - h : z + h, y - h : y + h, x - h : x + h] += vol
    return ref, rots, tomo


def _euler_columns(prefix, rots):
    e = rotations.matrix_to_euler(rots.double()).numpy()
    names = ("Rot", "Tilt", "Psi")
    return {f"{prefix}{name}": e[:, j] for j, name in enumerate(names)}


def _centred():
    return {
        f"rlnCenteredCoordinate{a}Angst": [(c[k] - SHAPE[k] // 2) * PIXEL for c in CENTRES]
        for a, k in (("X", 2), ("Y", 1), ("Z", 0))
    }


def _project(root, truth, *, tomo_name="ts_01"):
    """A small project: tomos/ts_01.mrc, picks/particles.star, ref.mrc."""
    ref, rots, tomo = truth
    (root / "tomos").mkdir(parents=True)
    (root / "picks").mkdir()
    write_mrc(root / "tomos" / "ts_01.mrc", tomo, voxel_size=PIXEL)
    write_mrc(root / "ref.mrc", ref, voxel_size=PIXEL)
    table = pd.DataFrame(
        {
            "rlnTomoName": [tomo_name] * N,
            **_centred(),
            **_euler_columns("rlnAngle", rots),
            "rlnOpticsGroup": [1] * N,
            "rlnRandomSubset": [1, 2] * (N // 2),
        }
    )
    write_particles(root / "picks" / "particles.star", table, make_optics_table(pixel_size=PIXEL))
    return root


def _run(*args):
    return main([str(a) for a in args])


def _extract(root, out="work/extract", *extra):
    star = root / "picks" / "particles.star"
    return _run("extract", root / "tomos" / "ts_01.mrc", "--particles", star, "--box", BOX,
                "--out", root / out, *extra)  # fmt: skip


def _angle_error(star, rots):
    particles, _ = read_particles(star)
    found, _ = poses_from_table(particles, pixel_size=PIXEL)
    return float(rotations.geodesic_distance(found, rots).max())


def test_readme_chain_with_outputs_in_other_folders(tmp_path, truth, monkeypatch):
    root = _project(tmp_path / "project", truth)
    monkeypatch.chdir(root)
    assert _extract(root) == 0
    aligned = root / "results" / "aligned.star"
    aligned.parent.mkdir()
    args = ("--reference", root / "ref.mrc", "--max-angle-deg", "8", "--chunk-size", "4")
    assert _run("align", root / "work/extract/particles.star", *args, "--out", aligned) == 0
    names = read_particles(aligned)[0]["rlnImageName"].tolist()
    # relative to aligned.star's own folder, and they reach the extracted files
    assert names[0] == "../work/extract/subtomograms/ts_01_000001.mrc"
    assert all((aligned.parent / n).is_file() for n in names)
    assert _angle_error(aligned, truth[1]) < 5.0
    trust = json.loads((root / "results" / "aligned_diagnostics.json").read_text())
    assert isinstance(trust["trustworthy"], bool) and len(trust["z_scores"]) == N
    (root / "maps").mkdir()
    assert _run("average", aligned, "--out", root / "maps" / "avg.mrc") == 0
    assert _run("refine", aligned, "--out", root / "refine" / "run", "--use-priors",
                "--max-angle-deg", "6", "--iterations", "1") == 0  # fmt: skip
    run_data = root / "refine" / "run" / "run_data.star"
    names = read_particles(run_data)[0]["rlnImageName"].tolist()
    assert names[0] == "../../work/extract/subtomograms/ts_01_000001.mrc"
    assert "trustworthy" in json.loads((run_data.parent / "run_diagnostics.json").read_text())
    assert _run("average", run_data, "--out", root / "maps" / "again.mrc") == 0
    avg, _ = read_mrc(root / "maps" / "again.mrc")
    corr = float(torch.corrcoef(torch.stack([avg.flatten(), truth[0].flatten()]))[0, 1])
    assert corr > 0.8, corr


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/inversa-absolute-escape"])
def test_extract_names_cannot_leave_the_output_folder(tmp_path, truth, name):
    root = _project(tmp_path / "p", truth, tomo_name=name)
    before = set(os.listdir("/tmp"))
    assert _extract(root, "out") == 0
    files = sorted(p.relative_to(root) for p in root.rglob("*.mrc"))
    written = [f for f in files if f.parts[0] == "out"]
    assert len(written) == N and all(f.parts[:2] == ("out", "subtomograms") for f in written)
    assert len(files) == N + 2  # nothing else appeared anywhere under the project
    assert not (tmp_path / "escaped").exists()
    assert set(os.listdir("/tmp")) - before == set()


def test_image_names_cannot_read_outside(tmp_path, truth, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = _project(tmp_path / "p", truth)
    assert _extract(root, "ex") == 0
    star = root / "ex" / "particles.star"
    particles, optics = read_particles(star)
    particles.loc[2, "rlnImageName"] = "../../../../../../../../etc/passwd"
    write_particles(star, particles, optics, force=True)
    assert _run("average", star, "--out", root / "avg.mrc") == 2
    err = capsys.readouterr().err
    assert "etc/passwd" in err and "--allow-outside" in err and len(err.strip().splitlines()) == 1
    assert not (root / "avg.mrc").exists()


def test_extract_checks_every_output_before_writing(tmp_path, truth, capsys):
    root = _project(tmp_path / "p", truth)
    third = root / "out" / "subtomograms" / "ts_01_000003.mrc"
    third.parent.mkdir(parents=True)
    third.write_bytes(b"mine")
    assert _extract(root, "out") == 2
    assert "ts_01_000003.mrc" in capsys.readouterr().err
    assert sorted(p.name for p in third.parent.iterdir()) == ["ts_01_000003.mrc"]
    assert not (root / "out" / "particles.star").exists() and third.read_bytes() == b"mine"


def test_refine_and_average_check_every_output_before_work(tmp_path, truth, capsys):
    root = _project(tmp_path / "p", truth)
    assert _extract(root, "ex") == 0
    star = root / "ex" / "particles.star"
    half = root / "run" / "run_class001_half1.mrc"
    half.parent.mkdir()
    half.write_bytes(b"mine")
    assert _run("refine", star, "--out", root / "run", "--use-priors", "--iterations", "1") == 2
    assert "run_class001_half1.mrc" in capsys.readouterr().err
    assert sorted(p.name for p in half.parent.iterdir()) == ["run_class001_half1.mrc"]
    (root / "avg_fsc.json").write_text("{}")
    assert _run("average", star, "--out", root / "avg.mrc") == 2
    assert not (root / "avg.mrc").exists() and not (root / "avg_half1.mrc").exists()


def test_a_locked_output_is_refused(tmp_path, truth, capsys):
    root = _project(tmp_path / "p", truth)
    assert _extract(root, "ex") == 0
    out = root / "aligned.star"
    # a live process of this host (the test runner's parent) holds the lock
    out.with_name("aligned.star.lock").write_text(
        json.dumps({"pid": os.getppid(), "host": socket.gethostname()})
    )
    code = _run("align", root / "ex" / "particles.star", "--reference", root / "ref.mrc",
                "--out", out, "--max-angle-deg", "5")  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "another run" in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not (root / "aligned.star.partial").exists()
    out.with_name("aligned.star.lock").unlink()
    out.write_text("x")  # an existing output: refused before any folder is made
    assert _run("align", root / "ex" / "particles.star", "--reference", root / "ref.mrc",
                "--out", out) == 2  # fmt: skip
    assert not (root / "aligned.star.partial").exists()


def test_mixed_box_sizes_name_the_odd_file(tmp_path, truth):
    root = _project(tmp_path / "p", truth)
    assert _extract(root, "ex") == 0
    odd = root / "ex" / "subtomograms" / "ts_01_000004.mrc"
    write_mrc(odd, torch.zeros(12, 12, 12), voxel_size=PIXEL, force=True)
    with pytest.raises(InputError, match="mixed box sizes") as err:
        average_particles_file(root / "ex" / "particles.star", root / "avg.mrc")
    assert err.value.path == str(odd)


def _align_in_process(root, out, **kwargs):
    config = _align_job.AlignJobConfig(method="exhaustive", max_angle_deg=6.0, chunk_size=2)
    return _align_job.align_particles_file(
        root / "ex" / "particles.star", root / "ref.mrc", out, config=config, **kwargs
    )


def _killed_after_first_chunk(root, out, monkeypatch):
    original = _align_job._align_chunk

    def dies(chunk, **kwargs):
        if chunk.index >= 1:
            raise RuntimeError("killed")
        return original(chunk, **kwargs)

    monkeypatch.setattr(_align_job, "_align_chunk", dies)
    with pytest.raises(RuntimeError, match="rerun to resume"):
        _align_in_process(root, out)
    calls = []

    def counting(chunk, **kwargs):
        calls.append(chunk.index)
        return original(chunk, **kwargs)

    monkeypatch.setattr(_align_job, "_align_chunk", counting)
    return calls


def test_resume_redoes_chunks_whose_inputs_changed(tmp_path, truth, monkeypatch):
    root = _project(tmp_path / "p", truth)
    assert _extract(root, "ex") == 0
    out = root / "out.star"
    calls = _killed_after_first_chunk(root, out, monkeypatch)
    stale = json.loads((root / "out.star.partial" / "chunk-000000.json").read_text())
    # particle 0 (chunk 0, already checkpointed) is replaced by particle 5's data
    sub = root / "ex" / "subtomograms"
    write_mrc(sub / "ts_01_000001.mrc", read_mrc(sub / "ts_01_000006.mrc")[0],
              voxel_size=PIXEL, force=True)  # fmt: skip
    result = _align_in_process(root, out)
    assert sorted(calls) == [0, 1, 2] and result.redone_chunks == 1
    fresh = _align_in_process(root, root / "fresh.star")
    assert fresh.resumed_chunks == 0
    a = read_particles(out)[0]
    b = read_particles(root / "fresh.star")[0]
    columns = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst"]
    np.testing.assert_allclose(a[columns].to_numpy(), b[columns].to_numpy(), atol=1e-4)
    # the stale checkpoint really was different: resuming it would have shown
    assert not np.allclose(stale["rotations"][0], read_json_rotation(a, 0), atol=1e-3)


def read_json_rotation(table, row):
    return poses_from_table(table.iloc[[row]], pixel_size=PIXEL)[0][0].tolist()


def test_corrupt_job_stamp_restarts_cleanly(tmp_path, truth, monkeypatch):
    root = _project(tmp_path / "p", truth)
    assert _extract(root, "ex") == 0
    out = root / "out.star"
    calls = _killed_after_first_chunk(root, out, monkeypatch)
    (root / "out.star.partial" / "job.json").write_text("{not json")
    result = _align_in_process(root, out)
    assert "discarded" in result.restarted and sorted(calls) == [0, 1, 2]
    assert result.resumed_chunks == 0 and not (root / "out.star.partial").exists()
    assert _angle_error(out, truth[1]) < 5.0


def test_relion5_project_tomograms_star_pixels_and_subtomogram_angles(tmp_path, truth):
    """tomograms.star names the file; pixel coordinates; A_total = A_sub @ A_part."""
    ref, rots, tomo = truth
    root = tmp_path / "relion"
    (root / "Tomograms" / "job007").mkdir(parents=True)
    write_mrc(root / "Tomograms" / "job007" / "rec_TS_01.mrc", tomo, voxel_size=PIXEL)
    write_mrc(root / "ref.mrc", ref, voxel_size=PIXEL)
    ts_pixel = PIXEL / 2  # binning 2
    tomograms_star = root / "tomograms.star"
    write_star(
        tomograms_star,
        {
            "global": pd.DataFrame(
                {
                    "rlnTomoName": ["TS_01"],
                    "rlnTomoTiltSeriesPixelSize": [ts_pixel],
                    "rlnTomoTomogramBinning": [2.0],
                    "rlnTomoReconstructedTomogram": ["Tomograms/job007/rec_TS_01.mrc"],
                }
            )
        },
    )
    g = torch.Generator().manual_seed(3)
    sub = rotations.random_rotations(N, generator=g, dtype=torch.float64)
    part = sub.transpose(-1, -2) @ rots  # so that A_sub @ A_part is the truth
    pixels = {
        f"rlnCoordinate{a}": [c[k] * PIXEL / ts_pixel for c in CENTRES]
        for a, k in (("X", 2), ("Y", 1), ("Z", 0))
    }
    table = pd.DataFrame(
        {
            "rlnTomoName": ["TS_01"] * N,
            **pixels,
            **_euler_columns("rlnAngle", part),
            **_euler_columns("rlnTomoSubtomogram", sub),
            "rlnOpticsGroup": [1] * N,
        }
    )
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1],
            "rlnOpticsGroupName": ["g1"],
            "rlnTomoTiltSeriesPixelSize": [ts_pixel],
        }
    )
    write_particles(root / "particles.star", table, optics)
    assert _run("extract", tomograms_star, "--particles", root / "particles.star",
                "--box", BOX, "--out", root / "ex") == 0  # fmt: skip
    cut, optics_out = read_particles(root / "ex" / "particles.star")
    assert float(optics_out["rlnImagePixelSize"][0]) == pytest.approx(PIXEL)
    assert (cut["rlnTomoSubtomogramRot"] == 0).all()
    assert _angle_error(root / "ex" / "particles.star", rots) < 1e-3  # composed in
    np.testing.assert_allclose(
        cut["rlnCenteredCoordinateXAngst"], _centred()["rlnCenteredCoordinateXAngst"], atol=1e-6
    )
    first, _ = read_mrc(root / "ex" / "subtomograms" / "TS_01_000001.mrc")
    (z, y, x), h = CENTRES[0], BOX // 2
    torch.testing.assert_close(first, tomo[z - h : z + h, y - h : y + h, x - h : x + h])
    # align on the RELION 5 table itself: the output keeps the subtomogram angles
    out = root / "aligned.star"
    assert _run("align", root / "particles.star", "--tomogram", tomograms_star,
                "--reference", root / "ref.mrc", "--out", out, "--max-angle-deg", "8",
                "--method", "exhaustive") == 0  # fmt: skip
    aligned, _ = read_particles(out)
    np.testing.assert_allclose(aligned["rlnTomoSubtomogramTilt"], table["rlnTomoSubtomogramTilt"])
    a_part, _ = poses_from_table(aligned, pixel_size=PIXEL)
    err = rotations.geodesic_distance(sub @ a_part, rots)
    assert float(err.max()) < 5.0, err


def test_untrustworthy_alignment_is_flagged(tmp_path, truth, capsys):
    root = _project(tmp_path / "p", truth)
    assert _extract(root, "ex") == 0
    g = torch.Generator().manual_seed(0)
    for path in (root / "ex" / "subtomograms").iterdir():  # particles of pure noise
        write_mrc(path, torch.randn(BOX, BOX, BOX, generator=g), voxel_size=PIXEL, force=True)
    out = root / "noise.star"
    assert _run("align", root / "ex" / "particles.star", "--reference", root / "ref.mrc",
                "--out", out) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "warning: the poses may not be trustworthy" in err and "noise_diagnostics.json" in err
    trust = json.loads((root / "noise_diagnostics.json").read_text())
    assert trust["trustworthy"] is False and trust["reasons"]

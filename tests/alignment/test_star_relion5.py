"""RELION 5 interop and the path rules of STAR files (alignment/_star.py)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from inversa.alignment import (
    centred_from_pixel_coordinates,
    image_paths,
    poses_from_table,
    rebase_paths,
    rotate_volume,
    safe_file_stem,
    to_subtomogram_frame,
    to_tomogram_frame,
)
from inversa.core import rotations
from inversa.core.errors import InputError

ORIGINS = ["rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst"]


def _poses(n, seed):
    g = torch.Generator().manual_seed(seed)
    part = rotations.random_rotations(n, generator=g, dtype=torch.float64)
    sub = rotations.random_rotations(n, generator=g, dtype=torch.float64)
    origins = torch.randn(n, 3, generator=g, dtype=torch.float64) * 5
    e_part = rotations.matrix_to_euler(part).numpy()
    e_sub = rotations.matrix_to_euler(sub).numpy()
    table = pd.DataFrame(
        {
            "rlnAngleRot": e_part[:, 0],
            "rlnAngleTilt": e_part[:, 1],
            "rlnAnglePsi": e_part[:, 2],
            "rlnTomoSubtomogramRot": e_sub[:, 0],
            "rlnTomoSubtomogramTilt": e_sub[:, 1],
            "rlnTomoSubtomogramPsi": e_sub[:, 2],
            **{c: origins[:, j].numpy() for j, c in enumerate(ORIGINS)},
        }
    )
    return table, part, sub, origins


def test_subtomogram_angles_compose_as_relion5():
    # RELION 5 ParticleSet::getMatrix3x3 = A_subtomogram * A_particle; getPosition rotates
    # the origin by A_subtomogram.
    table, part, sub, origins = _poses(5, seed=3)
    tomo = to_tomogram_frame(table)
    total, _ = poses_from_table(tomo, pixel_size=1.0)
    assert float(rotations.geodesic_distance(total, sub @ part).max()) < 1e-6
    np.testing.assert_allclose(
        tomo[ORIGINS].to_numpy(), (sub @ origins[..., None])[..., 0].numpy(), atol=1e-9
    )
    assert (tomo["rlnTomoSubtomogramRot"] == 0).all()


def test_composed_pose_matches_rotating_the_subtomogram_box():
    # A box holding the reference at A_part, turned by A_sub into tomogram axes, holds the
    # reference at the composed pose.
    n = 21
    ref = torch.zeros(n, n, n, dtype=torch.float64)
    ref[n // 2, n // 2, n // 2 + 5] = 1.0  # x = +5
    ref[n // 2, n // 2 + 3, n // 2] = 0.5  # y = +3: breaks the symmetry about x
    table, part, sub, _ = _poses(1, seed=5)
    in_box = rotate_volume(ref, part)[0]
    in_tomogram = rotate_volume(in_box, sub)[0]
    total, _ = poses_from_table(to_tomogram_frame(table), pixel_size=1.0)
    direct = rotate_volume(ref, total)[0]
    assert torch.corrcoef(torch.stack([in_tomogram.flatten(), direct.flatten()]))[0, 1] > 0.9
    # the wrong order (A_part @ A_sub) does not match
    wrong = rotate_volume(ref, part @ sub)[0]
    assert torch.corrcoef(torch.stack([in_tomogram.flatten(), wrong.flatten()]))[0, 1] < 0.5


def test_subtomogram_frame_round_trip():
    table, _, _, _ = _poses(6, seed=1)
    back = to_subtomogram_frame(to_tomogram_frame(table), table)
    a, _ = poses_from_table(table, pixel_size=1.0)
    b, _ = poses_from_table(back, pixel_size=1.0)
    assert float(rotations.geodesic_distance(a, b).max()) < 1e-6
    np.testing.assert_allclose(back[ORIGINS].to_numpy(), table[ORIGINS].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(
        back["rlnTomoSubtomogramTilt"].to_numpy(), table["rlnTomoSubtomogramTilt"].to_numpy()
    )
    plain = table.drop(columns=["rlnTomoSubtomogramRot"])
    plain = plain.drop(columns=["rlnTomoSubtomogramTilt", "rlnTomoSubtomogramPsi"])
    pd.testing.assert_frame_equal(to_tomogram_frame(plain), plain)


def _names(*names):
    return pd.DataFrame({"rlnImageName": list(names)})


def test_image_paths_stay_inside_the_star_folder(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "job" / "sub").mkdir(parents=True)
    (project / "job" / "sub" / "a.mrc").write_bytes(b"")
    (project / "Extract").mkdir()
    (project / "Extract" / "b.mrc").write_bytes(b"")
    star = project / "job" / "in.star"
    monkeypatch.chdir(tmp_path / "project")
    found = image_paths(_names("sub/a.mrc", "Extract/b.mrc"), star_path=star)
    # beside the STAR file; else in the current folder (RELION's project folder)
    assert found == [project / "job" / "sub" / "a.mrc", project / "Extract" / "b.mrc"]
    for bad in ("../../../../etc/passwd", "/etc/passwd", "sub/../../../outside.mrc"):
        with pytest.raises(InputError, match="--allow-outside") as err:
            image_paths(_names(bad), star_path=star)
        assert str(star) in str(err.value)
    assert image_paths(_names("/etc/passwd"), star_path=star, allow=["/etc"]) == [
        Path("/etc/passwd")
    ]


def test_rebased_names_reach_the_same_files(tmp_path):
    (tmp_path / "subtomos").mkdir()
    (tmp_path / "subtomos" / "p0.mrc").write_bytes(b"")
    star_in = tmp_path / "subtomos" / "particles.star"
    resolved = image_paths(_names("p0.mrc"), star_path=star_in)
    star_out = tmp_path / "results" / "deep" / "aligned.star"
    rebased = rebase_paths(_names("p0.mrc"), {"rlnImageName": resolved}, out_star=star_out)
    assert rebased["rlnImageName"].tolist() == ["../../subtomos/p0.mrc"]
    again = os.path.normpath(star_out.parent / rebased["rlnImageName"][0])
    assert again == str(tmp_path / "subtomos" / "p0.mrc")


@pytest.mark.parametrize("name", ["../../escaped", "/abs/olute", "..", "", "a/b\\c", ".hidden"])
def test_safe_file_stem_cannot_leave_its_folder(name, tmp_path):
    stem = safe_file_stem(name)
    assert stem and "/" not in stem and "\\" not in stem and not stem.startswith(".")
    assert ".." not in stem
    assert (tmp_path / f"{stem}.mrc").resolve().parent == tmp_path.resolve()
    assert safe_file_stem("TS_01") == "TS_01"


def test_pixel_coordinates_become_centred_angstrom():
    table = pd.DataFrame(
        {
            "rlnTomoName": ["a", "b"],
            "rlnCoordinateX": [10.0, 0.0],
            "rlnCoordinateY": [20.0, 5.0],
            "rlnCoordinateZ": [5.0, 2.5],
        }
    )
    centres = {"a": (32 * 4.0, 32 * 4.0, 16 * 4.0), "b": (0.0, 0.0, 0.0)}
    out = centred_from_pixel_coordinates(table, pixel_size=2.0, tomogram_size=centres)
    assert out["rlnCenteredCoordinateXAngst"].tolist() == [20.0 - 128.0, 0.0]
    assert out["rlnCenteredCoordinateZAngst"].tolist() == [10.0 - 64.0, 5.0]
    with pytest.raises(InputError, match="no tomogram"):
        centred_from_pixel_coordinates(table, pixel_size=2.0, tomogram_size={"a": (0, 0, 0)})

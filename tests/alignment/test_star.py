import math

import numpy as np
import pandas as pd
import pytest
import torch

from inversa.alignment._star import (
    image_paths,
    pixel_size_of,
    poses_from_table,
    poses_to_table,
    positions_in_tomogram,
    random_subsets,
)
from inversa.alignment._volumes import rotate_volume, shift_volume
from inversa.core import rotations
from inversa.core.errors import InputError
from inversa.core.io import make_optics_table, read_particles, write_particles


def _table(angles, origins):
    angles, origins = np.asarray(angles, float), np.asarray(origins, float)
    return pd.DataFrame(
        {
            "rlnTomoName": ["ts"] * len(angles),
            "rlnCenteredCoordinateXAngst": np.zeros(len(angles)),
            "rlnCenteredCoordinateYAngst": np.zeros(len(angles)),
            "rlnCenteredCoordinateZAngst": np.zeros(len(angles)),
            "rlnOriginXAngst": origins[:, 0],
            "rlnOriginYAngst": origins[:, 1],
            "rlnOriginZAngst": origins[:, 2],
            "rlnAngleRot": angles[:, 0],
            "rlnAngleTilt": angles[:, 1],
            "rlnAnglePsi": angles[:, 2],
        }
    )


def test_angles_follow_relion_euler_matrix():
    rot, tilt, psi = 20.0, 70.0, -35.0
    table = _table([[rot, tilt, psi]], [[0, 0, 0]])
    a = poses_from_table(table, pixel_size=2.0)[0][0]
    r, t, p = (math.radians(v) for v in (rot, tilt, psi))
    # RELION src/euler.cpp Euler_angles2matrix, entries as written there
    assert float(a[0, 0]) == pytest.approx(
        math.cos(p) * math.cos(t) * math.cos(r) - math.sin(p) * math.sin(r)
    )
    assert float(a[0, 2]) == pytest.approx(-math.cos(p) * math.sin(t))
    assert float(a[2, 0]) == pytest.approx(math.sin(t) * math.cos(r))
    assert float(a[2, 1]) == pytest.approx(math.sin(t) * math.sin(r))
    assert float(a[2, 2]) == pytest.approx(math.cos(t))


def test_particle_is_reference_rotated_by_a():
    # A point of the reference at r0 appears in the particle at A r0 (rotate3D samples A^T r).
    n = 15
    ref = torch.zeros(n, n, n, dtype=torch.float64)
    ref[n // 2, n // 2, n // 2 + 4] = 1.0  # x = +4
    table = _table([[90.0, 0.0, 0.0]], [[0, 0, 0]])
    a = poses_from_table(table, pixel_size=1.0)[0]
    particle = rotate_volume(ref, a)[0]
    expected = a[0] @ torch.tensor([4.0, 0.0, 0.0], dtype=torch.float64)
    z, y, x = (int(i) for i in torch.nonzero(particle == particle.max())[0])
    assert (x - n // 2, y - n // 2, z - n // 2) == tuple(round(float(v)) for v in expected)


def test_origin_sign_convention():
    # A particle d voxels off its box centre has rlnOrigin = -d * pixel_size.
    n, pixel = 16, 2.5
    blob = torch.zeros(n, n, n, dtype=torch.float64)
    blob[n // 2, n // 2, n // 2] = 1.0
    d = torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64)
    particle = shift_volume(blob, d)
    z, y, x = (int(i) for i in torch.nonzero(particle > 0.5)[0])
    assert (x - n // 2, y - n // 2, z - n // 2) == (3, -2, 1)
    table = poses_to_table(
        _table([[0, 0, 0]], [[0, 0, 0]]),
        torch.eye(3, dtype=torch.float64)[None],
        d[None],
        pixel_size=pixel,
    )
    assert table[["rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst"]].to_numpy()[
        0
    ].tolist() == [-7.5, 5.0, -2.5]
    # re-centred coordinate = coordinate - origin: the particle's true place in the tomogram
    pos = positions_in_tomogram(table, pixel_size=pixel, shape=(20, 20, 20))
    assert pos[0].tolist() == [10 + 3.0, 10 - 2.0, 10 + 1.0]


def test_star_round_trip(tmp_path):
    g = torch.Generator().manual_seed(0)
    rots = rotations.random_rotations(6, generator=g, dtype=torch.float64)
    shifts = torch.randn(6, 3, generator=g, dtype=torch.float64)
    offsets = torch.rand(6, 3, generator=g, dtype=torch.float64) - 0.5
    table = poses_to_table(
        _table(np.zeros((6, 3)), np.zeros((6, 3))),
        rots,
        shifts,
        pixel_size=4.2,
        box_offsets=offsets,
    )
    path = tmp_path / "p.star"
    write_particles(path, table, make_optics_table(pixel_size=4.2))
    particles, optics = read_particles(path)
    pixel = pixel_size_of(particles, optics, path=path)
    assert pixel == pytest.approx(4.2)
    back_rots, back_shifts = poses_from_table(particles, pixel_size=pixel, box_offsets=offsets)
    assert float(rotations.geodesic_distance(back_rots, rots).max()) < 1e-3
    torch.testing.assert_close(back_shifts, shifts, atol=1e-5, rtol=0)


def test_subsets_and_image_names(tmp_path):
    table = _table(np.zeros((5, 3)), np.zeros((5, 3)))
    split = random_subsets(table, seed=1)
    assert sorted(split.tolist()) == [1, 1, 1, 2, 2]
    table["rlnRandomSubset"] = [2, 1, 2, 1, 2]
    assert random_subsets(table).tolist() == [2, 1, 2, 1, 2]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.mrc").write_bytes(b"")
    table = table.iloc[:1].assign(rlnImageName=["sub/a.mrc"])
    assert image_paths(table, star_path=tmp_path / "x.star") == [tmp_path / "sub" / "a.mrc"]
    with pytest.raises(InputError, match="2-D particle stacks"):
        image_paths(table.assign(rlnImageName=["1@s.mrcs"]), star_path=tmp_path / "x.star")
    with pytest.raises(InputError, match="non-finite"):
        poses_from_table(table.assign(rlnAngleRot=[float("nan")]), pixel_size=1.0)

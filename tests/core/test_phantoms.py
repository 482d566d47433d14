import gzip
import math

import gemmi
import numpy as np
import pytest
import torch
from scipy import ndimage

from inversa.core.errors import InputError
from inversa.core.phantoms import (
    AtomicModel,
    builtin_structure_path,
    cell_scene,
    density_from_atoms,
    read_atomic_model,
    reference_density,
    scattering_weights,
    shepp_logan_2d,
    shepp_logan_3d,
)
from inversa.core.phantoms._scene import _Vesicle
from inversa.core.rotations import euler_to_matrix

# ---------------------------------------------------------------- Shepp-Logan 2-D

ELLIPSES = [  # (a, b) semi-axes and classic / modified intensities
    (0.69, 0.92, 2.0, 1.0),
    (0.6624, 0.874, -0.98, -0.8),
    (0.11, 0.31, -0.02, -0.2),
    (0.16, 0.41, -0.02, -0.2),
    (0.21, 0.25, 0.01, 0.1),
    (0.046, 0.046, 0.01, 0.1),
    (0.046, 0.046, 0.01, 0.1),
    (0.046, 0.023, 0.01, 0.1),
    (0.023, 0.023, 0.01, 0.1),
    (0.023, 0.046, 0.01, 0.1),
]


def _index(t, n):
    """Pixel index of textbook coordinate t (exact for the sizes used)."""
    return round(n // 2 + t * n / 2)


def test_shepp_logan_2d_known_values():
    n = 400
    mod = shepp_logan_2d(n, dtype=torch.float64)
    classic = shepp_logan_2d(n, modified=False, dtype=torch.float64)
    assert mod.shape == (n, n) and mod.dtype == torch.float64
    c = n // 2
    assert mod[0, 0] == 0 and mod[-1, -1] == 0 and classic[0, -1] == 0
    assert mod[c, c] == pytest.approx(0.2) and classic[c, c] == pytest.approx(1.02)
    # Skull at textbook (0, 0.9): inside the outer ellipse only; row 0 is the top (y up).
    assert mod[_index(-0.9, n), c] == pytest.approx(1.0)
    assert classic[_index(-0.9, n), c] == pytest.approx(2.0)
    # Bottom-left small ellipse centre (-0.08, -0.605) lies below the centre on screen.
    row, col = _index(0.605, n), _index(-0.08, n)
    assert mod[row, col] == pytest.approx(0.3)
    assert mod[_index(-0.605, n), col] == pytest.approx(0.2)
    assert mod.min() > -1e-12 and mod.max() == pytest.approx(1.0)


def test_shepp_logan_2d_matches_scikit_image_layout():
    skimage_data = pytest.importorskip("skimage.data")
    ref = skimage_data.shepp_logan_phantom()  # 400 x 400, modified intensities
    ours = shepp_logan_2d(400, dtype=torch.float64).numpy()
    assert (np.abs(ours - ref) < 0.02).mean() > 0.98
    flipped = ours[::-1]
    assert (np.abs(flipped - ref) < 0.02).mean() < 0.9


def test_shepp_logan_2d_mirror_symmetry_outside_asymmetric_ellipses():
    n = 201  # odd: column n // 2 is the exact mirror axis
    img = shepp_logan_2d(n, dtype=torch.float64)
    y = -(torch.arange(n, dtype=torch.float64) - n // 2) / (n / 2)
    # The eyes (|y| < 0.42) and the three bottom ellipses (y near -0.6) are not symmetric.
    rows = (y.abs() > 0.43) & ~((y > -0.67) & (y < -0.53))
    assert rows.sum() > 60
    assert torch.equal(img[rows], img[rows].flip(-1))
    assert not torch.equal(img, img.flip(-1))


def test_shepp_logan_2d_areas_match_ellipses():
    n = 512
    pixel_area = (2.0 / n) ** 2
    for modified, column in ((False, 2), (True, 3)):
        img = shepp_logan_2d(n, modified=modified, dtype=torch.float64)
        expected = sum(e[column] * math.pi * e[0] * e[1] for e in ELLIPSES)
        assert float(img.sum()) * pixel_area == pytest.approx(expected, rel=2e-3)
    # The skull ring alone (value exactly 1): outer minus inner ellipse.
    img = shepp_logan_2d(n, dtype=torch.float64)
    ring = float((img == 1.0).sum()) * pixel_area
    assert ring == pytest.approx(math.pi * (0.69 * 0.92 - 0.6624 * 0.874), rel=1e-2)


@pytest.mark.parametrize("n", [1, 7, 16])
def test_shepp_logan_2d_sizes_and_dtype(n):
    img = shepp_logan_2d(n)
    assert img.shape == (n, n) and img.dtype == torch.float32
    assert img.device.type == "cpu"


def test_shepp_logan_rejects_bad_size():
    with pytest.raises(InputError, match="positive integer"):
        shepp_logan_2d(0)
    with pytest.raises(InputError, match="positive integer"):
        shepp_logan_3d(2.5)


# ---------------------------------------------------------------- Shepp-Logan 3-D

ELLIPSOIDS = [  # (a, b, c), classic, modified
    ((0.69, 0.92, 0.9), 2.0, 1.0),
    ((0.6624, 0.874, 0.88), -0.98, -0.8),
    ((0.41, 0.16, 0.21), -0.02, -0.2),
    ((0.31, 0.11, 0.22), -0.02, -0.2),
    ((0.21, 0.25, 0.5), 0.02, 0.2),
    ((0.046, 0.046, 0.046), 0.02, 0.2),
    ((0.046, 0.023, 0.02), 0.01, 0.1),
    ((0.046, 0.023, 0.02), 0.01, 0.1),
    ((0.056, 0.04, 0.1), 0.02, 0.2),
    ((0.056, 0.056, 0.1), -0.02, -0.2),
]


def test_shepp_logan_3d_known_values():
    n = 80
    mod = shepp_logan_3d(n, dtype=torch.float64)
    classic = shepp_logan_3d(n, modified=False, dtype=torch.float64)
    c = n // 2
    assert mod.shape == (n, n, n)
    assert mod[0, 0, 0] == 0 and mod[-1, -1, -1] == 0
    assert mod[c, c, c] == pytest.approx(0.2) and classic[c, c, c] == pytest.approx(1.02)
    # Centre of the last ellipsoid (0, 0.1, 0.625): brain minus 0.2 (classic: 0.02).
    k, row = _index(0.625, n), _index(-0.1, n)
    assert mod[k, row, c] == pytest.approx(0.0, abs=1e-12)
    assert classic[k, row, c] == pytest.approx(1.0)
    # Skull along z: inside the outer ellipsoid, outside the inner one.
    assert mod[_index(0.89, n), c, c] == pytest.approx(1.0)


def test_shepp_logan_3d_volumes_match_ellipsoids():
    n = 96
    voxel = (2.0 / n) ** 3
    for modified, idx in ((False, 1), (True, 2)):
        vol = shepp_logan_3d(n, modified=modified, dtype=torch.float64)
        expected = sum(e[idx] * 4.0 / 3.0 * math.pi * math.prod(e[0]) for e in ELLIPSOIDS)
        assert float(vol.sum()) * voxel == pytest.approx(expected, rel=1e-2)


# ---------------------------------------------------------------- atomic models


@pytest.fixture(scope="module")
def model():
    return read_atomic_model(builtin_structure_path())


def test_builtin_structure(model):
    path = builtin_structure_path()
    assert path.is_file() and path.stat().st_size < 1_000_000
    assert model.n_atoms == 1656
    assert set(model.atomic_numbers.unique().tolist()) == {6, 7, 8, 16}
    assert model.coords.dtype == torch.float64 and model.coords.shape == (1656, 3)
    assert model.atomic_numbers.dtype == torch.int64
    # First atom as gemmi reads it: MET 1 N.
    first = gemmi.read_structure(str(path))[0][0][0][0]
    assert model.coords[0].tolist() == pytest.approx([first.pos.x, first.pos.y, first.pos.z])
    assert model.b_factors[0] == pytest.approx(first.b_iso)
    assert model.name == "1ake_chainA"


def test_shipped_ribosome_and_unknown_name():
    path = builtin_structure_path("ribosome")
    assert path.is_file() and path.stat().st_size < 3_000_000
    rib = read_atomic_model(path)
    assert rib.n_atoms == 164965  # the count PROVENANCE.md states
    assert set(rib.atomic_numbers.unique().tolist()) >= {6, 7, 8, 15, 16}  # RNA brings P
    assert 140.0 < rib.radius() < 180.0
    with pytest.raises(InputError, match="no shipped structure"):
        builtin_structure_path("apoferritin")


def test_read_mmcif_round_trip(model, tmp_path):
    structure = gemmi.read_structure(str(builtin_structure_path()))
    structure.setup_entities()
    text = structure.make_mmcif_document().as_string()
    cif = tmp_path / "model.cif.gz"
    with gzip.open(cif, "wt") as f:
        f.write(text)
    again = read_atomic_model(cif)
    assert torch.allclose(again.coords, model.coords, atol=1e-3)
    assert torch.equal(again.atomic_numbers, model.atomic_numbers)


PDB_WITH_WATER_AND_H = """\
ATOM      1  N   GLY A   1       0.000   0.000   0.000  1.00 10.00           N
ATOM      2  CA  GLY A   1       1.450   0.000   0.000  1.00 11.00           C
ATOM      3  H   GLY A   1      -0.500   0.800   0.000  1.00 12.00           H
HETATM    4  O   HOH A 101       5.000   5.000   5.000  1.00 30.00           O
HETATM    5 FE   HEM A 102       3.000   0.000   0.000  1.00 20.00          FE
END
"""


def test_read_filters_waters_and_hydrogens(tmp_path):
    path = tmp_path / "tiny.pdb"
    path.write_text(PDB_WITH_WATER_AND_H)
    default = read_atomic_model(path)
    assert default.atomic_numbers.tolist() == [7, 6, 26]
    assert default.b_factors.tolist() == [10.0, 11.0, 20.0]
    everything = read_atomic_model(path, keep_waters=True, keep_hydrogens=True)
    assert sorted(everything.atomic_numbers.tolist()) == [1, 6, 7, 8, 26]


def test_read_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.pdb"
    with pytest.raises(InputError, match=r"nope\.pdb"):
        read_atomic_model(missing)
    waters = tmp_path / "waters.pdb"
    waters.write_text(PDB_WITH_WATER_AND_H.splitlines()[3] + "\nEND\n")
    with pytest.raises(InputError, match=r"waters\.pdb") as info:
        read_atomic_model(waters)
    assert info.value.path == str(waters)
    garbage = tmp_path / "garbage.cif"
    garbage.write_text("data_x\nloop_\n_atom_site.id\n'unterminated\n")
    with pytest.raises(InputError, match=r"garbage\.cif"):
        read_atomic_model(garbage)


def test_scattering_weights_known_elements():
    w = scattering_weights(torch.tensor([1, 6, 7, 8, 15, 16]))
    assert w.tolist() == pytest.approx([0.5288, 2.5088, 2.2135, 1.9834, 5.4876, 5.1604])


def _single_atom(pos=(0.0, 0.0, 0.0), z=6, b=0.0):
    return AtomicModel(
        coords=torch.tensor([pos], dtype=torch.float64),
        atomic_numbers=torch.tensor([z]),
        b_factors=torch.tensor([b], dtype=torch.float64),
        name="one",
    )


def test_sharp_atom_lands_on_the_centre_voxel():
    vol = density_from_atoms(_single_atom(), voxel_size=1.0, shape=(9, 8, 7), dtype=torch.float64)
    assert vol.shape == (9, 8, 7)
    assert vol[4, 4, 3] == pytest.approx(2.5088)
    assert float(vol.sum()) == pytest.approx(2.5088)


def test_voxel_integrated_gaussian_matches_box_blurred_point_samples():
    # Integrating over a unit voxel adds the box variance 1/12 per axis (to leading order).
    atom = _single_atom()
    vol = density_from_atoms(
        atom, voxel_size=1.0, shape=(32, 32, 32), b_factor=8 * math.pi**2 * 9, dtype=torch.float64
    )
    var = 9.0 + 1.0 / 12.0
    r = torch.arange(32, dtype=torch.float64) - 16
    g = torch.exp(-(r**2) / (2 * var)) / math.sqrt(2 * math.pi * var)
    point = 2.5088 * g[:, None, None] * g[None, :, None] * g[None, None, :]
    assert torch.allclose(vol, point, rtol=0, atol=2e-4 * float(point.max()))


def test_density_preserves_mass_and_centre(model):
    weights = scattering_weights(model.atomic_numbers)
    vol = density_from_atoms(model, voxel_size=2.0, resolution=8.0, dtype=torch.float64)
    n = vol.shape[0]
    assert vol.shape == (n, n, n) and n % 2 == 0
    assert float(vol.sum()) == pytest.approx(float(weights.sum()), rel=1e-10)
    # First moment: the weight-centroid of the atoms sits relative to the box centre as
    # it sits relative to the centre of mass.
    grid = torch.arange(n, dtype=torch.float64) - n // 2
    total = vol.sum()
    moment = torch.stack(
        [
            (vol.sum((0, 1)) * grid).sum() / total,
            (vol.sum((0, 2)) * grid).sum() / total,
            (vol.sum((1, 2)) * grid).sum() / total,
        ]
    )
    centroid = (weights[:, None] * model.coords).sum(0) / weights.sum()
    expected = (centroid - model.center_of_mass()) / 2.0
    assert torch.allclose(moment, expected, atol=1e-6)


def test_default_box_holds_model_at_any_rotation(model):
    weights = float(scattering_weights(model.atomic_numbers).sum())
    rot = euler_to_matrix(torch.tensor([30.0, 70.0, -110.0], dtype=torch.float64))
    a = density_from_atoms(model, voxel_size=3.0, dtype=torch.float64)
    b = density_from_atoms(model, voxel_size=3.0, rotation=rot, dtype=torch.float64)
    assert a.shape == b.shape
    assert float(b.sum()) == pytest.approx(weights, rel=1e-10)


def test_rotation_by_quarter_turn_permutes_voxels_exactly(model):
    n = 40
    # Quarter turn about z taking x onto y; exact 0/1 entries keep atom coordinates exact.
    a = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    ref = density_from_atoms(model, voxel_size=2.0, shape=(n, n, n), dtype=torch.float64)
    rot = density_from_atoms(
        model, voxel_size=2.0, shape=(n, n, n), rotation=a, dtype=torch.float64
    )
    # particle(r) = reference(A^T r): A^T (x, y, z) = (y, -x, z), so
    # rot[z, i, j] = ref[z, n - j, i] for rows/columns 1..n-1.
    i = torch.arange(1, n)
    expected = ref[:, n - i][:, :, i].transpose(1, 2)
    assert torch.allclose(rot[:, 1:, 1:], expected, atol=1e-10)
    assert float(rot[:, 0].abs().sum() + rot[:, :, 0].abs().sum()) < 1e-6


def test_generic_rotation_matches_interpolated_reference(model):
    n = 36
    angles = torch.tensor([40.0, 65.0, -20.0], dtype=torch.float64)
    a = euler_to_matrix(angles)
    ref = density_from_atoms(
        model, voxel_size=3.0, shape=(n, n, n), resolution=12.0, dtype=torch.float64
    ).numpy()
    rot = density_from_atoms(
        model, voxel_size=3.0, shape=(n, n, n), resolution=12.0, rotation=a, dtype=torch.float64
    ).numpy()
    # Sample reference(A^T r) by cubic interpolation.
    g = np.arange(n) - n // 2
    z, y, x = np.meshgrid(g, g, g, indexing="ij")
    r = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    src = r @ a.numpy()  # rows are (A^T r)^T
    coords = np.stack([src[:, 2], src[:, 1], src[:, 0]]) + n // 2
    expected = ndimage.map_coordinates(ref, coords, order=3).reshape(n, n, n)
    corr = np.corrcoef(expected.ravel(), rot.ravel())[0, 1]
    wrong = ndimage.map_coordinates(
        ref, np.stack([(r @ a.numpy().T)[:, k] for k in (2, 1, 0)]) + n // 2, order=3
    )
    assert corr > 0.995
    assert np.corrcoef(wrong, rot.ravel())[0, 1] < corr - 0.05


def test_reference_density_is_centred_rendering(model):
    ref = reference_density(model, voxel_size=4.0, box=24)
    same = density_from_atoms(model, voxel_size=4.0, shape=(24, 24, 24))
    assert ref.shape == (24, 24, 24) and ref.dtype == torch.float32
    assert torch.equal(ref, same)


def test_center_argument_moves_the_model(model):
    com = model.center_of_mass()
    a = density_from_atoms(model, voxel_size=2.0, shape=(48, 48, 48), dtype=torch.float64)
    # Placing the point com + (4, 0, 0) A at the centre shifts the density by -2 voxels in x.
    b = density_from_atoms(
        model,
        voxel_size=2.0,
        shape=(48, 48, 48),
        center=com + torch.tensor([4.0, 0.0, 0.0], dtype=torch.float64),
        dtype=torch.float64,
    )
    assert torch.allclose(b[:, :, :-2], a[:, :, 2:], atol=1e-10)


# ---------------------------------------------------------------- scenes


def test_vesicle_signed_distance_is_exact_on_spheres_and_axes():
    sphere = _Vesicle(
        torch.zeros(3, dtype=torch.float64),
        torch.full((3,), 50.0, dtype=torch.float64),
        torch.eye(3, dtype=torch.float64),
    )
    pts = torch.tensor([[0.0, 0, 0], [10.0, 20, 30], [80.0, 0, 0]], dtype=torch.float64)
    assert sphere.signed_distance(pts).tolist() == pytest.approx(
        [-50.0, math.sqrt(1400.0) - 50.0, 30.0]
    )
    ellipsoid = _Vesicle(
        torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
        torch.tensor([40.0, 60.0, 80.0], dtype=torch.float64),
        torch.eye(3, dtype=torch.float64),
    )
    on_axes = torch.tensor([[45.0, 2, 3], [1.0, 52, 3], [1.0, 2, 78]], dtype=torch.float64)
    assert ellipsoid.signed_distance(on_axes).tolist() == pytest.approx([4.0, -10.0, -5.0])


def test_scene_is_deterministic_and_well_formed(model):
    kwargs = dict(shape=(48, 96, 96), voxel_size=4.0, n_particles=6, n_membranes=2)
    a = cell_scene(model, generator=torch.Generator().manual_seed(3), **kwargs)
    b = cell_scene(model, generator=torch.Generator().manual_seed(3), **kwargs)
    c = cell_scene(model, generator=torch.Generator().manual_seed(4), **kwargs)
    assert torch.equal(a.volume, b.volume) and torch.equal(a.positions, b.positions)
    assert not torch.equal(a.positions, c.positions)
    assert a.volume.shape == (48, 96, 96) and a.volume.dtype == torch.float32
    assert a.positions.shape == (6, 3) and a.rotations.shape == (6, 3, 3)
    assert a.voxel_size == 4.0
    assert bool((a.volume >= 0).all())
    # Bounding spheres inside the volume and apart.
    radius = model.radius() / 4.0
    size = torch.tensor([96.0, 96.0, 48.0], dtype=torch.float64)  # (x, y, z)
    assert bool((a.positions >= radius).all() and (a.positions <= size - 1 - radius).all())
    dist = torch.cdist(a.positions, a.positions) + 1e9 * torch.eye(6, dtype=torch.float64)
    assert float(dist.min()) >= 2 * radius - 1e-9
    # Rotations are proper and the Euler angles describe them.
    eye = torch.eye(3, dtype=torch.float64).expand(6, 3, 3)
    assert torch.allclose(a.rotations @ a.rotations.transpose(1, 2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(a.rotations), torch.ones(6, dtype=torch.float64))
    assert torch.allclose(euler_to_matrix(a.euler), a.rotations, atol=1e-9)
    # The membranes add density beyond the particles' mass.
    mass = 6 * float(scattering_weights(model.atomic_numbers).sum())
    assert float(a.volume.double().sum()) > 1.05 * mass


def test_scene_particles_match_rotated_renderings(model):
    vs = 4.0
    box = 24
    scene = cell_scene(
        model,
        shape=(48, 80, 80),
        voxel_size=vs,
        n_particles=3,
        n_membranes=0,
        generator=torch.Generator().manual_seed(0),
        min_distance=150.0,
        resolution=10.0,
        dtype=torch.float64,
    )
    mass = 3 * float(scattering_weights(model.atomic_numbers).sum())
    assert float(scene.volume.sum()) == pytest.approx(mass, rel=1e-10)
    com = model.center_of_mass()
    half = box // 2
    for pos, rot in zip(scene.positions, scene.rotations, strict=True):
        start = pos.round().long() - half
        cut = scene.volume[
            start[2] : start[2] + box, start[1] : start[1] + box, start[0] : start[0] + box
        ]
        assert cut.shape == (box, box, box)
        rendered = density_from_atoms(
            model,
            voxel_size=vs,
            shape=(box,) * 3,
            rotation=rot,
            resolution=10.0,
            dtype=torch.float64,
        )
        corr = torch.corrcoef(torch.stack([cut.ravel(), rendered.ravel()]))[0, 1]
        assert corr > 0.9
        # With the sub-voxel offset put back, the cut-out is the rendering itself.
        frac = pos - pos.round()
        exact = density_from_atoms(
            model,
            voxel_size=vs,
            shape=(box,) * 3,
            rotation=rot,
            center=com - rot.T @ frac * vs,
            resolution=10.0,
            dtype=torch.float64,
        )
        assert torch.allclose(cut, exact, atol=1e-9)


def test_scene_raises_when_particles_do_not_fit(model):
    with pytest.raises(InputError, match="could place only"):
        cell_scene(
            model,
            shape=(24, 24, 24),
            voxel_size=4.0,
            n_particles=5,
            n_membranes=0,
            generator=torch.Generator().manual_seed(0),
        )
    with pytest.raises(InputError, match="does not fit"):
        cell_scene(
            model,
            shape=(8, 40, 40),
            voxel_size=4.0,
            n_particles=1,
            n_membranes=0,
            generator=torch.Generator().manual_seed(0),
        )


def test_scene_particles_avoid_membranes(model):
    scene = cell_scene(
        model,
        shape=(48, 96, 96),
        voxel_size=5.0,
        n_particles=4,
        n_membranes=1,
        generator=torch.Generator().manual_seed(1),
    )
    only_particles = cell_scene(
        model,
        shape=(48, 96, 96),
        voxel_size=5.0,
        n_particles=4,
        n_membranes=1,
        membrane_density=0.0,
        generator=torch.Generator().manual_seed(1),
    )
    membrane = (scene.volume - only_particles.volume).double()
    assert float(membrane.max()) > 0.1 * 0.14 * 125
    particles = only_particles.volume.double() > 1e-3
    # Where the particles are, the membrane is (nearly) absent.
    assert float(membrane[particles].max()) < 0.05 * float(membrane.max())


def test_scene_without_particles_and_bad_values(model):
    empty = cell_scene(
        model,
        shape=(16, 32, 32),
        voxel_size=10.0,
        n_particles=0,
        n_membranes=1,
        generator=torch.Generator().manual_seed(0),
    )
    assert empty.positions.shape == (0, 3) and empty.euler.shape == (0, 3)
    assert float(empty.volume.max()) > 0
    with pytest.raises(InputError, match="voxel_size"):
        density_from_atoms(model, voxel_size=0.0)
    with pytest.raises(InputError, match="vesicles"):
        cell_scene(
            model,
            shape=(8, 8, 8),
            voxel_size=10.0,
            n_particles=0,
            n_membranes=40,
            generator=torch.Generator().manual_seed(0),
        )


def test_scene_vesicle_radius_scales_the_membranes(model):
    def membrane_mass(radius: float) -> float:
        scene = cell_scene(
            model,
            shape=(64, 64, 64),
            voxel_size=20.0,
            n_particles=0,
            n_membranes=1,
            vesicle_radius=(radius, radius),
            generator=torch.Generator().manual_seed(10),
        )
        return float(scene.volume.double().sum())

    # Same seed: the same centre, orientation and aspect, the radius doubled (128 to 256
    # Angstrom, inside the box for this seed), so the mass of the two head-group layers
    # 20 Angstrom either side grows as (2 r^2 + 20^2 * 2): 3.93-fold.
    ratio = (2 * 256**2 + 800) / (2 * 128**2 + 800)
    assert membrane_mass(0.2) / membrane_mass(0.1) == pytest.approx(ratio, rel=0.03)
    with pytest.raises(InputError, match="vesicle_radius"):
        cell_scene(
            model, shape=(32, 32, 32), voxel_size=10.0, n_particles=0, vesicle_radius=(0.3, 0.2)
        )

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from inversa.core.rotations import (
    axis_angle_to_matrix,
    euler_to_matrix,
    geodesic_distance,
    local_so3_grid,
    matrix_to_axis_angle,
    matrix_to_euler,
    matrix_to_quaternion,
    quaternion_to_matrix,
    random_rotations,
    so3_grid,
)

F64 = torch.float64


def _random_angles(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 3, generator=g, dtype=F64)
    return torch.stack([360 * u[:, 0] - 180, 180 * u[:, 1], 360 * u[:, 2] - 180], dim=-1)


def _special_matrices():
    angles = torch.tensor(
        [
            [0.0, 0.0, 0.0],
            [30.0, 0.0, 0.0],
            [30.0, 0.0, 50.0],
            [-100.0, 180.0, 20.0],
            [180.0, 90.0, -90.0],
            [10.0, 1e-9, 20.0],
            [10.0, 180.0 - 1e-9, 20.0],
        ],
        dtype=F64,
    )
    rotvecs = torch.tensor(
        [
            [math.pi, 0.0, 0.0],
            [0.0, math.pi, 0.0],
            [0.0, 0.0, -math.pi],
            [math.pi / math.sqrt(3)] * 3,
            [1e-10, -2e-10, 0.0],
        ],
        dtype=F64,
    )
    return torch.cat([euler_to_matrix(angles), axis_angle_to_matrix(rotvecs)])


def test_euler_matches_scipy_inverse_and_explicit_entries():
    angles = _random_angles(50)
    a = euler_to_matrix(angles)
    ref = Rotation.from_euler("ZYZ", angles.numpy(), degrees=True).inv().as_matrix()
    np.testing.assert_allclose(a.numpy(), ref, atol=1e-14)
    rot, tilt, psi = torch.deg2rad(angles).unbind(-1)
    ca, sa, cb, sb, cg, sg = rot.cos(), rot.sin(), tilt.cos(), tilt.sin(), psi.cos(), psi.sin()
    torch.testing.assert_close(a[:, 0, 0], cg * cb * ca - sg * sa)
    torch.testing.assert_close(a[:, 0, 1], cg * cb * sa + sg * ca)
    torch.testing.assert_close(a[:, 0, 2], -cg * sb)
    torch.testing.assert_close(a[:, 2, 0], sb * ca)
    torch.testing.assert_close(a[:, 2, 1], sb * sa)
    torch.testing.assert_close(a[:, 2, 2], cb)


def test_euler_batched_float32():
    angles = _random_angles(12).reshape(3, 4, 3).float()
    a = euler_to_matrix(angles)
    assert a.shape == (3, 4, 3, 3) and a.dtype == torch.float32
    eye = torch.eye(3).expand(3, 4, 3, 3)
    torch.testing.assert_close(a @ a.mT, eye, atol=1e-6, rtol=0)
    back = euler_to_matrix(matrix_to_euler(a))
    torch.testing.assert_close(back, a, atol=2e-5, rtol=0)


def test_particle_is_reference_rotated_by_a():
    # An asymmetric density: three Gaussian blobs at (x, y, z) offsets p_k about the centre
    # of a 24^3 box. particle(r) = reference(A^T r) puts the blobs at A p_k, so the
    # projection along z shows 2-D Gaussians at ((A p_k)_x, (A p_k)_y).
    n, sigma = 24, 1.0
    blobs = torch.tensor([[6.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, -4.0]], dtype=F64)
    weights = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    ax = torch.arange(n, dtype=F64) - n // 2
    z, y, x = torch.meshgrid(ax, ax, ax, indexing="ij")
    r = torch.stack([x, y, z], dim=-1)  # (z, y, x, 3) coordinates in (x, y, z) order

    def reference(coords):
        d2 = ((coords[..., None, :] - blobs) ** 2).sum(-1)
        return (weights * torch.exp(-d2 / (2 * sigma**2))).sum(-1)

    def expected_image(centres):
        yy, xx = torch.meshgrid(ax, ax, indexing="ij")
        d2 = (xx[..., None] - centres[:, 0]) ** 2 + (yy[..., None] - centres[:, 1]) ** 2
        return (weights * math.sqrt(2 * math.pi) * sigma * torch.exp(-d2 / (2 * sigma**2))).sum(-1)

    a = euler_to_matrix(torch.tensor([40.0, 70.0, -25.0], dtype=F64))
    particle = reference(r @ a)  # row vectors: r @ A == (A^T r)^T
    image = particle.sum(dim=0)  # project along z: image[y, x]
    torch.testing.assert_close(image, expected_image(blobs @ a.T), atol=1e-7, rtol=0)
    # The opposite convention (blobs at A^T p_k) gives a clearly different image.
    assert (image - expected_image(blobs @ a)).abs().max() > 0.5
    # A point cloud rotated by A: the same positions, A p_k.
    torch.testing.assert_close(torch.einsum("ij,kj->ki", a, blobs), blobs @ a.T)


def test_matrix_to_euler_ranges_and_round_trip():
    angles = _random_angles(200, seed=1)
    back = matrix_to_euler(euler_to_matrix(angles))
    torch.testing.assert_close(back, angles, atol=1e-9, rtol=0)
    out = matrix_to_euler(_special_matrices())
    assert torch.all(out[:, 1] >= 0) and torch.all(out[:, 1] <= 180)
    assert torch.all(out[:, [0, 2]] > -180) and torch.all(out[:, [0, 2]] <= 180)
    torch.testing.assert_close(euler_to_matrix(out), _special_matrices(), atol=1e-12, rtol=0)


def test_matrix_to_euler_gimbal_lock():
    out = matrix_to_euler(euler_to_matrix(torch.tensor([[30.0, 0.0, 50.0]], dtype=F64)))
    torch.testing.assert_close(out, torch.tensor([[80.0, 0.0, 0.0]], dtype=F64))
    out = matrix_to_euler(euler_to_matrix(torch.tensor([[-100.0, 180.0, 20.0]], dtype=F64)))
    # Rz(rot) Ry(180) Rz(psi) = Rz(rot - psi) Ry(180) in RELION's convention.
    assert out[0, 1].item() == 180.0 and out[0, 2].item() == 0.0
    assert out[0, 0].item() == pytest.approx(-120.0, abs=1e-9)
    out = matrix_to_euler(euler_to_matrix(torch.tensor([[-90.0, 0.0, -90.0]])))
    assert out[0, 0].item() == pytest.approx(180.0, abs=1e-4) and out[0, 2].item() == 0.0


def test_quaternion_matches_scipy_and_is_canonical():
    r = random_rotations(100, generator=torch.Generator().manual_seed(2), dtype=F64)
    q = matrix_to_quaternion(r)
    ref = Rotation.from_matrix(r.numpy()).as_quat(canonical=True, scalar_first=True)
    np.testing.assert_allclose(q.numpy(), ref, atol=1e-13)
    assert torch.all(q[:, 0] >= 0)
    torch.testing.assert_close(torch.linalg.vector_norm(q, dim=-1), torch.ones(100, dtype=F64))
    torch.testing.assert_close(quaternion_to_matrix(q), r)
    torch.testing.assert_close(quaternion_to_matrix(-3 * q), r)


def test_axis_angle_matches_scipy():
    r = random_rotations(100, generator=torch.Generator().manual_seed(3), dtype=F64)
    v = matrix_to_axis_angle(r)
    np.testing.assert_allclose(v.numpy(), Rotation.from_matrix(r.numpy()).as_rotvec(), atol=1e-12)
    torch.testing.assert_close(axis_angle_to_matrix(v), r)
    small = torch.tensor([[1e-9, 0.0, -2e-9], [0.0, 0.0, 0.0]], dtype=F64)
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(small)), small)
    torch.testing.assert_close(axis_angle_to_matrix(small[1]), torch.eye(3, dtype=F64))


def test_axis_angle_near_pi():
    axis = torch.tensor([1.0, -2.0, 2.0], dtype=F64) / 3
    for angle in (math.pi, math.pi - 1e-7):
        r = axis_angle_to_matrix(angle * axis)
        v = matrix_to_axis_angle(r)
        assert torch.linalg.vector_norm(v).item() == pytest.approx(angle, abs=1e-12)
        torch.testing.assert_close(axis_angle_to_matrix(v), r, atol=1e-12, rtol=0)


def test_round_trips_through_every_representation():
    r = torch.cat(
        [
            random_rotations(50, generator=torch.Generator().manual_seed(4), dtype=F64),
            _special_matrices(),
        ]
    )
    via_euler = euler_to_matrix(matrix_to_euler(r))
    via_quat = quaternion_to_matrix(matrix_to_quaternion(r))
    via_vec = axis_angle_to_matrix(matrix_to_axis_angle(r))
    chain = axis_angle_to_matrix(
        matrix_to_axis_angle(
            quaternion_to_matrix(matrix_to_quaternion(euler_to_matrix(matrix_to_euler(r))))
        )
    )
    for out in (via_euler, via_quat, via_vec, chain):
        torch.testing.assert_close(out, r, atol=1e-12, rtol=0)
    eye = torch.eye(3, dtype=F64)
    torch.testing.assert_close(matrix_to_euler(eye), torch.zeros(3, dtype=F64))
    torch.testing.assert_close(matrix_to_quaternion(eye), torch.tensor([1.0, 0, 0, 0], dtype=F64))
    torch.testing.assert_close(matrix_to_axis_angle(eye), torch.zeros(3, dtype=F64))


def test_random_rotations_are_haar_uniform():
    n = 20000
    r = random_rotations(n, generator=torch.Generator().manual_seed(5), dtype=F64)
    assert r.shape == (n, 3, 3)
    torch.testing.assert_close(r @ r.mT, torch.eye(3, dtype=F64).expand(n, 3, 3))
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(n, dtype=F64))
    # E[R] = 0 under the Haar measure; each entry has variance 1/3.
    assert r.mean(0).abs().max() < 4 * math.sqrt(1 / 3 / n)
    # Rotation angle w has density (1 - cos w) / pi, CDF (w - sin w) / pi.
    w = torch.deg2rad(geodesic_distance(torch.eye(3, dtype=F64), r)).sort().values
    cdf = (w - torch.sin(w)) / math.pi
    empirical = torch.arange(1, n + 1, dtype=F64) / n
    assert (cdf - empirical).abs().max() < 1.63 / math.sqrt(n)  # KS test at the 1 % level
    g1 = random_rotations(3, generator=torch.Generator().manual_seed(9))
    g2 = random_rotations(3, generator=torch.Generator().manual_seed(9))
    assert g1.dtype == torch.float32 and torch.equal(g1, g2)


def test_geodesic_distance():
    axis = torch.tensor([0.0, 0.6, 0.8], dtype=F64)
    base = random_rotations(1, generator=torch.Generator().manual_seed(6), dtype=F64)[0]
    for angle_deg in (0.0, 1e-6, 0.3, 45.0, 179.9999, 180.0):
        other = base @ axis_angle_to_matrix(math.radians(angle_deg) * axis)
        d = geodesic_distance(base, other)
        assert d.item() == pytest.approx(angle_deg, abs=1e-9)
    r = random_rotations(10, generator=torch.Generator().manual_seed(7), dtype=F64)
    d = geodesic_distance(r[:, None], r[None])
    assert d.shape == (10, 10)
    torch.testing.assert_close(d, d.T)
    ref = Rotation.from_matrix(r.numpy())
    expected = np.degrees((ref[:, None].inv() * ref[None]).magnitude()) if False else None
    expected = np.array(
        [[np.degrees((ref[i].inv() * ref[j]).magnitude()) for j in range(10)] for i in range(10)]
    )
    np.testing.assert_allclose(d.numpy(), expected, atol=1e-9)


def _nearest_distance(queries, grid):
    # Largest |<q, g>| is the nearest rotation; angle = 2 acos |<q, g>|.
    qq = matrix_to_quaternion(queries)
    qg = matrix_to_quaternion(grid)
    dots = (qq @ qg.T).abs().amax(-1).clamp(max=1)
    return torch.rad2deg(2 * torch.acos(dots))


@pytest.mark.parametrize("step", [30.0, 15.0])
def test_so3_grid_covers_without_duplicates(step):
    grid = so3_grid(step, dtype=F64)
    n = grid.shape[0]
    assert n == math.ceil(0.75 * 8 * math.pi**2 / math.radians(step) ** 3)
    torch.testing.assert_close(grid @ grid.mT, torch.eye(3, dtype=F64).expand(n, 3, 3))
    queries = random_rotations(4000, generator=torch.Generator().manual_seed(8), dtype=F64)
    assert _nearest_distance(queries, grid).max() <= step
    q = matrix_to_quaternion(grid)
    dots = (q @ q.T).abs()
    dots.fill_diagonal_(0)
    min_sep = torch.rad2deg(2 * torch.acos(dots.amax().clamp(max=1)))
    assert min_sep > 0.4 * step


def test_local_so3_grid():
    center = euler_to_matrix(torch.tensor([20.0, 50.0, -70.0], dtype=F64))
    grid = local_so3_grid(center, max_angle_deg=6.0, step_deg=2.0)
    torch.testing.assert_close(grid[0], center)
    d = geodesic_distance(center, grid)
    assert d.max() <= 6.0 + 1e-9
    # The cubic lattice of spacing 2 inside a ball of radius 3 steps has 123 points.
    assert grid.shape == (123, 3, 3)
    queries = center @ axis_angle_to_matrix(
        torch.deg2rad(
            torch.rand(500, 3, generator=torch.Generator().manual_seed(9), dtype=F64) * 6 - 3
        )
    )
    assert _nearest_distance(queries, grid).max() <= 2.0 * math.sqrt(3) / 2 + 0.05
    assert local_so3_grid(center.float(), max_angle_deg=0.0, step_deg=1.0).shape == (1, 3, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    r = random_rotations(20, generator=torch.Generator().manual_seed(10), dtype=F64, device="cuda")
    cpu = r.cpu()
    torch.testing.assert_close(matrix_to_euler(r).cpu(), matrix_to_euler(cpu))
    torch.testing.assert_close(matrix_to_axis_angle(r).cpu(), matrix_to_axis_angle(cpu))
    dist = geodesic_distance(r, r.flip(0))
    torch.testing.assert_close(dist.cpu(), geodesic_distance(cpu, cpu.flip(0)))
    assert so3_grid(30.0, device="cuda").device.type == "cuda"
    assert local_so3_grid(r[0], max_angle_deg=4.0, step_deg=2.0).device.type == "cuda"

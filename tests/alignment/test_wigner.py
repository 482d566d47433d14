"""Wigner d/D matrices: against the spherical package, closed forms and the rotation pin."""

import math

import numpy as np
import pytest
import torch

from inversa.alignment._harmonics import legendre_lambda, make_shell_grid, sh_analysis
from inversa.alignment._wigner import (
    euler_zyz_to_matrix,
    generators,
    matrix_to_euler_zyz,
    wigner_D,
    wigner_d,
)
from inversa.core.rotations import axis_angle_to_matrix, random_rotations

spherical = pytest.importorskip("spherical")


@pytest.mark.parametrize("beta", [0.0, 0.1, 1.0, math.pi / 2, 2.5, math.pi])
def test_small_d_matches_spherical_to_l64(beta):
    l_max = 64
    ours = wigner_d(l_max, torch.tensor(beta, dtype=torch.float64)).numpy()
    w = spherical.Wigner(l_max)
    ref = w.d(np.exp(1j * beta))
    err = 0.0
    for ell in range(l_max + 1):
        m = np.arange(-ell, ell + 1)
        idx = np.array([[w.dindex(ell, a, b) for b in m] for a in m])
        block = ours[ell, m[:, None] + l_max, m[None, :] + l_max]
        err = max(err, np.abs(ref[idx] - block).max())
    assert err < 1e-10


def test_small_d_closed_form_low_degree():
    # d^1 in the Sakurai convention, rows m = -1, 0, 1 (d^1_{10} = -sin(b) / sqrt 2).
    b = torch.tensor([0.3, 1.7], dtype=torch.float64)
    d = wigner_d(1, b)[:, 1]  # (2, 3, 3) on the l_max=1 grid: [m+1, m'+1]
    c, s = torch.cos(b), torch.sin(b)
    expected = torch.stack(
        [
            torch.stack([(1 + c) / 2, s / math.sqrt(2), (1 - c) / 2], -1),
            torch.stack([-s / math.sqrt(2), c, s / math.sqrt(2)], -1),
            torch.stack([(1 - c) / 2, -s / math.sqrt(2), (1 + c) / 2], -1),
        ],
        -2,
    )
    torch.testing.assert_close(d, expected, atol=1e-14, rtol=0)


def test_D_is_a_representation_and_unitary():
    g = torch.Generator().manual_seed(1)
    r = random_rotations(2, generator=g, dtype=torch.float64)
    l_max = 12
    d1, d2, d12 = (wigner_D(l_max, *matrix_to_euler_zyz(x)) for x in (r[0], r[1], r[0] @ r[1]))
    torch.testing.assert_close(d1 @ d2, d12, atol=1e-12, rtol=0)
    eye = torch.eye(2 * l_max + 1, dtype=torch.complex128)
    mask = torch.stack(
        [
            torch.diag((torch.arange(-l_max, l_max + 1).abs() <= ell).to(eye.dtype))
            for ell in range(l_max + 1)
        ]
    )
    torch.testing.assert_close(d1 @ d1.conj().mT, mask, atol=1e-12, rtol=0)


def test_euler_round_trip_including_gimbal_lock():
    g = torch.Generator().manual_seed(2)
    r = random_rotations(50, generator=g, dtype=torch.float64)
    locked = euler_zyz_to_matrix(*(torch.tensor(v, dtype=torch.float64) for v in (0.7, 0.0, 0.2)))
    flipped = euler_zyz_to_matrix(
        *(torch.tensor(v, dtype=torch.float64) for v in (0.7, math.pi, 0.2))
    )
    r = torch.cat([r, locked[None], flipped[None]])
    torch.testing.assert_close(euler_zyz_to_matrix(*matrix_to_euler_zyz(r)), r, atol=1e-12, rtol=0)


def test_rotating_sh_coefficients_equals_sampling_the_rotated_function():
    """The convention pin: coefficients of f(R^T u) are D(R) a."""
    l_max = 9
    grid = make_shell_grid(16, l_quad=l_max)
    g = torch.Generator().manual_seed(3)
    a = torch.randn(l_max + 1, 2 * l_max + 1, dtype=torch.complex128, generator=g)
    a = a * (torch.arange(-l_max, l_max + 1).abs()[None] <= torch.arange(l_max + 1)[:, None])
    rot = random_rotations(1, generator=g, dtype=torch.float64)[0]
    src = grid.directions @ rot  # rows are (R^T u)^T
    lam = legendre_lambda(l_max, src[..., 2].clamp(-1, 1))
    phi = torch.atan2(src[..., 1], src[..., 0])
    m = torch.arange(-l_max, l_max + 1)
    rotated = (lam * torch.exp(1j * m * phi[..., None])[..., None, :] * a).sum((-2, -1))
    coef = sh_analysis(rotated, grid, l_max)
    expected = torch.einsum("lmn,ln->lm", wigner_D(l_max, *matrix_to_euler_zyz(rot)), a)
    torch.testing.assert_close(coef, expected, atol=1e-12, rtol=0)


def test_generators_are_derivatives_of_D():
    l_max = 6
    g = torch.Generator().manual_seed(4)
    r0 = random_rotations(1, generator=g, dtype=torch.float64)[0]
    d0 = wigner_D(l_max, *matrix_to_euler_zyz(r0))
    gen = generators(l_max, "cpu")
    h = 1e-6
    for a in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[a] = h
        fd = (
            wigner_D(l_max, *matrix_to_euler_zyz(r0 @ axis_angle_to_matrix(e)))
            - wigner_D(l_max, *matrix_to_euler_zyz(r0 @ axis_angle_to_matrix(-e)))
        ) / (2 * h)
        lo, di, up = gen[a]
        x = torch.diag_embed(di) + torch.diag_embed(lo[:, 1:], -1) + torch.diag_embed(up[:, :-1], 1)
        torch.testing.assert_close(d0 @ x, fd, atol=1e-7, rtol=0)

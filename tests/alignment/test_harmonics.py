"""Shell-wise spherical-harmonic expansion: Legendre values, round trip, equivariance."""

import math

import numpy as np
import torch
from scipy.special import sph_harm_y

from inversa.alignment._harmonics import (
    fourier_shell_samples,
    legendre_lambda,
    make_shell_grid,
    sh_analysis,
    sh_synthesis,
    wedge_on_sphere,
)
from inversa.alignment._volumes import wedge_mask
from inversa.alignment._wigner import matrix_to_euler_zyz, wigner_D
from inversa.core import phantoms
from inversa.core.rotations import random_rotations


def test_legendre_matches_scipy():
    l_max = 20
    x = torch.linspace(-1, 1, 17, dtype=torch.float64)
    lam = legendre_lambda(l_max, x).numpy()
    theta = np.arccos(x.numpy())
    for ell in range(l_max + 1):
        for m in range(-ell, ell + 1):
            ref = sph_harm_y(ell, m, theta, 0.0).real
            np.testing.assert_allclose(lam[:, ell, m + l_max], ref, atol=1e-12)


def test_sh_round_trip_exact_to_band_limit():
    l_max = 12
    grid = make_shell_grid(8, l_quad=l_max)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, l_max + 1, 2 * l_max + 1, dtype=torch.complex128, generator=g)
    a = a * (torch.arange(-l_max, l_max + 1).abs()[None] <= torch.arange(l_max + 1)[:, None])
    torch.testing.assert_close(
        sh_analysis(sh_synthesis(a, grid), grid, l_max), a, atol=1e-12, rtol=0
    )


def test_fourier_samples_of_a_centred_gaussian_are_its_transform():
    n = 24
    c = torch.arange(n, dtype=torch.float64) - n // 2
    zz, yy, xx = torch.meshgrid(c, c, c, indexing="ij")
    sigma = 1.5
    vol = torch.exp(-(xx**2 + yy**2 + zz**2) / (2 * sigma**2))
    grid = make_shell_grid(n, l_quad=6, radii=torch.tensor([2.0, 5.0]))
    samples = fourier_shell_samples(vol, grid)
    k = grid.radii / n
    expected = (2 * math.pi * sigma**2) ** 1.5 * torch.exp(-2 * math.pi**2 * sigma**2 * k**2)
    torch.testing.assert_close(
        samples.real, expected[:, None, None].expand_as(samples.real), rtol=1e-2, atol=0
    )  # trilinear from a 2x padded FFT
    assert samples.imag.abs().max() < 1e-8


def test_expansion_is_rotation_equivariant():
    """Coefficients of a rotated structure are D(R) times the reference's (up to interpolation)."""
    n = 32
    model = phantoms.read_atomic_model(phantoms.builtin_structure_path())
    voxel = 2 * model.radius() / (0.7 * n)
    rot = random_rotations(1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)[0]
    ref = phantoms.density_from_atoms(
        model, voxel_size=voxel, shape=(n, n, n), resolution=2.5 * voxel, dtype=torch.float64
    )
    par = phantoms.density_from_atoms(
        model,
        voxel_size=voxel,
        shape=(n, n, n),
        rotation=rot,
        resolution=2.5 * voxel,
        dtype=torch.float64,
    )
    l_max = 16
    grid = make_shell_grid(n, l_quad=24, radii=torch.arange(1.0, 12.0))
    a = sh_analysis(fourier_shell_samples(ref, grid), grid, l_max)
    b = sh_analysis(fourier_shell_samples(par, grid), grid, l_max)
    pred = torch.einsum("lmn,sln->slm", wigner_D(l_max, *matrix_to_euler_zyz(rot)), a)
    rel = torch.linalg.vector_norm(pred - b) / torch.linalg.vector_norm(b)
    assert rel < 0.03


def test_wedge_on_sphere_matches_wedge_mask():
    n = 16
    mask = wedge_mask((n, n, n), tilt_min=-50, tilt_max=60, dtype=torch.float64)
    k = torch.stack(
        torch.meshgrid(*(torch.fft.fftfreq(n, dtype=torch.float64),) * 3, indexing="ij"), -1
    )
    dirs = k.flip(-1)  # (kx, ky, kz) from [z, y, x] order
    torch.testing.assert_close(wedge_on_sphere(dirs, -50, 60)[1:, 1:, 1:], mask[1:, 1:, 1:])

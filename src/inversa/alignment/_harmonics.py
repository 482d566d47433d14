"""Shell-wise spherical-harmonic expansion of volumes' Fourier transforms.

A volume's Fourier transform ``F(k)`` (phases about the box centre ``n // 2``) is sampled
on spheres ``|k| = s / n`` (cycles/voxel) at the nodes of a Gauss-Legendre (in
``cos theta``) x uniform (in ``phi``) product grid, exact for band limit ``l_quad``, and
each shell is expanded as ``f_s(u) = sum_{l <= L, |m| <= l} a_{slm} Y_lm(u)``.

Sampling ``F`` off the FFT grid: the volume is zero-padded ``pad`` times (default 2),
transformed, and interpolated trilinearly; trilinear interpolation in Fourier space
multiplies the volume by ``prod_i sinc^2(x_i / (pad n))`` in real space, so the volume is
divided by that window first (gridding correction). What remains is the aliasing of the
interpolation kernel, small on smooth structures and smaller with more padding (bounded
in ``tests/alignment/test_harmonics.py`` through rotation equivariance). A direct
non-uniform DFT per shell point would be exact but costs ``O(n^3)`` per point, far too
much for ``~10^5`` points per particle.

Directions are (x, y, z) unit vectors, ``theta`` the polar angle from +z and ``phi`` the
azimuth from +x towards +y; ``Y_lm(theta, phi) = lambda_lm(cos theta) exp(i m phi)``
with the Condon-Shortley phase (as ``scipy.special.sph_harm_y``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from inversa.core.errors import InputError

__all__ = [
    "ShellGrid",
    "fourier_shell_samples",
    "legendre_lambda",
    "make_shell_grid",
    "sh_analysis",
    "sh_synthesis",
    "wedge_on_sphere",
]


def legendre_lambda(l_max: int, x: torch.Tensor) -> torch.Tensor:
    """Normalised associated Legendre functions ``lambda_lm(x)``, ``Y_lm = lambda_lm e^{i m phi}``.

    Standard stable recursion in ``l`` at fixed ``m`` (float64); negative orders use
    ``lambda_{l,-m} = (-1)^m lambda_lm``.

    Parameters
    ----------
    l_max
        Largest degree.
    x
        ``(...)`` values of ``cos theta`` in ``[-1, 1]``.

    Returns
    -------
    torch.Tensor
        ``(..., l_max + 1, 2 l_max + 1)`` float64 ``[..., l, m + l_max]`` (zero for ``|m| > l``).
    """
    x = x.to(torch.float64)
    sin_t = torch.sqrt((1 - x * x).clamp_min(0))
    size = 2 * l_max + 1
    out = x.new_zeros(*x.shape, l_max + 1, size)
    pmm = torch.full_like(x, 1 / math.sqrt(4 * math.pi))
    for m in range(l_max + 1):
        if m > 0:
            pmm = -math.sqrt((2 * m + 1) / (2 * m)) * sin_t * pmm
        out[..., m, l_max + m] = pmm
        if m == l_max:
            break
        p_prev, p_cur = pmm, math.sqrt(2 * m + 3) * x * pmm
        out[..., m + 1, l_max + m] = p_cur
        for ell in range(m + 2, l_max + 1):
            a = math.sqrt((4 * ell * ell - 1) / (ell * ell - m * m))
            b = math.sqrt(((ell - 1) ** 2 - m * m) / (4 * (ell - 1) ** 2 - 1))
            p_prev, p_cur = p_cur, a * (x * p_cur - b * p_prev)
            out[..., ell, l_max + m] = p_cur
    signs = torch.tensor([(-1.0) ** m for m in range(1, l_max + 1)], dtype=torch.float64)
    out[..., :l_max] = out[..., l_max + 1 :].flip(-1) * signs.flip(0).to(x.device)
    return out


@dataclass(frozen=True)
class ShellGrid:
    """Quadrature nodes on the sphere and the shells they are placed on.

    Attributes
    ----------
    l_quad
        Band limit the quadrature integrates exactly (products up to degree ``2 l_quad``).
    cos_theta, weights
        ``(n_theta,)`` Gauss-Legendre nodes and weights (weights sum to 2).
    directions
        ``(n_theta, n_phi, 3)`` unit vectors (x, y, z).
    legendre
        ``(n_theta, l_quad + 1, 2 l_quad + 1)`` the ``lambda_lm`` at the nodes.
    radii
        ``(S,)`` shell radii in Fourier pixels (frequency ``radius / n``).
    shell_weights
        ``(S,)`` radial quadrature weights ``radius^2`` (the ``|k|^2`` Jacobian).
    n
        Box size the shells refer to.
    """

    l_quad: int
    cos_theta: torch.Tensor
    weights: torch.Tensor
    directions: torch.Tensor
    legendre: torch.Tensor
    radii: torch.Tensor
    shell_weights: torch.Tensor
    n: int

    @property
    def n_phi(self) -> int:
        """Number of azimuthal nodes."""
        return self.directions.shape[1]

    def points(self) -> torch.Tensor:
        """``(S, n_theta, n_phi, 3)`` frequencies (kx, ky, kz) in cycles/voxel."""
        return self.radii[:, None, None, None] / self.n * self.directions


def make_shell_grid(
    n: int, *, l_quad: int, radii: torch.Tensor | None = None, device=None
) -> ShellGrid:
    """Build the quadrature grid (exact to band ``l_quad``) on shells of a box of size ``n``.

    Parameters
    ----------
    n
        Box size (voxels).
    l_quad
        Quadrature band limit: ``l_quad + 1`` Gauss-Legendre nodes, ``2 l_quad + 2``
        azimuths.
    radii
        ``(S,)`` shell radii in Fourier pixels; default ``1, 2, ..., n // 2 - 1``.

    Returns
    -------
    ShellGrid
    """
    x, w = np.polynomial.legendre.leggauss(l_quad + 1)
    cos_t = torch.as_tensor(x, dtype=torch.float64, device=device)
    sin_t = torch.sqrt(1 - cos_t**2)
    n_phi = 2 * l_quad + 2
    phi = torch.arange(n_phi, dtype=torch.float64, device=device) * (2 * math.pi / n_phi)
    dirs = torch.stack(
        [
            sin_t[:, None] * torch.cos(phi)[None],
            sin_t[:, None] * torch.sin(phi)[None],
            cos_t[:, None].expand(-1, n_phi),
        ],
        dim=-1,
    )
    if radii is None:
        radii = torch.arange(1, n // 2, dtype=torch.float64, device=device)
    radii = torch.as_tensor(radii, dtype=torch.float64, device=device)
    return ShellGrid(
        l_quad=l_quad,
        cos_theta=cos_t,
        weights=torch.as_tensor(w, dtype=torch.float64, device=device),
        directions=dirs,
        legendre=legendre_lambda(l_quad, cos_t),
        radii=radii,
        shell_weights=radii**2,
        n=n,
    )


def sh_analysis(samples: torch.Tensor, grid: ShellGrid, l_max: int) -> torch.Tensor:
    """Spherical-harmonic coefficients ``a_lm = int f conj(Y_lm)`` of sampled functions.

    Exact for functions of band limit ``<= grid.l_quad`` when ``l_max <= grid.l_quad``.

    Parameters
    ----------
    samples
        ``(..., n_theta, n_phi)`` real or complex values at ``grid.directions``.
    grid
        The quadrature.
    l_max
        Largest degree returned (``<= grid.l_quad``).

    Returns
    -------
    torch.Tensor
        ``(..., l_max + 1, 2 l_max + 1)`` complex128, ``[..., l, m + l_max]``.
    """
    if l_max > grid.l_quad:
        raise ValueError(f"l_max {l_max} exceeds the quadrature band {grid.l_quad}")
    n_phi = grid.n_phi
    # sum_j f(phi_j) exp(-i m phi_j) for all m at once: one FFT along phi.
    fm = torch.fft.fft(samples.to(torch.complex128), dim=-1) * (2 * math.pi / n_phi)
    ms = torch.arange(-l_max, l_max + 1, device=samples.device)
    fm = fm[..., ms % n_phi]  # (..., n_theta, 2 l_max + 1)
    q = grid.l_quad
    lam = grid.legendre[:, : l_max + 1, q - l_max : q + l_max + 1]  # (n_theta, L+1, M)
    return torch.einsum("...tm,tlm->...lm", fm, (lam * grid.weights[:, None, None]).to(fm.dtype))


def sh_synthesis(coefs: torch.Tensor, grid: ShellGrid) -> torch.Tensor:
    """Evaluate ``sum a_lm Y_lm`` at the grid's directions.

    Parameters
    ----------
    coefs
        ``(..., L + 1, 2 L + 1)`` with ``L <= grid.l_quad``.

    Returns
    -------
    torch.Tensor
        ``(..., n_theta, n_phi)`` complex128.
    """
    l_max = coefs.shape[-2] - 1
    q = grid.l_quad
    lam = grid.legendre[:, : l_max + 1, q - l_max : q + l_max + 1].to(torch.complex128)
    fm = torch.einsum("...lm,tlm->...tm", coefs.to(torch.complex128), lam)
    phi = torch.arange(grid.n_phi, dtype=torch.float64, device=coefs.device) * (
        2 * math.pi / grid.n_phi
    )
    ms = torch.arange(-l_max, l_max + 1, dtype=torch.float64, device=coefs.device)
    return fm @ torch.exp(1j * ms[:, None] * phi[None, :])


def wedge_on_sphere(directions: torch.Tensor, tilt_min: float, tilt_max: float) -> torch.Tensor:
    """Evaluate the missing-wedge indicator of :func:`inversa.alignment.wedge_mask` on directions.

    A direction is measured when ``atan(kz / kx)`` (degrees) lies in ``[tilt_min,
    tilt_max]``; ``kx = 0`` counts as +-90 degrees.

    Parameters
    ----------
    directions
        ``(..., 3)`` (x, y, z).

    Returns
    -------
    torch.Tensor
        ``(...)`` float64 in {0, 1}.
    """
    kx, kz = directions[..., 0].to(torch.float64), directions[..., 2].to(torch.float64)
    angle = torch.rad2deg(torch.atan(kz / kx))
    angle = torch.where(kx == 0, torch.where(kz == 0, 0.0, 90.0), angle)
    eps = 1e-9
    return ((angle >= tilt_min - eps) & (angle <= tilt_max + eps)).to(torch.float64)


def fourier_shell_samples(volumes: torch.Tensor, grid: ShellGrid, *, pad: int = 2) -> torch.Tensor:
    """Sample the Fourier transforms of cubic volumes on the grid's shells.

    ``F(k) = sum_r v(r) exp(-2 pi i k . r)`` with ``r`` relative to the centre ``n // 2``,
    so that rotating a volume about its centre rotates ``F``.

    Parameters
    ----------
    volumes
        ``(..., n, n, n)`` real.
    grid
        Shells and directions (``grid.n`` must equal ``n``).
    pad
        Zero-padding factor before the FFT (>= 1).

    Returns
    -------
    torch.Tensor
        ``(..., S, n_theta, n_phi)`` complex (the volumes' real dtype's complex).
    """
    n = volumes.shape[-1]
    if volumes.shape[-3:] != (n, n, n) or n != grid.n:
        raise InputError(
            None, f"volumes must be cubic of size {grid.n}; got {tuple(volumes.shape)}"
        )
    batch = volumes.shape[:-3]
    vol = volumes.reshape(-1, n, n, n)
    dev, dt = vol.device, vol.dtype
    big = pad * n
    x = torch.arange(n, device=dev, dtype=dt) - n // 2
    corr = torch.sinc(x / big) ** 2
    window = corr[:, None, None] * corr[None, :, None] * corr[None, None, :]
    # The centre voxel goes to index 0 of the padded box (what ifftshift of a centred
    # box would do, without the copy); for an even box, (-1)^index along z and y on the
    # input centres those axes of the spectrum (what fftshift would do, again without the
    # copy). x keeps the half spectrum of rfftn: F(-k) = conj(F(k)) for a real volume.
    pos = (torch.arange(n, device=dev) - n // 2) % big
    src = vol / window
    if big % 2 == 0:
        sign = (1 - 2 * (pos % 2)).to(dt)
        src = src * (sign[:, None, None] * sign[None, :, None])
    padded = vol.new_zeros(vol.shape[0], big, big, big)
    padded[:, pos[:, None, None], pos[None, :, None], pos[None, None, :]] = src
    spec = torch.fft.rfftn(padded, dim=(-3, -2, -1))  # (B, big, big, big // 2 + 1)
    if big % 2:
        spec = torch.fft.fftshift(spec, dim=(-3, -2))
    pts = grid.points().to(dt)  # (S, T, P, 3) cycles/voxel, (x, y, z)
    flip = pts[..., 0] < 0
    pts = torch.where(flip[..., None], -pts, pts)  # sampled at -k, conjugated below
    half = big // 2 + 1
    ix = pts[..., 0] * big
    iy = big // 2 + pts[..., 1] * big
    iz = big // 2 + pts[..., 2] * big
    coords = torch.stack(
        [2.0 * ix / (half - 1) - 1.0, 2.0 * iy / (big - 1) - 1.0, 2.0 * iz / (big - 1) - 1.0],
        dim=-1,
    )
    chans = torch.stack([spec.real, spec.imag], dim=1)  # (B, 2, big, big, half)
    g = coords.reshape(1, 1, 1, -1, 3).expand(vol.shape[0], -1, -1, -1, -1)
    out = F.grid_sample(chans, g, mode="bilinear", padding_mode="zeros", align_corners=True)
    out = out[:, :, 0, 0]  # (B, 2, points)
    imag = torch.where(flip.reshape(-1), -out[:, 1], out[:, 1])
    samples = torch.complex(out[:, 0], imag).reshape(*batch, *pts.shape[:-1])
    return samples

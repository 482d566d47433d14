"""Ray rendering of a volume field through the tilt geometry (tilt axis y).

The geometry is that of :class:`inversa.tomography.TiltSeriesProjector`: a volume point
``(x, y, z)`` (voxels about the centre ``n // 2``) lands at ``u = x cos(theta) +
z sin(theta)``, ``v = y``. The ray through ideal detector point ``(u, v)`` is therefore
``(u cos - w sin, v, u sin + w cos)`` for depth ``w``, and a projection is its line
integral, estimated by stratified samples along ``w``.

With a CTF the raw image is the CTF-filtered projection, ``rfft2(raw) = CTF *
rfft2(projection)`` in the raw detector frame. A pixel then depends on its neighbours
within the CTF's delocalisation, so rays are rendered as square detector patches with a
margin of that width (:func:`ctf_padding`), filtered through the tilt's CTF on the padded
patch's own frequency grid (:func:`filter_patches`) and compared in the inner part only.

Coarse to fine under a CTF: :func:`ctf_first_zero` gives each tilt's first CTF zero and
:func:`restore_lowpass` a Wiener-restored, low-passed copy of the data below a cutoff, which
an early phase of the fit compares with single rendered rays.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from inversa.core.fourier import frequency_grid
from inversa.tomography import TiltSeriesCTF, electron_wavelength_A, tilt_ctf_grid

__all__ = [
    "ctf_first_zero",
    "ctf_padding",
    "filter_patches",
    "ray_half_length",
    "render_rays",
    "restore_lowpass",
    "volume_to_unit",
]

Field = Callable[[torch.Tensor], torch.Tensor]


def ray_half_length(volume_shape: tuple[int, int, int]) -> float:
    """Half the depth range a ray needs to cross a ``(D, H, W)`` box at any tilt."""
    d, _, w = volume_shape
    return 0.5 * math.hypot(d, w) + 1.0


def volume_to_unit(points: torch.Tensor, volume_shape: tuple[int, int, int]) -> torch.Tensor:
    """Voxel coordinates ``(x, y, z)`` about the centre -> field coordinates in ``[0, 1]^3``.

    Voxel ``[k, j, i]`` sits at ``((i + 0.5) / W, (j + 0.5) / H, (k + 0.5) / D)``, the
    convention of :func:`inversa.core.fields.grid_coordinates`.
    """
    d, h, w = volume_shape
    size = points.new_tensor([w, h, d])
    centre = points.new_tensor([w // 2, h // 2, d // 2])
    return (points + centre + 0.5) / size


def render_rays(
    field: Field,
    angles: torch.Tensor,
    positions: torch.Tensor,
    *,
    volume_shape: tuple[int, int, int],
    n_samples: int,
    jitter: torch.Tensor | None = None,
) -> torch.Tensor:
    """Line integrals of a field along the rays through ideal detector positions.

    Parameters
    ----------
    field
        Maps ``(..., 3)`` coordinates in ``[0, 1]^3`` to ``(..., 1)`` densities
        (e.g. a :class:`inversa.core.fields.NeuralField`); zero is assumed outside the box.
    angles
        ``(R,)`` tilt angle in degrees of each row of ``positions``.
    positions
        ``(R, N, 2)`` ideal detector positions ``(u, v)`` in pixels about the centre.
    volume_shape
        ``(D, H, W)`` of the box the field fills.
    n_samples
        Samples per ray (one per equal depth interval).
    jitter
        ``(R, N, n_samples)`` offsets in ``[0, 1)`` inside each interval; ``None`` samples
        the interval midpoints.

    Returns
    -------
    torch.Tensor
        ``(R, N)`` line integrals in voxel units; differentiable in the field's
        parameters, ``angles`` and ``positions``.
    """
    half = ray_half_length(volume_shape)
    step = 2 * half / n_samples
    dtype = positions.dtype
    k = torch.arange(n_samples, device=positions.device, dtype=dtype)
    if jitter is None:
        depth = -half + (k + 0.5) * step  # (S,)
        depth = depth.expand(*positions.shape[:2], n_samples)
    else:
        depth = -half + (k + jitter.to(dtype)) * step  # (R, N, S)
    theta = torch.deg2rad(angles.to(dtype))[:, None, None]
    c, s = torch.cos(theta), torch.sin(theta)
    u, v = positions[..., 0:1], positions[..., 1:2]
    x = u * c - depth * s
    z = u * s + depth * c
    y = v.expand_as(x)
    unit = volume_to_unit(torch.stack([x, y, z], dim=-1), volume_shape)
    inside = ((unit >= 0) & (unit <= 1)).all(dim=-1)
    # Only samples inside the box are evaluated (a thin slab leaves most of a ray outside).
    values = unit.new_zeros(inside.shape)
    values = values.masked_scatter(inside, field(unit[inside])[..., 0])
    return values.sum(dim=-1) * step


def ctf_padding(ctf: TiltSeriesCTF, pixel_size_A: float) -> int:
    """Margin in pixels a patch needs around the pixels it is compared on, under a CTF.

    A CTF moves the detail of frequency ``k`` by its delocalisation ``|lambda df k -
    Cs lambda^3 k^3|`` (Angstrom; the gradient of its phase over ``2 pi``). The margin
    is the largest of it up to Nyquist, over the tilts' defoci, in pixels, rounded up, plus
    one pixel.

    Parameters
    ----------
    ctf
        The tilt series' CTF.
    pixel_size_A
        Detector pixel size in Angstrom.

    Returns
    -------
    int
    """
    lam = electron_wavelength_A(ctf.voltage_kv)
    df = float(torch.cat([ctf.defocus_u_um, ctf.defocus_v_um]).abs().max()) * 1e4
    cs = ctf.spherical_aberration_mm * 1e7
    k = torch.linspace(0.0, 0.5 / pixel_size_A, 513, dtype=torch.float64)
    shift = (lam * df * k - cs * lam**3 * k**3).abs().max()
    return math.ceil(float(shift) / pixel_size_A) + 1


def filter_patches(patches: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
    """Filter detector patches through a transfer function (periodic on each patch).

    Parameters
    ----------
    patches
        ``(R, P, P)`` real patches (rendered line integrals).
    transfer
        ``(R, P, P // 2 + 1)`` real transfer function on each patch's ``rfft2`` grid (e.g.
        :func:`inversa.tomography.tilt_ctf_grid` of the patch's tilt).

    Returns
    -------
    torch.Tensor
        ``(R, P, P)``: ``irfft2(rfft2(patches) * transfer)``; differentiable in
        ``patches``. Only pixels at least the transfer's reach from the border equal the
        filtered full image (:func:`ctf_padding`).
    """
    size = patches.shape[-2:]
    spectrum = torch.fft.rfft2(patches) * transfer.to(patches.dtype)
    return torch.fft.irfft2(spectrum, s=size)


def ctf_first_zero(
    ctf: TiltSeriesCTF, pixel_size_A: float, *, n_radii: int = 1024, n_angles: int = 36
) -> torch.Tensor:
    """Each tilt's first CTF zero in cycles per pixel (the nearest over all directions).

    The CTF is positive at low frequency; the first zero is the smallest radius, over
    ``n_angles`` directions in ``[0, pi)`` (astigmatism), at which it is no longer
    positive, sampled at ``n_radii`` radii up to Nyquist. A tilt whose CTF has no zero
    below Nyquist gets 0.5.

    Parameters
    ----------
    ctf
        The tilt series' CTF.
    pixel_size_A
        Detector pixel size in Angstrom.
    n_radii, n_angles
        Sampling of the search.

    Returns
    -------
    torch.Tensor
        ``(T,)`` float64 cycles per pixel, in ``(0, 0.5]``.
    """
    radius = torch.linspace(0.0, 0.5, n_radii + 1, dtype=torch.float64)[1:]  # cycles / px
    phi = torch.arange(n_angles, dtype=torch.float64) * (math.pi / n_angles)
    direction = torch.stack([torch.cos(phi), torch.sin(phi)], -1)  # (A, 2) as (k_x, k_y)
    k = radius[:, None, None] * direction[None] / pixel_size_A  # (K, A, 2) 1/Angstrom
    tilts = torch.arange(ctf.n_tilts)
    value = ctf.tilt_ctf(k[None], tilts[:, None, None])  # (T, K, A)
    below = (value <= 0).any(dim=-1)  # (T, K): some direction has crossed by this radius
    first = torch.where(below.any(dim=1), below.to(torch.int64).argmax(dim=1), n_radii - 1)
    return torch.where(below.any(dim=1), radius[first], torch.full_like(radius[first], 0.5))


def restore_lowpass(
    images: torch.Tensor,
    ctf: TiltSeriesCTF,
    *,
    pixel_size_A: float,
    cutoff: torch.Tensor,
    wiener: float,
) -> torch.Tensor:
    """Wiener-restore each tilt for its CTF and low-pass it below a per-tilt cutoff.

    ``irfft2(rfft2(images) * C / (C^2 + wiener) * (1 + wiener) * L)`` with ``C`` the tilt's
    CTF in the raw frame and ``L = exp(-ln(10) (k / cutoff)^2)`` (0.1 at the cutoff). The
    factor ``1 + wiener`` keeps a unit CTF unchanged. Below the first CTF zero this undoes
    the CTF's weak low-frequency transfer (down to the amplitude contrast at ``k = 0``),
    so the result is a blurred projection rather than a band-passed one; beyond it the
    restoration also undoes the CTF's sign flips, damping the frequencies near its zeros.

    Parameters
    ----------
    images
        ``(T, H, W)`` images in the raw frame (e.g. the normalised stack).
    ctf
        Their CTF.
    pixel_size_A
        Pixel size in Angstrom.
    cutoff
        ``(T,)`` or scalar cutoff in cycles per pixel.
    wiener
        Wiener constant (relative to a unit CTF), > 0.

    Returns
    -------
    torch.Tensor
        ``(T, H, W)`` in the dtype of ``images``.
    """
    t, h, w = images.shape
    transfer = tilt_ctf_grid(ctf, (h, w), pixel_size_A=pixel_size_A, device=images.device)
    k = frequency_grid((h, w), rfft=True, norm=True, dtype=torch.float64, device=images.device)
    cut = torch.as_tensor(cutoff, dtype=torch.float64, device=images.device).reshape(-1, 1, 1)
    low = torch.exp(-math.log(10.0) * (k[None] / cut).square())
    gain = transfer / (transfer.square() + wiener) * (1.0 + wiener) * low
    return filter_patches(images, gain.expand(t, -1, -1).to(images.dtype))

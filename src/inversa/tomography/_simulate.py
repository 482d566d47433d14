"""In-memory tilt-series simulation: scene, projection, CTF, dose, and the misalignment model.

This is the data source of every tilt-series method (CryoLithe's training pairs,
ICE-TIDE's misaligned series, the benchmarks); the file-level job that writes MRC, .tlt,
.xf and STAR files is :func:`inversa.workflows.simulate_dataset`.

Misalignment model of tilt ``t`` (raw image coordinates ``r`` in pixels about the image
centre, ``ideal`` the projection of the scene):

``raw(r) = ideal(A_t r + d_t + D_t(r))``

with ``[A_t | d_t]`` the IMOD ``.xf`` transform (an in-plane rotation uniform in
``+-rotation_deg`` and a shift uniform in ``+-shift_px`` per axis) and ``D_t`` a smooth
local displacement field (:func:`local_deformation`): a uniform cubic B-spline over a
``grid x grid`` lattice of control vectors drawn uniformly in the disc of radius
``local_deformation_px``. B-spline weights are non-negative and sum to one, so
``|D_t(r)| <= local_deformation_px`` everywhere; the field is twice continuously
differentiable. ``D_t = 0`` when the amplitude is 0, and then no random numbers are drawn
for it, so the series is the one simulated without the option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inversa.core import noise, phantoms
from inversa.core.errors import InputError
from inversa.tomography._ctf import CTFParams, TiltSeriesCTF, apply_ctf
from inversa.tomography._geometry import OnTiltGeometry, TiltGeometry
from inversa.tomography._tiltseries import TiltSeriesProjector
from inversa.tomography._warp import warp_images

__all__ = [
    "SimulatedTiltSeries",
    "SimulationConfig",
    "bspline_at",
    "bspline_field",
    "local_deformation",
    "random_xf",
    "simulate",
    "simulate_tilt_series",
]


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """What to simulate; every field has a laptop-sized default.

    Attributes
    ----------
    shape
        Volume shape ``(D, H, W)`` in voxels (z, y, x); the tilt images are ``(H, W)``.
    voxel_size
        Angstrom per voxel (and per detector pixel).
    structure
        PDB/mmCIF file of the particle; ``None`` uses the shipped 80S ribosome (PDB 6ZU5),
        whose orientations can be recovered at the default 12 Angstrom per voxel.
    n_particles, n_membranes
        Copies of the structure at random positions and Haar-random orientations, and vesicles.
    tilt_min, tilt_max, tilt_step
        Tilt range and step in degrees (single axis about y).
    dose
        Electrons per square Angstrom per tilt image.
    max_contrast
        Fraction of the beam removed by the strongest projected column (amplitude-contrast
        simplification of image formation).
    ctf, defocus_um, voltage_kv, spherical_aberration_mm, amplitude_contrast
        Optional contrast transfer function, constant defocus over the series.
    shift_px, rotation_deg
        Per-tilt random rigid misalignment (uniform in +-shift_px, +-rotation_deg about
        the image centre); the true IMOD transforms are returned (and written as ``.xf``).
    local_deformation_px, deformation_grid
        Amplitude bound (pixels; 0 = off) and control points per image axis (at least 4)
        of the smooth per-tilt local displacement fields (see the module docstring).
    reference_box
        Box size of the reference map of the structure.
    seed
        Seed of the one generator used for everything random.
    """

    shape: tuple[int, int, int] = (48, 160, 160)
    voxel_size: float = 12.0
    structure: str | None = None
    n_particles: int = 12
    n_membranes: int = 2
    tilt_min: float = -60.0
    tilt_max: float = 60.0
    tilt_step: float = 3.0
    dose: float = 3.0
    max_contrast: float = 0.5
    ctf: bool = False
    defocus_um: float = 3.0
    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    shift_px: float = 0.0
    rotation_deg: float = 0.0
    local_deformation_px: float = 0.0
    deformation_grid: int = 6
    reference_box: int = 40
    seed: int = 0

    def __post_init__(self) -> None:
        if self.shift_px < 0 or self.rotation_deg < 0 or self.local_deformation_px < 0:
            raise InputError(None, "misalignment amplitudes must be >= 0")
        if self.deformation_grid < 4:
            raise InputError(None, "deformation_grid needs at least 4 control points per axis")

    def geometry(self) -> TiltGeometry:
        """Return the ideal acquisition: angles (float64 degrees) and the ``(H, W)`` detector."""
        return TiltGeometry.from_range(
            self.tilt_min,
            self.tilt_max,
            self.tilt_step,
            detector_shape=(self.shape[1], self.shape[2]),
        )

    def structure_path(self) -> str:
        """Return the path of the structure file simulated."""
        return self.structure or str(phantoms.builtin_structure_path("ribosome"))

    def ctf_params(self) -> CTFParams:
        """Return the CTF the simulator applies (``ctf=True``) on its pixel grid."""
        return CTFParams(
            pixel_size_A=self.voxel_size,
            defocus_um=self.defocus_um,
            voltage_kv=self.voltage_kv,
            spherical_aberration_mm=self.spherical_aberration_mm,
            amplitude_contrast=self.amplitude_contrast,
        )

    def tilt_series_ctf(self) -> TiltSeriesCTF:
        """Return the same CTF per tilt of :meth:`geometry` (one defocus, no astigmatism)."""
        return TiltSeriesCTF(
            angles=self.geometry().angles,
            defocus_u_um=self.defocus_um,
            voltage_kv=self.voltage_kv,
            spherical_aberration_mm=self.spherical_aberration_mm,
            amplitude_contrast=self.amplitude_contrast,
        )


@dataclass(frozen=True)
class SimulatedTiltSeries(OnTiltGeometry):
    """In-memory result of :func:`simulate`.

    ``angles``, ``xf`` and ``project_points`` are those of ``geometry``.

    Attributes
    ----------
    stack
        Raw tilt series in electron counts, ``(T, H, W)``.
    geometry
        Angles and the true IMOD transforms ``(T, 2, 3)`` (raw -> aligned; the identity
        when there is no rigid misalignment).
    displacement
        True local displacement fields ``(T, H, W, 2)`` in pixels, components ``(x, y)``,
        or ``None`` when ``local_deformation_px`` is 0.
    control
        Their B-spline control vectors ``(T, G, G, 2)``, or ``None``.
    volume
        Ground-truth scene ``(D, H, W)``.
    reference
        The structure at the identity orientation, ``(B, B, B)``.
    scene
        The phantom scene with particle positions and orientations.
    """

    stack: torch.Tensor
    geometry: TiltGeometry
    displacement: torch.Tensor | None
    control: torch.Tensor | None
    volume: torch.Tensor
    reference: torch.Tensor
    scene: phantoms.Scene


def random_xf(
    n: int, *, shift_px: float, rotation_deg: float, generator: torch.Generator
) -> torch.Tensor:
    """Per-tilt in-plane rotations and shifts as IMOD ``(T, 2, 3)`` float64 transforms.

    Rotations are uniform in ``+-rotation_deg`` and each shift component uniform in
    ``+-shift_px``; the rotations are drawn first, then the shifts.
    """
    ang = (2 * torch.rand(n, generator=generator, dtype=torch.float64) - 1) * rotation_deg
    shifts = (2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1) * shift_px
    c, s = torch.cos(torch.deg2rad(ang)), torch.sin(torch.deg2rad(ang))
    xf = torch.zeros(n, 2, 3, dtype=torch.float64)
    xf[:, 0, 0], xf[:, 0, 1], xf[:, 1, 0], xf[:, 1, 1] = c, -s, s, c
    xf[:, :, 2] = shifts
    return xf


def _cubic_weights(u: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` uniform cubic B-spline weights at fractional position ``u`` in [0, 1]."""
    return torch.stack(
        [
            (1 - u) ** 3 / 6,
            (3 * u**3 - 6 * u**2 + 4) / 6,
            (-3 * u**3 + 3 * u**2 + 3 * u + 1) / 6,
            u**3 / 6,
        ],
        dim=-1,
    )


def _axis_taps(p: torch.Tensor, n: int, g: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First control index ``(...)`` and the four weights ``(..., 4)`` at pixel index ``p``.

    Pixel ``i`` sits at spline parameter ``t = i (g - 3) / (n - 1)``, so the ``g - 3``
    segments span the image exactly; points off the image keep the end segment's
    polynomial (clamped parameter) so the field stays bounded there.
    """
    t = (p * ((g - 3) / max(n - 1, 1))).clamp(0, g - 3)
    seg = torch.clamp(torch.floor(t.detach()), max=g - 4).to(torch.int64)
    return seg, _cubic_weights(t - seg)


def _bspline_matrix(n: int, g: int, dtype: torch.dtype) -> torch.Tensor:
    """``(n, g)`` weights of ``g`` uniform cubic B-spline control points at ``n`` pixels."""
    seg, weights = _axis_taps(torch.arange(n, dtype=torch.float64), n, g)
    m = torch.zeros(n, g, dtype=torch.float64)
    for k in range(4):
        m[torch.arange(n), seg + k] = weights[:, k]
    return m.to(dtype)


def bspline_at(control: torch.Tensor, points: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Evaluate per-tilt B-spline fields at arbitrary points (:func:`bspline_field` off-grid).

    On pixel centres this equals :func:`bspline_field`.

    Parameters
    ----------
    control
        ``(T, Gy, Gx, C)`` control values.
    points
        ``(T, N, 2)`` positions ``(x, y)`` in pixels about the image centre.
    shape
        ``(H, W)`` of the images.

    Returns
    -------
    torch.Tensor
        ``(T, N, C)``; differentiable in ``control`` and ``points``.
    """
    t, gy, gx, c = control.shape
    h, w = shape
    sy, wy = _axis_taps(points[..., 1] + h // 2, h, gy)  # (T, N), (T, N, 4)
    sx, wx = _axis_taps(points[..., 0] + w // 2, w, gx)
    k = torch.arange(4, device=points.device)
    rows = (sy[..., :, None] + k)[..., :, None] * gx + (sx[..., :, None] + k)[..., None, :]
    weights = (wy[..., :, None] * wx[..., None, :]).to(control.dtype)  # (T, N, 4, 4)
    flat = control.reshape(t, gy * gx, c)
    n = points.shape[1]
    taps = torch.gather(flat, 1, rows.reshape(t, n * 16, 1).expand(-1, -1, c))
    return (taps.reshape(t, n, 16, c) * weights.reshape(t, n, 16, 1)).sum(dim=2)


def bspline_field(control: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Evaluate uniform cubic B-spline fields on an image grid.

    Parameters
    ----------
    control
        ``(..., Gy, Gx, C)`` control values (``Gy, Gx >= 4``).
    shape
        ``(H, W)`` of the image.

    Returns
    -------
    torch.Tensor
        ``(..., H, W, C)``; every value is a convex combination of 16 control values.
    """
    if control.ndim < 3 or min(control.shape[-3], control.shape[-2]) < 4:
        raise InputError(None, f"control must be (..., Gy, Gx, C) with G >= 4: {control.shape}")
    h, w = (int(n) for n in shape)
    my = _bspline_matrix(h, control.shape[-3], control.dtype).to(control.device)
    mx = _bspline_matrix(w, control.shape[-2], control.dtype).to(control.device)
    return torch.einsum("hy,...yxc,wx->...hwc", my, control, mx)


def local_deformation(
    n_tilts: int,
    shape: tuple[int, int],
    *,
    amplitude_px: float,
    grid: int = 6,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random per-tilt displacement fields bounded by ``amplitude_px``.

    Control vectors on a ``grid x grid`` lattice are uniform in the disc of radius
    ``amplitude_px`` (radius ``amplitude * sqrt(U)``, angle ``2 pi V``), and the field is
    their cubic B-spline (:func:`bspline_field`), so ``|D(r)| <= amplitude_px``.

    Returns
    -------
    control, displacement : torch.Tensor
        ``(T, grid, grid, 2)`` and ``(T, H, W, 2)`` float64, components ``(x, y)`` in pixels.
    """
    if amplitude_px < 0 or grid < 4:
        raise InputError(None, "local deformation needs amplitude >= 0 and grid >= 4")
    size = (n_tilts, grid, grid)
    radius = amplitude_px * torch.sqrt(torch.rand(size, generator=generator, dtype=torch.float64))
    phi = 2 * math.pi * torch.rand(size, generator=generator, dtype=torch.float64)
    control = torch.stack([radius * torch.cos(phi), radius * torch.sin(phi)], dim=-1)
    return control, bspline_field(control, shape)


def simulate_tilt_series(
    volume: torch.Tensor,
    *,
    config: SimulationConfig,
    geometry: TiltGeometry,
    displacement: torch.Tensor | None = None,
    generator: torch.Generator,
) -> torch.Tensor:
    """Project a volume into a noisy raw tilt series (electron counts).

    Parameters
    ----------
    volume
        ``(D, H, W)`` non-negative density.
    config
        Dose, contrast and CTF (the geometry comes from ``geometry``).
    geometry
        Angles and, when set, the ``.xf`` transforms of the raw images.
    displacement
        ``(T, H, W, 2)`` local displacement fields, or ``None``.
    generator
        Source of the Poisson noise.

    Returns
    -------
    torch.Tensor
        ``(T, H, W)`` counts.
    """
    geometry = geometry.to(dtype=volume.dtype).replace(detector_shape=None)
    if displacement is None:
        projector = TiltSeriesProjector(volume_shape=tuple(volume.shape), geometry=geometry)
        proj = projector.forward(volume)
    else:
        ideal = TiltSeriesProjector(
            volume_shape=tuple(volume.shape), geometry=geometry.replace(xf=None)
        ).forward(volume)
        xf = geometry.xf
        if xf is None:
            xf = torch.eye(2, 3, dtype=volume.dtype).expand(geometry.n_tilts, 2, 3)
        proj = warp_images(ideal, xf, displacement=displacement)
    peak = float(proj.abs().max())
    contrast = config.max_contrast / peak if peak > 0 else 0.0
    if config.ctf:
        params = config.ctf_params()
        # torch-ctf's CTF is positive at low frequency (CTF(0) = amplitude contrast), so
        # density still darkens the image at low resolution, as without a CTF.
        proj = apply_ctf(proj, params)
    dose_px = noise.electron_dose_per_pixel(config.dose, config.voxel_size)
    model = noise.ElectronNoise(dose_per_pixel=dose_px, contrast=contrast)
    return model(proj, generator=generator)


def simulate(config: SimulationConfig) -> SimulatedTiltSeries:
    """Simulate a cell-like scene and its misaligned, noisy tilt series, in memory.

    One generator seeded with ``config.seed`` draws, in order: the scene, the rigid
    transforms (only when ``shift_px`` or ``rotation_deg`` is set), the local
    deformation (only when ``local_deformation_px`` is set), the noise.

    Parameters
    ----------
    config
        What to simulate.

    Returns
    -------
    SimulatedTiltSeries
    """
    generator = torch.Generator().manual_seed(config.seed)
    model = phantoms.read_atomic_model(config.structure_path())
    scene = phantoms.cell_scene(
        model,
        shape=config.shape,
        voxel_size=config.voxel_size,
        n_particles=config.n_particles,
        n_membranes=config.n_membranes,
        generator=generator,
    )
    volume = scene.volume.to(torch.float32)
    ideal = config.geometry()
    rigid = config.shift_px > 0 or config.rotation_deg > 0
    if rigid:
        xf = random_xf(
            ideal.n_tilts,
            shift_px=config.shift_px,
            rotation_deg=config.rotation_deg,
            generator=generator,
        )
    else:
        xf = torch.eye(2, 3, dtype=torch.float64).repeat(ideal.n_tilts, 1, 1)
    control = displacement = None
    if config.local_deformation_px > 0:
        control, displacement = local_deformation(
            ideal.n_tilts,
            (config.shape[1], config.shape[2]),
            amplitude_px=config.local_deformation_px,
            grid=config.deformation_grid,
            generator=generator,
        )
    stack = simulate_tilt_series(
        volume,
        config=config,
        geometry=ideal.replace(xf=xf) if rigid else ideal,
        displacement=displacement,
        generator=generator,
    )
    reference = phantoms.reference_density(
        model, voxel_size=config.voxel_size, box=config.reference_box
    )
    return SimulatedTiltSeries(
        stack=stack,
        geometry=ideal.replace(xf=xf),
        displacement=displacement,
        control=control,
        volume=volume,
        reference=reference,
        scene=scene,
    )

"""Cell-like crowded scenes: lipid vesicles and many randomly placed copies of a structure."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.phantoms._atomic import (
    AtomicModel,
    atom_sigmas,
    scattering_weights,
    splat_gaussians,
    stencil_half_width,
)
from inversa.core.rotations import matrix_to_euler, random_rotations

__all__ = ["Scene", "cell_scene"]

# Candidate positions drawn per rejection-sampling round.
_CANDIDATE_BATCH = 1024
# Rounds of candidates before giving up: enough that a feasible packing well below the
# jamming density is found, few enough that an impossible request fails in a second.
_MAX_ROUNDS = 64
# Vesicle radius range as fractions of the middle box extent, and axis-ratio spread.
_VESICLE_RADIUS = (0.2, 0.4)
_VESICLE_ASPECT = (0.8, 1.2)
# Draws per vesicle before giving up on keeping vesicles apart.
_VESICLE_TRIES = 200
# Voxels evaluated per membrane chunk (bounds temporary memory).
_MEMBRANE_CHUNK = 1 << 22


@dataclass(frozen=True)
class Scene:
    """A simulated crowded volume with the ground truth of every particle.

    Attributes
    ----------
    volume
        ``(D, H, W)`` density indexed ``[z, y, x]``.
    positions
        ``(N, 3)`` float64 particle centres (the structure's centre of mass) in voxel
        index coordinates ordered (x, y, z) = (column, row, slice); sub-voxel values.
    rotations
        ``(N, 3, 3)`` float64 RELION matrices ``A``: particle ``i`` is the reference
        actively rotated by ``rotations[i]``.
    euler
        ``(N, 3)`` float64 RELION angles ``(rot, tilt, psi)`` in degrees of ``rotations``.
    voxel_size
        Voxel edge in Angstrom.
    particle_radius
        Largest distance in Angstrom of an atom of the structure from its centre of mass.
    """

    volume: torch.Tensor
    positions: torch.Tensor
    rotations: torch.Tensor
    euler: torch.Tensor
    voxel_size: float
    particle_radius: float


def _uniform(
    shape: tuple[int, ...], low: float, high: float, generator: torch.Generator | None
) -> torch.Tensor:
    draw_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=draw_device)
    return (low + (high - low) * u).cpu()


@dataclass(frozen=True)
class _Vesicle:
    center: torch.Tensor  # (3,) Angstrom, (x, y, z) from voxel index 0
    axes: torch.Tensor  # (3,) semi-axes in Angstrom
    rotation: torch.Tensor  # (3, 3) body frame -> volume frame

    def signed_distance(self, points: torch.Tensor) -> torch.Tensor:
        """First-order signed distance (Angstrom) of ``(..., 3)`` points to the surface."""
        u = (points - self.center) @ self.rotation
        q = (u / self.axes).norm(dim=-1)
        # |grad q| = |u / a^2| / q lies between 1/a_max and 1/a_min; at the centre any
        # value in that range will do, since the surface is far away.
        grad = (u / self.axes**2).norm(dim=-1) / q.clamp_min(1e-12)
        grad = torch.where(q > 1e-12, grad, 1.0 / self.axes.max())
        return (q - 1.0) / grad


def _head_width(thickness: float, voxel_size: float) -> tuple[float, float]:
    # Head-group layer width, and that width widened by the voxel's box profile
    # (variance voxel^2 / 12) so that coarse voxels do not alias the layers.
    s = thickness / 10.0
    return s, math.sqrt(s**2 + voxel_size**2 / 12.0)


def _bilayer(d: torch.Tensor, *, thickness: float, peak: float, voxel_size: float) -> torch.Tensor:
    # Two head-group layers, Gaussian in depth, each of area peak * s * sqrt(2 pi).
    s, s_eff = _head_width(thickness, voxel_size)
    m = thickness / 2.0 - s
    amp = peak * s / s_eff
    return amp * (
        torch.exp(-0.5 * ((d - m) / s_eff) ** 2) + torch.exp(-0.5 * ((d + m) / s_eff) ** 2)
    )


def _render_membranes(
    vesicles: list[_Vesicle],
    shape: tuple[int, int, int],
    *,
    voxel_size: float,
    thickness: float,
    density: float,
    device: torch.device,
) -> torch.Tensor:
    volume = torch.zeros(shape, dtype=torch.float64, device=device)
    peak = density * voxel_size**3
    _, s_eff = _head_width(thickness, voxel_size)
    size = torch.tensor(shape[::-1])  # (x, y, z)
    for v in vesicles:
        moved = _Vesicle(v.center.to(device), v.axes.to(device), v.rotation.to(device))
        # Only the voxels within the bounding sphere's cube can see this membrane.
        reach = float(v.axes.max()) + thickness / 2.0 + 6.0 * s_eff
        lo = ((v.center - reach) / voxel_size).floor().long().clamp(0).minimum(size)
        hi = ((v.center + reach) / voxel_size).ceil().long().add(1).clamp(0).minimum(size)
        (x0, y0, z0), (x1, y1, z1) = lo.tolist(), hi.tolist()
        if x0 >= x1 or y0 >= y1 or z0 >= z1:
            continue
        ys = torch.arange(y0, y1, dtype=torch.float64, device=device) * voxel_size
        xs = torch.arange(x0, x1, dtype=torch.float64, device=device) * voxel_size
        slab = max(1, _MEMBRANE_CHUNK // ((y1 - y0) * (x1 - x0)))
        for za in range(z0, z1, slab):
            zb = min(z1, za + slab)
            zs = torch.arange(za, zb, dtype=torch.float64, device=device) * voxel_size
            zz, yy, xx = torch.meshgrid(zs, ys, xs, indexing="ij")
            dist = moved.signed_distance(torch.stack([xx, yy, zz], dim=-1))
            volume[za:zb, y0:y1, x0:x1] += _bilayer(
                dist, thickness=thickness, peak=peak, voxel_size=voxel_size
            )
    return volume


def _draw_vesicles(
    n: int,
    *,
    extent: torch.Tensor,
    thickness: float,
    radius_range: tuple[float, float],
    generator: torch.Generator | None,
) -> list[_Vesicle]:
    """Draw ``n`` ellipsoidal vesicles whose bounding spheres stay a bilayer apart."""
    # Radii shrink as the cube root of the count beyond two, keeping the packing feasible.
    middle = float(extent.sort().values[1]) / max(1.0, n / 2.0) ** (1.0 / 3.0)
    vesicles: list[_Vesicle] = []
    for _ in range(n):
        for _ in range(_VESICLE_TRIES):
            center = _uniform((3,), 0.0, 1.0, generator) * extent
            radius = max(float(_uniform((), *radius_range, generator)) * middle, 2 * thickness)
            axes = radius * _uniform((3,), *_VESICLE_ASPECT, generator)
            rotation = random_rotations(1, generator=generator, dtype=torch.float64)[0]
            if all(
                float((center - v.center).norm()) >= float(axes.max() + v.axes.max()) + thickness
                for v in vesicles
            ):
                vesicles.append(_Vesicle(center=center, axes=axes, rotation=rotation))
                break
        else:
            raise InputError(
                None,
                f"could place only {len(vesicles)} of {n} vesicles without intersections; "
                "use a larger volume or fewer membranes",
            )
    return vesicles


def _place(
    n: int,
    *,
    low: np.ndarray,
    high: np.ndarray,
    min_distance: float,
    clearance: float,
    vesicles: list[_Vesicle],
    generator: torch.Generator | None,
) -> np.ndarray:
    """Rejection-sample ``n`` centres (Angstrom) in the box [low, high] keeping distances."""
    accepted: list[np.ndarray] = []
    for _ in range(_MAX_ROUNDS):
        if len(accepted) == n:
            break
        u = _uniform((_CANDIDATE_BATCH, 3), 0.0, 1.0, generator)
        candidates = torch.as_tensor(low) + u * torch.as_tensor(high - low)
        ok = torch.ones(_CANDIDATE_BATCH, dtype=torch.bool)
        for v in vesicles:
            ok &= v.signed_distance(candidates).abs() >= clearance
        pool = candidates[ok].numpy()
        if accepted and len(pool):
            # Drop, all at once, the candidates too close to earlier rounds' particles.
            gap = np.linalg.norm(pool[:, None, :] - np.asarray(accepted)[None], axis=-1)
            pool = pool[gap.min(axis=1) >= min_distance]
        first_new = len(accepted)
        for c in pool:
            fresh = accepted[first_new:]
            if fresh and np.linalg.norm(np.asarray(fresh) - c, axis=1).min() < min_distance:
                continue
            accepted.append(c)
            if len(accepted) == n:
                break
    if len(accepted) < n:
        raise InputError(
            None,
            f"could place only {len(accepted)} of {n} particles without overlap; use a "
            "larger volume, fewer particles or membranes, or a smaller min_distance",
        )
    return np.asarray(accepted, dtype=np.float64).reshape(n, 3)


def cell_scene(
    model: AtomicModel,
    *,
    shape: tuple[int, int, int],
    voxel_size: float,
    n_particles: int,
    n_membranes: int = 2,
    generator: torch.Generator | None = None,
    min_distance: float | None = None,
    membrane_thickness_A: float = 40.0,
    membrane_density: float = 0.14,
    vesicle_radius: tuple[float, float] = _VESICLE_RADIUS,
    b_factor: float | None = None,
    resolution: float | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Scene:
    """Simulate a crowded, cell-like volume: vesicle membranes and copies of a structure.

    ``n_membranes`` vesicles (ellipsoids of random centre, size and orientation, partly
    outside the box where they fall so, never intersecting each other) carry a bilayer
    profile: two Gaussian head-group layers ``membrane_thickness_A`` apart in total.
    ``n_particles`` copies of ``model`` are placed by rejection sampling at random
    positions wholly inside the box (bounding sphere plus the rendered atoms' reach),
    clear of the membranes and at least ``min_distance`` apart, at Haar-random
    orientations, and rendered from their rotated atoms as in
    :func:`~inversa.core.phantoms.density_from_atoms`. Random draws happen in a fixed
    order on the generator's device, so a seeded generator gives the same scene.

    Parameters
    ----------
    model
        The structure to scatter.
    shape
        ``(D, H, W)`` of the volume.
    voxel_size
        Voxel edge in Angstrom.
    n_particles
        Number of copies.
    n_membranes
        Number of vesicles.
    generator
        Source of randomness.
    min_distance
        Least centre-to-centre distance in Angstrom; default twice the model's radius
        about its centre of mass, so that bounding spheres do not overlap.
    membrane_thickness_A
        Bilayer thickness in Angstrom (outer edges of the head-group layers).
    membrane_density
        Peak density of the head-group layers in scattering weight per cubic Angstrom
        (the units of :func:`~inversa.core.phantoms.density_from_atoms` divided by the
        voxel volume). The default is the mean density of a protein (about 0.14: 1AKE
        chain A weighs 3920 in these units over about 28,600 cubic Angstrom), as lipid head
        groups and protein scatter alike.
    vesicle_radius
        Range of the vesicle radii as fractions of the middle box extent (shrunk as the
        cube root of the count beyond two); vesicles larger than half the box are cut by
        its faces and show as nearly flat membrane sheets.
    b_factor, resolution
        As in :func:`~inversa.core.phantoms.density_from_atoms`.
    dtype
        Of the returned volume.
    device
        Where to render; default CPU.

    Returns
    -------
    Scene
        The ``(D, H, W)`` volume with ``(N, 3)`` positions, ``(N, 3, 3)`` rotations and
        ``(N, 3)`` Euler angles.

    Raises
    ------
    InputError
        If the particles or the vesicles do not fit, or a value is out of range.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(None, f"shape must be three positive sizes (D, H, W), got {shape}")
    if voxel_size <= 0:
        raise InputError(None, f"voxel_size must be positive, got {voxel_size}")
    if n_particles < 0 or n_membranes < 0:
        raise InputError(None, "n_particles and n_membranes must be non-negative")
    if membrane_thickness_A <= 0:
        raise InputError(None, "membrane_thickness_A must be positive")
    if not 0 < vesicle_radius[0] <= vesicle_radius[1]:
        raise InputError(None, f"vesicle_radius must be 0 < low <= high, got {vesicle_radius}")
    device = torch.device("cpu") if device is None else torch.device(device)
    d, h, w = shape
    extent = torch.tensor([w, h, d], dtype=torch.float64) * voxel_size  # (x, y, z)

    # Vesicles first, then orientations, then positions: a fixed order of draws.
    vesicles = _draw_vesicles(
        n_membranes,
        extent=extent,
        thickness=membrane_thickness_A,
        radius_range=tuple(float(r) for r in vesicle_radius),
        generator=generator,
    )
    rotations = random_rotations(n_particles, generator=generator, dtype=torch.float64)

    coords = model.coords.to(torch.float64).cpu()
    com = model.center_of_mass().cpu()
    rel = coords - com
    radius_A = float(rel.norm(dim=-1).max())
    spacing = 2.0 * radius_A if min_distance is None else float(min_distance)
    sigmas = atom_sigmas(
        model.b_factors.to(torch.float64).cpu(), b_factor=b_factor, resolution=resolution
    )
    # Whole particles inside the box: centres one radius plus the rendering stencil's
    # reach from the outermost voxel centres, so that no mass is cut off.
    reach_A = radius_A + (stencil_half_width(float(sigmas.max()) / voxel_size) + 1) * voxel_size
    low = np.full(3, reach_A, dtype=np.float64)
    high = (extent.numpy() - voxel_size) - reach_A
    if n_particles and bool((high < low).any()):
        raise InputError(
            None,
            f"a particle of radius {radius_A:.1f} A does not fit in a volume of "
            f"{tuple(extent.tolist())} A (x, y, z)",
        )
    _, s_eff = _head_width(membrane_thickness_A, voxel_size)
    centers_A = _place(
        n_particles,
        low=low,
        high=high,
        min_distance=spacing,
        # Particles keep two (voxel-widened) head-layer widths clear of the bilayer's edge.
        clearance=radius_A + membrane_thickness_A / 2.0 + 2.0 * s_eff,
        vesicles=vesicles,
        generator=generator,
    )
    positions = torch.from_numpy(centers_A) / voxel_size

    weights = scattering_weights(model.atomic_numbers.cpu())
    # (N, M, 3) atom positions in voxels: centre + rotated offsets.
    atoms = positions[:, None, :] + torch.einsum("nij,mj->nmi", rotations, rel) / voxel_size
    density = splat_gaussians(
        atoms.reshape(-1, 3).to(device),
        (sigmas / voxel_size).repeat(n_particles).to(device),
        weights.repeat(n_particles).to(device),
        shape,
    )
    density += _render_membranes(
        vesicles,
        shape,
        voxel_size=voxel_size,
        thickness=membrane_thickness_A,
        density=membrane_density,
        device=device,
    )
    return Scene(
        volume=density.to(dtype),
        positions=positions.to(device),
        rotations=rotations.to(device),
        euler=matrix_to_euler(rotations).to(device),
        voxel_size=float(voxel_size),
        particle_radius=radius_A,
    )

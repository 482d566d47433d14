"""Atomic models (read with gemmi) and their densities rendered as voxel-integrated Gaussians."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import gemmi
import torch

from inversa.core.errors import InputError

__all__ = [
    "AtomicModel",
    "builtin_structure_path",
    "density_from_atoms",
    "read_atomic_model",
    "reference_density",
    "scattering_weights",
]

# Stencil values per rendering chunk: bounds the (atoms, K, K, K) block held in memory.
_CHUNK_VALUES = 1 << 23
# Stencil half-width in standard deviations; the weights are renormalised over it.
_STENCIL_SIGMAS = 5.0
# Keeps the erf arguments finite for B = 0 atoms (the atom then fills one voxel).
_MIN_SIGMA_A = 1e-3


@dataclass(frozen=True)
class AtomicModel:
    """An atomic structure: positions, elements and B-factors.

    Attributes
    ----------
    coords
        ``(N, 3)`` float64 atom positions in Angstrom, ordered (x, y, z).
    atomic_numbers
        ``(N,)`` int64 atomic numbers Z.
    b_factors
        ``(N,)`` float64 isotropic B-factors in Angstrom^2.
    name
        Name of the structure (the file's data block or stem).
    """

    coords: torch.Tensor
    atomic_numbers: torch.Tensor
    b_factors: torch.Tensor
    name: str

    def __post_init__(self) -> None:
        n = self.coords.shape[0]
        if self.coords.shape != (n, 3) or self.atomic_numbers.shape != (n,):
            raise ValueError("coords must be (N, 3) and atomic_numbers (N,)")
        if self.b_factors.shape != (n,):
            raise ValueError("b_factors must be (N,)")

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return int(self.coords.shape[0])

    def center_of_mass(self) -> torch.Tensor:
        """Mass-weighted centre ``(3,)`` in Angstrom (x, y, z), float64."""
        masses = _element_table(self.atomic_numbers, _mass).to(self.coords.device)
        return (masses[:, None] * self.coords).sum(0) / masses.sum()

    def radius(self, *, center: torch.Tensor | None = None) -> float:
        """Largest distance in Angstrom of an atom from ``center`` (default: centre of mass)."""
        c = self.center_of_mass() if center is None else _as_center(center, self.coords)
        return float((self.coords - c).norm(dim=-1).max())


_BUILTIN = {"1ake": "1ake_chainA.pdb.gz", "ribosome": "ribosome_6zu5.cif.gz"}


def builtin_structure_path(name: str = "1ake") -> Path:
    """Path of a shipped structure.

    ``"1ake"``: chain A of PDB 1AKE (adenylate kinase, 214 residues, 24 kDa, about 45 Å
    across); :func:`read_atomic_model` reads 1656 atoms from it (Arg 167 carries two
    unlabelled conformations of five side-chain atoms; the first is kept).
    ``"ribosome"``: PDB 6ZU5, the *Paranosema locustae* 80S ribosome (164,965 atoms, about
    300 Å across), the classic subtomogram-averaging target, large enough for its
    orientation to be found in a bin-4 tomogram.

    Parameters
    ----------
    name
        ``"1ake"`` or ``"ribosome"``.

    Returns
    -------
    pathlib.Path
        The gzipped PDB/mmCIF file; see ``data/PROVENANCE.md`` beside it for its origin.
    """
    if name not in _BUILTIN:
        raise InputError(None, f"no shipped structure {name!r}; choose from {sorted(_BUILTIN)}")
    return Path(str(resources.files("inversa.core.phantoms") / "data" / _BUILTIN[name]))


def read_atomic_model(
    path: str | os.PathLike[str],
    *,
    keep_waters: bool = False,
    keep_hydrogens: bool = False,
) -> AtomicModel:
    """Read the first model of a PDB or mmCIF file (gzipped or not) with gemmi.

    Alternative conformations are reduced to the first one, so no atom is counted twice.

    Parameters
    ----------
    path
        The structure file.
    keep_waters, keep_hydrogens
        Keep water molecules / hydrogen (and deuterium) atoms; both are dropped by default.

    Returns
    -------
    AtomicModel
        Coordinates ``(N, 3)`` in Angstrom, atomic numbers ``(N,)``, B-factors ``(N,)``.

    Raises
    ------
    InputError
        If the file is missing, unreadable or holds no atoms after filtering.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "structure file not found")
    try:
        structure = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputError(path, f"cannot read as PDB or mmCIF: {exc}") from exc
    if len(structure) == 0:
        raise InputError(path, "the file holds no atomic model")
    structure.remove_alternative_conformations()
    if not keep_hydrogens:
        structure.remove_hydrogens()
    if not keep_waters:
        structure.remove_waters()
    coords, numbers, b_factors = [], [], []
    for chain in structure[0]:
        for residue in chain:
            for atom in residue:
                coords.append((atom.pos.x, atom.pos.y, atom.pos.z))
                numbers.append(atom.element.atomic_number)
                b_factors.append(atom.b_iso)
    if not coords:
        raise InputError(path, "no atoms left after dropping waters and hydrogens")
    if any(z <= 0 for z in numbers):
        raise InputError(path, "some atoms have an unknown element")
    name = structure.name or path.name.split(".")[0]
    return AtomicModel(
        coords=torch.tensor(coords, dtype=torch.float64),
        atomic_numbers=torch.tensor(numbers, dtype=torch.int64),
        b_factors=torch.tensor(b_factors, dtype=torch.float64),
        name=name,
    )


@cache
def _mass(z: int) -> float:
    return gemmi.Element(z).weight


@cache
def _electron_weight(z: int) -> float:
    # f_e(0) = sum of the five Gaussian amplitudes of the electron scattering factor
    # (International Tables vol. C, table 4.3.2.2, as tabulated by gemmi); Z if absent.
    amplitudes = gemmi.Element(z).c4322.a
    total = float(sum(amplitudes))
    return total if total > 0 else float(z)


def _element_table(atomic_numbers: torch.Tensor, fn: Callable[[int], float]) -> torch.Tensor:
    unique, inverse = torch.unique(atomic_numbers.cpu(), return_inverse=True)
    values = torch.tensor([fn(int(z)) for z in unique], dtype=torch.float64)
    return values[inverse]


def scattering_weights(atomic_numbers: torch.Tensor) -> torch.Tensor:
    """Electron scattering weight of each atom: its scattering factor at zero angle.

    The weight is ``f_e(0)`` in Angstrom, the sum of the five Gaussian amplitudes of the
    elastic electron scattering factor of International Tables vol. C, table 4.3.2.2
    (H 0.53, C 2.51, N 2.21, O 1.98, P 5.49, S 5.16); elements without a table entry
    fall back to their atomic number.

    Parameters
    ----------
    atomic_numbers
        ``(N,)`` integer atomic numbers.

    Returns
    -------
    torch.Tensor
        ``(N,)`` float64 weights on the device of ``atomic_numbers``.
    """
    return _element_table(atomic_numbers, _electron_weight).to(atomic_numbers.device)


def _as_center(
    center: torch.Tensor | tuple[float, float, float], like: torch.Tensor
) -> torch.Tensor:
    c = torch.as_tensor(center, dtype=torch.float64, device=like.device)
    if c.shape != (3,):
        raise InputError(None, f"center must be (3,) (x, y, z) in Angstrom, not {tuple(c.shape)}")
    return c


def resolution_sigma(resolution: float) -> float:
    """Gaussian standard deviation (Angstrom) whose transform falls to 1/e at 1/resolution."""
    return resolution / (math.pi * math.sqrt(2.0))


def atom_sigmas(
    b_factors: torch.Tensor, *, b_factor: float | None, resolution: float | None
) -> torch.Tensor:
    """Return atom standard deviations ``(N,)`` in Angstrom, ``sqrt(B / (8 pi^2) + s_res^2)``."""
    b = b_factors if b_factor is None else torch.full_like(b_factors, float(b_factor))
    if bool((b < 0).any()):
        raise InputError(None, "B-factors must be non-negative")
    var = b / (8.0 * math.pi**2)
    if resolution is not None:
        if resolution <= 0:
            raise InputError(None, f"resolution must be positive, got {resolution}")
        var = var + resolution_sigma(resolution) ** 2
    return var.sqrt().clamp_min(_MIN_SIGMA_A)


def stencil_half_width(sigma: float) -> int:
    """Half-width in voxels of the stencil :func:`splat_gaussians` uses for ``sigma`` voxels."""
    return math.ceil(_STENCIL_SIGMAS * sigma) + 1


def splat_gaussians(
    positions: torch.Tensor,
    sigmas: torch.Tensor,
    weights: torch.Tensor,
    shape: tuple[int, int, int],
) -> torch.Tensor:
    """Add isotropic Gaussians, each integrated exactly over the voxels, to a volume.

    Each Gaussian's integral over a voxel is the product over the three axes of erf
    differences at the voxel faces; the stencil spans +-5 sigma (and at least the voxel
    holding the centre), over which the per-axis weights are renormalised, so a Gaussian
    fully inside the volume adds exactly its weight. Parts outside the volume are dropped.

    Parameters
    ----------
    positions
        ``(N, 3)`` centres in voxel index units, ordered (x, y, z) = (column, row, slice).
    sigmas
        ``(N,)`` standard deviations in voxels.
    weights
        ``(N,)`` integrals of the Gaussians.
    shape
        ``(D, H, W)`` of the volume.

    Returns
    -------
    torch.Tensor
        ``(D, H, W)`` float64 volume on the device of ``positions``.
    """
    device = positions.device
    d, h, w = shape
    volume = torch.zeros(d * h * w, dtype=torch.float64, device=device)
    if positions.shape[0] == 0:
        return volume.reshape(shape)
    dims = torch.tensor([w, h, d], device=device)
    half = stencil_half_width(float(sigmas.max()))
    offsets = torch.arange(-half, half + 1, device=device)
    chunk = max(1, _CHUNK_VALUES // offsets.numel() ** 3)
    for start in range(0, positions.shape[0], chunk):
        pos = positions[start : start + chunk].to(torch.float64)
        sig = sigmas[start : start + chunk].to(torch.float64)
        wgt = weights[start : start + chunk].to(torch.float64)
        # (n, 3, K) integer voxel indices and their per-axis integrals.
        idx = pos.round().long()[:, :, None] + offsets
        scale = 1.0 / (math.sqrt(2.0) * sig)[:, None, None]
        upper = torch.erf((idx + 0.5 - pos[:, :, None]) * scale)
        lower = torch.erf((idx - 0.5 - pos[:, :, None]) * scale)
        axis_w = 0.5 * (upper - lower)
        axis_w = axis_w / axis_w.sum(-1, keepdim=True)
        axis_w = axis_w * ((idx >= 0) & (idx < dims[None, :, None]))
        wx, wy, wz = axis_w[:, 0], axis_w[:, 1], axis_w[:, 2]
        values = (
            wgt[:, None, None, None]
            * wz[:, :, None, None]
            * wy[:, None, :, None]
            * wx[:, None, None, :]
        )
        ix = idx[:, 0].clamp(0, w - 1)
        iy = idx[:, 1].clamp(0, h - 1)
        iz = idx[:, 2].clamp(0, d - 1)
        flat = (iz[:, :, None, None] * h + iy[:, None, :, None]) * w + ix[:, None, None, :]
        # Out-of-volume taps were clamped onto the border but carry zero weight.
        volume.index_add_(0, flat.reshape(-1), values.reshape(-1))
    return volume.reshape(shape)


def _rotation_tensor(rotation: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    if rotation is None:
        return None
    r = torch.as_tensor(rotation).to(dtype=torch.float64, device=like.device)
    if r.shape != (3, 3):
        raise InputError(None, f"rotation must be a (3, 3) matrix, got shape {tuple(r.shape)}")
    return r


def default_box(radius_A: float, sigma_max_A: float, voxel_size: float) -> int:
    """Smallest even box (voxels) holding a sphere of ``radius_A`` plus a 4-sigma margin."""
    extent = (radius_A + 4.0 * sigma_max_A) / voxel_size + 2.0
    return 2 * math.ceil(extent)


def density_from_atoms(
    model: AtomicModel,
    *,
    voxel_size: float,
    shape: tuple[int, int, int] | None = None,
    rotation: torch.Tensor | None = None,
    center: torch.Tensor | tuple[float, float, float] | None = None,
    b_factor: float | None = None,
    resolution: float | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Render an atomic model as a sum of voxel-integrated Gaussian atoms.

    Atom ``k`` contributes a Gaussian of integral ``f_e(0)`` of its element (see
    :func:`scattering_weights`) and variance ``B_k / (8 pi^2) + sigma_res^2``, where
    ``sigma_res = resolution / (pi sqrt 2)`` puts the 1/e point of the Gaussian's
    transform at ``1 / resolution``. Each Gaussian is integrated exactly over each voxel,
    so the volume's sum equals the total weight of the atoms inside it. Atom ``r`` lands at
    voxel coordinates ``n // 2 + R (r - c) / voxel_size`` (per axis), with ``c`` the centre
    of mass (or ``center``) and ``R`` the ``rotation``: the result rendered with RELION's
    matrix ``A`` is the particle of those angles, ``reference(A^T r)``.

    Parameters
    ----------
    model
        The atoms.
    voxel_size
        Voxel edge in Angstrom.
    shape
        ``(D, H, W)`` of the volume; default: the smallest even cube holding the model
        (at any rotation) with a 4-sigma margin.
    rotation
        ``(3, 3)`` rotation applied actively to the atoms about ``c``.
    center
        Model point (Angstrom, (x, y, z)) placed at the box centre; default: the centre of
        mass.
    b_factor
        One B-factor (Angstrom^2) for every atom instead of the model's own.
    resolution
        Extra blur, in Angstrom; ``None`` for none.
    dtype
        Of the returned volume (accumulated in float64).
    device
        Where to render; default the device of ``model.coords``.

    Returns
    -------
    torch.Tensor
        ``(D, H, W)`` density, indexed ``[z, y, x]``.
    """
    if voxel_size <= 0:
        raise InputError(None, f"voxel_size must be positive, got {voxel_size}")
    device = model.coords.device if device is None else torch.device(device)
    coords = model.coords.to(device=device, dtype=torch.float64)
    c = model.center_of_mass().to(device) if center is None else _as_center(center, coords)
    sigmas = atom_sigmas(
        model.b_factors.to(device, torch.float64), b_factor=b_factor, resolution=resolution
    )
    if shape is None:
        radius = float((coords - c).norm(dim=-1).max())
        n = default_box(radius, float(sigmas.max()), voxel_size)
        shape = (n, n, n)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(None, f"shape must be three positive sizes (D, H, W), got {shape}")
    rel = coords - c
    rot = _rotation_tensor(rotation, coords)
    if rot is not None:
        rel = rel @ rot.T
    box_center = torch.tensor(
        [shape[2] // 2, shape[1] // 2, shape[0] // 2], dtype=torch.float64, device=device
    )
    positions = box_center + rel / voxel_size
    weights = scattering_weights(model.atomic_numbers.to(device))
    volume = splat_gaussians(positions, sigmas / voxel_size, weights, shape)
    return volume.to(dtype)


def reference_density(
    model: AtomicModel,
    *,
    voxel_size: float,
    box: int,
    resolution: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Render the unrotated model centred on its centre of mass in a cubic box.

    Parameters
    ----------
    model, voxel_size
        As in :func:`density_from_atoms`.
    box
        Edge of the cube in voxels.
    resolution
        Extra blur in Angstrom (see :func:`density_from_atoms`).
    dtype
        Of the returned volume.

    Returns
    -------
    torch.Tensor
        ``(box, box, box)`` density, indexed ``[z, y, x]``.
    """
    return density_from_atoms(
        model, voxel_size=voxel_size, shape=(box, box, box), resolution=resolution, dtype=dtype
    )

"""One frozen geometry object for a single-axis tilt series.

Convention (that of :class:`~inversa.tomography.TiltSeriesProjector`): volumes are indexed
``[z, y, x]`` with coordinates about the centre ``n // 2``; the tilt axis is y; at tilt
``theta`` (degrees, positive rotating x towards z) the point ``(x, y, z)`` lands on the
ideal detector at ``u = x cos(theta) + z sin(theta)``, ``v = y``. An optional IMOD ``.xf``
transform ``[A_t | d_t]`` per tilt maps raw image coordinates to aligned ones
(``raw(r) = ideal(A_t r + d_t)``), as IMOD's ``newstack -xform`` applies it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from inversa.core import io
from inversa.core.errors import InputError
from inversa.tomography._warp import _check_xf, invert_xf

__all__ = ["TiltGeometry", "tilt_series_sidecars"]

_TLT_SUFFIXES = (".tlt", ".rawtlt")


@dataclass(frozen=True, eq=False, kw_only=True)
class TiltGeometry:
    """Angles, alignment and detector of one single-axis tilt series.

    Every consumer of a tilt series (the projector, WBP, wedge masks, ray renderers)
    takes this object, so the angles have one name (``angles``, degrees) and one type
    (a tensor) from the ``.tlt`` file to the kernel.

    Differentiability: :meth:`rotation_matrices` and :meth:`project_points` are torch
    expressions of ``angles`` and ``xf``, so a method that refines them may pass tensors
    with ``requires_grad`` and get gradients. The Joseph line-integral kernels of
    :class:`~inversa.tomography.TiltSeriesProjector` (numba on the CPU, torch elsewhere)
    precompute their weights from the angles and are *not* differentiable in the angles;
    they are in the ``.xf`` transforms (the warp is torch).

    Parameters
    ----------
    angles
        ``(T,)`` tilt angles in degrees about the y axis, floating point.
    xf
        ``(T, 2, 3)`` IMOD transforms from raw to aligned image coordinates, or ``None``
        for the identity.
    detector_shape
        ``(H, W)`` of the tilt images in pixels, or ``None`` when not known (the
        projector then uses the volume's ``H`` and ``W``).
    """

    TILT_AXIS: ClassVar[str] = "y"

    angles: torch.Tensor
    xf: torch.Tensor | None = None
    detector_shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        angles = self.angles
        if not isinstance(angles, torch.Tensor):
            angles = torch.as_tensor(angles, dtype=torch.float64)
        if not angles.is_floating_point():
            angles = angles.to(torch.float64)
        if angles.ndim != 1 or angles.numel() == 0:
            raise InputError(None, f"angles must be a non-empty (T,) tensor, got {angles.shape}")
        if not bool(torch.isfinite(angles.detach()).all()):
            raise InputError(None, "angles must be finite")
        object.__setattr__(self, "angles", angles)
        if self.xf is not None:
            _check_xf(self.xf, angles.shape[0])
        if self.detector_shape is not None:
            shape = tuple(int(n) for n in self.detector_shape)
            if len(shape) != 2 or min(shape) < 1:
                raise InputError(None, f"detector_shape must be (H, W) > 0, got {shape}")
            object.__setattr__(self, "detector_shape", shape)

    # -- constructors -------------------------------------------------------------------

    @classmethod
    def from_range(
        cls,
        tilt_min: float,
        tilt_max: float,
        step: float,
        *,
        xf: torch.Tensor | None = None,
        detector_shape: tuple[int, int] | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> TiltGeometry:
        """Build angles ``tilt_min, tilt_min + step, ...`` up to ``tilt_max`` (if on the grid)."""
        if step <= 0 or tilt_max < tilt_min:
            raise InputError(None, "tilt range must have tilt_max >= tilt_min and tilt_step > 0")
        n = math.floor((tilt_max - tilt_min) / step + 1e-9) + 1
        angles = tilt_min + step * torch.arange(n, dtype=torch.float64)
        return cls(angles=angles.to(dtype), xf=xf, detector_shape=detector_shape)

    @classmethod
    def from_files(
        cls,
        tlt_path: str | Path,
        xf_path: str | Path | None = None,
        *,
        detector_shape: tuple[int, int] | None = None,
    ) -> TiltGeometry:
        """Read a ``.tlt`` (and optional IMOD ``.xf``) pair; both must list the same tilts."""
        angles = io.read_tlt(tlt_path)
        xf = None
        if xf_path is not None:
            xf = io.read_xf(xf_path)
            if len(xf) != len(angles):
                raise InputError(
                    xf_path, f"has {len(xf)} transforms but {tlt_path} has {len(angles)} angles"
                )
        return cls(angles=angles, xf=xf, detector_shape=detector_shape)

    # -- derived quantities --------------------------------------------------------------

    @property
    def n_tilts(self) -> int:
        """Number of tilt images ``T``."""
        return int(self.angles.shape[0])

    @property
    def wedge(self) -> tuple[float, float]:
        """Measured tilt range ``(tilt_min, tilt_max)`` in degrees.

        The missing wedge is the rest of [-90, 90]: Fourier samples whose angle
        ``atan(kz / kx)`` falls outside this range (see :func:`inversa.alignment.wedge_mask`).
        """
        a = self.angles.detach()
        return float(a.min()), float(a.max())

    def replace(self, **changes: object) -> TiltGeometry:
        """Return a copy with some fields changed (``angles``, ``xf``, ``detector_shape``)."""
        return dataclasses.replace(self, **changes)

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> TiltGeometry:
        """Return the same geometry with tensors on ``device`` (and floating dtype ``dtype``)."""
        xf = None if self.xf is None else self.xf.to(device=device, dtype=dtype)
        return self.replace(angles=self.angles.to(device=device, dtype=dtype), xf=xf)

    def rotation_matrices(self) -> torch.Tensor:
        """``(T, 3, 3)`` rotations taking volume ``(x, y, z)`` to detector ``(u, v, w)``.

        ``w`` is the depth along the beam; a ray through detector point ``(u, v)`` is
        ``R^T (u, v, w)`` for all ``w``. Differentiable in ``angles``.
        """
        return _rotations(self.angles)

    def project_points(self, points: torch.Tensor) -> torch.Tensor:
        """Where 3-D points appear in the raw tilt images; differentiable in angles and xf.

        Parameters
        ----------
        points
            ``(N, 3)`` coordinates ``(x, y, z)`` in voxels about the volume centre.

        Returns
        -------
        torch.Tensor
            ``(T, N, 2)`` raw-image coordinates ``(x, y)`` in pixels about the image centre
            (pixel index = coordinate + size // 2), i.e. ``A_t^{-1} ((u, v) - d_t)``.
        """
        if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 3:
            got = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
            raise InputError(None, f"points must be an (N, 3) tensor, got {got}")
        dtype = points.dtype if points.is_floating_point() else torch.float64
        p = points.to(dtype)
        rot = _rotations(self.angles.to(p.device)).to(dtype)
        ideal = torch.einsum("tij,nj->tni", rot[:, :2, :], p)  # (T, N, 2) = (u, v)
        if self.xf is None:
            return ideal
        inv = invert_xf(self.xf.to(device=p.device, dtype=dtype))
        return ideal @ inv[:, :, :2].mT + inv[:, None, :, 2]

    def write(
        self, tlt_path: str | Path, xf_path: str | Path | None = None, *, force: bool = False
    ) -> None:
        """Write the angles as ``.tlt`` and, when ``xf_path`` is given, the transforms as ``.xf``.

        Without ``xf`` set, the ``.xf`` file holds identity transforms.
        """
        io.write_tlt(tlt_path, self.angles.detach().cpu(), force=force)
        if xf_path is not None:
            xf = self.xf
            if xf is None:
                xf = torch.zeros(self.n_tilts, 2, 3, dtype=torch.float64)
                xf[:, 0, 0] = xf[:, 1, 1] = 1.0
            io.write_xf(xf_path, xf.detach().cpu(), force=force)


class OnTiltGeometry:
    """Mixin for an object that holds a ``geometry`` (:class:`TiltGeometry`) field.

    It exposes the geometry's angles and transforms, and where points appear, without
    copying them (the projector and a simulated tilt series are both read this way).
    """

    geometry: TiltGeometry

    @property
    def angles(self) -> torch.Tensor:
        """``(T,)`` tilt angles in degrees (``geometry.angles``)."""
        return self.geometry.angles

    @property
    def xf(self) -> torch.Tensor | None:
        """``(T, 2, 3)`` IMOD transforms (``geometry.xf``), or ``None``."""
        return self.geometry.xf

    def project_points(self, points: torch.Tensor) -> torch.Tensor:
        """``(N, 3) -> (T, N, 2)``: :meth:`TiltGeometry.project_points` of ``geometry``."""
        return self.geometry.project_points(points)


def _rotations(angles: torch.Tensor) -> torch.Tensor:
    """``(T, 3, 3)`` in the dtype of ``angles``; the trigonometry runs in float64."""
    # float32 trigonometry puts cos(60 deg) a rounding error off 1/2: a point on a pixel
    # centre would no longer project onto one.
    theta = torch.deg2rad(angles.to(torch.float64))
    c, s = torch.cos(theta), torch.sin(theta)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    rows = [
        torch.stack([c, zero, s], dim=-1),
        torch.stack([zero, one, zero], dim=-1),
        torch.stack([-s, zero, c], dim=-1),
    ]
    return torch.stack(rows, dim=-2).to(angles.dtype)


def tilt_series_sidecars(
    stack_path: str | Path,
    *,
    angles_path: str | Path | None = None,
    xf_path: str | Path | None = None,
) -> tuple[Path, Path | None]:
    """Find a tilt series' ``.tlt`` and ``.xf`` files: the one sidecar rule of the package.

    Explicit paths win; otherwise ``stack.tlt`` (or ``stack.rawtlt``) beside the stack is
    required and ``stack.xf`` is used when it exists.

    Returns
    -------
    (pathlib.Path, pathlib.Path or None)
        The angles file and the alignment file (``None``: no alignment).
    """
    stack_path = Path(stack_path)
    if angles_path is None:
        if not stack_path.is_file():  # say what is really missing, not the sidecar
            raise InputError(stack_path, "file not found")
        found = [stack_path.with_suffix(s) for s in _TLT_SUFFIXES]
        angles_path = next((p for p in found if p.exists()), None)
        if angles_path is None:
            raise InputError(stack_path, "no tilt angles: pass --angles or put a .tlt beside it")
    if xf_path is None and stack_path.with_suffix(".xf").exists():
        xf_path = stack_path.with_suffix(".xf")
    return Path(angles_path), None if xf_path is None else Path(xf_path)

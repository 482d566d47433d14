"""Single-axis tilt-series projector (tilt axis y) with per-tilt IMOD alignment transforms.

Geometry: a volume ``(..., D, H, W)`` is indexed ``[z, y, x]`` with voxel coordinates
``x = ix - W // 2``, ``y = iy - H // 2``, ``z = iz - D // 2``. At tilt ``theta`` the
point ``(x, y, z)`` projects to the ideal detector position ``u = x cos(theta) +
z sin(theta)``, ``v = y``; bin ``k`` of ``n_detector`` sits at ``u = k - n_detector // 2``
and row ``iy`` at ``v = iy - H // 2``. Each y-slice, an ``(z, x)`` image, thus gets the 2-D
Radon transform of :mod:`inversa.tomography._radon` (Joseph's method) with ``x -> x`` and
``y -> z``. The raw image of tilt ``t`` is then ``raw(r) = ideal(A_t r + d_t)`` (bilinear,
zero outside) for the alignment transform ``xf[t] = [A_t | d_t]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from inversa.core.errors import InputError
from inversa.core.operators import LinearOperator
from inversa.tomography._geometry import OnTiltGeometry, TiltGeometry
from inversa.tomography._joseph import (
    Backend,
    JosephPlan,
    joseph_backproject,
    joseph_project,
    make_plan,
)
from inversa.tomography._warp import _check_xf, warp_images, warp_images_adjoint

__all__ = ["TiltSeriesProjector", "tilt_series_adjoint", "tilt_series_forward"]


def _plan(
    volume_shape: tuple[int, int, int],
    angles: torch.Tensor,
    n_detector: int | None,
    backend: Backend,
) -> JosephPlan:
    if len(volume_shape) != 3 or min(int(n) for n in volume_shape) < 1:
        raise InputError(None, f"volume_shape must be three positive sizes, got {volume_shape}")
    d, _, w = (int(n) for n in volume_shape)
    return make_plan(
        angles,
        image_shape=(d, w),
        n_detector=w if n_detector is None else n_detector,
        detector_spacing=1.0,
        detector_offset=0.0,
        backend=backend,
    )


def _check_volume(volumes: torch.Tensor, what: str, tail: int = 3) -> None:
    if not isinstance(volumes, torch.Tensor) or volumes.ndim < tail:
        got = tuple(volumes.shape) if isinstance(volumes, torch.Tensor) else type(volumes).__name__
        raise InputError(None, f"{what} must have at least {tail} dimensions, got {got}")


def _forward(
    volumes: torch.Tensor, plan: JosephPlan, height: int, xf: torch.Tensor | None
) -> torch.Tensor:
    if tuple(volumes.shape[-3:]) != (plan.image_shape[0], height, plan.image_shape[1]):
        raise InputError(
            None,
            f"volumes must end in {(plan.image_shape[0], height, plan.image_shape[1])}, "
            f"got {tuple(volumes.shape)}",
        )
    # (..., D, H, W) -> y-slices (..., H, D, W) -> (..., H, T, K) -> (..., T, H, K)
    ideal = joseph_project(volumes.movedim(-2, -3), plan).movedim(-3, -2)
    if xf is None:
        return ideal.contiguous()
    return warp_images(ideal, xf)


def _adjoint(
    stacks: torch.Tensor, plan: JosephPlan, height: int, xf: torch.Tensor | None
) -> torch.Tensor:
    if tuple(stacks.shape[-3:]) != (plan.n_angles, height, plan.n_detector):
        raise InputError(
            None,
            f"tilt series must end in {(plan.n_angles, height, plan.n_detector)}, "
            f"got {tuple(stacks.shape)}",
        )
    if xf is not None:
        stacks = warp_images_adjoint(stacks, xf)
    return joseph_backproject(stacks.movedim(-3, -2), plan).movedim(-3, -2).contiguous()


def tilt_series_forward(
    volumes: torch.Tensor,
    angles: torch.Tensor,
    *,
    xf: torch.Tensor | None = None,
    n_detector: int | None = None,
    backend: Backend = "auto",
) -> torch.Tensor:
    """Project volumes into (raw) tilt series.

    Parameters
    ----------
    volumes
        ``(..., D, H, W)`` floating-point volumes indexed ``[z, y, x]``.
    angles
        ``(T,)`` tilt angles in degrees (about the y axis); the Joseph kernels are not
        differentiable in them (see :class:`~inversa.tomography.TiltGeometry`).
    xf
        ``(T, 2, 3)`` IMOD transforms from raw to aligned image coordinates, or ``None``
        for the identity.
    n_detector
        Width ``K`` of the projection images; ``None`` gives ``W``.
    backend
        ``"auto"``, ``"numba"`` or ``"torch"`` (as for the 2-D Radon transform).

    Returns
    -------
    torch.Tensor
        ``(..., T, H, K)`` raw projection images; differentiable.
    """
    _check_volume(volumes, "volumes")
    shape = tuple(volumes.shape[-3:])
    plan = _plan(shape, angles, n_detector, backend)
    if xf is not None:
        _check_xf(xf, plan.n_angles)
    return _forward(volumes, plan, shape[1], xf)


def tilt_series_adjoint(
    tilt_series: torch.Tensor,
    angles: torch.Tensor,
    *,
    volume_shape: tuple[int, int, int],
    xf: torch.Tensor | None = None,
    backend: Backend = "auto",
) -> torch.Tensor:
    """Exact adjoint of :func:`tilt_series_forward` (unfiltered back-projection).

    Parameters
    ----------
    tilt_series
        ``(..., T, H, K)`` raw projection images.
    angles
        ``(T,)`` tilt angles in degrees.
    volume_shape
        ``(D, H, W)``.
    xf
        ``(T, 2, 3)`` transforms, or ``None``.
    backend
        ``"auto"``, ``"numba"`` or ``"torch"``.

    Returns
    -------
    torch.Tensor
        ``(..., D, H, W)`` volumes.
    """
    _check_volume(tilt_series, "tilt_series")
    plan = _plan(volume_shape, angles, tilt_series.shape[-1], backend)
    if xf is not None:
        _check_xf(xf, plan.n_angles)
    return _adjoint(tilt_series, plan, int(volume_shape[1]), xf)


@dataclass(frozen=True, eq=False, kw_only=True)
class TiltSeriesProjector(OnTiltGeometry, LinearOperator):
    """Tilt-series projector ``(..., D, H, W) -> (..., T, H, K)`` with its exact adjoint.

    Differentiable in the volume and in ``geometry.xf``; not in ``geometry.angles``
    (the Joseph weights are precomputed from them; use
    :meth:`TiltGeometry.project_points` or :meth:`TiltGeometry.rotation_matrices` where
    angle gradients are needed).

    Parameters
    ----------
    volume_shape
        ``(D, H, W)``.
    geometry
        Tilt angles, optional ``.xf`` transforms and detector shape. A detector shape
        ``(H', K)`` must have ``H' == H`` and sets the width ``K``.
    n_detector
        Width ``K`` of the projection images; ``None`` gives the geometry's detector
        width, else ``W``.
    backend
        ``"auto"``, ``"numba"`` or ``"torch"``.
    """

    volume_shape: tuple[int, int, int]
    geometry: TiltGeometry
    n_detector: int | None = None
    backend: Backend = "auto"
    _plan: JosephPlan = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.geometry, TiltGeometry):
            raise InputError(None, f"geometry must be a TiltGeometry, got {type(self.geometry)}")
        n_detector = self.n_detector
        detector = self.geometry.detector_shape
        if detector is not None:
            if len(self.volume_shape) == 3 and detector[0] != int(self.volume_shape[1]):
                raise InputError(
                    None, f"detector height {detector[0]} != volume height {self.volume_shape[1]}"
                )
            if n_detector is None:
                n_detector = detector[1]
        plan = _plan(self.volume_shape, self.geometry.angles, n_detector, self.backend)
        object.__setattr__(self, "volume_shape", tuple(int(n) for n in self.volume_shape))
        object.__setattr__(self, "n_detector", plan.n_detector)
        object.__setattr__(self, "_plan", plan)

    @property
    def domain_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(D, H, W)``."""
        return self.volume_shape

    @property
    def range_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(T, H, K)``."""
        return (self._plan.n_angles, self.volume_shape[1], self._plan.n_detector)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project: ``(..., D, H, W) -> (..., T, H, K)``."""
        _check_volume(x, "volumes")
        return _forward(x, self._plan, self.volume_shape[1], self.xf)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Back-project (exact adjoint): ``(..., T, H, K) -> (..., D, H, W)``."""
        _check_volume(y, "tilt_series")
        return _adjoint(y, self._plan, self.volume_shape[1], self.xf)

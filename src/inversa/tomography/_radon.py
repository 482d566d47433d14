"""The 2-D parallel-beam Radon transform (Joseph's method) and its exact adjoint."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from inversa.core.errors import InputError
from inversa.core.operators import LinearOperator
from inversa.tomography._joseph import (
    Backend,
    JosephPlan,
    default_n_detector,
    joseph_backproject,
    joseph_project,
    make_plan,
)

__all__ = ["Radon2D", "default_n_detector", "radon_adjoint", "radon_forward"]


def radon_forward(
    images: torch.Tensor,
    angles: torch.Tensor,
    *,
    n_detector: int | None = None,
    detector_spacing: float = 1.0,
    detector_offset: float = 0.0,
    backend: Backend = "auto",
) -> torch.Tensor:
    """Parallel-beam projections of images (line integrals by Joseph's method).

    Pixel ``(i, j)`` of an ``(H, W)`` image sits at ``x = j - W // 2``, ``y = i - H // 2``
    (pixel size 1). The projection at angle ``theta`` integrates along the lines
    ``x cos(theta) + y sin(theta) = t_k``, with bin ``k`` at
    ``t_k = (k - n_detector // 2) * detector_spacing + detector_offset``. Along each ray the
    image is linearly interpolated within every row (``|cos| >= |sin|``) or column, zero
    outside the image: ASTRA's ``linear`` projector, with the centre at index ``n // 2``.

    Parameters
    ----------
    images
        ``(..., H, W)`` floating-point tensor, on any device.
    angles
        ``(A,)`` projection angles in degrees.
    n_detector
        Number of detector bins ``K``; ``None`` gives :func:`default_n_detector` of
        ``(H, W)`` (the detector then covers the whole image at every angle).
    detector_spacing
        Bin spacing in pixels.
    detector_offset
        Detector coordinate of the centre bin ``K // 2``, in pixels.
    backend
        ``"auto"`` (numba on CPU for float32/float64, torch otherwise), ``"numba"`` or
        ``"torch"``; both give the same values.

    Returns
    -------
    torch.Tensor
        ``(..., A, K)`` sinograms, same dtype and device; differentiable.
    """
    _require_matrix(images, "images", "(..., H, W)")
    plan = make_plan(
        angles,
        image_shape=(images.shape[-2], images.shape[-1]),
        n_detector=n_detector,
        detector_spacing=detector_spacing,
        detector_offset=detector_offset,
        backend=backend,
    )
    return joseph_project(images, plan).contiguous()


def radon_adjoint(
    sinograms: torch.Tensor,
    angles: torch.Tensor,
    *,
    image_shape: tuple[int, int],
    detector_spacing: float = 1.0,
    detector_offset: float = 0.0,
    backend: Backend = "auto",
) -> torch.Tensor:
    """Exact adjoint (unfiltered back-projection) of :func:`radon_forward`.

    Parameters
    ----------
    sinograms
        ``(..., A, K)`` floating-point tensor.
    angles
        ``(A,)`` projection angles in degrees.
    image_shape
        ``(H, W)`` of the images.
    detector_spacing, detector_offset, backend
        As in :func:`radon_forward`.

    Returns
    -------
    torch.Tensor
        ``(..., H, W)`` images; ``<radon_forward(x), y> == <x, radon_adjoint(y)>``.
    """
    _require_matrix(sinograms, "sinograms", "(..., A, K)")
    plan = make_plan(
        angles,
        image_shape=image_shape,
        n_detector=sinograms.shape[-1],
        detector_spacing=detector_spacing,
        detector_offset=detector_offset,
        backend=backend,
    )
    return joseph_backproject(sinograms, plan).contiguous()


def _require_matrix(x: object, what: str, shape: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(None, f"{what} must be a tensor of shape {shape}, got {got}")


@dataclass(frozen=True, eq=False, kw_only=True)
class Radon2D(LinearOperator):
    """2-D parallel-beam projector ``(..., H, W) -> (..., A, K)`` with its exact adjoint.

    Parameters
    ----------
    image_shape
        ``(H, W)``.
    angles
        ``(A,)`` projection angles in degrees.
    n_detector
        Number of detector bins ``K``; ``None`` gives :func:`default_n_detector`.
    detector_spacing
        Bin spacing in pixels.
    detector_offset
        Detector coordinate of the centre bin ``K // 2``, in pixels.
    backend
        ``"auto"``, ``"numba"`` or ``"torch"`` (see :func:`radon_forward`).
    """

    image_shape: tuple[int, int]
    angles: torch.Tensor
    n_detector: int | None = None
    detector_spacing: float = 1.0
    detector_offset: float = 0.0
    backend: Backend = "auto"
    _plan: JosephPlan = field(init=False, repr=False)

    def __post_init__(self) -> None:
        plan = make_plan(
            self.angles,
            image_shape=self.image_shape,
            n_detector=self.n_detector,
            detector_spacing=self.detector_spacing,
            detector_offset=self.detector_offset,
            backend=self.backend,
        )
        object.__setattr__(self, "image_shape", plan.image_shape)
        object.__setattr__(self, "n_detector", plan.n_detector)
        object.__setattr__(self, "_plan", plan)

    @property
    def domain_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(H, W)``."""
        return self._plan.image_shape

    @property
    def range_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(A, K)``."""
        return self._plan.range_tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project images: ``(..., H, W) -> (..., A, K)``."""
        return joseph_project(x, self._plan).contiguous()

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Back-project sinograms (exact adjoint): ``(..., A, K) -> (..., H, W)``."""
        return joseph_backproject(y, self._plan).contiguous()

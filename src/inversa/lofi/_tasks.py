"""The reconstruction tasks: forward models, measurements and the network inputs made from them.

Every task maps an image ``x`` (values in [0, 1], ``(..., n, n)``) to a measurement and the
measurement to the network's input image:

- ``sparse-ct``: 30 parallel-beam views over 180 degrees (`Radon2D`), input ``fbp(y)``;
- ``limited-ct``: 90 views over 0-120 degrees (a 60 degree missing wedge), input ``fbp(y)``;
- ``lowdose-ct``: 180 views, transmission counts ``Poisson(n0 exp(-mu A x))``
  (`inversa.poisson.TransmissionModel`, ``n0 = 1000`` per bin, ``mu = 4 / n`` per pixel so
  a path of value 1 across the image attenuates by ``e^-4`` at every size), log-transformed
  back to line integrals ``A x`` (pixel units) and reconstructed by ``fbp``;
- ``denoise``: ``y = x + sigma n``, the input is ``y`` (training draws ``sigma`` in
  ``[0, 0.2]`` per image, tests use 0.1).

Sinograms are ``(..., A, K)`` line integrals in pixel units (``A x`` for ``Radon2D`` with
the default detector), whatever the task; the image size ``n`` is the one whose default
detector has ``K`` bins.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch

from inversa.core.errors import InputError
from inversa.core.noise import GaussianNoise, log_transform
from inversa.poisson import TransmissionModel
from inversa.tomography import Radon2D, default_n_detector, fbp

__all__ = ["TASKS", "TaskConfig", "measurement_input", "simulate", "task_config", "task_operator"]

TASKS = ("sparse-ct", "limited-ct", "lowdose-ct", "denoise")


@dataclass(frozen=True, kw_only=True)
class TaskConfig:
    """One reconstruction task.

    Attributes
    ----------
    name
        One of `TASKS`.
    n_angles
        Projection angles (0 for denoising).
    angle_range
        Angles ``range * i / n_angles`` degrees, ``i = 0 .. n_angles - 1``.
    n0
        Incident counts per detector bin of the low-dose task (``None``: no counting noise).
    attenuation
        Line integral through the whole image of a unit-valued path (``mu = attenuation / n``
        per pixel), low-dose task only.
    sigma
        Noise level of the denoising test data.
    sigma_train
        Range of the noise levels drawn per training image (denoising).
    """

    name: str
    n_angles: int = 0
    angle_range: float = 180.0
    n0: float | None = None
    attenuation: float = 4.0
    sigma: float = 0.1
    sigma_train: tuple[float, float] = (0.0, 0.2)

    def __post_init__(self) -> None:
        if self.name not in TASKS:
            raise InputError(None, f"unknown task {self.name!r}; choose from {', '.join(TASKS)}")

    @property
    def is_ct(self) -> bool:
        """Whether the measurement is a sinogram."""
        return self.n_angles > 0

    def angles(self) -> torch.Tensor:
        """Projection angles in degrees, ``(n_angles,)`` float64."""
        return torch.arange(self.n_angles, dtype=torch.float64) * (self.angle_range / self.n_angles)


def task_config(name: str) -> TaskConfig:
    """Return the task ``name`` (one of `TASKS`) with the settings of the module docstring."""
    settings = {
        "sparse-ct": {"n_angles": 30},
        "limited-ct": {"n_angles": 90, "angle_range": 120.0},
        "lowdose-ct": {"n_angles": 180, "n0": 1000.0},
        "denoise": {},
    }
    if name not in settings:
        raise InputError(None, f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TaskConfig(name=name, **settings[name])


@functools.lru_cache(maxsize=32)
def _operator(n_angles: int, angle_range: float, n: int) -> Radon2D:
    angles = torch.arange(n_angles, dtype=torch.float64) * (angle_range / n_angles)
    return Radon2D(image_shape=(n, n), angles=angles.float())


def task_operator(task: TaskConfig, n: int) -> Radon2D:
    """Return the task's `Radon2D` for ``(n, n)`` images (cached)."""
    if not task.is_ct:
        raise InputError(None, f"task {task.name!r} has no projection operator")
    return _operator(task.n_angles, float(task.angle_range), int(n))


def simulate(
    task: TaskConfig,
    images: torch.Tensor,
    *,
    generator: torch.Generator,
    sigma: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Measure images and make the network inputs from the measurements.

    Parameters
    ----------
    task
        The task.
    images
        ``(B, n, n)`` non-negative images.
    generator
        Source of the noise (a CPU generator).
    sigma
        Denoising noise level, a number or ``(B,)`` per image; ``None`` gives ``task.sigma``.

    Returns
    -------
    (measurement, input)
        ``(B, A, K)`` sinograms and ``(B, n, n)`` FBP images for the CT tasks; for
        denoising both are the ``(B, n, n)`` noisy images.
    """
    if images.ndim != 3 or images.shape[-1] != images.shape[-2]:
        raise InputError(None, f"images must be (B, n, n), got {tuple(images.shape)}")
    n = images.shape[-1]
    if not task.is_ct:
        s = task.sigma if sigma is None else sigma
        s = torch.as_tensor(s, dtype=images.dtype, device=images.device)
        s = s.reshape(-1, 1, 1) if s.ndim else s
        unit = GaussianNoise(sigma=1.0)(torch.zeros_like(images), generator=generator)
        noisy = images + s * unit
        return noisy, noisy
    op = task_operator(task, n)
    if task.n0 is None:
        sino = op.forward(images)
    else:
        mu = task.attenuation / n
        counts = TransmissionModel(operator=op, n0=task.n0).sample(mu * images, generator=generator)
        sino = log_transform(counts, n0=task.n0) / mu
    return sino, fbp(sino, op)


def _size_from_detector(k: int) -> int | None:
    for n in range(max(1, int(k / 1.5) - 2), k + 1):
        if default_n_detector((n, n)) == k:
            return n
    return None


def measurement_input(
    task: TaskConfig, measurement: torch.Tensor, *, path: str | os.PathLike[str] | None = None
) -> torch.Tensor:
    """Make the network input from a measurement file's array.

    Parameters
    ----------
    task
        The model's task.
    measurement
        ``(A, K)`` sinogram (CT tasks) or ``(H, W)`` image (denoising).
    path
        File the array came from, named by the errors.

    Returns
    -------
    torch.Tensor
        ``(n, n)`` FBP image (CT) or the image itself.

    Raises
    ------
    InputError
        Not 2-D, not finite, a sinogram whose angle count is not the task's, or a detector
        width no square image has.
    """
    if measurement.ndim != 2:
        raise InputError(
            path,
            f"expected a 2-D array, got shape {tuple(measurement.shape)} ({measurement.ndim}-D)",
        )
    if not bool(torch.isfinite(measurement).all()):
        raise InputError(path, "the array holds NaN or infinite values")
    if not task.is_ct:
        return measurement
    a, k = measurement.shape
    if a != task.n_angles:
        raise InputError(
            path,
            f"sinogram has {a} angles but the model's task {task.name} expects "
            f"{task.n_angles} (rows = angles, columns = detector bins)",
        )
    n = _size_from_detector(k)
    if n is None:
        raise InputError(path, f"no square image has a default detector of {k} bins")
    return fbp(measurement, task_operator(task, n))

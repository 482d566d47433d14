"""Tomographic forward models with exact adjoints, and classical reconstruction.

Operators (all :class:`inversa.core.operators.LinearOperator`, batched, differentiable,
CPU via numba kernels and any torch device via the same weights in torch):

- :class:`Radon2D` — 2-D parallel beam (Joseph line integrals), ``(..., H, W) -> (..., A, K)``.
- :class:`TiltSeriesProjector` — single-axis tilt about y with per-tilt IMOD ``.xf``
  transforms, ``(..., D, H, W) -> (..., T, H, K)``, built on a :class:`TiltGeometry`.
- :class:`Warp2D` — bilinear image warps; :func:`align_images` undoes an ``.xf``.
- :class:`CTFOperator` — contrast transfer function (via torch-ctf); per-tilt CTF and
  exposure metadata (:class:`TiltSeriesCTF`, evaluated per tilt on an image's or a
  detector patch's frequency grid by :func:`tilt_ctf_grid`) and the per-particle 3-D
  CTF weight (:func:`ctf3d_weight`).

Reconstruction: :func:`fbp` (2-D), :func:`wbp` (3-D), :func:`sirt`, :func:`cgls`.

Geometry: :class:`TiltGeometry` (angles in degrees, ``.xf``, detector, wedge) and
:func:`tilt_series_sidecars` (the ``.tlt``/``.xf`` files beside a stack).

Simulation: :func:`simulate` (scene -> misaligned noisy tilt series, with
:func:`random_xf` and :func:`local_deformation`), configured by :class:`SimulationConfig`.
"""

from inversa.tomography._ctf import (
    CTFOperator,
    CTFParams,
    TiltSeriesCTF,
    apply_ctf,
    ctf3d_weight,
    ctf_2d,
    ctf_at,
    dose_symmetric_exposure,
    electron_wavelength_A,
    exposure_filter,
    phase_flip,
    read_relion5_tilt_series,
    tilt_ctf_grid,
    tilt_series_from_table,
    write_relion5_tilt_series,
)
from inversa.tomography._fbp import angular_weights, fbp, wbp
from inversa.tomography._geometry import TiltGeometry, tilt_series_sidecars
from inversa.tomography._iterative import SolveInfo, cgls, sirt
from inversa.tomography._radon import Radon2D, default_n_detector, radon_adjoint, radon_forward
from inversa.tomography._simulate import (
    SimulatedTiltSeries,
    SimulationConfig,
    bspline_at,
    bspline_field,
    local_deformation,
    random_xf,
    simulate,
    simulate_tilt_series,
)
from inversa.tomography._tiltseries import (
    TiltSeriesProjector,
    tilt_series_adjoint,
    tilt_series_forward,
)
from inversa.tomography._warp import (
    Warp2D,
    align_images,
    invert_xf,
    warp_images,
    warp_images_adjoint,
)

__all__ = [
    "CTFOperator",
    "CTFParams",
    "Radon2D",
    "SimulatedTiltSeries",
    "SimulationConfig",
    "SolveInfo",
    "TiltGeometry",
    "TiltSeriesCTF",
    "TiltSeriesProjector",
    "Warp2D",
    "align_images",
    "angular_weights",
    "apply_ctf",
    "bspline_at",
    "bspline_field",
    "cgls",
    "ctf3d_weight",
    "ctf_2d",
    "ctf_at",
    "default_n_detector",
    "dose_symmetric_exposure",
    "electron_wavelength_A",
    "exposure_filter",
    "fbp",
    "invert_xf",
    "local_deformation",
    "phase_flip",
    "radon_adjoint",
    "radon_forward",
    "random_xf",
    "read_relion5_tilt_series",
    "simulate",
    "simulate_tilt_series",
    "sirt",
    "tilt_ctf_grid",
    "tilt_series_adjoint",
    "tilt_series_forward",
    "tilt_series_from_table",
    "tilt_series_sidecars",
    "warp_images",
    "warp_images_adjoint",
    "wbp",
    "write_relion5_tilt_series",
]

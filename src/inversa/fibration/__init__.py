"""Learning double fibration transforms: operators with geometry, from few samples.

Ground truth (:func:`make_transform`, each a ``LinearOperator`` ``(..., N, N) -> (..., N, N)``
with an exact adjoint): the Radon transform (``tomography.Radon2D``), circular means
(:func:`circular_means`) and the geodesic ray transform of a speed map
(:func:`geodesic_ray_transform`, rays by :func:`trace_rays`, RK4), the last two as
:class:`SparseIntegralOperator`. Data: band-limited Gaussian random fields
(:func:`sample_grf`, :class:`GRFConfig`) and pairs (:func:`make_pairs`). Models: the
level-set kernel network :class:`LevelSetNet` and the peers :class:`RidgeOperator`,
:class:`DeepONet`, :class:`FNO2d`, :class:`CrossAttentionNet`, all fitted by
:func:`fit_operator` through ``core.training``. Geometry read-out: :func:`codimension`,
:func:`speed_from_level_sets` / :func:`recover_speed`. One run: :func:`learn`, with
:func:`save_levelset` / :func:`load_levelset`. See ``docs/fibration.md``.
"""

from inversa.fibration._data import (
    MAX_SAMPLES,
    GRFConfig,
    check_samples,
    disk_window,
    pixel_coordinates,
    sample_grf,
)
from inversa.fibration._geometry import (
    CUT,
    amplitude_grid,
    codimension,
    curve_level_set,
    jacobian_singular_values,
    level_set_grid,
    speed_from_level_sets,
)
from inversa.fibration._learn import (
    FORMAT,
    LearnConfig,
    learn,
    load_levelset,
    make_pairs,
    ood_images,
    recover_speed,
    save_levelset,
    speed_error,
)
from inversa.fibration._models import (
    MODELS,
    AttentionConfig,
    CrossAttentionNet,
    DeepONet,
    DeepONetConfig,
    FNO2d,
    FNOConfig,
    LevelSetConfig,
    LevelSetEnsemble,
    LevelSetNet,
    RidgeOperator,
    build_model,
    smooth_delta,
)
from inversa.fibration._train import (
    FitConfig,
    FittedOperator,
    fit_operator,
    predict,
    relative_error,
)
from inversa.fibration._transforms import (
    TRANSFORMS,
    SparseIntegralOperator,
    Transform,
    bilinear_entries,
    check_speed,
    circular_means,
    default_speed_map,
    geodesic_ray_transform,
    make_transform,
    radon_transform,
    ray_starts,
    trace_rays,
)

__all__ = [
    "CUT",
    "FORMAT",
    "MAX_SAMPLES",
    "MODELS",
    "TRANSFORMS",
    "AttentionConfig",
    "CrossAttentionNet",
    "DeepONet",
    "DeepONetConfig",
    "FNO2d",
    "FNOConfig",
    "FitConfig",
    "FittedOperator",
    "GRFConfig",
    "LearnConfig",
    "LevelSetConfig",
    "LevelSetEnsemble",
    "LevelSetNet",
    "RidgeOperator",
    "SparseIntegralOperator",
    "Transform",
    "amplitude_grid",
    "bilinear_entries",
    "build_model",
    "check_samples",
    "check_speed",
    "circular_means",
    "codimension",
    "curve_level_set",
    "default_speed_map",
    "disk_window",
    "fit_operator",
    "geodesic_ray_transform",
    "jacobian_singular_values",
    "learn",
    "level_set_grid",
    "load_levelset",
    "make_pairs",
    "make_transform",
    "ood_images",
    "pixel_coordinates",
    "predict",
    "radon_transform",
    "ray_starts",
    "recover_speed",
    "relative_error",
    "sample_grf",
    "save_levelset",
    "smooth_delta",
    "speed_error",
    "speed_from_level_sets",
    "trace_rays",
]

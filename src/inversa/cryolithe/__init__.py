"""CryoLithe: learned local reconstruction of tilt series, trained on our own simulator.

Each 3-D point is projected into every tilt image (``TiltGeometry.project_points``, so the
``.xf`` is honoured); a ``P x P`` patch around it is sampled bilinearly from the
ramp-filtered, normalised projections (:func:`extract_patches`); the SliceSet network
(:class:`SliceSet`) maps the patches and tilt angles of any number of tilts to one voxel
(pixel head) or the 8 coefficients of a one-level 3-D Haar wavelet (wavelet head,
:func:`haar3d_inverse`). :func:`reconstruct` streams the volume in chunks of points with
flat memory; :func:`train_model` trains on simulated data through ``core.training``;
:class:`WBPUNet` is the learned peer of the benchmark (``core.nets.UNet`` on WBP).
The shipped models are in ``data/`` (:func:`default_model_path`). See ``docs/cryolithe.md``.
"""

from inversa.cryolithe._data import (
    DataConfig,
    Scene,
    SeriesConfig,
    make_scene,
    make_scenes,
    make_target,
    random_series,
    simulate_series,
    tilt_angles,
)
from inversa.cryolithe._features import (
    align_images,
    extract_patches,
    normalize_counts,
    prepare_projections,
    voxel_points,
)
from inversa.cryolithe._model import (
    FORMAT,
    SliceSet,
    SliceSetConfig,
    load_model,
    pooled_set_sum,
    save_model,
)
from inversa.cryolithe._reconstruct import default_model_path, reconstruct
from inversa.cryolithe._train import (
    TrainingConfig,
    quick_config,
    sample_points,
    train_and_save,
    train_model,
)
from inversa.cryolithe._unet import (
    UNetConfig,
    WBPUNet,
    train_unet,
    unet_reconstruct,
    wbp_normalized,
)
from inversa.cryolithe._wavelet import haar3d_forward, haar3d_inverse, haar_matrix

__all__ = [
    "FORMAT",
    "DataConfig",
    "Scene",
    "SeriesConfig",
    "SliceSet",
    "SliceSetConfig",
    "TrainingConfig",
    "UNetConfig",
    "WBPUNet",
    "align_images",
    "default_model_path",
    "extract_patches",
    "haar3d_forward",
    "haar3d_inverse",
    "haar_matrix",
    "load_model",
    "make_scene",
    "make_scenes",
    "make_target",
    "normalize_counts",
    "pooled_set_sum",
    "prepare_projections",
    "quick_config",
    "random_series",
    "reconstruct",
    "sample_points",
    "save_model",
    "simulate_series",
    "tilt_angles",
    "train_and_save",
    "train_model",
    "train_unet",
    "unet_reconstruct",
    "voxel_points",
    "wbp_normalized",
]

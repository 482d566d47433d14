"""LoFi: local neural fields for image reconstruction at any resolution.

Each pixel is predicted from a small learned neighbourhood of the input image
(:class:`LoFi`: learnable Fourier filter, ring/spoke sampling with learned offsets and
scale, one MLP per spoke, a mixer MLP), so the network trains on a handful of images from
random query pixels, with memory almost independent of the image size, and reconstructs
at any resolution in chunks (:func:`predict`). Tasks (:func:`task_config`): sparse-view and
limited-angle CT and low-dose CT from FBP inputs, and Gaussian denoising. The peer is
FBPConvNet (`core.nets.UNet` on the same input, :func:`train_unet`). Plug-and-play
(:func:`pnp_admm`) uses a LoFi denoiser for CT at resolutions it was not trained on,
beside a TV denoiser and TV-regularised reconstruction (:func:`tv_reconstruct`).
See ``docs/lofi.md``.
"""

from inversa.lofi._apply import SUFFIXES, apply_file, check_suffix, read_array, write_array
from inversa.lofi._model import FORMAT, LoFi, LoFiConfig, load_model, predict, save_model
from inversa.lofi._pnp import (
    PnPConfig,
    operator_norm_sq,
    pnp_admm,
    tv_denoise,
    tv_reconstruct,
)
from inversa.lofi._tasks import (
    TASKS,
    TaskConfig,
    measurement_input,
    simulate,
    task_config,
    task_operator,
)
from inversa.lofi._train import (
    UNET_FORMAT,
    TrainingConfig,
    load_unet,
    quick_config,
    save_unet,
    step_pair,
    train_and_save,
    train_lofi,
    train_unet,
    training_images,
    unet_predict,
)

__all__ = [
    "FORMAT",
    "SUFFIXES",
    "TASKS",
    "UNET_FORMAT",
    "LoFi",
    "LoFiConfig",
    "PnPConfig",
    "TaskConfig",
    "TrainingConfig",
    "apply_file",
    "check_suffix",
    "load_model",
    "load_unet",
    "measurement_input",
    "operator_norm_sq",
    "pnp_admm",
    "predict",
    "quick_config",
    "read_array",
    "save_model",
    "save_unet",
    "simulate",
    "step_pair",
    "task_config",
    "task_operator",
    "train_and_save",
    "train_lofi",
    "train_unet",
    "training_images",
    "tv_denoise",
    "tv_reconstruct",
    "unet_predict",
    "write_array",
]

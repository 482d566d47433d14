"""Applying a trained LoFi model to a file: read, check, reconstruct, write.

Inputs and outputs by extension: MRC (``.mrc``, ``.mrcs``, ``.map``), NumPy (``.npy``),
and through imageio PNG (``.png``, 8 or 16 bit, scaled to [0, 1]) and TIFF (``.tif``,
``.tiff``; floats kept as they are, integers scaled to [0, 1]). A CT model reads a sinogram
``(angles, detector bins)`` of line integrals in pixel units; the denoising model an image.
PNG outputs are clipped to [0, 1] and written as 16-bit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.io import atomic_write, read_mrc, write_mrc
from inversa.core.optional import require
from inversa.lofi._model import load_model, predict
from inversa.lofi._tasks import measurement_input, task_config

__all__ = ["SUFFIXES", "apply_file", "check_suffix", "read_array", "write_array"]

SUFFIXES = (".mrc", ".mrcs", ".map", ".npy", ".png", ".tif", ".tiff")


def check_suffix(path: str | os.PathLike[str]) -> str:
    """Return the lower-case suffix of ``path`` or raise `InputError` for an unknown one."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(path, f"unknown file type {suffix!r}; use one of {', '.join(SUFFIXES)}")
    return suffix


def read_array(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read a 2-D array from MRC, NumPy, PNG or TIFF as a float32 tensor.

    Leading axes of length 1 are dropped (a one-slice MRC stack is an image).

    Returns
    -------
    torch.Tensor
        ``(H, W)`` float32.

    Raises
    ------
    InputError
        Missing or unreadable file, an array that is not 2-D, or NaN / infinite values.
    """
    suffix = check_suffix(path)
    if not Path(path).is_file():
        raise InputError(path, "file not found")
    if suffix in (".mrc", ".mrcs", ".map"):
        data = read_mrc(path)[0].numpy()
    elif suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InputError(path, f"not a readable NumPy array ({exc})") from None
    else:
        iio = require("imageio.v3", extra="imaging")
        raw = Path(path).read_bytes()  # imageio leaves files open when a plugin fails
        try:
            data = np.asarray(iio.imread(raw, extension=suffix))
        except Exception as exc:  # imageio raises many types for unreadable files
            raise InputError(path, f"not a readable image ({type(exc).__name__}: {exc})") from None
        if data.dtype.kind in "ui":
            data = data.astype(np.float64) / float(np.iinfo(data.dtype).max)
    if data.dtype.kind not in "uif":
        raise InputError(path, f"array of dtype {data.dtype} is not numeric")
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise InputError(path, f"expected a 2-D array, got shape {tuple(data.shape)}")
    out = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    if not bool(torch.isfinite(out).all()):
        raise InputError(path, "the array holds NaN or infinite values")
    return out


def write_array(path: str | os.PathLike[str], image: torch.Tensor, *, force: bool = False) -> Path:
    """Write an ``(H, W)`` image by extension (atomic; PNG clipped to [0, 1], 16-bit)."""
    suffix = check_suffix(path)
    data = image.detach().to("cpu", torch.float32)
    if suffix in (".mrc", ".mrcs", ".map"):
        write_mrc(path, data, force=force)
        return Path(path)
    arr = data.numpy()
    with atomic_write(path, force=force) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
        else:
            iio = require("imageio.v3", extra="imaging")
            if suffix == ".png":
                arr = np.round(np.clip(arr, 0.0, 1.0) * 65535.0).astype(np.uint16)
            iio.imwrite(tmp, arr, extension=suffix)
    return Path(path)


def apply_file(
    model_path: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    size: int | None = None,
    task: str | None = None,
    force: bool = False,
    device: str | torch.device = "cpu",
) -> dict:
    """Reconstruct ``input_path`` with the model at ``model_path`` and write ``out_path``.

    Parameters
    ----------
    model_path
        A LoFi ``.safetensors`` model.
    input_path
        Sinogram (CT tasks) or image (denoising), 2-D.
    out_path
        Output image (MRC, NumPy, PNG or TIFF).
    size
        Output size (``None``: the input image's size).
    task
        When given, refuse a model trained for another task.
    force
        Overwrite ``out_path``.
    device
        Torch device.

    Returns
    -------
    dict
        ``task``, ``input_shape``, ``output_shape``.

    Raises
    ------
    InputError
        Naming the file: an unknown extension, a model of another kind, a bad array
        (not 2-D, NaN) or a sinogram whose angle count is not the model's task.
    """
    check_suffix(out_path)
    model, meta = load_model(model_path, task=task, device=device)
    config = task_config(meta["task"])
    data = read_array(input_path)
    image = measurement_input(config, data, path=input_path)
    out = predict(model, image, size=size)
    write_array(out_path, out, force=force)
    return {
        "task": config.name,
        "input_shape": list(data.shape),
        "output_shape": list(out.shape),
    }

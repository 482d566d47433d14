"""Real test images shipped with pydicom and scikit-image, as tensors in [0, 1].

Out-of-distribution test images for methods trained on synthetic phantoms. Every image is
read from the files the installed packages carry (no download, no network):

- ``"ct_small"``: pydicom's ``CT_small.dcm`` (``pydicom.data.get_testdata_file``), a
  128 x 128 axial CT slice; Hounsfield units ``hu`` mapped to ``clip(hu + 1000, 0) / max``
  (air 0, densest pixel 1). pydicom's test files are distributed under pydicom's MIT
  licence (``pydicom/data/test_files/README.txt`` lists their origin).
- ``"camera"``: scikit-image's ``data.camera()``, 512 x 512 8-bit, "No copyright
  restrictions. CC0 by the photographer (Lav Varshney)".
- ``"coins"``: scikit-image's ``data.coins()``, Greek coins from Pompeii (Brooklyn Museum
  Collection, "No known copyright restrictions"), 303 x 384 8-bit, centre-cropped to
  303 x 303. It stands in for scikit-image's ``data.brain()`` MRI slices, which are not
  in the installed package: ``brain()`` downloads them (through pooch) on first use.

8-bit images are divided by 255. Provenance: ``core/phantoms/data/PROVENANCE.md``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from inversa.core.errors import InputError
from inversa.core.optional import require

__all__ = ["real_image", "real_image_names"]


def _ct_small() -> torch.Tensor:
    dcmread = require("pydicom", extra="imaging").dcmread  # checks the top module first
    get_testdata_file = require("pydicom.data", extra="imaging").get_testdata_file
    path = get_testdata_file("CT_small.dcm")
    if path is None:
        raise InputError(None, "pydicom's test file CT_small.dcm is not available")
    ds = dcmread(path)
    hu = torch.from_numpy(ds.pixel_array.astype("float64")) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )
    img = (hu + 1000.0).clamp_min(0.0)
    return img / img.max()


def _skimage(name: str) -> np.ndarray:
    require("skimage", extra="imaging")  # names the extra when scikit-image is absent
    data = require("skimage.data", extra="imaging")
    return np.asarray(getattr(data, name)())


def _camera() -> torch.Tensor:
    return torch.from_numpy(_skimage("camera").astype("float64") / 255.0)


def _coins() -> torch.Tensor:
    img = _skimage("coins").astype("float64") / 255.0
    h, w = img.shape
    n = min(h, w)
    top, left = (h - n) // 2, (w - n) // 2
    return torch.from_numpy(np.ascontiguousarray(img[top : top + n, left : left + n]))


_LOADERS: dict[str, Callable[[], torch.Tensor]] = {
    "ct_small": _ct_small,
    "camera": _camera,
    "coins": _coins,
}


def real_image_names() -> tuple[str, ...]:
    """Names accepted by :func:`real_image`: ``("ct_small", "camera", "coins")``."""
    return tuple(_LOADERS)


def real_image(
    name: str,
    *,
    size: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Return a real test image in [0, 1] (see the module docstring for each image).

    Parameters
    ----------
    name
        One of :func:`real_image_names`.
    size
        Resize to ``(size, size)`` (bilinear with antialiasing, clipped at 0); ``None``
        keeps the image's own square size (CT_small 128, camera 512, coins 303).
    dtype, device
        Of the returned tensor (computed in float64).

    Returns
    -------
    torch.Tensor
        ``(H, W)`` image with values in [0, 1], indexed ``[y, x]``.

    Raises
    ------
    InputError
        An unknown name or a size that is not a positive integer.
    MissingDependencyError
        pydicom or scikit-image is not installed (extra ``imaging``).
    """
    if name not in _LOADERS:
        raise InputError(None, f"unknown real image {name!r}; choose from {real_image_names()}")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise InputError(None, f"image size must be a positive integer, got {size!r}")
    img = _LOADERS[name]()
    if size is not None and size != img.shape[-1]:
        img = F.interpolate(img[None, None], size=(size, size), mode="bilinear", antialias=True)[
            0, 0
        ].clamp_min(0.0)
    return img.to(dtype=dtype, device=device)

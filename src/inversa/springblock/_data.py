"""Labelled data sets: scikit-learn's bundled digits, a Gaussian mixture, or a user's .npz."""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.optional import require

__all__ = ["Dataset", "gaussian_mixture", "load_dataset"]


@dataclass(frozen=True)
class Dataset:
    """A train/test split of labelled vectors, standardised with the training statistics.

    Attributes
    ----------
    name
        Where it came from.
    x_train, x_test
        ``(n, d)`` float32 inputs (``(n, ...)`` for a user's image data).
    y_train, y_test
        ``(n,)`` int64 labels in ``0 .. classes - 1``.
    classes
        Number of classes.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int


def _split(name: str, x: np.ndarray, y: np.ndarray, *, test_fraction: float, seed: int) -> Dataset:
    """Stratified split, standardisation by training mean and std (constant pixels kept at 0)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: round(test_fraction * len(idx))]] = True
    xtr, xte = x[~test], x[test]
    mean = xtr.mean(axis=0)
    std = xtr.std(axis=0)
    std[std == 0] = 1.0
    f = lambda a: torch.from_numpy(((a - mean) / std).astype(np.float32))  # noqa: E731
    return Dataset(
        name=name,
        x_train=f(xtr),
        y_train=torch.from_numpy(y[~test].astype(np.int64)),
        x_test=f(xte),
        y_test=torch.from_numpy(y[test].astype(np.int64)),
        classes=int(y.max()) + 1,
    )


def gaussian_mixture(
    *, n: int = 2000, dim: int = 64, classes: int = 10, spread: float = 0.6, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw samples of a Gaussian mixture: class means N(0, spread^2 I), unit isotropic noise.

    Parameters
    ----------
    n, dim, classes
        Samples, dimension, classes (balanced up to one sample).
    spread
        Standard deviation of the class means (smaller: more overlap).
    seed
        Random seed.

    Returns
    -------
    tuple
        ``(n, dim)`` float64 inputs and ``(n,)`` int64 labels.
    """
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, spread, size=(classes, dim))
    y = np.arange(n) % classes
    x = means[y] + rng.normal(size=(n, dim))
    return x, y.astype(np.int64)


def load_dataset(
    source: str | os.PathLike[str], *, test_fraction: float = 0.25, seed: int = 0
) -> Dataset:
    """Load ``"digits"`` (scikit-learn's bundled 8x8 digits), ``"gmm"`` or a ``.npz`` file.

    Parameters
    ----------
    source
        ``"digits"``, ``"gmm"``, or a ``.npz`` with arrays ``x`` ``(n, ...)`` and ``y`` ``(n,)``
        (integer labels), optionally ``x_test`` and ``y_test``. A user's arrays are used as
        they are (no standardisation, no split: the model was trained on them).
    test_fraction
        Fraction of each class held out for testing (digits and gmm).
    seed
        Seed of the split (and of the mixture).

    Returns
    -------
    Dataset

    Raises
    ------
    InputError
        An unknown name, an unreadable file, missing arrays or inconsistent shapes.
    """
    if str(source) == "digits":
        load_digits = require("sklearn.datasets", extra="springblock").load_digits

        bunch = load_digits()
        return _split(
            "digits",
            bunch.data.astype(np.float64),
            bunch.target,
            test_fraction=test_fraction,
            seed=seed,
        )
    if str(source) == "gmm":
        x, y = gaussian_mixture(seed=seed)
        return _split("gmm", x, y, test_fraction=test_fraction, seed=seed)
    path = Path(source)
    if path.suffix != ".npz":
        raise InputError(path, "data must be 'digits', 'gmm' or a .npz file with arrays x and y")
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        # Our own handle: np.load leaks its file when the archive is damaged.
        with open(path, "rb") as handle:
            loaded = np.load(handle, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise InputError(path, "not a .npz archive (a single .npy array?)")
            with loaded as z:
                arrays = {k: z[k] for k in z.files}
    except InputError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(path, f"cannot read the .npz file ({exc})") from None
    if "x" not in arrays or "y" not in arrays:
        raise InputError(path, f"needs arrays 'x' and 'y'; it has {sorted(arrays)}")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise InputError(path, "give both 'x_test' and 'y_test', or neither")
    pairs = [("x", "y")] + ([("x_test", "y_test")] if "x_test" in arrays else [])
    for xname, yname in pairs:
        x, y = arrays[xname], arrays[yname]
        if y.ndim != 1 or len(y) == 0 or len(y) != len(x) or y.dtype.kind not in "iu":
            raise InputError(
                path, f"'{yname}' must be integer labels of shape (n,), n > 0, matching '{xname}'"
            )
        if y.min() < 0:
            raise InputError(path, f"'{yname}' holds negative labels")
        if x.ndim < 2 or x.dtype.kind not in "biuf" or not np.isfinite(x).all():
            raise InputError(path, f"'{xname}' must be finite numbers of shape (n, ...)")
    if "x_test" in arrays and arrays["x_test"].shape[1:] != arrays["x"].shape[1:]:
        raise InputError(path, "'x_test' and 'x' differ in sample shape")
    x, y = arrays["x"], arrays["y"]
    if "x_test" in arrays and "y_test" in arrays:
        # A user's own split: keep the values as they are (the model was trained on them).
        return Dataset(
            name=path.name,
            x_train=torch.from_numpy(x.astype(np.float32)),
            y_train=torch.from_numpy(y.astype(np.int64)),
            x_test=torch.from_numpy(arrays["x_test"].astype(np.float32)),
            y_test=torch.from_numpy(arrays["y_test"].astype(np.int64)),
            classes=int(max(y.max(), arrays["y_test"].max())) + 1,
        )
    return Dataset(
        name=path.name,
        x_train=torch.from_numpy(x.astype(np.float32)),
        y_train=torch.from_numpy(y.astype(np.int64)),
        x_test=torch.from_numpy(x[:0].astype(np.float32)),
        y_test=torch.from_numpy(y[:0].astype(np.int64)),
        classes=int(y.max()) + 1,
    )

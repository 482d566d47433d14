"""MRC images and volumes through ``mrcfile``."""

from __future__ import annotations

import os
import warnings

import mrcfile
import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.io._atomic import atomic_write

__all__ = ["read_mrc", "write_mrc"]

# Elements checked per step when scanning a memory-mapped file for NaN/inf, so that
# the check never loads more than ~64 MB at once.
_FINITE_CHUNK_ELEMENTS = 1 << 24


def _all_finite(data: np.ndarray) -> bool:
    if not np.issubdtype(data.dtype, np.floating):
        return True
    if data.ndim == 0 or data.size <= _FINITE_CHUNK_ELEMENTS:
        return bool(np.isfinite(data).all())
    step = max(1, _FINITE_CHUNK_ELEMENTS // (data.size // data.shape[0]))
    return all(bool(np.isfinite(data[i : i + step]).all()) for i in range(0, data.shape[0], step))


def _header_voxel_size(mrc: mrcfile.mrcfile.MrcFile) -> float | None:
    """Return the header's voxel size in Angstrom; ``None`` when unset (0) or invalid."""
    size = float(mrc.voxel_size.x)
    return size if np.isfinite(size) and size > 0 else None


def _check_header(path: str | os.PathLike[str], header: np.record) -> None:
    # mrcfile trusts the header's sizes; negative or absurd ones make numpy raise odd
    # errors (or, memory-mapped, map the wrong bytes), so check them first.
    dims = [int(header[k]) for k in ("nx", "ny", "nz")]
    if any(d <= 0 for d in dims):
        raise InputError(path, f"header dimensions nx, ny, nz = {dims} must be positive")
    size = os.path.getsize(path)
    # At least half a byte per voxel (mode 101 packs two 4-bit values in a byte).
    if dims[0] * dims[1] * dims[2] > 2 * size:
        raise InputError(
            path, f"header dimensions {dims} need more bytes than the file's {size} (cut short?)"
        )


def read_mrc(
    path: str | os.PathLike[str],
    *,
    ndim: int | None = None,
    mmap: bool = False,
    voxel_size: float | None = None,
) -> tuple[torch.Tensor, float]:
    """Read an MRC image, image stack or volume.

    Parameters
    ----------
    path
        The MRC file.
    ndim
        Required dimensionality, 2 or 3 (image stacks count as 3-D); ``None`` accepts
        either.
    mmap
        Memory-map the file instead of reading it. For native-endian float32 files the
        returned tensor shares memory with a read-only map of the file: it must not be
        written to (copy it first with ``.clone()``). Other data types are converted,
        which reads them into memory.
    voxel_size
        Voxel size in Angstrom to use instead of the header's (the CLI's
        ``--voxel-size``). ``None`` takes the header's.

    Returns
    -------
    data : torch.Tensor
        ``(h, w)`` image or ``(d, h, w)`` volume/stack, indexed ``[z, y, x]``, float32
        (integer and float16 files are converted).
    voxel_size : float
        ``voxel_size`` when given, else the header's ``voxel_size.x`` in Angstrom. A header
        voxel size of 0 (unset) or an invalid one reads as 1.0 with a `UserWarning`
        naming the file.

    Raises
    ------
    InputError
        The file is missing or not an MRC file (bad header, dimensions that do not fit
        the file), holds complex or RGB data, has the wrong dimensionality, or holds NaN
        or infinite values; or ``voxel_size`` is not positive.
    """
    if ndim not in (None, 2, 3):
        raise InputError(None, f"ndim must be 2, 3 or None, got {ndim}")
    if voxel_size is not None and not (np.isfinite(voxel_size) and voxel_size > 0):
        raise InputError(None, f"voxel size must be positive, got {voxel_size}")
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    try:
        with mrcfile.open(path, mode="r", header_only=True) as mrc:
            _check_header(path, mrc.header)
        opener = mrcfile.mmap if mmap else mrcfile.open
        with opener(path, mode="r") as mrc:
            data = mrc.data
            header_size = _header_voxel_size(mrc)
    except InputError:
        raise
    except OSError as err:
        raise InputError(path, f"cannot read file ({err.strerror or err})") from None
    except Exception as err:
        # mrcfile and numpy report a malformed file in many ways (ValueError, TypeError,
        # OverflowError, ...); every one of them means the same to a user.
        raise InputError(path, f"not a readable MRC file ({err})") from None
    if data is None or data.ndim not in (2, 3):
        found = "no data" if data is None else f"{data.ndim}-D data"
        raise InputError(path, f"expected a 2-D image or 3-D volume/stack, found {found}")
    if data.dtype.kind not in "fiu":
        raise InputError(path, f"unsupported MRC data type {data.dtype} (need real numbers)")
    if ndim is not None and data.ndim != ndim:
        raise InputError(path, f"expected {ndim}-D data, found {data.ndim}-D {data.shape}")
    if not _all_finite(data):
        raise InputError(path, "contains NaN or infinite values")
    if voxel_size is None:
        voxel_size = header_size
        if voxel_size is None:
            # The default filter shows this once per file; the value is a guess, so say so.
            warnings.warn(
                f"{os.fspath(path)}: the header's voxel size is unset (0) or invalid; using "
                "1.0 A (set it with --voxel-size)",
                UserWarning,
                stacklevel=2,
            )
            voxel_size = 1.0
    voxel_size = float(voxel_size)
    if data.dtype != np.dtype(np.float32) or not data.dtype.isnative:
        return torch.from_numpy(data.astype(np.float32)), voxel_size
    if not mmap:
        # mrcfile flags the in-memory copy read-only although nothing else shares it.
        if not data.flags.writeable:
            try:
                data.flags.writeable = True
            except ValueError:
                data = data.copy()
        return torch.from_numpy(data), voxel_size
    # The map is read-only by design; torch warns about that when wrapping it, and the
    # docstring tells callers not to write.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(data), voxel_size


def write_mrc(
    path: str | os.PathLike[str],
    data: torch.Tensor,
    *,
    voxel_size: float = 1.0,
    force: bool = False,
) -> None:
    """Write an image or volume as a float32 MRC file, atomically.

    3-D data is always written as a volume (``ispg`` 1), image stacks included; readers
    that need a stack header (``ispg`` 0) are rare, and `read_mrc` treats both alike.

    Parameters
    ----------
    path
        Output file.
    data
        ``(h, w)`` image or ``(d, h, w)`` volume, indexed ``[z, y, x]``, on any device.
    voxel_size
        Voxel size in Angstrom, written to the header.
    force
        Overwrite an existing file.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    InputError
        ``data`` is not 2-D or 3-D, holds NaN/inf, or ``voxel_size`` is not positive.
    """
    if data.ndim not in (2, 3):
        raise InputError(path, f"can only write 2-D or 3-D data, got shape {tuple(data.shape)}")
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise InputError(path, f"voxel size must be positive, got {voxel_size}")
    array = data.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
    if not np.isfinite(array).all():
        raise InputError(path, "refusing to write NaN or infinite values")
    with atomic_write(path, force=force) as tmp, mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(array)
        mrc.voxel_size = voxel_size
        mrc.update_header_stats()

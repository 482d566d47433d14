"""Streaming MRC volumes: written a slab or a box of rows at a time, never held whole."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import BinaryIO

import mrcfile
import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.core.io._atomic import atomic_write

__all__ = ["MrcSlabWriter", "stream_mrc"]


class MrcSlabWriter:
    """A float32 MRC volume being written a box of whole rows at a time.

    Made by :func:`stream_mrc`. ``writer[z0:z1] = slab`` writes whole slices,
    ``writer[z0:z1, y0:y1] = box`` rows ``y0:y1`` of slices ``z0:z1`` (a band of rows,
    as CryoLithe's inference makes them). Each slice's rows go to their place in the
    file with one positioned write, so memory stays at one box whatever the volume size
    (the pages go to the operating system's file cache, not to the process, unlike a
    memory map). The header statistics (min, max, mean, rms) are accumulated box by box;
    a row written twice is refused (it would count twice).

    Attributes
    ----------
    shape
        ``(D, H, W)`` of the volume.
    """

    def __init__(self, path: os.PathLike[str] | str, handle: BinaryIO, offset: int, shape):
        self.shape = tuple(int(n) for n in shape)
        self._path = path
        self._handle = handle
        self._offset = offset
        self._written = np.zeros(self.shape[:2], dtype=bool)  # (D, H) rows
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0  # sum of squared deviations from the running mean (Chan et al.)
        self._min = math.inf
        self._max = -math.inf

    def __len__(self) -> int:
        """Return the number of z slices ``D``."""
        return self.shape[0]

    def __setitem__(
        self, index: slice | tuple[slice, slice], values: torch.Tensor | np.ndarray
    ) -> None:
        """Write ``values`` (``(z1 - z0, y1 - y0, W)``) to ``[z0:z1]`` or ``[z0:z1, y0:y1]``."""
        parts = index if isinstance(index, tuple) else (index,)
        if not 1 <= len(parts) <= 2 or any(
            not isinstance(s, slice) or s.step not in (None, 1) for s in parts
        ):
            raise InputError(
                self._path,
                "a streamed volume is written by z slices [z0:z1] or rows [z0:z1, y0:y1]",
            )
        z0, z1, _ = parts[0].indices(self.shape[0])
        y0, y1, _ = (parts[1] if len(parts) == 2 else slice(None)).indices(self.shape[1])
        if isinstance(values, torch.Tensor):
            values = values.detach().to(device="cpu", dtype=torch.float32).numpy()
        array = np.ascontiguousarray(values, dtype=np.float32)
        want = (max(0, z1 - z0), max(0, y1 - y0), self.shape[2])
        if array.shape != want:
            raise InputError(self._path, f"slab of shape {array.shape} for a box of {want}")
        if array.size == 0:
            return
        if not np.isfinite(array).all():
            raise InputError(self._path, "refusing to write NaN or infinite values")
        if self._written[z0:z1, y0:y1].any():  # the statistics would count them twice
            raise InputError(
                self._path, f"rows {y0}..{y1 - 1} of slices {z0}..{z1 - 1} were already written"
            )
        row = self.shape[2] * 4
        for z in range(z0, z1):
            self._handle.seek(self._offset + (z * self.shape[1] + y0) * row)
            self._handle.write(memoryview(array[z - z0]).cast("B"))
        self._written[z0:z1, y0:y1] = True
        n, mean = array.size, float(array.mean(dtype=np.float64))
        m2 = float(np.square(array - mean, dtype=np.float64).sum())
        total = self._count + n
        delta = mean - self._mean
        self._m2 += m2 + delta * delta * self._count * n / total
        self._mean += delta * n / total
        self._count = total
        self._min = min(self._min, float(array.min()))
        self._max = max(self._max, float(array.max()))

    def _finish(self) -> None:
        missing = int((~self._written).any(axis=1).sum())
        if missing:
            raise InputError(self._path, f"{missing} of {self.shape[0]} slices were never written")
        header = np.frombuffer(bytearray(self._read_header()), dtype=mrcfile.dtypes.HEADER_DTYPE)
        header = header.copy()
        header["dmin"] = self._min
        header["dmax"] = self._max
        header["dmean"] = self._mean
        header["rms"] = math.sqrt(self._m2 / self._count)
        self._handle.seek(0)
        self._handle.write(header.tobytes())

    def _read_header(self) -> bytes:
        self._handle.seek(0)
        return self._handle.read(mrcfile.dtypes.HEADER_DTYPE.itemsize)


@contextlib.contextmanager
def stream_mrc(
    path: str | os.PathLike[str],
    shape: tuple[int, int, int],
    *,
    voxel_size: float = 1.0,
    force: bool = False,
) -> Iterator[MrcSlabWriter]:
    """Write a float32 MRC volume slab by slab, atomically.

    The file is made in a temporary sibling (:func:`atomic_write`), filled through the
    yielded :class:`MrcSlabWriter` (``writer[z0:z1] = slab`` or ``writer[z0:z1, y0:y1] = box``,
    in any order) and renamed
    onto ``path`` when the block ends with every slice written; on any exception, or
    with slices missing, the temporary is removed and ``path`` is left as it was. Pass
    the writer as ``out=`` to a reconstruction that fills its output along z.

    Parameters
    ----------
    path
        Output file.
    shape
        ``(D, H, W)`` of the volume.
    voxel_size
        Voxel size in Angstrom, written to the header.
    force
        Overwrite an existing file.

    Yields
    ------
    MrcSlabWriter
        The volume to fill.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    InputError
        A bad shape or voxel size, NaN/inf values, or slices left unwritten.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(path, f"a streamed volume needs a (D, H, W) shape, got {shape}")
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise InputError(path, f"voxel size must be positive, got {voxel_size}")
    with atomic_write(path, force=force) as tmp:
        # new_mmap writes the header and sizes the file (sparse) without touching the data.
        with mrcfile.new_mmap(tmp, shape, mrc_mode=2, overwrite=True) as mrc:
            mrc.voxel_size = voxel_size
            offset = int(mrc.header.nbytes + mrc.extended_header.nbytes)
        with open(tmp, "r+b") as handle:
            writer = MrcSlabWriter(path, handle, offset, shape)
            yield writer
            writer._finish()

"""Tilt angles (``.tlt``) and IMOD 2-D transforms (``.xf``)."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence

import torch

from inversa.core.errors import InputError
from inversa.core.io._atomic import atomic_write
from inversa.core.io._read import read_input_bytes

__all__ = ["read_tlt", "read_xf", "write_tlt", "write_xf"]


def _numeric_rows(path: str | os.PathLike[str], n_fields: int) -> list[list[float]]:
    """Parse a whitespace-separated text file with ``n_fields`` numbers per non-blank line."""
    raw = read_input_bytes(path)
    try:
        # newline=None: the universal newlines of a file opened as text.
        lines = io.StringIO(raw.decode("utf-8"), newline=None).readlines()
    except UnicodeDecodeError as err:
        raise InputError(path, f"cannot read text file ({err})") from err
    rows = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != n_fields:
            raise InputError(
                path, f"line {number}: expected {n_fields} numbers, found {len(fields)}"
            )
        try:
            values = [float(field) for field in fields]
        except ValueError as err:
            raise InputError(path, f"line {number}: not a number: {line.strip()!r}") from err
        if not all(math.isfinite(value) for value in values):
            raise InputError(path, f"line {number}: NaN or infinite value")
        rows.append(values)
    if not rows:
        raise InputError(path, "file holds no values")
    return rows


def read_tlt(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read tilt angles, one per line (IMOD/RELION ``.tlt``); blank lines are ignored.

    Parameters
    ----------
    path
        The ``.tlt`` file.

    Returns
    -------
    torch.Tensor
        ``(n,)`` float64 tilt angles in degrees, in file order.

    Raises
    ------
    InputError
        The file is missing, empty, or a line is not a single finite number.
    """
    rows = _numeric_rows(path, 1)
    return torch.tensor([row[0] for row in rows], dtype=torch.float64)


def write_tlt(
    path: str | os.PathLike[str], angles: torch.Tensor | Sequence[float], *, force: bool = False
) -> None:
    """Write tilt angles in degrees, one per line, atomically.

    Parameters
    ----------
    path
        Output ``.tlt`` file.
    angles
        ``(n,)`` angles in degrees (tensor on any device, or a sequence of numbers).
    force
        Overwrite an existing file.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    InputError
        ``angles`` is not a non-empty 1-D set of finite numbers.
    """
    # dtype at conversion: a list of Python floats would otherwise pass through float32.
    values = torch.as_tensor(angles, dtype=torch.float64).detach().to(device="cpu")
    if values.ndim != 1 or values.numel() == 0:
        raise InputError(path, f"expected a non-empty 1-D set of angles, got {tuple(values.shape)}")
    if not bool(torch.isfinite(values).all()):
        raise InputError(path, "refusing to write NaN or infinite angles")
    text = "".join(f"{value:10.6f}\n" for value in values.tolist())
    with atomic_write(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_xf(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read IMOD 2-D linear transforms (``.xf``), one line per image.

    Each line ``A11 A12 A21 A22 DX DY`` becomes ``[[A11, A12, DX], [A21, A22, DY]]``. IMOD's
    transform maps a point of the raw image to the aligned image, both in pixels relative
    to the image centre: ``x' = A11 x + A12 y + DX``, ``y' = A21 x + A22 y + DY``.

    Parameters
    ----------
    path
        The ``.xf`` file.

    Returns
    -------
    torch.Tensor
        ``(n, 2, 3)`` float64 affine matrices, in file order.

    Raises
    ------
    InputError
        The file is missing, empty, or a line is not six finite numbers.
    """
    rows = torch.tensor(_numeric_rows(path, 6), dtype=torch.float64)
    linear = rows[:, :4].reshape(-1, 2, 2)
    shifts = rows[:, 4:].reshape(-1, 2, 1)
    return torch.cat([linear, shifts], dim=2)


def write_xf(path: str | os.PathLike[str], xf: torch.Tensor, *, force: bool = False) -> None:
    """Write IMOD 2-D linear transforms (``.xf``), atomically.

    Each ``(2, 3)`` matrix ``[[A11, A12, DX], [A21, A22, DY]]`` becomes one line
    ``A11 A12 A21 A22 DX DY`` in IMOD's layout (``%12.7f`` four times, ``%12.3f`` twice);
    a value too wide for its column keeps one separating space. See `read_xf` for the
    meaning of the transform.

    Parameters
    ----------
    path
        Output ``.xf`` file.
    xf
        ``(n, 2, 3)`` affine matrices (any device, any float dtype).
    force
        Overwrite an existing file.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    InputError
        ``xf`` is not a non-empty ``(n, 2, 3)`` tensor of finite numbers.
    """
    matrices = torch.as_tensor(xf, dtype=torch.float64).detach().to(device="cpu")
    if matrices.ndim != 3 or matrices.shape[1:] != (2, 3) or matrices.shape[0] == 0:
        shape = tuple(matrices.shape)
        raise InputError(path, f"expected transforms of shape (n, 2, 3), got {shape}")
    if not bool(torch.isfinite(matrices).all()):
        raise InputError(path, "refusing to write NaN or infinite values")
    lines = []
    for m in matrices.tolist():
        linear = (m[0][0], m[0][1], m[1][0], m[1][1])
        lines.append(
            "".join(f" {v:11.7f}" for v in linear)
            + "".join(f" {v:11.3f}" for v in (m[0][2], m[1][2]))
            + "\n"
        )
    with atomic_write(path, force=force) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")

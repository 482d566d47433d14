"""STAR files (RELION 5): a strict reader of our own, writing through ``starfile``.

``starfile``'s reader skips what it cannot parse (a row cut short, a repeated label), so
damaged files came back as silently shorter or shifted tables; this reader refuses them
with the line number instead.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import starfile

from inversa.core.errors import InputError
from inversa.core.io._atomic import atomic_write
from inversa.core.io._read import read_input_bytes

__all__ = [
    "RELION5_PARTICLE_COLUMNS",
    "make_optics_table",
    "read_particles",
    "read_star",
    "write_particles",
    "write_star",
]

RELION5_PARTICLE_COLUMNS: tuple[str, ...] = (
    "rlnTomoName",
    "rlnCenteredCoordinateXAngst",
    "rlnCenteredCoordinateYAngst",
    "rlnCenteredCoordinateZAngst",
    "rlnOriginXAngst",
    "rlnOriginYAngst",
    "rlnOriginZAngst",
    "rlnAngleRot",
    "rlnAngleTilt",
    "rlnAnglePsi",
    "rlnTomoSubtomogramRot",
    "rlnTomoSubtomogramTilt",
    "rlnTomoSubtomogramPsi",
    "rlnOpticsGroup",
    "rlnRandomSubset",
)
"""Columns of a RELION 5 subtomogram particle table, in RELION's order.

Pixel sizes live in the optics table (`make_optics_table`), not here. Coordinates are
in Angstrom about the tomogram centre; origins shift the particle onto the reference;
angles are RELION ZYZ Euler angles in degrees.
"""

_DEFAULT_REQUIRED = (
    "rlnTomoName",
    "rlnCenteredCoordinateXAngst",
    "rlnCenteredCoordinateYAngst",
    "rlnCenteredCoordinateZAngst",
)


_QUOTED = re.compile(r"""'(.*?)'(?=\s|$)|"(.*?)"(?=\s|$)""")

# Tokens that mean "no value": RELION writes nan, starfile writes <NA> for missing entries.
_MISSING = {"<NA>": "nan"}

# Columns that RELION defines as numbers; a text value there is a damaged file, not data.
_NUMERIC_COLUMNS = frozenset(RELION5_PARTICLE_COLUMNS[1:]) | {
    "rlnVoltage",
    "rlnSphericalAberration",
    "rlnAmplitudeContrast",
    "rlnImagePixelSize",
    "rlnTomoTiltSeriesPixelSize",
    "rlnTomoSubtomogramBinning",
    "rlnImageDimensionality",
    "rlnImageSize",
}


def _decode(raw: bytes) -> str:
    # Old RELION and hand-edited files carry Latin-1 bytes (often in comments); every
    # byte is valid Latin-1, so such a file stays readable rather than failing on UTF-8.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.removeprefix("\ufeff")


def _split_line(path: str | os.PathLike[str], number: int, line: str) -> list[str]:
    """Split one STAR line into tokens; ``#`` at the start of a token begins a comment."""
    if "'" not in line and '"' not in line:
        tokens = line.split()
        for i, token in enumerate(tokens):
            if token.startswith("#"):
                return tokens[:i]
        return tokens
    tokens: list[str] = []
    pos, end = 0, len(line)
    while pos < end:
        if line[pos].isspace():
            pos += 1
            continue
        if line[pos] == "#":
            break
        if line[pos] in "'\"":
            match = _QUOTED.match(line, pos)
            if match is None:
                raise InputError(path, f"line {number}: unclosed quote")
            tokens.append(match.group(1) if match.group(1) is not None else match.group(2))
            pos = match.end()
            continue
        stop = pos
        while stop < end and not line[stop].isspace():
            stop += 1
        tokens.append(line[pos:stop])
        pos = stop
    return tokens


def _numericise(value: str) -> int | float | str:
    value = _MISSING.get(value, value)
    for kind in (int, float):
        try:
            return kind(value)
        except (ValueError, OverflowError):
            pass
    return value


def _column(values: list[str]) -> np.ndarray:
    """One loop column: int64 if every value is an integer, float64 if a number, else text."""
    cleaned = [_MISSING.get(v, v) for v in values]
    # Python's int/float rather than numpy's string casts, which wrap oversized integers.
    try:
        return np.array([int(v) for v in cleaned], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:
        return np.array([float(v) for v in cleaned], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=object)


class _Block:
    """One ``data_`` block being read: either key-value pairs or a single loop."""

    def __init__(self, name: str, line: int) -> None:
        self.name = name
        self.line = line
        self.pairs: dict[str, str] = {}
        self.labels: list[str] | None = None
        self.rows: list[list[str]] = []

    def table(self, path: str | os.PathLike[str]) -> pd.DataFrame:
        if self.labels is not None:
            columns = list(zip(*self.rows, strict=True)) if self.rows else [()] * len(self.labels)
            return pd.DataFrame(
                {label: _column(list(col)) for label, col in zip(self.labels, columns, strict=True)}
            )
        if not self.pairs:
            raise InputError(path, f"line {self.line}: block data_{self.name} is empty")
        return pd.DataFrame([{key: _numericise(v) for key, v in self.pairs.items()}])


def _parse_star(path: str | os.PathLike[str], text: str) -> dict[str, pd.DataFrame]:
    blocks: dict[str, _Block] = {}
    block: _Block | None = None
    in_header = False  # reading the _labels of a loop_
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith(";"):
            raise InputError(path, f"line {number}: multi-line text fields are not supported")
        tokens = _split_line(path, number, line)
        if not tokens:
            continue
        first = tokens[0]
        if first.startswith("data_"):
            if len(tokens) > 1:
                raise InputError(path, f"line {number}: unexpected text after {first}")
            name = first[5:]
            if name in blocks:
                raise InputError(path, f"line {number}: block data_{name} appears twice")
            block = blocks[name] = _Block(name, number)
            in_header = False
            continue
        if block is None:
            raise InputError(
                path, f"line {number}: no data block before {first!r}; is this a STAR file?"
            )
        if first == "loop_":
            if len(tokens) > 1 or block.labels is not None or block.pairs:
                raise InputError(
                    path, f"line {number}: only one loop_ (and nothing else) per block is supported"
                )
            block.labels, in_header = [], True
            continue
        if first.startswith("_"):
            label = first[1:]
            if in_header and block.labels is not None:
                if len(tokens) > 1 or not label:
                    raise InputError(path, f"line {number}: bad loop label {line.strip()!r}")
                if label in block.labels:
                    raise InputError(path, f"line {number}: column {label} listed twice")
                block.labels.append(label)
                continue
            if block.labels is not None:
                raise InputError(
                    path, f"line {number}: {first} after the loop of data_{block.name}"
                )
            if len(tokens) != 2 or not label:
                raise InputError(
                    path, f"line {number}: expected '_name value', got {line.strip()!r}"
                )
            if label in block.pairs:
                raise InputError(path, f"line {number}: key {label} listed twice")
            block.pairs[label] = tokens[1]
            continue
        if block.labels is None:
            raise InputError(path, f"line {number}: value {first!r} outside a loop")
        if not block.labels:
            raise InputError(path, f"line {number}: loop_ of data_{block.name} has no labels")
        in_header = False
        if len(tokens) != len(block.labels):
            raise InputError(
                path,
                f"line {number}: expected {len(block.labels)} values, found {len(tokens)} "
                "(file cut short or damaged?)",
            )
        block.rows.append(tokens)
    if not blocks:
        raise InputError(path, "no data block found; is this a STAR file?")
    return {name: b.table(path) for name, b in blocks.items()}


def read_star(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Read every data block of a STAR file.

    The reader is strict: anything it cannot read exactly (a row with the wrong number of
    values, as in a file cut short; a column listed twice; an empty block; an unclosed
    quote) is an error naming the line, never silently dropped. Files in UTF-8 or
    Latin-1 are accepted.

    Parameters
    ----------
    path
        The STAR file.

    Returns
    -------
    dict[str, pandas.DataFrame]
        One table per block, keyed by block name (``data_optics`` -> ``"optics"``; an
        unnamed ``data_`` block -> ``""``). Key-value blocks (no ``loop_``) become
        one-row tables. A loop column whose values are all integers is int64, all
        numbers float64 (``nan`` and ``<NA>`` read as NaN), otherwise text.

    Raises
    ------
    InputError
        The file is missing, unreadable, holds no data block, or is malformed.
    """
    return _parse_star(path, _decode(read_input_bytes(path)))


def write_star(
    path: str | os.PathLike[str], tables: dict[str, pd.DataFrame], *, force: bool = False
) -> None:
    """Write tables as loop blocks of a STAR file, in dict order, atomically.

    Floats are written with six decimals (as RELION does).

    Parameters
    ----------
    path
        Output STAR file.
    tables
        Block name -> table; each becomes ``data_<name>`` with a ``loop_``.
    force
        Overwrite an existing file.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    InputError
        ``tables`` is empty, a value is not a `pandas.DataFrame`, or a name or text value
        cannot be written in STAR syntax (whitespace or quotes in names; quotes, tabs or
        line breaks in text, or text starting like STAR syntax: ``#``, ``_``, ``data_``).
    """
    if not tables:
        raise InputError(path, "no tables to write")
    for name, table in tables.items():
        if not isinstance(table, pd.DataFrame):
            raise InputError(path, f"block {name!r} is a {type(table).__name__}, not a DataFrame")
        _check_writable(path, name, table)
    with atomic_write(path, force=force) as tmp:
        starfile.write(dict(tables), tmp)


def _check_numeric(path: str | os.PathLike[str], block: str, table: pd.DataFrame) -> None:
    """Refuse text or NaN/inf in the columns RELION defines as numbers."""
    for column in table.columns:
        if column not in _NUMERIC_COLUMNS:
            continue
        values = table[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            finite = np.isfinite(values.to_numpy(dtype=np.float64))
            if finite.all():
                continue
            row = int(np.flatnonzero(~finite)[0])
            problem = "NaN or infinite value"
        else:
            row = next((i for i, v in enumerate(values) if isinstance(_numericise(str(v)), str)), 0)
            problem = f"{values.iloc[row]!r} is not a number"
        raise InputError(path, f"data_{block}, column {column}, row {row + 1}: {problem}")


def _check_writable(path: str | os.PathLike[str], name: str, table: pd.DataFrame) -> None:
    """Refuse names and text that the STAR syntax cannot hold, so files read back as written."""
    for label in (name, *table.columns):
        if not isinstance(label, str) or any(c.isspace() or c in "'\"#" for c in label):
            raise InputError(path, f"block or column name {label!r} cannot be written to STAR")
    for column in table.columns:
        if table[column].dtype.kind in "biufc":
            continue
        for value in table[column]:
            if isinstance(value, str) and (
                any(c in value for c in "'\"\n\r\t\f\v")
                or value.startswith(("#", "_", ";", "data_", "loop_"))
            ):
                raise InputError(path, f"column {column}: text {value!r} cannot be written to STAR")


def read_particles(
    path: str | os.PathLike[str], *, required: Sequence[str] = _DEFAULT_REQUIRED
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a RELION 5 particle STAR file (blocks ``optics`` and ``particles``).

    Parameters
    ----------
    path
        The particle STAR file.
    required
        Columns the particle table must have; by default the tomogram name and the
        centred coordinates.

    Returns
    -------
    particles : pandas.DataFrame
        One row per particle.
    optics : pandas.DataFrame
        One row per optics group.

    Raises
    ------
    InputError
        The file is malformed (see `read_star`), a block or a required column is missing, a
        column RELION defines as numeric holds text, NaN or infinity, or a particle names an
        optics group the optics table lacks.
    """
    blocks = read_star(path)
    missing_blocks = [name for name in ("optics", "particles") if name not in blocks]
    if missing_blocks:
        raise InputError(
            path,
            f"missing data block(s) {', '.join('data_' + b for b in missing_blocks)}; "
            f"found {', '.join('data_' + b for b in blocks)}",
        )
    particles, optics = blocks["particles"], blocks["optics"]
    missing = [column for column in required if column not in particles.columns]
    if missing:
        raise InputError(path, f"particle table lacks column(s): {', '.join(missing)}")
    for name, table in (("optics", optics), ("particles", particles)):
        _check_numeric(path, name, table)
    if "rlnOpticsGroup" in particles.columns:
        if "rlnOpticsGroup" not in optics.columns:
            raise InputError(path, "optics table lacks column rlnOpticsGroup")
        unknown = set(particles["rlnOpticsGroup"]) - set(optics["rlnOpticsGroup"])
        if unknown:
            raise InputError(path, f"particles use unknown optics group(s) {sorted(unknown)}")
    return particles, optics


def write_particles(
    path: str | os.PathLike[str],
    particles: pd.DataFrame,
    optics: pd.DataFrame,
    *,
    force: bool = False,
) -> None:
    """Write a RELION 5 particle STAR file: block ``optics`` then ``particles``, atomically.

    Parameters
    ----------
    path
        Output STAR file.
    particles
        Particle table (see `RELION5_PARTICLE_COLUMNS`).
    optics
        Optics table (see `make_optics_table`).
    force
        Overwrite an existing file.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    InputError
        A table is not a `pandas.DataFrame`.
    """
    write_star(path, {"optics": optics, "particles": particles}, force=force)


def make_optics_table(
    *,
    pixel_size: float,
    voltage: float = 300.0,
    cs: float = 2.7,
    amplitude_contrast: float = 0.07,
    tomo_tilt_series_pixel_size: float | None = None,
) -> pd.DataFrame:
    """Build a one-group RELION 5 optics table for 3-D subtomograms.

    Parameters
    ----------
    pixel_size
        Pixel size of the subtomograms in Angstrom (``rlnImagePixelSize``).
    voltage
        Acceleration voltage in kV.
    cs
        Spherical aberration in mm.
    amplitude_contrast
        Amplitude contrast fraction.
    tomo_tilt_series_pixel_size
        Pixel size of the unbinned tilt series in Angstrom; ``pixel_size`` when ``None``.
        The binning factor ``rlnTomoSubtomogramBinning`` is their ratio.

    Returns
    -------
    pandas.DataFrame
        One row with columns rlnOpticsGroup (1), rlnOpticsGroupName, rlnVoltage,
        rlnSphericalAberration, rlnAmplitudeContrast, rlnImagePixelSize,
        rlnTomoTiltSeriesPixelSize, rlnTomoSubtomogramBinning, rlnImageDimensionality (3).

    Raises
    ------
    InputError
        A pixel size or the voltage is not positive, or the amplitude contrast is
        outside [0, 1).
    """
    ts_pixel_size = tomo_tilt_series_pixel_size
    if ts_pixel_size is None:
        ts_pixel_size = pixel_size
    for name, value in (
        ("pixel_size", pixel_size),
        ("tomo_tilt_series_pixel_size", ts_pixel_size),
        ("voltage", voltage),
    ):
        if not (math.isfinite(value) and value > 0):
            raise InputError(None, f"{name} must be positive, got {value}")
    if not (math.isfinite(cs) and cs >= 0):
        raise InputError(None, f"cs must be non-negative, got {cs}")
    if not 0 <= amplitude_contrast < 1:
        raise InputError(None, f"amplitude_contrast must be in [0, 1), got {amplitude_contrast}")
    return pd.DataFrame(
        {
            "rlnOpticsGroup": [1],
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnVoltage": [float(voltage)],
            "rlnSphericalAberration": [float(cs)],
            "rlnAmplitudeContrast": [float(amplitude_contrast)],
            "rlnImagePixelSize": [float(pixel_size)],
            "rlnTomoTiltSeriesPixelSize": [float(ts_pixel_size)],
            "rlnTomoSubtomogramBinning": [float(pixel_size) / float(ts_pixel_size)],
            "rlnImageDimensionality": [3],
        }
    )

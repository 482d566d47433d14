"""STAR files (RELION 5) through ``starfile``."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import pandas as pd
import starfile

from inversa.core.errors import InputError
from inversa.core.io._atomic import atomic_write

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


def read_star(path: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Read every data block of a STAR file.

    Parameters
    ----------
    path
        The STAR file.

    Returns
    -------
    dict[str, pandas.DataFrame]
        One table per block, keyed by block name (``data_optics`` -> ``"optics"``; an
        unnamed ``data_`` block -> ``""``). Key-value blocks (no ``loop_``) become
        one-row tables.

    Raises
    ------
    InputError
        The file is missing, unreadable, or holds no data block.
    """
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    try:
        blocks = starfile.read(path, always_dict=True)
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a readable STAR file ({err})") from err
    if not blocks:
        raise InputError(path, "no data block found; is this a STAR file?")
    return {
        name: block if isinstance(block, pd.DataFrame) else pd.DataFrame([block])
        for name, block in blocks.items()
    }


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
        ``tables`` is empty or a value is not a `pandas.DataFrame`.
    """
    if not tables:
        raise InputError(path, "no tables to write")
    for name, table in tables.items():
        if not isinstance(table, pd.DataFrame):
            raise InputError(path, f"block {name!r} is a {type(table).__name__}, not a DataFrame")
    with atomic_write(path, force=force) as tmp:
        starfile.write(dict(tables), tmp)


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
        A block or a required column is missing, or a particle names an optics group the
        optics table lacks.
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

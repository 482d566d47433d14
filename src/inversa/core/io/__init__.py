"""File input/output: MRC, STAR (RELION 5), ``.tlt`` and IMOD ``.xf``, atomic writes.

Thin wrappers over ``mrcfile`` and ``starfile`` that return PyTorch tensors and pandas
tables and turn bad files into `inversa.core.errors.InputError` naming the file. Every
writer goes through `atomic_write`: a failed write leaves nothing behind, and an
existing output is only replaced with ``force=True``.
"""

from inversa.core.io._atomic import atomic_write
from inversa.core.io._mrc import read_mrc, write_mrc
from inversa.core.io._star import (
    RELION5_PARTICLE_COLUMNS,
    make_optics_table,
    read_particles,
    read_star,
    write_particles,
    write_star,
)
from inversa.core.io._tilt import read_tlt, read_xf, write_tlt, write_xf

__all__ = [
    "RELION5_PARTICLE_COLUMNS",
    "atomic_write",
    "make_optics_table",
    "read_mrc",
    "read_particles",
    "read_star",
    "read_tlt",
    "read_xf",
    "write_mrc",
    "write_particles",
    "write_star",
    "write_tlt",
    "write_xf",
]

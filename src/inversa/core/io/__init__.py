"""File input/output: MRC, STAR (RELION 5), ``.tlt`` and IMOD ``.xf``, atomic writes.

Per-tilt defocus files (ctffind tables, IMOD ``.defocus``): `read_ctffind`,
`read_imod_defocus`.

Thin wrappers over ``mrcfile`` (and ``starfile`` for writing; STAR files are read by a
strict parser of our own) that return PyTorch tensors and pandas tables and turn every
malformed file into one `inversa.core.errors.InputError` naming the file; JSON
goes through `read_json` and `write_json`. Every writer goes through `atomic_write`: a
failed write leaves nothing behind, and an existing output is only replaced with
``force=True``; `stream_mrc` writes a volume by z slabs or boxes of rows (memory flat in
its size);
`check_outputs` refuses unwritable outputs before any work and
`output_folder` removes what a failed run created.
"""

from inversa.core.io._atomic import atomic_write
from inversa.core.io._defocus import read_ctffind, read_imod_defocus
from inversa.core.io._json import read_json, write_json
from inversa.core.io._lock import output_lock
from inversa.core.io._mrc import read_mrc, write_mrc
from inversa.core.io._outputs import check_outputs, output_folder
from inversa.core.io._star import (
    RELION5_PARTICLE_COLUMNS,
    make_optics_table,
    read_particles,
    read_star,
    write_particles,
    write_star,
)
from inversa.core.io._stream import MrcSlabWriter, stream_mrc
from inversa.core.io._tilt import read_tlt, read_xf, write_tlt, write_xf

__all__ = [
    "RELION5_PARTICLE_COLUMNS",
    "MrcSlabWriter",
    "atomic_write",
    "check_outputs",
    "make_optics_table",
    "output_folder",
    "output_lock",
    "read_ctffind",
    "read_imod_defocus",
    "read_json",
    "read_mrc",
    "read_particles",
    "read_star",
    "read_tlt",
    "read_xf",
    "stream_mrc",
    "write_json",
    "write_mrc",
    "write_particles",
    "write_star",
    "write_tlt",
    "write_xf",
]

"""Subtomogram alignment and averaging.

- :func:`align_volumes` — frequency-marched Newton on the wedge-normalised rotational
  correlation (Wigner-D expansion), alternated with FFT translation search.
- :func:`align_exhaustive` — the matched-filter baseline over SO(3) grids.
- :func:`average_particles`, :func:`refine` — wedge-weighted gold-standard averaging and the
  align -> average -> FSC loop.
- :func:`extract_subtomograms`, RELION 5 pose conversion (``poses_from_table``,
  ``poses_to_table``).
"""

from inversa.alignment._average import AverageResult, average_particles
from inversa.alignment._exhaustive import ExhaustiveConfig, align_exhaustive
from inversa.alignment._extract import Extraction, extract_subtomograms
from inversa.alignment._fast import AlignmentConfig, align_volumes
from inversa.alignment._refine import (
    IterationStats,
    RefineConfig,
    RefineResult,
    align_particles,
    refine,
)
from inversa.alignment._result import AlignmentResult
from inversa.alignment._star import poses_from_table, poses_to_table
from inversa.alignment._volumes import (
    find_shift,
    rotate_volume,
    shift_volume,
    spherical_mask,
    wedge_mask,
)

__all__ = [
    "AlignmentConfig",
    "AlignmentResult",
    "AverageResult",
    "ExhaustiveConfig",
    "Extraction",
    "IterationStats",
    "RefineConfig",
    "RefineResult",
    "align_exhaustive",
    "align_particles",
    "align_volumes",
    "average_particles",
    "extract_subtomograms",
    "find_shift",
    "poses_from_table",
    "poses_to_table",
    "refine",
    "rotate_volume",
    "shift_volume",
    "spherical_mask",
    "wedge_mask",
]

"""Subtomogram alignment and averaging.

- :func:`align_newton` (:class:`NewtonConfig`, method ``"newton"``, the default) —
  frequency-marched Newton on the wedge-normalised rotational correlation (Wigner-D
  expansion), alternated with FFT translation search.
- :func:`align_exhaustive` (:class:`ExhaustiveConfig`, method ``"exhaustive"``) — the
  matched-filter baseline over SO(3) grids.
- :func:`average_particles`, :func:`refine` — wedge-weighted or CTF-corrected (Wiener)
  gold-standard averaging and the align -> average -> FSC loop.
- :class:`ParticleCTF` — per-particle 3-D CTF x exposure weights (the tilts' CTFs at the
  particle's defocus, dose-filtered, as central slices), used by both aligners and the
  average in place of the binary wedge.
- :func:`diagnose_alignment`, :func:`diagnose_refinement` — whether poses can be trusted,
  judged without ground truth.
- :func:`extract_subtomograms`, RELION 5 pose conversion (``poses_from_table``,
  ``poses_to_table``) and the STAR column names.
"""

from inversa.alignment._average import AverageResult, average_particles, wiener_constants
from inversa.alignment._ctfweight import ParticleCTF, ctf_weight_volume
from inversa.alignment._diagnostics import (
    AlignmentDiagnostics,
    DiagnosticsConfig,
    diagnose_alignment,
    diagnose_refinement,
)
from inversa.alignment._exhaustive import ExhaustiveConfig, align_exhaustive
from inversa.alignment._extract import Extraction, extract_subtomograms
from inversa.alignment._newton import NewtonConfig, align_newton
from inversa.alignment._refine import (
    ALIGNERS,
    AlignerConfig,
    IterationStats,
    RefineConfig,
    RefineResult,
    align_particles,
    aligner_config,
    refine,
)
from inversa.alignment._result import AlignmentResult
from inversa.alignment._star import (
    COORDINATE_COLUMNS,
    PIXEL_COORDINATE_COLUMNS,
    SUBTOMOGRAM_ANGLE_COLUMNS,
    centred_from_pixel_coordinates,
    image_paths,
    pixel_size_of,
    poses_from_table,
    poses_to_table,
    positions_in_tomogram,
    random_subsets,
    rebase_paths,
    safe_file_stem,
    to_subtomogram_frame,
    to_tomogram_frame,
)
from inversa.alignment._volumes import (
    find_shift,
    rotate_volume,
    shift_volume,
    spherical_mask,
    wedge_mask,
)

__all__ = [
    "ALIGNERS",
    "COORDINATE_COLUMNS",
    "PIXEL_COORDINATE_COLUMNS",
    "SUBTOMOGRAM_ANGLE_COLUMNS",
    "AlignerConfig",
    "AlignmentDiagnostics",
    "AlignmentResult",
    "AverageResult",
    "DiagnosticsConfig",
    "ExhaustiveConfig",
    "Extraction",
    "IterationStats",
    "NewtonConfig",
    "ParticleCTF",
    "RefineConfig",
    "RefineResult",
    "align_exhaustive",
    "align_newton",
    "align_particles",
    "aligner_config",
    "average_particles",
    "centred_from_pixel_coordinates",
    "ctf_weight_volume",
    "diagnose_alignment",
    "diagnose_refinement",
    "extract_subtomograms",
    "find_shift",
    "image_paths",
    "pixel_size_of",
    "poses_from_table",
    "poses_to_table",
    "positions_in_tomogram",
    "random_subsets",
    "rebase_paths",
    "refine",
    "rotate_volume",
    "safe_file_stem",
    "shift_volume",
    "spherical_mask",
    "to_subtomogram_frame",
    "to_tomogram_frame",
    "wedge_mask",
    "wiener_constants",
]

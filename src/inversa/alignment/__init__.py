"""Subtomogram alignment and averaging (frequency-marched Newton, exhaustive baseline)."""

from inversa.alignment._result import AlignmentResult
from inversa.alignment._volumes import (
    find_shift,
    rotate_volume,
    shift_volume,
    spherical_mask,
    wedge_mask,
)

__all__ = [
    "AlignmentResult",
    "find_shift",
    "rotate_volume",
    "shift_volume",
    "spherical_mask",
    "wedge_mask",
]

"""The result every aligner returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["AlignmentResult"]


@dataclass(frozen=True)
class AlignmentResult:
    """Poses of N particles relative to a reference.

    Each particle is approximately the reference rotated by ``rotations[i]`` (about the
    box centre, ``particle(r) = reference(R^T r)``) and then shifted by ``shifts[i]``
    (``particle(r) = rotated(r - s)``), the conventions of :mod:`inversa.core.rotations`
    and RELION's angles (``matrix_to_euler`` gives rlnAngleRot/Tilt/Psi).

    Attributes
    ----------
    rotations
        ``(N, 3, 3)``.
    shifts
        ``(N, 3)`` voxels (x, y, z).
    scores
        ``(N,)`` normalised (wedge-weighted) cross-correlation at the pose.
    seconds
        Wall-clock time of the alignment.
    """

    rotations: torch.Tensor
    shifts: torch.Tensor
    scores: torch.Tensor
    seconds: float = 0.0

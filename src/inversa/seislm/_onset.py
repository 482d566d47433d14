"""Onsets from probability curves: the most probable P that precedes an S, and vice versa."""

from __future__ import annotations

import torch

__all__ = ["paired_onsets"]


def paired_onsets(phase: torch.Tensor, *, floor: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """P and S onset of each window: the most probable P-before-S pair.

    The SeisBench onset task takes the argmax of each curve on its own, so a noise burst
    or an S that the P curve answers weakly can outrank a weak true P. Here the P onset
    maximises ``P(i) * max(max_{j > i} S(j), floor)`` (a P is worth as much as the best S
    that follows it) and the S onset ``S(j) * max(max_{i < j} P(i), floor)``; ``floor``
    keeps a window whose other phase is missing (cut off, or too weak) at the plain
    argmax of the curve, up to ties.

    Parameters
    ----------
    phase
        ``(n, >= 2, samples)`` probabilities, P in channel 0 and S in channel 1.
    floor
        Lower bound of the other phase's support (in (0, 1]; 1 gives the plain argmax).

    Returns
    -------
    (p, s)
        ``(n,)`` int64 sample indices.
    """
    p, s = phase[:, 0].double(), phase[:, 1].double()
    # largest S strictly after each sample: flip, running max, shift by one
    s_after = torch.cummax(s.flip(-1), dim=-1).values.flip(-1)
    s_after = torch.cat([s_after[:, 1:], torch.zeros_like(s_after[:, :1])], dim=-1)
    p_before = torch.cummax(p, dim=-1).values
    p_before = torch.cat([torch.zeros_like(p_before[:, :1]), p_before[:, :-1]], dim=-1)
    p_on = (p * s_after.clamp(min=floor)).argmax(-1)
    s_on = (s * p_before.clamp(min=floor)).argmax(-1)
    return p_on, s_on

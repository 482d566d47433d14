"""Hyperparameter search for JDR on validation splits only."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from inversa.core.errors import InputError
from inversa.jdr._algorithm import DENOISE_CHOICES, JDRConfig
from inversa.jdr._train import TrainConfig, evaluate

__all__ = ["SEARCH_SPACE", "search_jdr"]


#: The search space. It spans the public code's tuned cSBM settings, which include
#: K = 80, a single eigenvector moved all the way (L_A = 1, eta_A = 1), the graph alone
#: denoised and, at phi = +-1, the features alone; a narrower space (K <= 20, eta <= 0.6,
#: both always denoised) missed them. ``denoise``: what the output replaces.
SEARCH_SPACE = {
    "iterations": (1, 80),
    "l": (1, 20),
    "eta": (0.0, 1.0),
    "eta_x2": (0.0, 1.0),
    "denoise": tuple(DENOISE_CHOICES),
    "abs_ordering": (False, True),
    "offset": (0, 1),
}


def _sample(rng: np.random.Generator, base: JDRConfig, max_l: int) -> JDRConfig:
    space = SEARCH_SPACE
    hi = max(1, min(max_l, space["l"][1]))
    denoise_a, denoise_x = DENOISE_CHOICES[
        space["denoise"][int(rng.integers(0, len(space["denoise"])))]
    ]
    return dataclasses.replace(
        base,
        iterations=int(rng.integers(space["iterations"][0], space["iterations"][1] + 1)),
        l_a=int(rng.integers(space["l"][0], hi + 1)),
        l_x=int(rng.integers(space["l"][0], hi + 1)),
        eta_a=float(rng.uniform(*space["eta"])),
        eta_x=float(rng.uniform(*space["eta"])),
        eta_x2=float(rng.uniform(*space["eta_x2"])),
        denoise_a=denoise_a,
        denoise_x=denoise_x,
        abs_ordering=space["abs_ordering"][int(rng.integers(0, 2))],
        offset=int(rng.integers(space["offset"][0], space["offset"][1] + 1)),
    )


def search_jdr(
    data,
    *,
    trials: int,
    splits: int = 2,
    split: str = "sparse",
    train: TrainConfig | None = None,
    base: JDRConfig | None = None,
    initial: Sequence[JDRConfig] = (),
    seed: int = 0,
) -> tuple[JDRConfig, float]:
    """Random search of the JDR parameters within :data:`SEARCH_SPACE`.

    The ``initial`` candidates are scored first (a warm start, e.g. settings tuned on
    similar graphs, as Optuna's ``enqueue_trial``); then K, L_A, L_X, eta_A, eta_X,
    eta_X2, what is denoised (graph, features or both), ordering and offset are drawn at
    random ``trials`` times. Among candidates of equal validation accuracy the first wins.

    Each candidate rewires ``data`` and is scored by the mean *validation* accuracy of
    the downstream model over ``splits`` random splits; test labels are never used.
    Search splits use seeds ``10_000 + seed + s``, disjoint from the evaluation splits
    of :func:`evaluate` with small seeds.

    Parameters
    ----------
    data
        PyG ``Data`` with ``x``, ``edge_index`` and ``y``.
    trials
        Number of random candidates (0 with ``initial`` scores only those).
    splits, split
        Validation splits per candidate and their kind.
    train
        Downstream model settings (default :class:`TrainConfig`).
    base
        Fixed settings (top_k, method, ...) of every random candidate (default
        :class:`JDRConfig`).
    initial
        Candidates scored before the random ones, used as given.
    seed
        Seed of the search.

    Returns
    -------
    config, val_accuracy
        The best candidate and its mean validation accuracy (percent).
    """
    from inversa.jdr._transform import JDR

    if trials < 0 or trials + len(initial) < 1:
        raise InputError(
            None, f"need at least one candidate (trials={trials}, {len(initial)} initial)"
        )
    train = TrainConfig() if train is None else train
    base = JDRConfig() if base is None else base
    rng = np.random.default_rng(seed)
    max_l = min(data.num_nodes // 4, data.num_features)
    best, best_val = None, -np.inf
    candidates = [*initial, *(_sample(rng, base, max_l) for _ in range(trials))]
    for cand in candidates:
        rewired = JDR(config=cand)(data)
        acc = evaluate(rewired, splits=splits, split=split, config=train, seed=10_000 + seed)
        if acc.val_mean > best_val:
            best, best_val = cand, acc.val_mean
    return best, float(best_val)

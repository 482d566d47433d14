"""Hyperparameter search for JDR on validation splits only."""

from __future__ import annotations

import dataclasses

import numpy as np

from inversa.core.errors import InputError
from inversa.jdr._algorithm import JDRConfig
from inversa.jdr._train import TrainConfig, evaluate

__all__ = ["search_jdr"]


def _sample(rng: np.random.Generator, base: JDRConfig, max_l: int) -> JDRConfig:
    hi = max(1, min(max_l, 20))
    return dataclasses.replace(
        base,
        iterations=int(rng.integers(1, 21)),
        l_a=int(rng.integers(1, hi + 1)),
        l_x=int(rng.integers(1, hi + 1)),
        eta_a=float(rng.uniform(0.0, 0.6)),
        eta_x=float(rng.uniform(0.0, 0.6)),
        eta_x2=float(rng.uniform(0.0, 1.0)),
        abs_ordering=bool(rng.integers(0, 2)),
        offset=int(rng.integers(0, 2)),
    )


def search_jdr(
    data,
    *,
    trials: int,
    splits: int = 2,
    split: str = "sparse",
    train: TrainConfig | None = None,
    base: JDRConfig | None = None,
    seed: int = 0,
) -> tuple[JDRConfig, float]:
    """Random search over (K, L_A, L_X, eta_A, eta_X, eta_X2, ordering, offset).

    Each candidate rewires ``data`` and is scored by the mean *validation* accuracy of
    the downstream model over ``splits`` random splits; test labels are never used.
    Search splits use seeds ``10_000 + seed + s``, disjoint from the evaluation splits
    of :func:`evaluate` with small seeds.

    Parameters
    ----------
    data
        PyG ``Data`` with ``x``, ``edge_index`` and ``y``.
    trials
        Number of random candidates.
    splits, split
        Validation splits per candidate and their kind.
    train
        Downstream model settings (default :class:`TrainConfig`).
    base
        Fixed settings (top_k, method, ...) of every candidate (default :class:`JDRConfig`).
    seed
        Seed of the search.

    Returns
    -------
    config, val_accuracy
        The best candidate and its mean validation accuracy (percent).
    """
    from inversa.jdr._transform import JDR

    if trials < 1:
        raise InputError(None, "trials must be >= 1")
    train = TrainConfig() if train is None else train
    base = JDRConfig() if base is None else base
    rng = np.random.default_rng(seed)
    max_l = min(data.num_nodes // 4, data.num_features)
    best, best_val = None, -np.inf
    for _ in range(trials):
        cand = _sample(rng, base, max_l)
        rewired = JDR(config=cand)(data)
        acc = evaluate(rewired, splits=splits, split=split, config=train, seed=10_000 + seed)
        if acc.val_mean > best_val:
            best, best_val = cand, acc.val_mean
    return best, float(best_val)

"""The contextual stochastic block model (cSBM) with the homophily knob phi."""

from __future__ import annotations

import math

import numpy as np
import torch

from inversa.core.errors import InputError

__all__ = ["csbm", "csbm_parameters"]


def csbm_parameters(
    *, phi: float, n_nodes: int, n_features: int, epsilon: float = 3.25
) -> tuple[float, float]:
    """Graph signal ``lambda`` and feature signal ``mu`` of the cSBM for a given phi.

    On the ellipse ``lambda^2 + mu^2 / gamma = 1 + epsilon`` with ``gamma = n / F``:
    ``lambda = sqrt(1 + eps) sin(phi pi / 2)``, ``mu = sqrt(gamma (1 + eps)) cos(phi pi / 2)``.
    phi = 1: only the graph is informative (homophilic), phi = -1: only the graph,
    heterophilic, phi = 0: only the features.
    """
    if not -1.0 <= phi <= 1.0:
        raise InputError(None, f"phi must lie in [-1, 1], got {phi}")
    gamma = n_nodes / n_features
    lam = math.sqrt(1.0 + epsilon) * math.sin(phi * math.pi / 2)
    mu = math.sqrt(gamma * (1.0 + epsilon)) * math.cos(phi * math.pi / 2)
    return lam, mu


def _sample_pairs(rng, a: np.ndarray, b: np.ndarray, p: float, same: bool) -> np.ndarray:
    """Each pair of ``a x b`` (unordered, distinct when ``same``) independently with prob. p."""
    n_pairs = len(a) * (len(a) - 1) // 2 if same else len(a) * len(b)
    m = rng.binomial(n_pairs, p)
    found = np.zeros((0, 2), dtype=np.int64)
    # Rejection of self/duplicate pairs; a sparse graph needs one or two rounds.
    while len(found) < m:
        need = int((m - len(found)) * 1.1) + 16
        i = a[rng.integers(0, len(a), need)]
        j = b[rng.integers(0, len(b), need)]
        if same:
            ok = i != j
            i, j = np.minimum(i[ok], j[ok]), np.maximum(i[ok], j[ok])
        cand = np.concatenate([found, np.stack([i, j], axis=1)])
        _, first = np.unique(cand[:, 0] * (a.max() + b.max() + 2) + cand[:, 1], return_index=True)
        found = cand[np.sort(first)]
    return found[:m]


def csbm(
    *,
    n_nodes: int,
    n_features: int,
    avg_degree: float,
    phi: float,
    epsilon: float = 3.25,
    seed: int = 0,
):
    """Sample a two-class contextual stochastic block model graph (Deshpande et al. 2018).

    Edges within a class appear with probability ``c_in / n``, across classes with
    ``c_out / n``, where ``c_in/out = d +- sqrt(d) lambda``; features are
    ``x_i = sqrt(mu / n) y_i u + z_i / sqrt(F)`` with ``u ~ N(0, I / F)``,
    ``z_i ~ N(0, I)`` and ``y_i = +-1``; ``(lambda, mu)`` from :func:`csbm_parameters`.

    Parameters
    ----------
    n_nodes, n_features
        n and F.
    avg_degree
        Expected degree d.
    phi
        Homophily knob in [-1, 1].
    epsilon
        Signal strength above the detection threshold (the paper uses 3.25).
    seed
        Seed of the generator.

    Returns
    -------
    torch_geometric.data.Data
        ``x`` (n, F) float32, ``edge_index`` (2, 2m) undirected, ``y`` (n,) in {0, 1}.
    """
    from torch_geometric.data import Data

    if n_nodes < 4 or n_features < 1 or avg_degree <= 0:
        raise InputError(None, "need n_nodes >= 4, n_features >= 1 and avg_degree > 0")
    lam, mu = csbm_parameters(phi=phi, n_nodes=n_nodes, n_features=n_features, epsilon=epsilon)
    c_in = avg_degree + math.sqrt(avg_degree) * lam
    c_out = avg_degree - math.sqrt(avg_degree) * lam
    if min(c_in, c_out) < 0 or max(c_in, c_out) > n_nodes:
        raise InputError(
            None,
            f"avg_degree {avg_degree} too small for epsilon {epsilon} (c_in={c_in:.3g}, "
            f"c_out={c_out:.3g}); raise avg_degree or lower epsilon",
        )
    rng = np.random.default_rng(seed)
    y = np.where(rng.permutation(n_nodes) < n_nodes // 2, 1, -1)
    pos, neg = np.flatnonzero(y > 0), np.flatnonzero(y < 0)
    pairs = np.concatenate(
        [
            _sample_pairs(rng, pos, pos, c_in / n_nodes, True),
            _sample_pairs(rng, neg, neg, c_in / n_nodes, True),
            _sample_pairs(rng, pos, neg, c_out / n_nodes, False),
        ]
    )
    edges = np.concatenate([pairs, pairs[:, ::-1]]).T
    order = np.lexsort((edges[1], edges[0]))
    u = rng.standard_normal(n_features) / math.sqrt(n_features)
    z = rng.standard_normal((n_nodes, n_features), dtype=np.float32)
    x = (math.sqrt(mu / n_nodes) * y[:, None] * u[None, :]).astype(np.float32)
    x += z / np.float32(math.sqrt(n_features))
    return Data(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(np.ascontiguousarray(edges[:, order])),
        y=torch.from_numpy(((y + 1) // 2).astype(np.int64)),
    )

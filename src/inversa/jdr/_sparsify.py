"""Turning the rewired (dense or sparse + low-rank) graph back into a sparse graph."""

from __future__ import annotations

import numpy as np

from inversa.jdr._linalg import DenseGraph, LowRankGraph

__all__ = ["flip_edges", "topk_per_row"]

_POOL_DIRECTIONS = 16


def _topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k largest entries of each row of ``scores``."""
    k = min(k, scores.shape[1])
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return idx, np.take_along_axis(scores, idx, axis=1)


def topk_per_row(
    graph: DenseGraph | LowRankGraph, k: int, *, exact: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep the ``k`` largest entries of each row (node) of the rewired graph.

    Only positive entries are kept: GCN-type normalisations need non-negative degrees.

    Parameters
    ----------
    graph
        The rewired graph.
    k
        Entries kept per node.
    exact
        Scan all n^2 entries blockwise (time O(n^2 r), memory O(n)). Otherwise, for a
        :class:`LowRankGraph`, score each node against a candidate pool: its own
        neighbours plus the ``2k`` most extreme nodes along each of the 16 strongest
        directions of the low-rank part (time O(n r k), an approximation).


    Returns
    -------
    rows, cols, weights
        Row node, column node and weight of each kept entry, shapes (m,).
    """
    out_r, out_c, out_w = [], [], []
    if exact or isinstance(graph, DenseGraph):
        for start, block in graph.row_blocks():
            idx, val = _topk_rows(block, k)
            rows = np.repeat(np.arange(start, start + block.shape[0]), idx.shape[1])
            out_r.append(rows)
            out_c.append(idx.ravel())
            out_w.append(val.ravel())
    else:
        out_r, out_c, out_w = _topk_candidates(graph, k)
    rows = np.concatenate(out_r)
    cols = np.concatenate(out_c)
    weights = np.concatenate(out_w)
    keep = weights > 0
    return rows[keep], cols[keep], weights[keep]


def _topk_candidates(graph: LowRankGraph, k: int):
    z, d = graph.factors()
    n = graph.n
    pool = set()
    # Only the strongest directions seed the pool: it stays O(k) in size whatever r is.
    for t in np.argsort(-np.abs(d))[:_POOL_DIRECTIONS]:
        order = np.argsort(z[:, t])
        pool.update(order[: 2 * k].tolist())
        pool.update(order[-2 * k :].tolist())
    pool = np.array(sorted(pool), dtype=np.int64)
    zd_pool = (z[pool] * d).T
    base = graph.base
    rows_per = max(1, (1 << 22) // max(len(pool) + 1, 1))
    out_r, out_c, out_w = [], [], []
    in_pool = np.zeros(n, dtype=bool)
    in_pool[pool] = True
    for start in range(0, n, rows_per):
        stop = min(start + rows_per, n)
        zb = z[start:stop]
        s_pool = zb @ zd_pool + base[start:stop][:, pool].toarray()
        sub = base[start:stop].tocoo()
        nb_rows = sub.row
        nb_cols = sub.col
        # Neighbours outside the pool, padded to the largest such degree in the block.
        outside = ~in_pool[nb_cols]
        nb_rows, nb_cols = nb_rows[outside], nb_cols[outside]
        nb_vals = np.asarray(sub.data)[outside] + np.einsum(
            "ij,ij->i", z[nb_rows + start] * d, z[nb_cols]
        )
        counts = np.bincount(nb_rows, minlength=stop - start)
        width = int(counts.max(initial=0))
        s_nb = np.full((stop - start, width), -np.inf)
        c_nb = np.zeros((stop - start, width), dtype=np.int64)
        if width:
            order = np.argsort(nb_rows, kind="stable")
            nb_rows, nb_cols, nb_vals = nb_rows[order], nb_cols[order], nb_vals[order]
            pos = np.arange(len(nb_rows)) - np.repeat(np.cumsum(counts) - counts, counts)
            s_nb[nb_rows, pos] = nb_vals
            c_nb[nb_rows, pos] = nb_cols
        scores = np.concatenate([s_pool, s_nb], axis=1)
        cols = np.concatenate([np.broadcast_to(pool, s_pool.shape), c_nb], axis=1)
        idx, val = _topk_rows(scores, k)
        chosen = np.take_along_axis(cols, idx, axis=1)
        finite = np.isfinite(val)
        rows = np.repeat(np.arange(start, stop)[:, None], idx.shape[1], axis=1)
        out_r.append(rows[finite])
        out_c.append(chosen[finite])
        out_w.append(val[finite])
    return out_r, out_c, out_w


def flip_edges(
    graph: DenseGraph | LowRankGraph,
    edges: tuple[np.ndarray, np.ndarray],
    *,
    remove: int,
    add: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Binary variant: drop the ``remove`` weakest edges and add the ``add`` strongest non-edges.

    Parameters
    ----------
    graph
        The rewired graph ``A_K``.
    edges
        Undirected edges ``(i, j)`` with ``i < j`` of the original binary graph.
    remove, add
        Numbers of undirected edges to remove and add.

    Returns
    -------
    i, j
        The new undirected edge set, ``i < j``.
    """
    ei, ej = edges
    vals = graph.values_at(ei, ej)
    keep = np.ones(len(ei), dtype=bool)
    if remove > 0:
        # Removal score A_0 - A_K = 1 - A_K: the edges the rewiring weakened most.
        keep[np.argsort(vals, kind="stable")[: min(remove, len(ei))]] = False
    ei_new, ej_new = ei[keep], ej[keep]
    if add > 0:
        n = graph.n
        existing = set((ei * n + ej).tolist())
        best_s, best_i, best_j = [], [], []
        for start, block in graph.row_blocks():
            r = np.arange(start, start + block.shape[0])[:, None]
            c = np.arange(n)[None, :]
            masked = np.where(c > r, block, -np.inf)
            flat = masked.ravel()
            take = min(add + len(existing), flat.size)
            top = np.argpartition(-flat, take - 1)[:take]
            best_s.append(flat[top])
            best_i.append(top // n + start)
            best_j.append(top % n)
        s = np.concatenate(best_s)
        bi = np.concatenate(best_i)
        bj = np.concatenate(best_j)
        order = np.argsort(-s, kind="stable")
        new_i, new_j = [], []
        for t in order:
            if len(new_i) == add or not np.isfinite(s[t]):
                break
            if int(bi[t] * n + bj[t]) in existing:
                continue
            new_i.append(bi[t])
            new_j.append(bj[t])
        ei_new = np.concatenate([ei_new, np.array(new_i, dtype=np.int64)])
        ej_new = np.concatenate([ej_new, np.array(new_j, dtype=np.int64)])
    return ei_new, ej_new

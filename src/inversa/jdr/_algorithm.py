"""Joint denoising and rewiring (JDR): spectral alignment of a graph and its features."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from inversa.core.errors import InputError
from inversa.jdr._linalg import DenseGraph, FeatureSpectrum, LowRankGraph, top_singular
from inversa.jdr._sparsify import flip_edges, topk_per_row

__all__ = ["DENOISE_CHOICES", "JDRConfig", "JDRResult", "alignment", "jdr"]

#: What the output replaces, by name: ``(denoise_a, denoise_x)``.
DENOISE_CHOICES = {
    "graph+features": (True, True),
    "graph": (True, False),
    "features": (False, True),
}


@dataclass(frozen=True)
class JDRConfig:
    """Parameters of JDR (names follow the paper: K, L_A, L_X, eta_A, eta_X, eta_X2).

    Parameters
    ----------
    iterations
        K, the number of alignment iterations.
    l_a, l_x
        L_A leading eigenvectors of A and L_X leading left singular vectors of X that
        are moved towards their best-matching partner in the other matrix.
    eta_a, eta_x
        Interpolation rates in [0, 1] for the eigenvectors of A and singular vectors of X.
    eta_x2
        Final feature blend ``X = (1 - eta_x2) X_0 + eta_x2 X_K``.
    top_k
        Entries kept per node in the rewired weighted graph.
    abs_ordering
        Rank eigenvectors of A by absolute eigenvalue (heterophilic graphs).
    offset
        Leading eigenvectors of A skipped (1 skips the degree-like Perron vector).
    denoise_a, denoise_x
        Whether the graph / the features are replaced by their rewired versions.
    binary
        Keep A (and X) binary: instead of top-k weights, flip ``flips_a`` / ``flips_x``
        entries, given as ``(ones_to_zero, zeros_to_one)``; A counts undirected edges.
    method
        ``"dense"`` (full eigh/SVD), ``"sparse"`` (truncated ARPACK solvers on the
        sparse + low-rank graph, never dense) or ``"auto"``.
    dense_max_nodes
        ``"auto"`` picks the dense path up to this many nodes (or when L is a large
        fraction of n, where truncated solvers stop paying off).
    exact_topk_max_nodes
        On the sparse path the final top-k scans all n^2 entries blockwise up to this
        many nodes; above it a candidate-pool approximation is used (see docs).
    tol
        Relative tolerance under which new directions of the low-rank correction are
        dropped (sparse path).
    rank_tol
        Eigenvalues of the low-rank correction below ``rank_tol`` times the largest
        replaced eigenvalue are dropped (sparse path): bounds its rank at a relative
        error of about ``rank_tol`` in A.
    max_rank
        Hard cap on that rank (sparse path): the strongest ``max_rank`` directions are kept
        and the largest dropped one is reported as ``JDRResult.truncation``. The cost of
        every operator product grows with the rank, so this bounds time on large graphs.
    eigensolver
        Sparse path: ``"krylov"`` (default) solves the first, cold eigenproblem with
        ARPACK to ``eig_tol`` and every later one with a restarted block Krylov method
        warm-started from the previous iteration's subspace (the replaced eigenvectors
        swapped for the moved ones): block products read the low-rank part once per
        block instead of once per vector. ``"arpack"``: ``eigsh`` to 1e-8 every
        iteration, one vector at a time (the exact reference; far slower on large graphs).
    eig_tol
        Relative residual ``||A v - lambda v|| / max|lambda|`` at which the Krylov and
        cold ARPACK solves stop. JDR only needs the leading subspace to modest accuracy;
        the eigenvectors in the clustered edge of a sparse graph's bulk spectrum are not
        individually well determined anyway (docs/jdr.md gives the measured effect).
    eig_restarts
        Krylov restarts per warm-started solve (each ``depth + 1 = 9`` block products).
        The subspace keeps being refined across JDR iterations, so one restart per
        iteration tracks it; solves for :func:`alignment` run to ``eig_tol``.
    measure_alignment
        Measure :func:`alignment` of the output (``JDRResult.alignment_after``; a cold
        eigensolve on the rewired graph, a sizeable share of a large sparse run, see
        docs/jdr.md). The input's
        alignment comes free from the first iteration's spectra.
    seed
        Seed of the solvers' start vectors.
    """

    iterations: int = 10
    l_a: int = 10
    l_x: int = 10
    eta_a: float = 0.2
    eta_x: float = 0.2
    eta_x2: float = 0.5
    top_k: int = 64
    abs_ordering: bool = False
    offset: int = 0
    denoise_a: bool = True
    denoise_x: bool = True
    binary: bool = False
    flips_a: tuple[int, int] = (0, 0)
    flips_x: tuple[int, int] = (0, 0)
    method: str = "auto"
    dense_max_nodes: int = 500
    exact_topk_max_nodes: int = 20000
    tol: float = 1e-9
    rank_tol: float = 1e-4
    max_rank: int = 160
    eigensolver: str = "krylov"
    eig_tol: float = 1e-3
    eig_restarts: int = 1
    measure_alignment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.iterations >= 0, "iterations must be >= 0"),
            (self.l_a >= 1 and self.l_x >= 1, "l_a and l_x must be >= 1"),
            (self.offset >= 0, "offset must be >= 0"),
            (self.top_k >= 1, "top_k must be >= 1"),
            (self.max_rank >= 1, "max_rank must be >= 1"),
            (self.eigensolver in ("krylov", "arpack"), "eigensolver must be krylov or arpack"),
            (self.eig_tol > 0 and self.eig_restarts >= 1, "need eig_tol > 0, eig_restarts >= 1"),
            (self.method in ("auto", "dense", "sparse"), "method must be auto, dense or sparse"),
            (min(self.flips_a + self.flips_x) >= 0, "flip counts must be >= 0"),
        ]
        for name in ("eta_a", "eta_x", "eta_x2"):
            checks.append((0.0 <= getattr(self, name) <= 1.0, f"{name} must lie in [0, 1]"))
        for ok, problem in checks:
            if not ok:
                raise InputError(None, problem)

    @property
    def denoised(self) -> str:
        """Name of what the output replaces (a key of :data:`DENOISE_CHOICES`, or "")."""
        sides = (self.denoise_a, self.denoise_x)
        return next((k for k, v in DENOISE_CHOICES.items() if v == sides), "")


@dataclass(frozen=True)
class JDRResult:
    """Output of :func:`jdr`.

    Attributes
    ----------
    edge_index
        (2, m) rewired edges ``(source, target)``; each target keeps its top-k sources.
    edge_weight
        (m,) edge weights (all 1 in the binary variant).
    x
        (n, F) denoised features.
    alignment_before, alignment_after
        :func:`alignment` of the input (from the first iteration's spectra) and of the
        output (NaN unless ``config.measure_alignment``).
    path
        ``"dense"`` or ``"sparse"``: which path ran.
    rank
        Rank of the low-rank correction at the end (sparse path; 0 on the dense path).
    truncation
        Largest eigenvalue of the correction dropped by ``max_rank``, relative to the
        largest replaced eigenvalue (0 when nothing was dropped or on the dense path).
    """

    edge_index: torch.Tensor
    edge_weight: torch.Tensor
    x: torch.Tensor
    alignment_before: float
    alignment_after: float
    path: str
    rank: int
    truncation: float = 0.0

    def adjacency(self) -> torch.Tensor:
        """Return the rewired graph as a sparse COO tensor (n, n), entry [target, source]."""
        n = self.x.shape[0]
        return torch.sparse_coo_tensor(
            self.edge_index.flip(0), self.edge_weight, (n, n), check_invariants=True
        ).coalesce()


def _to_scipy(adjacency: torch.Tensor, n_nodes: int) -> sp.csr_matrix:
    if adjacency.layout == torch.strided:
        if adjacency.dim() == 2 and adjacency.shape[0] == 2 and not adjacency.is_floating_point():
            ei = adjacency.detach().cpu().numpy()
            vals = np.ones(ei.shape[1])
            return sp.coo_matrix((vals, (ei[0], ei[1])), shape=(n_nodes, n_nodes)).tocsr()
        raise InputError(
            None, "adjacency must be a sparse (n, n) tensor or an integer (2, E) edge_index"
        )
    coo = adjacency.detach().cpu().to_sparse_coo().coalesce()
    if coo.shape != (n_nodes, n_nodes):
        raise InputError(
            None, f"adjacency has shape {tuple(coo.shape)}, features give {n_nodes} nodes"
        )
    idx = coo.indices().numpy()
    vals = coo.values().double().numpy()
    return sp.coo_matrix((vals, (idx[0], idx[1])), shape=(n_nodes, n_nodes)).tocsr()


def _check(a: sp.csr_matrix, x: np.ndarray, config: JDRConfig) -> None:
    n, f = x.shape
    if not np.isfinite(x).all():
        raise InputError(None, "features contain NaN or infinite values")
    if not np.isfinite(a.data).all():
        raise InputError(None, "adjacency contains NaN or infinite values")
    if a.diagonal().any():
        raise InputError(
            None,
            "adjacency has self-loops; JDR expects a simple graph "
            "(remove them, e.g. torch_geometric.transforms.RemoveSelfLoops())",
        )
    diff = a - a.T
    if diff.nnz and np.abs(diff.data).max() > 1e-8 * max(1.0, np.abs(a.data).max()):
        raise InputError(
            None,
            "adjacency is not symmetric; JDR needs an undirected graph "
            "(symmetrise it, e.g. torch_geometric.transforms.ToUndirected())",
        )
    need_a = max(config.l_a, config.l_x) + config.offset
    if need_a > n:
        raise InputError(None, f"L_A/L_X plus offset ({need_a}) exceeds the number of nodes ({n})")
    if max(config.l_a, config.l_x) > min(n, f):
        raise InputError(
            None,
            f"L_A/L_X ({max(config.l_a, config.l_x)}) exceeds min(nodes, features) = {min(n, f)}",
        )
    if config.binary:
        if not np.isin(x, (0.0, 1.0)).all() or not np.all(a.data == 1.0):
            raise InputError(None, "binary=True needs 0/1 features and an unweighted graph")


def _choose_path(n: int, f: int, config: JDRConfig) -> str:
    k = max(config.l_a, config.l_x) + config.offset
    # ARPACK needs k < n - 1 (and k < min(n, F) for the SVD); it pays off when k << n.
    truncated_ok = k < min(n, f) - 1 and k < n - 1
    if config.method == "sparse":
        if not truncated_ok:
            raise InputError(
                None,
                f"the truncated path needs L + offset ({k}) below min(nodes, features) - 1; "
                "use method='dense'",
            )
        return "sparse"
    if config.method == "dense":
        return "dense"
    if n <= config.dense_max_nodes or not truncated_ok or 4 * k > n:
        return "dense"
    return "sparse"


def _best_match(vecs: np.ndarray, pool: np.ndarray, eta: float) -> np.ndarray:
    """Move each column of ``vecs`` towards its best-matching (signed) column of ``pool``."""
    overlap = vecs.T @ pool
    j = np.argmax(np.abs(overlap), axis=1)
    sign = np.sign(overlap[np.arange(len(j)), j])
    sign[sign == 0] = 1.0
    return (1.0 - eta) * vecs + eta * pool[:, j] * sign


def _alignment_of(u: np.ndarray, v: np.ndarray, config: JDRConfig) -> float:
    """``||U_L^T V_L||_2`` from leading singular vectors ``u`` and (offset) eigenvectors ``v``."""
    ell = min(config.l_a, config.l_x)
    return float(np.linalg.norm(u[:, :ell].T @ v[:, :ell], 2))


def _alignment_np(a_graph, x: np.ndarray, config: JDRConfig, *, truncated: bool) -> float:
    ell = min(config.l_a, config.l_x)
    _, v = a_graph.top_eig(
        ell + config.offset, by_abs=config.abs_ordering, seed=config.seed, converge=True
    )
    if truncated:
        u = FeatureSpectrum(x, seed=config.seed).top(ell)[0]
    else:
        u = top_singular(x, ell, truncated=False, seed=config.seed)[0]
    return _alignment_of(u, v[:, config.offset :], config)


def _make_graph(a: sp.csr_matrix, path: str, config: JDRConfig):
    if path == "dense":
        return DenseGraph(a.toarray())
    return LowRankGraph(
        a,
        tol=config.tol,
        rank_tol=config.rank_tol,
        max_rank=config.max_rank,
        eigensolver=config.eigensolver,
        eig_tol=config.eig_tol,
        eig_restarts=config.eig_restarts,
    )


def alignment(
    adjacency: torch.Tensor, x: torch.Tensor, *, config: JDRConfig = JDRConfig()
) -> float:
    """Alignment ``||V_L^T U_L||_2`` of the leading eigenvectors of A and singular vectors of X.

    ``L = min(l_a, l_x)``; eigenvectors are ranked as in ``config`` (absolute eigenvalue
    when ``abs_ordering``, after skipping ``offset``). 1 means a shared direction exists.

    Parameters
    ----------
    adjacency
        Symmetric sparse (n, n) tensor, or an integer (2, E) edge_index.
    x
        Node features, shape (n, F).
    config
        Supplies L, the ordering, the offset and the dense/sparse choice.
    """
    xn = x.detach().cpu().double().numpy()
    a = _to_scipy(adjacency, xn.shape[0])
    _check(a, xn, config)
    path = _choose_path(*xn.shape, config)
    return _alignment_np(_make_graph(a, path, config), xn, config, truncated=path == "sparse")


def jdr(adjacency: torch.Tensor, x: torch.Tensor, *, config: JDRConfig = JDRConfig()) -> JDRResult:
    """Jointly denoise features and rewire a graph by aligning their leading spectra.

    Each of K iterations computes the leading eigenpairs of A and singular triplets of
    X, moves each of the top L_X left singular vectors of X towards its best-matching
    eigenvector of A (rate eta_X) and each of the top L_A eigenvectors of A towards its
    best-matching singular vector of X (rate eta_A), and rebuilds A and X with the
    original eigenvalues / singular values. The result keeps the top-k entries per node
    as a weighted graph (or flips edges in the binary variant) and blends the features.

    Parameters
    ----------
    adjacency
        Symmetric sparse (n, n) tensor without self-loops (weights allowed), or an
        integer (2, E) edge_index listing both directions of each edge.
    x
        Node features, shape (n, F), floating point; any device.
    config
        The JDR parameters.

    Returns
    -------
    JDRResult
        Rewired edges/weights and features on the device and dtype of ``x``.
    """
    if x.dim() != 2 or not x.is_floating_point():
        raise InputError(None, "features must be a floating-point (n, F) tensor")
    x0 = x.detach().cpu().double().numpy()
    n, f = x0.shape
    a0 = _to_scipy(adjacency, n)
    _check(a0, x0, config)
    path = _choose_path(n, f, config)
    truncated = path == "sparse"
    graph = _make_graph(a0, path, config)
    before = math.nan
    if config.iterations == 0:
        before = _alignment_np(graph, x0, config, truncated=truncated)

    feats = FeatureSpectrum(x0, seed=config.seed) if truncated else None
    x_cur = x0.copy()
    ell = max(config.l_a, config.l_x)
    # On the exact (dense) path a side that never moves keeps its spectrum: computed once.
    # The truncated path re-solves every iteration, refining its warm-started subspace.
    moves_a = truncated or (config.denoise_a and config.eta_a > 0)
    moves_x = truncated or (config.denoise_x and config.eta_x > 0)
    for it in range(config.iterations):
        seed = config.seed + it
        if it == 0 or moves_a:
            lam, v = graph.top_eig(ell + config.offset, by_abs=config.abs_ordering, seed=seed)
            v = v[:, config.offset :]
            lam = lam[config.offset :]
        if feats is not None:
            u, s, vt = feats.top(ell)
        elif it == 0 or moves_x:
            u, s, vt = top_singular(x_cur, ell, truncated=False, seed=seed)
        if it == 0:
            before = _alignment_of(u, v, config)
        x_next = x_cur
        if config.denoise_x and config.eta_x > 0:
            lx = config.l_x
            u_new = _best_match(u[:, :lx], v[:, :lx], config.eta_x)
            p = u_new - u[:, :lx]
            if feats is None:
                x_next = x_cur + p @ (s[:lx, None] * vt[:lx])
            else:
                feats.update(p * s[:lx], vt[:lx])
                x_next = feats.x
        if config.denoise_a and config.eta_a > 0:
            la = config.l_a
            v_new = _best_match(v[:, :la], u[:, :la], config.eta_a)
            graph.replace(v[:, :la], v_new, lam[:la])
        x_cur = x_next

    x_out = _final_features(x0, x_cur, config)
    rows, cols, weights = _final_graph(a0, graph, config, n)
    out_graph = sp.coo_matrix((weights, (rows, cols)), shape=(n, n)).tocsr()
    after = math.nan
    if config.measure_alignment:
        # On the symmetrised output graph (top-k rows need not be symmetric).
        sym = 0.5 * (out_graph + out_graph.T)
        sym.setdiag(0.0)
        sym.eliminate_zeros()
        after = _alignment_np(_make_graph(sym, path, config), x_out, config, truncated=truncated)

    # Row i keeps its top-k entries: PyG edges (source=j, target=i) aggregate into i.
    coo = out_graph.tocoo()
    order = np.lexsort((coo.row, coo.col))
    edge_index = torch.from_numpy(np.stack([coo.col[order], coo.row[order]]).astype(np.int64))
    return JDRResult(
        edge_index=edge_index.to(x.device),
        edge_weight=torch.from_numpy(coo.data[order]).to(device=x.device, dtype=x.dtype),
        x=torch.from_numpy(x_out).to(device=x.device, dtype=x.dtype),
        alignment_before=before,
        alignment_after=after,
        path=path,
        rank=graph.rank(),
        truncation=graph.truncation,
    )


def _final_features(x0: np.ndarray, x_k: np.ndarray, config: JDRConfig) -> np.ndarray:
    if not config.denoise_x:
        return x0
    if not config.binary:
        return (1.0 - config.eta_x2) * x0 + config.eta_x2 * x_k
    out = x0.copy()
    n_off, n_on = config.flips_x
    ones = np.flatnonzero(x0.ravel() == 1.0)
    zeros = np.flatnonzero(x0.ravel() == 0.0)
    diff = (x_k - x0).ravel()
    if n_off > 0 and len(ones):
        # Entries the alignment pushed down most (largest X_0 - X_K) are switched off.
        pick = ones[np.argsort(diff[ones], kind="stable")[: min(n_off, len(ones))]]
        out.ravel()[pick] = 0.0
    if n_on > 0 and len(zeros):
        pick = zeros[np.argsort(-diff[zeros], kind="stable")[: min(n_on, len(zeros))]]
        out.ravel()[pick] = 1.0
    return out


def _final_graph(a0: sp.csr_matrix, graph, config: JDRConfig, n: int):
    if not config.denoise_a:
        coo = a0.tocoo()
        return coo.row, coo.col, coo.data
    if not config.binary:
        exact = n <= config.exact_topk_max_nodes
        return topk_per_row(graph, config.top_k, exact=exact)
    upper = sp.triu(a0, k=1).tocoo()
    ei, ej = flip_edges(
        graph,
        (upper.row.astype(np.int64), upper.col.astype(np.int64)),
        remove=config.flips_a[0],
        add=config.flips_a[1],
    )
    rows = np.concatenate([ei, ej])
    cols = np.concatenate([ej, ei])
    return rows, cols, np.ones(len(rows))

"""Graph and feature matrices for JDR: dense, or sparse plus an exact low-rank correction.

The truncated path never forms the dense n x n adjacency. After k JDR iterations the
graph is ``A_k = A_0 + Q M Q^T`` with ``A_0`` sparse, ``Q`` (n, r) orthonormal and ``M``
(r, r) symmetric: each iteration replaces L eigenpairs, a rank <= 2L change, and the
basis is re-compressed so that ``r`` only grows by directions that are actually new.
Matrix-vector products, truncated eigensolvers and the final top-k sparsification all
work on that representation, so memory stays linear in n.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = [
    "DenseGraph",
    "FeatureSpectrum",
    "LowRankGraph",
    "top_singular",
]

# Above this size of the smaller side of X, ARPACK's svds replaces the Gram matrix.
_GRAM_MAX = 4096

# Rows per block when a dense slice of the graph is formed; bounds memory by
# _BLOCK_ENTRIES floats whatever n is.
_BLOCK_ENTRIES = 1 << 22


def _ncv(k: int, n: int) -> int:
    # A wider Krylov basis than ARPACK's default 2k+1 needs far fewer restarts on the
    # clustered bulk spectra of noisy graphs and features.
    return min(n - 1, max(4 * k, k + 32))


def _order(lam: np.ndarray, *, by_abs: bool) -> np.ndarray:
    key = np.abs(lam) if by_abs else lam
    # Stable sort on the negated key: descending, ties keep solver order.
    return np.argsort(-key, kind="stable")


class DenseGraph:
    """A symmetric graph held as a dense (n, n) float64 array (small graphs)."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = np.array(a, dtype=np.float64)
        self.n = self.a.shape[0]
        self.truncation = 0.0  # exact: nothing is ever dropped

    def top_eig(self, k: int, *, by_abs: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Leading ``k`` eigenpairs, sorted by descending eigenvalue (or absolute value)."""
        lam, vec = np.linalg.eigh(self.a)
        idx = _order(lam, by_abs=by_abs)[:k]
        return lam[idx], vec[:, idx]

    def replace(self, v_old: np.ndarray, v_new: np.ndarray, lam: np.ndarray) -> None:
        """Set ``A <- A - V_old diag(lam) V_old^T + V_new diag(lam) V_new^T``."""
        self.a += (v_new * lam) @ v_new.T - (v_old * lam) @ v_old.T

    def rank(self) -> int:
        """Rank of the stored correction (not tracked on the dense path)."""
        return 0

    def row_blocks(self):
        """Yield ``(start, dense_rows)`` covering all rows."""
        yield 0, self.a

    def values_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Entries ``A[rows, cols]``."""
        return self.a[rows, cols]


class LowRankGraph:
    """A symmetric graph ``A_0 + Q M Q^T``: sparse base plus an orthonormal low-rank part.

    Parameters
    ----------
    base
        Sparse symmetric (n, n) matrix.
    tol
        Relative tolerance under which new directions and eigenvalues of the
        correction are dropped (the representation stays exact to about ``tol``).
    rank_tol
        Eigenvalues of the correction below ``rank_tol`` times the largest replaced
        eigenvalue are dropped.
    max_rank
        At most this many eigenpairs of the correction are kept (the largest in absolute
        value); ``truncation`` records the largest one dropped, relative to the largest
        replaced eigenvalue, so the error in A is known in spectral norm.
    """

    def __init__(
        self, base: sp.spmatrix, *, tol: float, rank_tol: float, max_rank: int | None = None
    ) -> None:
        self.base = sp.csr_matrix(base, dtype=np.float64)
        self.n = self.base.shape[0]
        self.q = np.zeros((self.n, 0))
        self.m = np.zeros((0, 0))
        self.tol = tol
        self.rank_tol = rank_tol
        self.max_rank = max_rank
        self.truncation = 0.0
        self._warm: np.ndarray | None = None

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """Return ``A x`` for x of shape (n,) or (n, b)."""
        out = self.base @ x
        if self.q.shape[1]:
            out = out + self.q @ (self.m @ (self.q.T @ x))
        return out

    def top_eig(self, k: int, *, by_abs: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Leading ``k`` eigenpairs by ARPACK (Lanczos), warm-started from the last call."""
        op = spla.LinearOperator(
            (self.n, self.n), matvec=self.matvec, matmat=self.matvec, dtype=np.float64
        )
        if self._warm is None:
            v0 = np.random.default_rng(seed).standard_normal(self.n)
        else:
            v0 = self._warm
        lam, vec = spla.eigsh(
            op, k=k, which="LM" if by_abs else "LA", v0=v0, tol=1e-8, ncv=_ncv(k, self.n)
        )
        idx = _order(lam, by_abs=by_abs)
        lam, vec = lam[idx], vec[:, idx]
        # The next graph differs by a small rotation: start from the old subspace.
        self._warm = vec.sum(axis=1)
        return lam, vec

    def replace(self, v_old: np.ndarray, v_new: np.ndarray, lam: np.ndarray) -> None:
        """Set ``A <- A - V_old diag(lam) V_old^T + V_new diag(lam) V_new^T``, kept low-rank."""
        w = np.concatenate([v_old, v_new], axis=1)
        coeff = np.concatenate([-lam, lam])
        # New directions: the part of [V_old, V_new] outside span(Q), rank-revealed.
        resid = w - self.q @ (self.q.T @ w)
        u, s, _ = np.linalg.svd(resid, full_matrices=False)
        keep = s > self.tol * max(1.0, float(np.linalg.norm(w, 2)))
        q = np.concatenate([self.q, u[:, keep]], axis=1)
        r_old = self.q.shape[1]
        m = np.zeros((q.shape[1], q.shape[1]))
        m[:r_old, :r_old] = self.m
        c = q.T @ w
        m += (c * coeff) @ c.T
        m = 0.5 * (m + m.T)
        d, e = np.linalg.eigh(m)
        # Successive eigenvector sets nearly coincide, so most of the accumulated
        # correction has tiny eigenvalues; dropping them bounds the rank.
        scale = max(1.0, float(np.abs(lam).max(initial=0.0)))
        big = np.flatnonzero(np.abs(d) > self.rank_tol * scale)
        if self.max_rank is not None and big.size > self.max_rank:
            # Keep the strongest directions: the best rank-max_rank approximation of M.
            order = big[np.argsort(-np.abs(d[big]), kind="stable")]
            big = np.sort(order[: self.max_rank])
            dropped = float(np.abs(d[order[self.max_rank]]))
            self.truncation = max(self.truncation, dropped / scale)
        self.q = q @ e[:, big]
        self.m = np.diag(d[big])

    def rank(self) -> int:
        """Rank ``r`` of the low-rank correction."""
        return self.q.shape[1]

    def row_blocks(self):
        """Yield ``(start, dense_rows)`` blocks of the full matrix, a few MB each."""
        rows = max(1, _BLOCK_ENTRIES // max(self.n, 1))
        qm = self.q @ self.m
        for start in range(0, self.n, rows):
            stop = min(start + rows, self.n)
            block = self.base[start:stop].toarray()
            if self.q.shape[1]:
                block += qm[start:stop] @ self.q.T
            yield start, block

    def values_at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Entries ``A[rows, cols]`` without forming the matrix."""
        vals = np.asarray(self.base[rows, cols]).ravel()
        if self.q.shape[1]:
            vals = vals + np.einsum("ij,ij->i", self.q[rows] @ self.m, self.q[cols])
        return vals

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(Z, d)`` with ``Q M Q^T = Z diag(d) Z^T`` (M is kept diagonal)."""
        return self.q, np.diag(self.m).copy()


def top_singular(
    x: np.ndarray, k: int, *, truncated: bool, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leading ``k`` singular triplets of ``x`` (n, F), descending.

    Returns
    -------
    u, s, vt
        Shapes (n, k), (k,), (k, F).
    """
    if not truncated:
        u, s, vt = np.linalg.svd(x, full_matrices=False)
        return u[:, :k], s[:k], vt[:k]
    v0 = np.random.default_rng(seed).standard_normal(min(x.shape))
    u, s, vt = spla.svds(x, k=k, v0=v0, tol=1e-10)
    idx = np.argsort(-s, kind="stable")
    return u[:, idx], s[idx], vt[idx]


class FeatureSpectrum:
    """Leading singular triplets of features X (n, F) that change by low-rank updates.

    When the smaller side m = min(n, F) is at most a few thousand, the m x m Gram matrix
    is kept and updated in O(n F L) per rank-L change instead of being recomputed
    (O(n F m)); Lanczos then runs on the small Gram matrix, warm-started.
    """

    def __init__(self, x: np.ndarray, *, seed: int) -> None:
        self.x = x.copy()
        n, f = x.shape
        self.cols = f <= n
        self.use_gram = min(n, f) <= _GRAM_MAX
        self.gram = None
        if self.use_gram:
            self.gram = x.T @ x if self.cols else x @ x.T
        self._warm = np.random.default_rng(seed).standard_normal(min(n, f))

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(u, s, vt)`` of shapes (n, k), (k,), (k, F), descending."""
        if not self.use_gram:
            u, s, vt = spla.svds(self.x, k=k, v0=self._warm, tol=1e-9)
            idx = np.argsort(-s, kind="stable")
            u, s, vt = u[:, idx], s[idx], vt[idx]
            self._warm = (vt if self.cols else u.T).sum(axis=0)
            return u, s, vt
        m = self.gram.shape[0]
        lam, vec = spla.eigsh(self.gram, k=k, which="LA", v0=self._warm, tol=1e-8, ncv=_ncv(k, m))
        idx = np.argsort(-lam, kind="stable")
        lam, vec = np.maximum(lam[idx], 0.0), vec[:, idx]
        self._warm = vec.sum(axis=1)
        s = np.sqrt(lam)
        safe = np.where(s > 0, s, 1.0)
        if self.cols:
            u = (self.x @ vec) / safe
            return u, s, vec.T
        vt = (vec.T @ self.x) / safe[:, None]
        return vec, s, vt

    def update(self, p: np.ndarray, wt: np.ndarray) -> None:
        """``X <- X + p @ wt`` with p (n, L) and wt (L, F)."""
        if self.use_gram:
            if self.cols:
                c = (self.x.T @ p) @ wt
                self.gram += c + c.T + wt.T @ ((p.T @ p) @ wt)
            else:
                c = (self.x @ wt.T) @ p.T
                self.gram += c + c.T + p @ ((wt @ wt.T) @ p.T)
        self.x += p @ wt

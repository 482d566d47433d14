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
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = [
    "DenseGraph",
    "FeatureSpectrum",
    "LowRankGraph",
    "block_krylov_eigh",
    "orthonormalize",
    "top_singular",
]

# Above this size of the smaller side of X, ARPACK's svds replaces the Gram matrix.
_GRAM_MAX = 4096

# Krylov steps per restart of the block eigensolver, and the extra Ritz vectors kept
# beyond the k wanted ones (they speed up convergence on clustered spectra).
_KRYLOV_DEPTH = 8
_KRYLOV_EXTRA = 4
# Restart cap of a solve run to convergence (eig_tol).
_CONVERGE_RESTARTS = 100

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


def _svqb(w: np.ndarray, floor2: float) -> tuple[np.ndarray, bool]:
    """Orthonormalise w through its Gram matrix, keeping directions with s^2 > floor2.

    Returns the new columns and whether every direction was kept.
    """
    g = w.T @ w
    s2, e = np.linalg.eigh(0.5 * (g + g.T))
    # Gram eigenvalues are accurate to eps * max(s2) only: directions much below
    # sqrt(eps) of the largest are left to the next round (see orthonormalize).
    keep = s2 > max(floor2, 1e-10 * float(s2[-1]))
    return (w @ e[:, keep]) / np.sqrt(s2[keep]), bool(keep.all())


def _project_out(w: np.ndarray, against: list[np.ndarray]) -> np.ndarray:
    for basis in against:
        w = w - basis @ (basis.T @ w)
    return w


def orthonormalize(
    w: np.ndarray,
    basis: np.ndarray | None = None,
    *,
    drop: float = 1e-10,
    scale: float | None = None,
    passes: int = 2,
) -> np.ndarray:
    """Orthonormal basis of the part of span(w) outside span(basis).

    Block Gram-Schmidt against ``basis`` and an orthonormalisation through the small
    Gram matrix (SVQB), each done twice by default (CGS2): only matrix-matrix products
    and eigh of (b, b) matrices, no tall QR/SVD (LAPACK's tall factorisations are slow
    and, with two BLAS threads on a busy machine, erratic). The Gram matrix resolves
    singular values only down to about 1e-5 of the largest, so weaker directions are
    found in further rounds on the remainder.

    Parameters
    ----------
    w
        (n, b) block.
    basis
        (n, m) orthonormal columns to project out, or None.
    drop
        Directions whose norm after projection is below ``drop`` times ``scale``
        (default: the largest column norm of ``w``) are dropped (rank deficiency, or
        nothing new).
    scale
        Reference norm for ``drop``.
    passes
        Gram-Schmidt passes against ``basis``: 2 (CGS2) in general; 1 suffices when the
        dominant components along ``basis`` were already removed (a Lanczos step).

    Returns
    -------
    numpy.ndarray
        (n, b') orthonormal columns, ``b' <= b``, orthogonal to ``basis``.
    """
    if w.shape[1] == 0:
        return w
    if scale is None:
        scale = float(np.sqrt(np.einsum("ij,ij->j", w, w).max()))
    floor2 = (drop * scale) ** 2
    against = [] if basis is None or basis.shape[1] == 0 else [basis]
    found = []
    for _ in range(4):
        w = _project_out(w, against)
        u, complete = _svqb(w, floor2)
        if u.shape[1] == 0:
            break
        # Cleaning pass: u is nearly orthonormal, this restores orthogonality to rounding.
        if passes > 1:
            u = _project_out(u, against)
        u, _ = _svqb(u, 0.0)
        found.append(u)
        against.append(u)
        if complete:
            break
    return np.concatenate(found, axis=1) if found else w[:, :0]


def block_krylov_eigh(
    matmat,
    start: np.ndarray,
    k: int,
    *,
    block: int,
    depth: int,
    by_abs: bool,
    tol: float,
    max_restarts: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Leading ``k`` eigenpairs of a symmetric operator by restarted block Krylov.

    Each restart builds the block Krylov space ``[X, AX, ..., A^depth X]`` (fully
    orthogonalised), takes Rayleigh-Ritz pairs in it and restarts from the ``block``
    leading Ritz vectors; it stops once every wanted pair has relative residual
    ``||A y - theta y|| <= tol * max|theta|`` or after ``max_restarts`` restarts.
    Every product is a block product, so a dense low-rank part of the operator is read
    once per block instead of once per vector (ARPACK's Lanczos is one vector at a time).
    With a warm ``start`` close to the wanted space one or two restarts suffice.

    Parameters
    ----------
    matmat
        Function returning ``A @ X`` for X of shape (n, b).
    start
        (n, b0) start block, ``b0 >= k`` independent columns (need not be orthonormal).
    k
        Number of wanted eigenpairs.
    block
        Width of the restart block (``>= k``; a few more than k speed up convergence).
    depth
        Krylov steps per restart.
    by_abs
        Rank eigenvalues by absolute value instead of algebraic value.
    tol
        Relative residual tolerance.
    max_restarts
        Upper bound on restarts (the cost is at most ``max_restarts (depth + 1)``
        block products).

    Returns
    -------
    lam, vec, ritz, restarts
        (k,) eigenvalues in descending order (of value or absolute value), (n, k)
        orthonormal eigenvectors, (n, block) leading Ritz vectors (a warm start for the
        next call) and the number of restarts used.
    """
    x = orthonormalize(start)
    n = x.shape[0]
    if x.shape[1] < k:
        raise ValueError(f"start block spans {x.shape[1]} < k = {k} directions")
    used = 0
    while used < max_restarts:
        used += 1
        # Preallocated, column-major: the growing basis is used as a view, never copied.
        width = x.shape[1] * (depth + 1)
        basis = np.empty((n, width), order="F")
        image = np.empty((n, width), order="F")
        t = np.zeros((width, width))
        basis[:, : x.shape[1]] = x
        prev, lo, hi = 0, 0, x.shape[1]
        for step in range(depth + 1):
            cur = basis[:, lo:hi]
            image[:, lo:hi] = matmat(cur)
            t[lo:hi, lo:hi] = cur.T @ image[:, lo:hi]
            if step == depth:
                break
            # Three-term (block Lanczos) step, then one full reorthogonalisation pass:
            # converged Ritz vectors in the basis make plain Lanczos lose orthogonality.
            aw = image[:, lo:hi]
            w = aw - cur @ t[lo:hi, lo:hi]
            if prev < lo:
                w -= basis[:, prev:lo] @ t[prev:lo, lo:hi]
            scale = float(np.sqrt(np.einsum("ij,ij->j", aw, aw).max()))
            w = orthonormalize(w, basis[:, :hi], scale=scale, passes=1)
            if w.shape[1] == 0:  # the space is invariant: Rayleigh-Ritz is exact
                break
            # With a fully orthogonalised Krylov basis T = basis^T A basis is block
            # tridiagonal: only the diagonal and the coupling blocks are formed.
            nxt = hi + w.shape[1]
            basis[:, hi:nxt] = w
            t[hi:nxt, lo:hi] = w.T @ image[:, lo:hi]
            t[lo:hi, hi:nxt] = t[hi:nxt, lo:hi].T
            prev, lo, hi = lo, hi, nxt
        t = t[:hi, :hi]
        theta, s = np.linalg.eigh(0.5 * (t + t.T))
        idx = _order(theta, by_abs=by_abs)
        theta, s = theta[idx], s[:, idx]
        x = basis[:, :hi] @ s[:, : min(block, len(theta))]
        resid = image[:, :hi] @ s[:, :k] - x[:, :k] * theta[:k]
        scale = max(float(np.abs(theta[:k]).max()), np.finfo(float).tiny)
        if float(np.sqrt(np.einsum("ij,ij->j", resid, resid).max())) <= tol * scale:
            break
    return theta[:k], x[:, :k], x, used


class DenseGraph:
    """A symmetric graph held as a dense (n, n) float64 array (small graphs)."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = np.array(a, dtype=np.float64)
        self.n = self.a.shape[0]
        self.truncation = 0.0  # exact: nothing is ever dropped

    def top_eig(
        self, k: int, *, by_abs: bool, seed: int, converge: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Leading ``k`` eigenpairs, sorted by descending eigenvalue (or absolute value).

        Exact (LAPACK), so ``seed`` and ``converge`` do not matter. Only the wanted end(s)
        of the spectrum are computed (``syevr`` subsets), cheaper than a full ``eigh``:
        the k largest |lambda| lie among the k largest and k smallest.
        """
        n = self.n
        if (2 if by_abs else 1) * k >= n:
            lam, vec = np.linalg.eigh(self.a)
        else:
            top = sla.eigh(self.a, subset_by_index=[n - k, n - 1], driver="evr")
            parts = (
                [top, sla.eigh(self.a, subset_by_index=[0, k - 1], driver="evr")]
                if by_abs
                else [top]
            )
            lam = np.concatenate([p[0] for p in parts])
            vec = np.concatenate([p[1] for p in parts], axis=1)
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
    eigensolver
        ``"krylov"`` (:func:`block_krylov_eigh`, warm-started from the previous call's
        Ritz vectors with the replaced eigenvectors swapped for the new ones) or
        ``"arpack"`` (``eigsh`` to 1e-8, one vector at a time).
    eig_tol, eig_restarts
        Relative residual tolerance and restart budget of the Krylov solver.
    """

    def __init__(
        self,
        base: sp.spmatrix,
        *,
        tol: float,
        rank_tol: float,
        max_rank: int | None = None,
        eigensolver: str = "krylov",
        eig_tol: float = 1e-8,
        eig_restarts: int = 100,
    ) -> None:
        self.base = sp.csr_matrix(base, dtype=np.float64)
        self.n = self.base.shape[0]
        self.q = np.zeros((self.n, 0))
        self.d = np.zeros(0)
        self.tol = tol
        self.rank_tol = rank_tol
        self.max_rank = max_rank
        self.eigensolver = eigensolver
        self.eig_tol = eig_tol
        self.eig_restarts = eig_restarts
        self.truncation = 0.0
        self.restarts: list[int] = []
        self._warm: np.ndarray | None = None

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """Return ``A x`` for x of shape (n,) or (n, b)."""
        out = self.base @ x
        if self.q.shape[1]:
            qx = self.q.T @ x
            out += self.q @ (self.d[:, None] * qx if qx.ndim == 2 else self.d * qx)
        return out

    def top_eig(
        self, k: int, *, by_abs: bool, seed: int, converge: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Leading ``k`` eigenpairs, sorted by descending eigenvalue (or absolute value).

        ``"krylov"``: a cold start (no previous subspace; the graph is then still the
        sparse input, where one-vector products are cheap) runs ARPACK to ``eig_tol``;
        later solves run :func:`block_krylov_eigh` from the previous subspace for
        ``eig_restarts`` restarts, or to ``eig_tol`` when ``converge``.
        """
        if self.eigensolver == "arpack" or self._warm is None:
            return self._top_eig_arpack(k, by_abs=by_abs, seed=seed)
        block = min(self.n, k + _KRYLOV_EXTRA)
        start = self._warm
        if start.shape[1] < block:
            pad = np.random.default_rng(seed).standard_normal((self.n, block - start.shape[1]))
            start = np.concatenate([start, pad], axis=1)
        lam, vec, self._warm, used = block_krylov_eigh(
            self.matvec,
            start,
            k,
            block=block,
            depth=_KRYLOV_DEPTH,
            by_abs=by_abs,
            tol=self.eig_tol,
            max_restarts=_CONVERGE_RESTARTS if converge else self.eig_restarts,
        )
        self.restarts.append(used)
        return lam, vec

    def _top_eig_arpack(self, k: int, *, by_abs: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
        op = spla.LinearOperator(
            (self.n, self.n), matvec=self.matvec, matmat=self.matvec, dtype=np.float64
        )
        if self._warm is None:
            v0 = np.random.default_rng(seed).standard_normal(self.n)
        else:
            v0 = self._warm.sum(axis=1)
        if self.eigensolver == "arpack":
            want, tol = k, 1e-8
        else:
            # Also return the extra Ritz vectors that the block solver keeps.
            want, tol = min(self.n - 2, k + _KRYLOV_EXTRA), self.eig_tol
        lam, vec = spla.eigsh(
            op, k=want, which="LM" if by_abs else "LA", v0=v0, tol=tol, ncv=_ncv(want, self.n)
        )
        idx = _order(lam, by_abs=by_abs)
        lam, vec = lam[idx], vec[:, idx]
        # The next graph differs by a small rotation: start from the old subspace.
        self._warm = vec
        return lam[:k], vec[:, :k]

    def replace(self, v_old: np.ndarray, v_new: np.ndarray, lam: np.ndarray) -> None:
        """Set ``A <- A - V_old diag(lam) V_old^T + V_new diag(lam) V_new^T``, kept low-rank."""
        w = np.concatenate([v_old, v_new], axis=1)
        coeff = np.concatenate([-lam, lam])
        # New directions: the part of [V_old, V_new] outside span(Q).
        q = np.concatenate([self.q, orthonormalize(w, self.q, drop=self.tol)], axis=1)
        r_old = self.q.shape[1]
        m = np.zeros((q.shape[1], q.shape[1]))
        m[np.arange(r_old), np.arange(r_old)] = self.d
        c = q.T @ w
        m += (c * coeff) @ c.T
        d, e = np.linalg.eigh(0.5 * (m + m.T))
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
        self.d = d[big]
        if self._warm is not None and self.eigensolver == "krylov":
            # Warm start for the next solve: the old Ritz block with the replaced
            # eigenvectors swapped for their replacements.
            kept = self._warm - v_old @ (v_old.T @ self._warm)
            self._warm = np.concatenate([v_new, kept], axis=1)

    def rank(self) -> int:
        """Rank ``r`` of the low-rank correction."""
        return self.q.shape[1]

    def row_blocks(self):
        """Yield ``(start, dense_rows)`` blocks of the full matrix, a few MB each."""
        rows = max(1, _BLOCK_ENTRIES // max(self.n, 1))
        qm = self.q * self.d
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
            vals = vals + np.einsum("ij,ij->i", self.q[rows] * self.d, self.q[cols])
        return vals

    def factors(self) -> tuple[np.ndarray, np.ndarray]:
        """``(Z, d)`` with ``Q M Q^T = Z diag(d) Z^T`` (M is kept diagonal)."""
        return self.q, self.d.copy()


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

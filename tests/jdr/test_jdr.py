import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from inversa.core.errors import InputError
from inversa.jdr import (
    JDR,
    JDRConfig,
    TrainConfig,
    alignment,
    csbm,
    csbm_parameters,
    digl,
    evaluate,
    fosr,
    jdr,
    random_split,
    search_jdr,
)
from inversa.jdr._linalg import DenseGraph, LowRankGraph, block_krylov_eigh, orthonormalize


@pytest.fixture(scope="module")
def small():
    return csbm(n_nodes=300, n_features=120, avg_degree=5, phi=0.5, seed=3)


def _edges(ei):
    return set(map(tuple, ei.T.tolist()))


def test_dense_and_truncated_paths_agree(small):
    cfg = dict(iterations=3, l_a=5, l_x=4, eta_a=0.4, eta_x=0.3, eta_x2=0.7, top_k=8)
    x = small.x.double()
    rd = jdr(small.edge_index, x, config=JDRConfig(method="dense", **cfg))
    tight = dict(method="sparse", rank_tol=1e-13, eig_tol=1e-9, eig_restarts=200)
    rs = jdr(small.edge_index, x, config=JDRConfig(**tight, **cfg))
    assert rd.path == "dense" and rs.path == "sparse"
    torch.testing.assert_close(rs.x, rd.x, atol=1e-6, rtol=0)
    assert torch.equal(rs.edge_index, rd.edge_index)
    torch.testing.assert_close(rs.edge_weight, rd.edge_weight, atol=1e-6, rtol=0)
    assert rs.alignment_after == pytest.approx(rd.alignment_after, abs=1e-6)


def test_low_rank_replace_matches_dense():
    rng = np.random.default_rng(0)
    a = sp.random(40, 40, density=0.1, random_state=1)
    a = (a + a.T).tocsr()
    dense, low = DenseGraph(a.toarray()), LowRankGraph(a, tol=1e-12, rank_tol=1e-14)
    for _ in range(3):
        lam, v = dense.top_eig(4, by_abs=True, seed=0)
        v_new = v + 0.3 * rng.standard_normal(v.shape)
        dense.replace(v, v_new, lam)
        low.replace(v, v_new, lam)
    full = np.concatenate([b for _, b in low.row_blocks()])
    np.testing.assert_allclose(full, dense.a, atol=1e-10)
    assert low.rank() <= 24


def test_zero_rates_keep_graph_and_features(small):
    cfg = JDRConfig(iterations=2, eta_a=0.0, eta_x=0.0, eta_x2=1.0, l_a=3, l_x=3, top_k=64)
    res = jdr(small.edge_index, small.x, config=cfg)
    assert _edges(res.edge_index) == _edges(small.edge_index)
    torch.testing.assert_close(res.edge_weight, torch.ones_like(res.edge_weight))
    torch.testing.assert_close(res.x, small.x)


def test_jdr_increases_alignment(small):
    cfg = JDRConfig(iterations=5, l_a=4, l_x=4, eta_a=0.5, eta_x=0.5, eta_x2=1.0)
    res = jdr(small.edge_index, small.x, config=cfg)
    assert res.alignment_after > res.alignment_before + 0.05
    assert res.alignment_before == pytest.approx(alignment(small.edge_index, small.x, config=cfg))
    # Each node keeps at most top_k positive-weight sources.
    counts = torch.bincount(res.edge_index[1], minlength=300)
    assert int(counts.max()) <= cfg.top_k and bool((res.edge_weight > 0).all())
    # The diagnostic does not touch the output; off, alignment_after is NaN.
    quiet = jdr(small.edge_index, small.x, config=dataclasses.replace(cfg, measure_alignment=False))
    assert torch.equal(quiet.edge_index, res.edge_index) and torch.equal(quiet.x, res.x)
    assert np.isnan(quiet.alignment_after)
    assert quiet.alignment_before == pytest.approx(res.alignment_before)
    # Sparse path: the input's alignment from the first iteration's solves (to eig_tol).
    sparse = jdr(small.edge_index, small.x, config=dataclasses.replace(cfg, method="sparse"))
    assert sparse.alignment_before == pytest.approx(res.alignment_before, abs=1e-3)


def test_approximate_topk_close_to_exact():
    g = csbm(n_nodes=1500, n_features=200, avg_degree=5, phi=0.5, seed=1)
    cfg = dict(iterations=3, l_a=5, l_x=5, eta_a=0.4, eta_x=0.3, top_k=16, method="sparse")
    exact = jdr(g.edge_index, g.x, config=JDRConfig(**cfg))
    approx = jdr(g.edge_index, g.x, config=JDRConfig(exact_topk_max_nodes=10, **cfg))
    a, b = _edges(exact.edge_index), _edges(approx.edge_index)
    assert len(a & b) / len(a) > 0.9


def test_binary_variant_flips_exact_counts():
    g = csbm(n_nodes=120, n_features=40, avg_degree=6, phi=0.5, seed=2)
    x = (g.x > 0).double()
    cfg = JDRConfig(
        iterations=2,
        l_a=3,
        l_x=3,
        eta_a=0.5,
        eta_x=0.5,
        binary=True,
        flips_a=(10, 15),
        flips_x=(20, 30),
    )
    res = jdr(g.edge_index, x, config=cfg)
    n_before = g.edge_index.shape[1] // 2
    assert res.edge_index.shape[1] // 2 == n_before - 10 + 15
    assert set(res.x.unique().tolist()) <= {0.0, 1.0}
    assert int(res.x.sum()) == int(x.sum()) - 20 + 30
    assert int((res.x != x).sum()) == 50


def test_bad_inputs_are_refused(small):
    n = small.num_nodes
    ei = small.edge_index
    with pytest.raises(InputError, match="not symmetric"):
        jdr(ei[:, ::2].contiguous(), small.x)
    with pytest.raises(InputError, match="self-loops"):
        jdr(torch.cat([ei, torch.tensor([[0], [0]])], 1), small.x)
    bad = small.x.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        jdr(ei, bad)
    with pytest.raises(InputError, match="exceeds"):
        jdr(ei, small.x, config=JDRConfig(l_a=n + 1))
    with pytest.raises(InputError, match="exceeds"):
        jdr(ei, small.x[:, :5], config=JDRConfig(l_x=6))
    with pytest.raises(InputError, match="eta_a"):
        JDRConfig(eta_a=1.5)


def test_disconnected_graph_is_handled():
    g = csbm(n_nodes=200, n_features=50, avg_degree=3, phi=0.5, seed=0)
    # Two copies side by side: a disconnected graph with isolated nodes in each part.
    ei = torch.cat([g.edge_index, g.edge_index + 200], 1)
    x = torch.cat([g.x, g.x.flip(0)])
    for method in ("dense", "sparse"):
        res = jdr(ei, x, config=JDRConfig(iterations=2, l_a=4, l_x=4, method=method))
        assert torch.isfinite(res.x).all() and torch.isfinite(res.edge_weight).all()


def test_transform_in_compose(small):
    import torch_geometric.transforms as T

    t = T.Compose([T.ToUndirected(), JDR(config=JDRConfig(iterations=2, l_a=3, l_x=3))])
    out = t(small)
    assert out.edge_attr.shape == (out.edge_index.shape[1],)
    assert out.x.shape == small.x.shape and out.x.dtype == small.x.dtype
    assert small.edge_attr is None  # the input is left unchanged
    assert "K=2" in repr(t)


def test_csbm_statistics():
    lam, mu = csbm_parameters(phi=0.3, n_nodes=1000, n_features=500, epsilon=3.25)
    assert lam**2 + mu**2 / 2.0 == pytest.approx(4.25)
    g = csbm(n_nodes=2000, n_features=30, avg_degree=5, phi=1.0, seed=0)
    h = csbm(n_nodes=2000, n_features=30, avg_degree=5, phi=-1.0, seed=0)
    ei = g.edge_index
    assert not bool((ei[0] == ei[1]).any())
    assert _edges(ei) == _edges(ei.flip(0))
    assert ei.shape[1] / 2000 == pytest.approx(5.0, rel=0.08)
    same = (g.y[ei[0]] == g.y[ei[1]]).float().mean()
    assert same > 0.85  # c_in / (c_in + c_out) = (5 + 2.236 * 2.06) / 10 ≈ 0.96
    assert (h.y[h.edge_index[0]] == h.y[h.edge_index[1]]).float().mean() < 0.15
    assert int(g.y.sum()) == 1000


def test_splits_are_disjoint_and_balanced(small):
    tr, va, te = random_split(small.y, split="sparse", seed=0)
    assert not bool((tr & va).any() or (tr & te).any() or (va & te).any())
    assert bool((tr | va | te).all())
    assert int(tr.sum()) == 2 * round(0.025 * 300 / 2)
    tr, va, te = random_split(small.y, split="dense", seed=0)
    assert int(va.sum()) == 60


def test_gcn_and_gprgnn_learn_an_easy_csbm():
    g = csbm(n_nodes=300, n_features=60, avg_degree=8, phi=0.6, epsilon=8.0, seed=0)
    train = TrainConfig(max_epochs=60, patience=30)
    for model in ("gcn", "gprgnn"):
        acc = evaluate(g, splits=2, split="dense", config=dataclasses.replace(train, model=model))
        assert acc.mean > 80 and acc.ci95 >= 0 and len(acc.per_split) == 2


def test_gcn_equals_two_pyg_gcnconv_layers(small):
    from torch_geometric.nn import GCNConv

    from inversa.jdr import GCN, GPRGNN

    g = torch.Generator().manual_seed(0)
    # Asymmetric positive weights: the propagation must sum over edges j -> i, as PyG.
    w = torch.rand(small.edge_index.shape[1], generator=g) + 0.1
    x = small.x.float()
    ours = GCN(x.shape[1], 2, hidden=8).eval()
    c1, c2 = GCNConv(x.shape[1], 8), GCNConv(8, 2)
    with torch.no_grad():
        c1.lin.weight.copy_(ours.weight1.T)
        c2.lin.weight.copy_(ours.weight2.T)
        c1.bias.copy_(torch.randn(8, generator=g))
        ours.bias1.copy_(c1.bias)
    ref = c2(torch.relu(c1(x, small.edge_index, w)), small.edge_index, w)
    out = ours(x, small.edge_index, w)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    r = torch.randn(out.shape, generator=g)
    (out * r).sum().backward()
    (ref * r).sum().backward()
    torch.testing.assert_close(ours.weight1.grad, c1.lin.weight.grad.T, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.weight2.grad, c2.lin.weight.grad.T, rtol=1e-4, atol=1e-5)
    ours.zero_grad()

    # The shared-product path: evaluation logits equal forward() in eval mode, and the
    # training logits carry gradients to every parameter (backward through P^T).
    for model in (ours, GPRGNN(x.shape[1], 2, hidden=8)):
        model.eval()
        with torch.no_grad():
            plain = model(x, small.edge_index, w)
        train_out, evaluated = model.train_eval_logits(x, small.edge_index, w)
        torch.testing.assert_close(evaluated, plain)
        assert not evaluated.requires_grad
        train_out.sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_fosr_adds_new_edges_and_opens_the_spectral_gap():
    g = csbm(n_nodes=100, n_features=5, avg_degree=5, phi=1.0, seed=1)
    out = fosr(g, iterations=12)

    def lam2(ei):
        a = np.zeros((100, 100))
        a[ei[0].numpy(), ei[1].numpy()] = 1.0
        a += np.eye(100)
        d = a.sum(1)
        return np.sort(np.linalg.eigvalsh(a / np.sqrt(np.outer(d, d))))[-2]

    new = _edges(out.edge_index) - _edges(g.edge_index)
    assert len(new) == 24 and all(u != v for u, v in new)
    assert lam2(out.edge_index) < lam2(g.edge_index)


def test_digl_gives_weighted_topk_graph(small):
    out = digl(small, alpha=0.1, k=16)
    assert out.edge_attr.shape == (out.edge_index.shape[1],)
    assert int(torch.bincount(out.edge_index[1]).max()) <= 16


def test_search_space_reaches_the_public_tuned_settings():
    from inversa.jdr._search import SEARCH_SPACE, _sample

    rng = np.random.default_rng(0)
    draws = [_sample(rng, JDRConfig(), 20) for _ in range(400)]
    # The public cSBM settings: K up to 80, eta_A up to 1, L_A = 1, the graph alone or
    # (phi = +-1) the features alone denoised.
    assert max(c.iterations for c in draws) > 60 and min(c.iterations for c in draws) >= 1
    assert max(c.eta_a for c in draws) > 0.9 and max(c.eta_x for c in draws) <= 1.0
    denoised = {(c.denoise_a, c.denoise_x) for c in draws}
    assert denoised == {(True, True), (True, False), (False, True)}
    assert min(c.l_a for c in draws) == 1 and max(c.l_a for c in draws) <= SEARCH_SPACE["l"][1]
    for c in draws:  # every draw is a valid configuration
        assert 0.0 <= c.eta_a <= 1.0 and c.offset in (0, 1)


def test_search_uses_validation_only(small):
    cfg, val = search_jdr(small, trials=2, splits=1, train=TrainConfig(max_epochs=20, patience=10))
    assert isinstance(cfg, JDRConfig) and 0 <= val <= 100


def test_search_scores_initial_candidates_first_on_validation(small):
    train = TrainConfig(max_epochs=30, patience=10)
    initial = [JDRConfig(iterations=1, l_a=2, l_x=2), JDRConfig(iterations=3, eta_a=0.9, l_a=1)]
    vals = [
        evaluate(JDR(config=c)(small), splits=1, config=train, seed=10_000).val_mean
        for c in initial
    ]
    cfg, val = search_jdr(small, trials=0, splits=1, train=train, initial=initial)
    assert val == max(vals) and cfg == initial[int(np.argmax(vals))]
    with pytest.raises(InputError, match="at least one candidate"):
        search_jdr(small, trials=0, splits=1, train=train)


def test_low_rank_cap_keeps_strongest_directions():
    rng = np.random.default_rng(1)
    a = sp.random(60, 60, density=0.1, random_state=2)
    a = (a + a.T).tocsr()
    exact = LowRankGraph(a, tol=1e-12, rank_tol=1e-14)
    capped = LowRankGraph(a, tol=1e-12, rank_tol=1e-14, max_rank=6)
    lam = np.array([3.0, 2.0, 1.0])
    for _ in range(4):
        v_old = np.linalg.qr(rng.standard_normal((60, 3)))[0]
        v_new = v_old + 0.2 * rng.standard_normal(v_old.shape)
        exact.replace(v_old, v_new, lam)
        capped.replace(v_old, v_new, lam)
    assert exact.rank() > 6 and capped.rank() == 6
    # Both receive the same updates, so they differ by the sum of the dropped parts:
    # at most (steps x largest dropped eigenvalue) in spectral norm, which is reported.
    full = np.concatenate([b for _, b in exact.row_blocks()])
    approx = np.concatenate([b for _, b in capped.row_blocks()])
    assert capped.truncation > 0
    err = np.linalg.norm(full - approx, 2)
    assert 0 < err <= 4 * 3.0 * capped.truncation + 1e-9
    assert exact.truncation == 0.0


def _planted(n=400, seed=0):
    """Sparse symmetric matrix with six planted leading eigenvalues (a clear gap)."""
    rng = np.random.default_rng(seed)
    noise = sp.random(n, n, density=0.02, random_state=seed)
    noise = (noise + noise.T) * 0.5
    v = np.linalg.qr(rng.standard_normal((n, 6)))[0]
    lam = np.array([9.0, -8.0, 7.5, 7.0, -6.5, 6.0])
    return noise.toarray() + (v * lam) @ v.T


@pytest.mark.parametrize("by_abs", [False, True])
def test_block_krylov_subspace_matches_eigsh(by_abs):
    a = _planted()
    which = "LM" if by_abs else "LA"
    k = 4
    ref_lam, ref_vec = spla.eigsh(a, k=k, which=which, tol=1e-12)
    order = np.argsort(-(np.abs(ref_lam) if by_abs else ref_lam))
    ref_lam, ref_vec = ref_lam[order], ref_vec[:, order]
    start = np.random.default_rng(1).standard_normal((a.shape[0], k + 4))
    for tol in (1e-10, 1e-3):
        lam, vec, ritz, used = block_krylov_eigh(
            lambda x: a @ x,
            start,
            k,
            block=k + 4,
            depth=6,
            by_abs=by_abs,
            tol=tol,
            max_restarts=100,
        )
        assert used < 100 and ritz.shape == (a.shape[0], k + 4)
        np.testing.assert_allclose(vec.T @ vec, np.eye(k), atol=1e-10)
        # Davis-Kahan: sin(angle) <= residual / gap, with residual <= tol * |lambda_max|
        # and a gap of at least 0.5 to the rest of the spectrum in the wanted order.
        sin = np.sqrt(max(0.0, 1.0 - np.linalg.svd(ref_vec.T @ vec, compute_uv=False).min() ** 2))
        assert sin <= 2 * tol * 9.0 / 0.5 + 1e-7
        np.testing.assert_allclose(lam, ref_lam, atol=max(1e-9, 2 * tol * 9.0))


def test_warm_started_solves_follow_replacements():
    a = sp.csr_matrix(np.abs(_planted(n=200, seed=3)) * (np.abs(_planted(n=200, seed=3)) > 0.2))
    rng = np.random.default_rng(0)
    dense = DenseGraph(a.toarray())
    # eig_tol 1e-9: after a few replacements the low-rank form's round-off puts the
    # attainable relative residual near 1e-10 (a 1e-10 target stalled in some instances).
    low = LowRankGraph(a, tol=1e-12, rank_tol=1e-14, eig_tol=1e-9, eig_restarts=100)
    for _ in range(3):
        lam_d, v_d = dense.top_eig(5, by_abs=False, seed=0)
        lam_l, v_l = low.top_eig(5, by_abs=False, seed=0)
        np.testing.assert_allclose(lam_l, lam_d, atol=1e-8)
        overlap = np.linalg.svd(v_l.T @ v_d, compute_uv=False)
        assert overlap.min() > 1 - 1e-8
        v_new = v_d + 0.2 * rng.standard_normal(v_d.shape) / np.sqrt(200)
        dense.replace(v_d, v_new, lam_d)
        low.replace(v_l, v_new, lam_l)
    assert low.restarts and max(low.restarts) < 100  # warm starts converged


def test_orthonormalize_drops_dependent_directions():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((300, 5)))[0]
    w = rng.standard_normal((300, 4))
    # Two columns inside span(basis) or of the others: only two new directions remain.
    w = np.concatenate([w[:, :2], basis @ rng.standard_normal((5, 1)), w[:, :1] - 3 * w[:, 1:2]], 1)
    u = orthonormalize(w, basis)
    assert u.shape == (300, 2)
    np.testing.assert_allclose(u.T @ u, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(basis.T @ u, 0.0, atol=1e-12)
    # The span is the projected span of w's first two columns.
    proj = w[:, :2] - basis @ (basis.T @ w[:, :2])
    np.testing.assert_allclose(proj - u @ (u.T @ proj), 0.0, atol=1e-10)
    # Weak but genuine directions (1e-9 of the others) are kept: resolved in a later round.
    tiny = np.concatenate([w[:, :2], 1e-9 * rng.standard_normal((300, 1))], 1)
    v = orthonormalize(tiny, drop=1e-12)
    assert v.shape[1] == 3
    np.testing.assert_allclose(v.T @ v, np.eye(3), atol=1e-10)

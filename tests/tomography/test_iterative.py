import pytest
import torch

from inversa.core.errors import InputError
from inversa.core.operators import DiagonalOperator, MatrixOperator
from inversa.tomography._iterative import SolveInfo, cgls, sirt


def _random_matrix(m: int, n: int, seed: int, *, nonneg: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if nonneg:
        return torch.rand(m, n, generator=g, dtype=torch.float64)
    return torch.randn(m, n, generator=g, dtype=torch.float64)


def test_cgls_matches_lstsq():
    a = _random_matrix(30, 12, 0)
    y = torch.randn(30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x, info = cgls(MatrixOperator(a), y, n_iter=100, tol=1e-12)
    ref = torch.linalg.lstsq(a, y[:, None]).solution[:, 0]
    assert isinstance(info, SolveInfo)
    assert info.converged
    assert info.n_iter <= 30
    torch.testing.assert_close(x, ref, rtol=1e-9, atol=1e-10)


def test_cgls_damped_matches_ridge_closed_form():
    a = _random_matrix(20, 15, 2)
    y = torch.randn(20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    lam = 0.7
    x, _ = cgls(MatrixOperator(a), y, n_iter=200, tol=1e-13, damping=lam)
    ref = torch.linalg.solve(a.T @ a + lam * torch.eye(15, dtype=torch.float64), a.T @ y)
    torch.testing.assert_close(x, ref, rtol=1e-9, atol=1e-10)


def test_cgls_residuals_decrease_monotonically():
    a = _random_matrix(40, 25, 4)
    y = torch.randn(40, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    _, info = cgls(MatrixOperator(a), y, n_iter=20, tol=0.0)
    r = torch.tensor(info.residual_norms)
    assert len(r) == info.n_iter + 1 == 21
    assert bool((r[1:] <= r[:-1] * (1 + 1e-12)).all())
    assert r[-1] < r[0]


def test_cgls_residual_norms_are_true_residuals():
    a = _random_matrix(25, 10, 6)
    y = torch.randn(25, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x, info = cgls(MatrixOperator(a), y, n_iter=5, tol=0.0)
    assert info.n_iter == 5
    assert info.residual_norms[-1] == pytest.approx(float(torch.linalg.norm(y - a @ x)), rel=1e-9)


def test_sirt_converges_to_solution_of_consistent_system():
    a = _random_matrix(40, 8, 8, nonneg=True)
    x_true = torch.rand(8, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    y = a @ x_true
    x, info = sirt(MatrixOperator(a), y, n_iter=20000, tol=1e-12)
    torch.testing.assert_close(x, x_true, rtol=1e-6, atol=1e-6)
    assert info.residual_norms[-1] < 1e-6 * info.residual_norms[0]


def test_sirt_fixed_point_is_weighted_least_squares():
    # Inconsistent overdetermined system: SIRT's limit satisfies A^T R (A x - y) = 0.
    a = _random_matrix(30, 6, 10, nonneg=True)
    y = torch.rand(30, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    x, _ = sirt(MatrixOperator(a), y, n_iter=20000, tol=1e-13)
    r_w = torch.diag(1.0 / a.sum(dim=1))
    ref = torch.linalg.solve(a.T @ r_w @ a, a.T @ r_w @ y)
    torch.testing.assert_close(x, ref, rtol=1e-6, atol=1e-7)


def test_sirt_nonneg_is_respected():
    a = _random_matrix(20, 10, 12, nonneg=True)
    x_true = torch.randn(10, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    y = a @ x_true
    x, _ = sirt(MatrixOperator(a), y, n_iter=200, nonneg=True, tol=0.0)
    assert bool((x >= 0).all())
    x_free, _ = sirt(MatrixOperator(a), y, n_iter=200, tol=0.0)
    assert bool((x_free < 0).any())


def test_sirt_zero_rows_and_columns_are_safe():
    a = _random_matrix(12, 6, 14, nonneg=True)
    a[3] = 0.0  # a ray that misses everything
    a[:, 2] = 0.0  # a voxel no ray sees
    y = a @ torch.ones(6, dtype=torch.float64)
    x, _ = sirt(MatrixOperator(a), y, n_iter=50, tol=0.0)
    assert bool(torch.isfinite(x).all())
    assert float(x[2]) == 0.0


@pytest.mark.parametrize("solver", [sirt, cgls])
def test_batched_equals_per_item(solver):
    a = _random_matrix(24, 10, 15, nonneg=True)
    g = torch.Generator().manual_seed(16)
    # Items of very different difficulty, so they stop at different iterations.
    y = torch.stack(
        [
            a @ torch.rand(10, generator=g, dtype=torch.float64),
            torch.rand(24, generator=g, dtype=torch.float64),
            a @ torch.ones(10, dtype=torch.float64),
            torch.zeros(24, dtype=torch.float64),
        ]
    ).reshape(2, 2, 24)
    op = MatrixOperator(a)
    xb, info_b = solver(op, y, n_iter=300, tol=1e-5)
    n_iters = []
    for idx in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        xi, info_i = solver(op, y[idx], n_iter=300, tol=1e-5)
        n_iters.append(info_i.n_iter)
        torch.testing.assert_close(xb[idx], xi, rtol=1e-10, atol=1e-12)
    assert info_b.n_iter == max(n_iters)
    assert len(set(n_iters)) > 1


@pytest.mark.parametrize("solver", [sirt, cgls])
def test_stops_early_when_tol_reached(solver):
    a = _random_matrix(30, 5, 17, nonneg=True)
    y = a @ torch.rand(5, generator=torch.Generator().manual_seed(18), dtype=torch.float64)
    _, info = solver(MatrixOperator(a), y, n_iter=5000, tol=1e-3)
    assert info.converged
    assert info.n_iter < 5000
    assert info.relative_change < 1e-3
    _, info_short = solver(MatrixOperator(a), y, n_iter=2, tol=0.0)
    assert not info_short.converged
    assert info_short.n_iter == 2


def test_callback_and_progress():
    d = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    seen = []
    x, info = cgls(
        DiagonalOperator(d),
        torch.ones(3, dtype=torch.float64),
        n_iter=10,
        progress=True,
        callback=lambda k, x: seen.append((k, x.clone())),
    )
    torch.testing.assert_close(x, 1.0 / d)
    assert [k for k, _ in seen] == list(range(1, info.n_iter + 1))
    torch.testing.assert_close(seen[-1][1], x)


def test_x0_is_used_and_float32_preserved():
    a = _random_matrix(10, 4, 19).float()
    x_true = torch.tensor([1.0, -2.0, 0.5, 3.0])
    y = a @ x_true
    x, info = cgls(MatrixOperator(a), y, x0=x_true, n_iter=10)
    assert x.dtype == torch.float32
    assert info.n_iter <= 1
    torch.testing.assert_close(x, x_true)


def test_bad_inputs_raise_input_error():
    op = MatrixOperator(_random_matrix(5, 3, 20))
    with pytest.raises(InputError, match="range shape"):
        sirt(op, torch.zeros(4, dtype=torch.float64))
    with pytest.raises(InputError, match="n_iter"):
        cgls(op, torch.zeros(5, dtype=torch.float64), n_iter=0)
    with pytest.raises(InputError, match="damping"):
        cgls(op, torch.zeros(5, dtype=torch.float64), damping=-1.0)
    with pytest.raises(InputError, match="x0"):
        cgls(op, torch.zeros(5, dtype=torch.float64), x0=torch.zeros(4, dtype=torch.float64))

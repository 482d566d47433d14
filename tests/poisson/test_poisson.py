"""Tests of inversa.poisson: models, solvers against closed forms, diagonal theory, CLI."""

from __future__ import annotations

import pytest
import torch

from inversa.core.errors import InputError
from inversa.core.operators import DiagonalOperator, MatrixOperator
from inversa.poisson import (
    ESTIMATOR_ALIASES,
    LinearPoissonModel,
    Penalty,
    SolveInfo,
    SolverConfig,
    TransmissionModel,
    best_regularisation,
    check_counts,
    diagonal_estimate,
    diagonal_mse,
    diagonal_mse_mc,
    estimate,
    heteroscedastic_ls,
    homoscedastic_ls,
    poisson_map,
    poisson_ml,
    transmission_pl,
    transmission_pwls,
)
from inversa.tomography import Radon2D, cgls

D = torch.float64


def _diag_setup():
    a = torch.tensor([1.0, 0.5, 0.2, 0.1], dtype=D)
    x = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=D)
    op = DiagonalOperator(a)
    k = torch.tensor([[3.0, 0.0, 1.0, 7.0], [0.0, 2.0, 0.0, 1.0]], dtype=D)
    return a, x, op, k


@pytest.mark.parametrize("name", ["ml", "map", "hg", "og"])
def test_solvers_match_closed_forms_on_diagonal(name):
    a, _, op, k = _diag_setup()
    model = LinearPoissonModel(operator=op, dose=3.0)
    reg = 0.7
    kw = {"solver": SolverConfig(n_iter=3000, tol=1e-12), "penalty": "identity"}
    if name == "ml":
        k = k + 1.0  # all counts positive: the ML estimate is interior
        x_hat, _ = poisson_ml(model, k, method="spg", solver=kw["solver"])
        x_em, _ = poisson_ml(model, k, method="mlem", solver=SolverConfig(n_iter=10, tol=1e-12))
        torch.testing.assert_close(x_em, k / (3.0 * a))
    elif name == "map":
        x_hat, _ = poisson_map(model, k, reg=reg, **kw)
    elif name == "hg":
        x_hat, _ = heteroscedastic_ls(model, k, reg=reg, **kw)
    else:
        x_hat, _ = homoscedastic_ls(model, k, reg=reg, **kw)
    expected = diagonal_estimate(name, k, a, dose=3.0, reg=0.0 if name == "ml" else reg)
    torch.testing.assert_close(x_hat, expected, rtol=1e-6, atol=1e-8)


def test_og_cg_matches_core_cgls():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(12, 8, generator=g, dtype=D)
    op = MatrixOperator(m)
    y = torch.poisson(5.0 * m @ torch.rand(8, generator=g, dtype=D), generator=g)
    model = LinearPoissonModel(operator=op, dose=2.0)
    x_og, info = homoscedastic_ls(model, y, reg=0.3, solver=SolverConfig(n_iter=200, tol=1e-12))
    # (1/(2s))||y - s A x||^2 + reg/2 ||x||^2  <=>  ||A x - y/s||^2 + (reg/s) ||x||^2
    x_ref, _ = cgls(op, y / 2.0, damping=0.3 / 2.0, n_iter=200, tol=1e-14)
    torch.testing.assert_close(x_og, x_ref, rtol=1e-7, atol=1e-9)
    assert info.converged


def test_map_on_radon_lowers_objective_and_beats_ml_at_low_dose():
    op = Radon2D(image_shape=(16, 16), angles=torch.arange(12, dtype=D) * 15.0)
    truth = torch.zeros(16, 16, dtype=D)
    truth[4:12, 5:11] = 1.0
    model = LinearPoissonModel(operator=op, dose=0.2)
    y = model.sample(truth.expand(3, 16, 16), generator=torch.Generator().manual_seed(3))
    x_ml, info_ml = poisson_ml(model, y, method="spg", solver=SolverConfig(n_iter=500, tol=1e-6))
    _, info_em = poisson_ml(model, y, method="mlem", solver=SolverConfig(n_iter=200))
    assert info_ml.objective[-1] <= info_em.objective[-1] + 1e-6
    x_map, info = poisson_map(
        model, y, reg=2.0, penalty="gradient", solver=SolverConfig(n_iter=500, tol=1e-6)
    )
    assert bool((x_map >= 0).all()) and bool((x_ml >= 0).all())
    assert info.objective[-1] < info.objective[0]
    mse = lambda v: float((v - truth).square().mean())  # noqa: E731
    assert mse(x_map) < mse(x_ml)


def test_penalty_gradients_match_autograd():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 5, 6, generator=g, dtype=D, requires_grad=True)
    for kind in ("identity", "gradient", "tv"):
        pen = Penalty(kind=kind, weight=0.8, ndim=2, tv_epsilon=0.1)
        (auto,) = torch.autograd.grad(pen.value(x).sum(), x)
        torch.testing.assert_close(pen.gradient(x.detach()), auto)


def test_transmission_estimators_recover_attenuation():
    op = Radon2D(image_shape=(12, 12), angles=torch.arange(10, dtype=D) * 18.0)
    mu = torch.zeros(12, 12, dtype=D)
    mu[3:9, 3:9] = 0.05
    model = TransmissionModel(operator=op, n0=1e9)
    # Rounded mean counts: noise-free to 1e-9 relative, so both must return mu.
    y = torch.round(model.mean(mu))
    solver = SolverConfig(n_iter=400, tol=1e-9)
    x_pl, _ = transmission_pl(model, y, reg=1e-6, solver=solver)
    x_pw, _ = transmission_pwls(model, y, reg=1e-6, solver=solver)
    # 10% of the contrast: both solvers converge slowly on this ill-conditioned
    # 10-angle problem (measured 3.3e-3 for PL, 4.3e-3 for PWLS at 400 iterations).
    assert float((x_pl - mu).abs().max()) < 5e-3
    assert float((x_pw - mu).abs().max()) < 5e-3


def test_diagonal_exact_mse_against_monte_carlo_and_closed_forms():
    a, x, _, _ = _diag_setup()
    g = torch.Generator().manual_seed(5)
    for name in ("ml", "map", "hg", "og"):
        exact = diagonal_mse(name, x, a, dose=2.0, reg=0.5)
        mc = diagonal_mse_mc(name, x, a, dose=2.0, reg=0.5, n_samples=50_000, generator=g)
        torch.testing.assert_close(mc, exact, rtol=0.1, atol=0.0)
    # The quadrature of a linear estimator equals its bias^2 + variance closed form.
    quad = diagonal_mse("map", x, a, dose=2.0, reg=0.0)
    torch.testing.assert_close(quad, x / (2.0 * a))
    reg, best = best_regularisation("og", x, a, dose=2.0, reg_grid=torch.logspace(-2, 2, 9))
    # OG per mode is optimal at reg = a/x; the total optimum lies within the modes' range.
    assert float((a / x).min()) <= reg <= float((a / x).max())
    assert best <= float(diagonal_mse("og", x, a, dose=2.0, reg=1.0).sum())


def test_bad_input_raises():
    op = DiagonalOperator(torch.ones(3, dtype=D))
    with pytest.raises(InputError):
        LinearPoissonModel(operator=op, dose=0.0)
    with pytest.raises(InputError):
        TransmissionModel(operator=op, n0=-1.0)
    with pytest.raises(InputError, match="non-negative"):
        check_counts(torch.tensor([1.0, -1.0, 2.0]), op)
    with pytest.raises(InputError, match="whole"):
        check_counts(torch.tensor([1.0, 0.5, 2.0]), op)
    with pytest.raises(InputError, match="range shape"):
        check_counts(torch.tensor([1.0, 2.0]), op)
    with pytest.raises(InputError, match="NaN"):
        check_counts(torch.tensor([1.0, float("nan"), 2.0]), op)
    model = LinearPoissonModel(operator=op, dose=1.0)
    with pytest.raises(InputError):
        poisson_map(model, torch.tensor([1.0, 2.0, 3.0]), reg=-1.0)
    with pytest.raises(InputError):
        poisson_ml(model, torch.tensor([1.0, 2.0, 3.0]), nonneg=False)


def test_solver_config_validates_and_its_callback_sees_every_iteration():
    with pytest.raises(InputError, match="n_iter"):
        SolverConfig(n_iter=0)
    with pytest.raises(InputError, match="tol"):
        SolverConfig(tol=float("nan"))
    _, _, op, k = _diag_setup()
    model = LinearPoissonModel(operator=op, dose=3.0)
    seen: list[int] = []
    solver = SolverConfig(n_iter=7, tol=0.0, callback=lambda i, x: seen.append(i))
    _, info = poisson_map(model, k, reg=0.5, solver=solver)
    assert isinstance(info, SolveInfo)
    assert seen == list(range(1, info.n_iter + 1)) and info.n_iter == 7
    assert len(info.objective) == 8 and info.residual_norms == ()


@pytest.mark.parametrize(("alias", "short"), sorted(ESTIMATOR_ALIASES.items()))
def test_estimator_aliases_run_the_same_estimator(alias, short):
    a, x, op, k = _diag_setup()
    model = LinearPoissonModel(operator=op, dose=3.0)
    solver = SolverConfig(n_iter=50, tol=0.0)
    x_alias, _ = estimate(alias, model, k + 1.0, reg=0.7, solver=solver)
    x_short, _ = estimate(short, model, k + 1.0, reg=0.7, solver=solver)
    torch.testing.assert_close(x_alias, x_short, rtol=0.0, atol=0.0)
    torch.testing.assert_close(
        diagonal_mse(alias, x, a, dose=2.0, reg=0.5), diagonal_mse(short, x, a, dose=2.0, reg=0.5)
    )
    with pytest.raises(InputError, match="estimator"):
        estimate("gaussian", model, k, solver=solver)


def test_cli_bad_input_exit_code(tmp_path):
    import inversa.cli._poisson  # noqa: F401
    from inversa.cli import main

    assert main(["poisson", "study", "--penalty", "l7", "--out", str(tmp_path)]) == 2

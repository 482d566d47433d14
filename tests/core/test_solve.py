import pytest
import torch

from inversa import poisson, tomography
from inversa.core.errors import InputError
from inversa.core.operators import MatrixOperator
from inversa.core.solve import (
    SolveInfo,
    check_iterations,
    expand,
    item_sq_norm,
    item_sum,
    relative_change,
    start_point,
)


def test_per_item_reductions_and_broadcast():
    x = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)
    torch.testing.assert_close(item_sum(x, 2), x.sum(dim=(1, 2)))
    torch.testing.assert_close(item_sum(x, 1), x.sum(dim=2))
    torch.testing.assert_close(item_sq_norm(x, 2), x.square().sum(dim=(1, 2)))
    assert expand(torch.ones(2), 3).shape == (2, 1, 1, 1)
    step = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    new = torch.tensor([[0.0, 10.0], [0.0, 0.0], [0.0, 0.0]])
    # an item whose new iterate is zero reports ||step||: 0 when it did not move
    torch.testing.assert_close(relative_change(step, new, 1), torch.tensor([0.5, 0.0, 1.0]))


def test_start_point_fills_broadcasts_and_refuses():
    op = MatrixOperator(torch.ones(5, 3, dtype=torch.float64))
    y = torch.zeros(4, 2, 5, dtype=torch.float32)
    x = start_point(op, y, None, fill=torch.arange(8.0).reshape(4, 2))
    assert x.shape == (4, 2, 3) and x.dtype == torch.float32
    torch.testing.assert_close(x[3, 1], torch.full((3,), 7.0))
    x0 = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    x = start_point(op, y, x0)
    assert x.shape == (4, 2, 3) and x.dtype == torch.float32
    x[0, 0, 0] = -1.0  # a new tensor: x0 is not modified
    assert float(x0[0]) == 1.0
    with pytest.raises(InputError, match="does not broadcast"):
        start_point(op, y, torch.ones(2))


def test_check_iterations():
    check_iterations(1, 0.0)
    with pytest.raises(InputError, match="n_iter"):
        check_iterations(0, 1e-3)
    with pytest.raises(InputError, match="tol"):
        check_iterations(5, float("nan"))


def test_tomography_and_poisson_report_the_same_solve_info():
    assert tomography.SolveInfo is SolveInfo and poisson.SolveInfo is SolveInfo
    a = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    op = MatrixOperator(a)
    _, info_t = tomography.cgls(op, a @ torch.tensor([1.0, 2.0], dtype=torch.float64))
    model = poisson.LinearPoissonModel(operator=op, dose=1.0)
    y = torch.tensor([3.0, 1.0, 4.0], dtype=torch.float64)
    _, info_p = poisson.homoscedastic_ls(model, y, reg=0.1)
    assert isinstance(info_t, SolveInfo) and isinstance(info_p, SolveInfo)
    assert info_t.residual_norms and info_t.objective == ()
    assert info_p.objective and info_p.residual_norms == ()

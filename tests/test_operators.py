"""Generic checks run on every operator of tests/operator_registry.py."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from inversa.tomography._warp import Warp2D
from operator_registry import REGISTRY

NAMES = [name for name, _ in REGISTRY]
FACTORIES = [factory for _, factory in REGISTRY]


def _rand(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def _inner(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() * b.double()).sum())


@pytest.mark.parametrize("factory", FACTORIES, ids=NAMES)
def test_adjoint_dot_product(factory):
    op = factory(torch.float64)
    norm = op.norm(dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert norm > 0
    for seed in range(3):
        x = _rand(op.domain_shape, 10 + seed)
        y = _rand(op.range_shape, 20 + seed)
        lhs = _inner(op.forward(x), y)
        rhs = _inner(x, op.adjoint(y))
        scale = norm * float(x.norm()) * float(y.norm())
        assert abs(lhs - rhs) / scale < 1e-5
        # far tighter in fact: the adjoints are exact up to rounding
        assert abs(lhs - rhs) / scale < 1e-12


@pytest.mark.parametrize("factory", FACTORIES, ids=NAMES)
def test_shapes_and_linearity(factory):
    op = factory(torch.float64)
    x1, x2 = _rand(op.domain_shape, 1), _rand(op.domain_shape, 2)
    y1, y2 = _rand(op.range_shape, 3), _rand(op.range_shape, 4)
    a, b = 1.7, -0.3
    fx = op.forward(a * x1 + b * x2)
    assert fx.shape == op.range_shape
    torch.testing.assert_close(fx, a * op.forward(x1) + b * op.forward(x2), rtol=1e-12, atol=1e-12)
    gy = op.adjoint(a * y1 + b * y2)
    assert gy.shape == op.domain_shape
    torch.testing.assert_close(gy, a * op.adjoint(y1) + b * op.adjoint(y2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("factory", FACTORIES, ids=NAMES)
def test_batching_equals_looping(factory):
    op = factory(torch.float64)
    x = _rand((2, 3, *op.domain_shape), 5)
    y = _rand((2, 3, *op.range_shape), 6)
    fx = op.forward(x)
    gy = op.adjoint(y)
    assert fx.shape == (2, 3, *op.range_shape)
    assert gy.shape == (2, 3, *op.domain_shape)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(fx[i, j], op.forward(x[i, j]), rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(gy[i, j], op.adjoint(y[i, j]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("factory", FACTORIES, ids=NAMES)
def test_dtype_preserved(factory, dtype):
    op = factory(dtype)
    x = _rand(op.domain_shape, 7, dtype)
    y = _rand(op.range_shape, 8, dtype)
    assert op.forward(x).dtype == dtype
    assert op.adjoint(y).dtype == dtype
    if dtype == torch.float32:
        ref = factory(torch.float64)
        torch.testing.assert_close(
            op.forward(x).double(), ref.forward(x.double()), rtol=1e-4, atol=1e-4
        )


@pytest.mark.parametrize("factory", FACTORIES, ids=NAMES)
def test_gradcheck(factory):
    op = factory(torch.float64)
    x = _rand(op.domain_shape, 9).requires_grad_()
    y = _rand(op.range_shape, 10).requires_grad_()
    assert torch.autograd.gradcheck(op.forward, (x,))
    assert torch.autograd.gradcheck(op.adjoint, (y,))


@pytest.mark.parametrize("factory", FACTORIES, ids=NAMES)
def test_backends_and_devices_agree(factory):
    """The pure-torch path (used on GPUs) gives the numba values; CUDA too when present."""
    op = factory(torch.float64)
    x = _rand((2, *op.domain_shape), 11)
    y = _rand((2, *op.range_shape), 12)
    ref_f, ref_a = op.forward(x), op.adjoint(y)
    variants = []
    if hasattr(op, "backend"):
        variants += [dataclasses.replace(op, backend=b) for b in ("numba", "torch")]
    for other in variants:
        torch.testing.assert_close(other.forward(x), ref_f, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(other.adjoint(y), ref_a, rtol=1e-10, atol=1e-10)
    # operators whose data live on the host and follow the input's device
    if torch.cuda.is_available() and (hasattr(op, "backend") or isinstance(op, Warp2D)):
        gpu_f = op.forward(x.cuda())
        gpu_a = op.adjoint(y.cuda())
        assert gpu_f.device.type == "cuda"
        torch.testing.assert_close(gpu_f.cpu(), ref_f, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(gpu_a.cpu(), ref_a, rtol=1e-10, atol=1e-10)
    assert ref_f.shape == (2, *op.range_shape)

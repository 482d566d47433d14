"""core.nets: the shared U-Net (2-D and 3-D)."""

from __future__ import annotations

import pytest
import torch

from inversa.core.errors import InputError
from inversa.core.nets import UNet, UNetConfig


@pytest.mark.parametrize(("dim", "spatial"), [(2, (16, 24)), (3, (8, 16, 12))], ids=["2d", "3d"])
@pytest.mark.parametrize("residual", [True, False])
def test_shapes(dim, spatial, residual):
    cfg = UNetConfig(
        dim=dim,
        channels=2,
        depth=2,
        in_channels=2,
        out_channels=2 if residual else 3,
        residual=residual,
    )
    net = UNet(cfg)
    x = torch.randn(3, 2, *spatial)
    y = net(x)
    assert y.shape == (3, cfg.out_channels, *spatial)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("dim", [2, 3])
def test_gradient_reaches_every_parameter(dim):
    torch.manual_seed(0)
    net = UNet(UNetConfig(dim=dim, channels=2, depth=2, residual=False))
    x = torch.randn(2, 1, *([8] * dim), requires_grad=True)
    net(x).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("dim", [2, 3])
def test_residual_is_identity_when_output_layer_is_zero(dim):
    torch.manual_seed(1)
    net = UNet(UNetConfig(dim=dim, channels=2, depth=1))
    torch.nn.init.zeros_(net.out.weight)
    torch.nn.init.zeros_(net.out.bias)
    x = torch.randn(2, 1, *([4] * dim))
    assert torch.equal(net(x), x)
    net.config = UNetConfig(dim=dim, channels=2, depth=1, residual=False)
    assert torch.equal(net(x), torch.zeros_like(x))


def test_sizes_must_divide_by_two_to_the_depth():
    net = UNet(UNetConfig(dim=3, channels=2, depth=2))
    with pytest.raises(InputError, match="divisible by 4"):
        net(torch.zeros(1, 1, 8, 8, 6))
    with pytest.raises(InputError, match="expects"):
        net(torch.zeros(1, 1, 8, 8))
    padded = net.pad_to_multiple(torch.ones(1, 1, 5, 8, 6))
    assert padded.shape == (1, 1, 8, 8, 8)
    assert padded[:, :, :5, :, :6].eq(1).all() and padded.sum() == 5 * 8 * 6
    assert net(padded).shape == padded.shape


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dim": 1},
        {"depth": 0},
        {"channels": 0},
        {"in_channels": 1, "out_channels": 2, "residual": True},
    ],
)
def test_bad_config(kwargs):
    with pytest.raises(InputError):
        UNetConfig(**kwargs)


def test_config_is_frozen():
    cfg = UNetConfig()
    with pytest.raises(AttributeError):
        cfg.depth = 3  # type: ignore[misc]

import pytest
import torch

from inversa.core.errors import InputError
from inversa.springblock import (
    SpringBlockConfig,
    SpringBlockFit,
    curvature,
    fit_spring_block,
    simulate,
)


@pytest.mark.parametrize("order", [1, 2])
def test_static_friction_profile(order):
    # No noise: tension falls by mu per block from the pulled end, e_l = max(P - (L-l+1) mu, 0)
    cfg = SpringBlockConfig(blocks=7, order=order, steps=1500)
    mus = torch.tensor([0.0, 0.05, 0.1, 0.2])
    x = simulate(mus, torch.zeros(4), config=cfg)
    e = torch.diff(x, dim=-1)
    k = torch.arange(7, 0, -1, dtype=torch.float64)
    expected = (1.0 - k[None] * mus[:, None].double()).clamp_min(0)
    torch.testing.assert_close(e, expected, rtol=0, atol=2e-3)
    c = curvature(-x)
    assert abs(float(c[0])) < 1e-3 and (torch.diff(c) > 0).all()


def test_noise_straightens_the_curve():
    cfg = SpringBlockConfig(blocks=7, replicas=16)
    x = simulate(torch.full((3,), 0.1), torch.tensor([0.0, 0.3, 1.0]), config=cfg)
    c = curvature(-x)
    assert float(c[0]) > 0.1 and abs(float(c[1])) < 0.02 and abs(float(c[2])) < 0.02


def test_fit_recovers_friction():
    alphas = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    noises = torch.zeros(5, dtype=torch.float64)
    x = simulate(0.12 * (1 - alphas), noises, config=SpringBlockConfig(blocks=5))
    loads = torch.diff(x, dim=-1)
    fit = fit_spring_block(alphas, noises, loads, config=SpringBlockConfig(replicas=2), grid=4)
    assert fit.friction_scale == pytest.approx(0.12, rel=0.05)
    assert fit.loss < 1e-4
    torch.testing.assert_close(fit.curvature, curvature(-x), rtol=0, atol=0.01)


def test_bad_input():
    with pytest.raises(InputError):
        simulate(torch.tensor([-0.1]), torch.tensor([0.0]))
    with pytest.raises(InputError):
        SpringBlockConfig(eta=2.0)
    with pytest.raises(InputError, match="nonzero load"):
        fit_spring_block(torch.zeros(1), torch.zeros(1), torch.tensor([[0.0, 0.0]]))


@pytest.mark.parametrize("order", [1, 2])
def test_backward_friction_ratchets_the_chain_convex(order):
    # Kicks on a chain that resists backward motion more than forward motion drift it towards
    # the pull; that forward drift stretches the springs near the wall most (convex curve).
    cfg = SpringBlockConfig(blocks=7, order=order, replicas=16, steps=1500)
    zero = torch.zeros(2, dtype=torch.float64)
    noise = torch.full((2,), 0.3, dtype=torch.float64)
    x = simulate(zero, noise, backward_friction=torch.tensor([0.0, 0.2]), config=cfg)
    c = curvature(-x)
    assert abs(float(c[0])) < 0.01 and float(c[1]) < -0.02
    e = torch.diff(x[1])
    assert float(e[0]) > float(e[-1])  # the shallow spring carries the larger load
    with pytest.raises(InputError):
        simulate(zero, noise, backward_friction=torch.tensor([0.1]))


def test_fit_of_the_full_mapping_reproduces_its_own_curves():
    alphas = torch.tensor([0.0, 0.0, 0.5, 0.5, 1.0, 1.0], dtype=torch.float64)
    noises = torch.tensor([0.0, 0.8, 0.0, 0.8, 0.0, 0.8], dtype=torch.float64)
    cfg = SpringBlockConfig(blocks=5, replicas=4, steps=300)
    truth = SpringBlockFit(
        friction_scale=0.1,
        backward_excess=0.2,
        noise_scale=0.3,
        noise_floor=0.1,
        loss=0.0,
        curvature=torch.zeros(6),
        load=torch.zeros(6, 5),
    )
    curv, loads = truth.predict(alphas, noises, config=cfg)
    # the truth has concave and convex cells (the ratchet beats the friction at high noise)
    assert (curv > 0.01).any() and (curv < -0.01).any()
    fit = fit_spring_block(alphas, noises, loads, config=cfg, grid=3, maxfev=40)
    # the parameters trade off (not identifiable from six cells), the curves do not
    assert fit.loss < 2e-4
    torch.testing.assert_close(fit.curvature, curv, rtol=0, atol=0.02)

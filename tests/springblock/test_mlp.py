import pytest
import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.springblock import (
    BatchedAdam,
    BatchedMLP,
    Dataset,
    NetworkSetting,
    load_dataset,
    make_mlp,
    separation_curve,
    train_networks,
)

ALPHAS = (0.0, 0.3, 1.0)


def _nets(dtype=torch.float64):
    nets = [
        make_mlp(in_features=7, classes=4, width=9, depth=4, alpha=a, seed=s).to(dtype)
        for s, a in enumerate(ALPHAS)
    ]
    batched = BatchedMLP(
        nets, alphas=torch.tensor(ALPHAS, dtype=dtype), dropouts=torch.zeros(len(nets))
    ).to(dtype)
    return nets, batched


def test_make_mlp_is_seeded_and_sized():
    a = make_mlp(in_features=100, classes=10)
    b = make_mlp(in_features=100, classes=10)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    # the paper's 73,310 parameters include one more batch norm on the input (200)
    assert sum(p.numel() for p in a.parameters()) + 200 == 73310
    with pytest.raises(InputError):
        make_mlp(in_features=3, classes=2, alpha=1.5)


def test_forward_equals_independent_sequentials():
    nets, batched = _nets()
    x = torch.randn(3, 20, 7, dtype=torch.float64)
    for train in (True, False):
        batched.train(train)
        out = batched(x)
        for i, net in enumerate(nets):
            net.train(train)
            ref = net(x[i])
            torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-13)
    # running statistics were updated identically in the training pass
    bn = next(m for m in nets[1] if isinstance(m, nn.BatchNorm1d))
    torch.testing.assert_close(batched.running_var0[1, 0], bn.running_var, rtol=0, atol=1e-14)
    # round trip to a Sequential
    batched.eval()
    torch.testing.assert_close(batched.to_sequential(2).eval()(x[2]), batched(x)[2])


def test_hand_gradient_equals_autograd():
    _, batched = _nets()
    x = torch.randn(3, 16, 7, dtype=torch.float64)
    y = torch.randint(0, 4, (3, 16))
    loss = batched.loss_and_grad(x, y)
    hand = [p.grad.clone() for p in batched.parameters()]
    for p in batched.parameters():
        p.grad = None
    logits = batched(x)
    ref = nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)
    ref.sum().backward()
    torch.testing.assert_close(loss, ref.detach(), rtol=0, atol=1e-13)
    for h, p in zip(hand, batched.parameters(), strict=True):
        torch.testing.assert_close(h, p.grad, rtol=0, atol=1e-12)


def test_training_steps_equal_independent_adam():
    # float64: the biases before batch norm have a zero true gradient, and in float32 Adam
    # turns their rounding noise (~1e-9, near its eps) into lr-sized steps that differ
    # between any two summation orders; they do not change the network's function.
    nets, batched = _nets()
    lrs = torch.tensor([1e-3, 3e-3, 1e-2])
    opt = BatchedAdam(list(batched.parameters()), lr=lrs)
    opts = [torch.optim.Adam(n.parameters(), lr=float(lr)) for n, lr in zip(nets, lrs, strict=True)]
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(3, 24, 7, generator=g, dtype=torch.float64)
        y = torch.randint(0, 4, (3, 24), generator=g)
        batched.loss_and_grad(x, y)
        opt.step()
        for i, (net, o) in enumerate(zip(nets, opts, strict=True)):
            o.zero_grad()
            nn.functional.cross_entropy(net(x[i]), y[i]).backward()
            o.step()
    for i, net in enumerate(nets):
        ref = batched.to_sequential(i)
        for p, q in zip(ref.parameters(), net.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-5)


def test_losses_hand_their_gradients_to_autograd():
    _, batched = _nets()
    x = torch.randn(3, 16, 7, dtype=torch.float64)
    y = torch.randint(0, 4, (3, 16))
    before = [b.clone() for b in batched.buffers()]
    loss = batched.loss_and_grad(x, y)
    hand = [p.grad.clone() for p in batched.parameters()]
    for p, b in zip(batched.buffers(), before, strict=True):
        p.copy_(b)  # the same running statistics for the second pass
    for p in batched.parameters():
        p.grad = None
    weights = torch.tensor([1.0, 2.0, -0.5], dtype=torch.float64)
    losses = batched.losses(x, y)
    torch.testing.assert_close(losses.detach(), loss, rtol=0, atol=0)
    (weights * losses).sum().backward()
    for h, p in zip(hand, batched.parameters(), strict=True):
        w = weights.reshape(-1, *([1] * (h.ndim - 1)))
        torch.testing.assert_close(p.grad, w * h, rtol=0, atol=0)


def test_batched_adam_is_a_checkpointable_optimizer():
    _, batched = _nets()
    opt = BatchedAdam(list(batched.parameters()), lr=torch.tensor([1e-3, 3e-3, 1e-2]))
    assert isinstance(opt, torch.optim.Optimizer)
    x = torch.randn(3, 16, 7, dtype=torch.float64)
    y = torch.randint(0, 4, (3, 16))
    batched.losses(x, y).sum().backward()
    opt.step()
    assert all(p.grad is None for p in batched.parameters())
    state = opt.state_dict()
    again = BatchedAdam(list(batched.parameters()), lr=torch.ones(3))
    again.load_state_dict(state)
    assert again.param_groups[0]["step"] == 1
    torch.testing.assert_close(again.param_groups[0]["lr"], torch.tensor([1e-3, 3e-3, 1e-2]))
    for p in batched.parameters():
        torch.testing.assert_close(again.state[p]["exp_avg"], opt.state[p]["exp_avg"])


def test_batch_larger_than_the_data_is_a_full_batch():
    data = _tiny()
    full = [NetworkSetting(alpha=0.3, noise=0.1, seed=0)]
    huge = [NetworkSetting(alpha=0.3, noise=0.1, seed=0, batch_size=1000)]
    a = train_networks(data, full, epochs=4, width=8, depth=3)
    b = train_networks(data, huge, epochs=4, width=8, depth=3)
    torch.testing.assert_close(a.curvature, b.curvature, rtol=0, atol=0)
    untrained = train_networks(data, full, epochs=0, width=8, depth=3)
    assert not torch.equal(a.curves[0].log_separation, untrained.curves[0].log_separation)


def _tiny() -> Dataset:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    x = torch.randn(90, 5, generator=g) + 2 * torch.randn(3, 5, generator=g)[y]
    return Dataset("tiny", x[:60], y[:60], x[60:], y[60:], 3)


def test_train_networks_deterministic_and_consistent():
    data = _tiny()
    settings = [
        NetworkSetting(alpha=0.0, noise=0.2, seed=0),
        NetworkSetting(alpha=1.0, seed=1, dropout=0.1, lr=2e-3),
        NetworkSetting(alpha=0.5, seed=2, batch_size=16),
    ]
    a = train_networks(data, settings, epochs=3, width=8, depth=4, chunk=2)
    b = train_networks(data, settings, epochs=3, width=8, depth=4, chunk=2)
    torch.testing.assert_close(a.curvature, b.curvature, rtol=0, atol=0)
    assert a.network_epochs == 9 and a.test_accuracy.shape == (3,)
    assert ((a.test_accuracy >= 0) & (a.test_accuracy <= 1)).all()
    with pytest.raises(InputError):
        train_networks(data, [NetworkSetting(alpha=0.0, noise=1.5)], epochs=1)


def test_batched_curve_equals_hooks_on_sequential():
    data = _tiny()
    nets = [make_mlp(in_features=5, classes=3, width=8, depth=4, alpha=0.2, seed=s) for s in (0, 1)]
    batched = BatchedMLP(nets, alphas=torch.full((2,), 0.2), dropouts=torch.zeros(2))
    batched.train()
    batched(data.x_train)  # moves the running statistics
    batched.eval()
    from inversa.springblock._mlp import _measure

    curves, _, _ = _measure(batched, data)
    hooked = separation_curve(batched.to_sequential(1), data.x_train, data.y_train)
    torch.testing.assert_close(
        curves[1].log_separation, hooked.log_separation, rtol=1e-5, atol=1e-6
    )


def test_digits_and_gmm_data():
    d = load_dataset("digits")
    assert d.x_train.shape[1] == 64 and d.classes == 10
    assert len(d.y_train) + len(d.y_test) == 1797
    assert abs(float(d.x_train.mean())) < 1e-5
    g = load_dataset("gmm")
    assert g.x_train.shape[1] == 64 and g.classes == 10

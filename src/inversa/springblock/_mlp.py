"""Deep MLPs (Linear, BatchNorm, LeakyReLU), many trained at once as one batched model.

`BatchedMLP` stacks N networks: weights ``(N, in, out)`` applied with ``torch.baddbmm``,
batch norm with per-network statistics, a per-network LeakyReLU slope and dropout rate. Each
network sees its own mini-batch ``(N, B, d)``. The loss is the sum of the networks' mean
losses, so each network's gradient is exactly its own; Adam is elementwise, so one batched
Adam equals N independent ones. Training runs on `inversa.core.training.train`:
`BatchedMLP.losses` hands the hand-written gradients of `BatchedMLP.loss_and_grad` to
autograd, and `BatchedAdam` is a ``torch.optim.Optimizer`` with a per-network learning rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from inversa.core import training
from inversa.core.errors import InputError
from inversa.springblock._data import Dataset
from inversa.springblock._separation import SeparationCurve, separation

__all__ = [
    "BatchedAdam",
    "BatchedMLP",
    "NetworkSetting",
    "TrainedNetworks",
    "make_mlp",
    "train_networks",
]


def _check_slope_dropout(alpha: float, dropout: float) -> None:
    if not 0.0 <= alpha <= 1.0 or not 0.0 <= dropout < 1.0:
        raise InputError(
            None, f"alpha must be in [0, 1] and dropout in [0, 1) ({alpha}, {dropout})"
        )


def _seeded_sequential(seed: int, layers: Callable[[], list[nn.Module]]) -> nn.Sequential:
    """Build ``nn.Sequential(*layers())`` under a forked RNG seeded with ``seed``.

    The initial weights then depend on ``seed`` only, and the caller's RNG state is left
    as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(*layers())


def make_mlp(
    *,
    in_features: int,
    classes: int,
    width: int = 100,
    depth: int = 8,
    alpha: float = 0.0,
    dropout: float = 0.0,
    seed: int = 0,
) -> nn.Sequential:
    """Build the paper's MLP as an ``nn.Sequential``, initialised from ``seed``.

    ``depth - 1`` hidden blocks ``[Linear, BatchNorm1d, LeakyReLU(alpha), Dropout]`` and an
    output Linear (``depth`` linear layers; with 100 inputs, width 100, depth 8, 10 classes and
    one more batch norm on the input this is the paper's 73,310 parameters).

    Parameters
    ----------
    in_features, classes
        Input dimension and number of classes.
    width, depth
        Hidden width; number of linear layers (>= 2).
    alpha
        LeakyReLU negative slope in [0, 1] (1 = linear network).
    dropout
        Dropout rate after each activation.
    seed
        Initialisation seed (PyTorch's default initialisation, drawn from this seed only).

    Returns
    -------
    torch.nn.Sequential
        Input ``(n, in_features)``, output logits ``(n, classes)``.
    """
    if depth < 2 or width < 1:
        raise InputError(None, f"depth must be >= 2 and width >= 1 (got {depth}, {width})")
    _check_slope_dropout(alpha, dropout)

    def layers() -> list[nn.Module]:
        mods: list[nn.Module] = []
        d = in_features
        for _ in range(depth - 1):
            mods += [
                nn.Linear(d, width),
                nn.BatchNorm1d(width),
                nn.LeakyReLU(alpha),
                nn.Dropout(dropout),
            ]
            d = width
        mods.append(nn.Linear(d, classes))
        return mods

    return _seeded_sequential(seed, layers)


def _uniform(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform draws shaped like ``like`` on its device, drawn where ``generator`` lives.

    The seeded generators here are CPU generators: drawing on the CPU and moving the
    draws gives the same masks on every device.
    """
    where = like.device if generator is None else generator.device
    u = torch.rand(like.shape, generator=generator, dtype=like.dtype, device=where)
    return u.to(like.device)


class BatchedMLP(nn.Module):
    """N MLPs of `make_mlp`'s architecture evaluated as one model.

    Parameters
    ----------
    nets
        N ``nn.Sequential`` built by `make_mlp` (same sizes); their weights are copied.
    alphas, dropouts
        ``(N,)`` LeakyReLU slopes and dropout rates.
    """

    def __init__(
        self, nets: Sequence[nn.Sequential], *, alphas: torch.Tensor, dropouts: torch.Tensor
    ):
        super().__init__()
        linears = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
        norms = [[m for m in net if isinstance(m, nn.BatchNorm1d)] for net in nets]
        n = len(nets)
        if n == 0 or alphas.shape != (n,) or dropouts.shape != (n,):
            raise InputError(None, "need N >= 1 networks with (N,) alphas and dropouts")
        self.weights = nn.ParameterList(
            [
                nn.Parameter(torch.stack([ls[k].weight.detach().T for ls in linears]).contiguous())
                for k in range(len(linears[0]))
            ]
        )
        self.biases = nn.ParameterList(
            [
                nn.Parameter(torch.stack([ls[k].bias.detach()[None] for ls in linears]))
                for k in range(len(linears[0]))
            ]
        )
        self.gammas = nn.ParameterList(
            [
                nn.Parameter(torch.stack([bs[k].weight.detach()[None] for bs in norms]))
                for k in range(len(norms[0]))
            ]
        )
        self.betas = nn.ParameterList(
            [
                nn.Parameter(torch.stack([bs[k].bias.detach()[None] for bs in norms]))
                for k in range(len(norms[0]))
            ]
        )
        for k in range(len(norms[0])):
            self.register_buffer(
                f"running_mean{k}", torch.stack([bs[k].running_mean[None] for bs in norms])
            )
            self.register_buffer(
                f"running_var{k}", torch.stack([bs[k].running_var[None] for bs in norms])
            )
        self.register_buffer("alphas", alphas.to(self.weights[0].dtype).reshape(n, 1, 1).clone())
        self.register_buffer(
            "dropouts", dropouts.to(self.weights[0].dtype).reshape(n, 1, 1).clone()
        )
        self.eps = norms[0][0].eps
        self.momentum = norms[0][0].momentum

    @property
    def networks(self) -> int:
        """Number of stacked networks N."""
        return self.weights[0].shape[0]

    def forward(
        self,
        x: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        features: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits ``(N, B, classes)`` of inputs ``(N, B, in)`` (or ``(B, in)`` shared by all).

        In training mode batch norm uses each network's batch statistics (and updates its
        running ones) and dropout draws from ``generator``. Post-activation features of each
        hidden block ``(N, B, width)`` are appended to ``features`` when it is given.
        """
        if x.ndim == 2:
            x = x.expand(self.networks, *x.shape)
        h = x
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if k == last:
                break
            rm, rv = getattr(self, f"running_mean{k}"), getattr(self, f"running_var{k}")
            if self.training:
                var, mean = torch.var_mean(h, dim=1, keepdim=True, correction=0)
                with torch.no_grad():
                    m = h.shape[1]
                    rm.mul_(1 - self.momentum).add_(mean.detach(), alpha=self.momentum)
                    rv.mul_(1 - self.momentum).add_(
                        var.detach() * (m / max(m - 1, 1)), alpha=self.momentum
                    )
            else:
                mean, var = rm, rv
            h = (h - mean) * torch.rsqrt(var + self.eps) * self.gammas[k] + self.betas[k]
            h = torch.where(h >= 0, h, h * self.alphas)
            if self.training and bool((self.dropouts > 0).any()):
                keep = _uniform(h, generator)
                h = h * (keep >= self.dropouts) / (1 - self.dropouts)
            if features is not None:
                features.append(h)
        return h

    @torch.no_grad()
    def loss_and_grad(
        self, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Training-mode cross-entropy of each network and its gradient, by hand.

        Autograd spends most of its time on the many full-size elementwise passes of batch
        norm and the activation; the hand-written backward needs far fewer of them, so the
        step runs close to its matrix-product cost.

        Parameters
        ----------
        x
            ``(N, B, in)`` inputs.
        y
            ``(N, B)`` labels.
        generator
            Source of the dropout masks.

        Returns
        -------
        torch.Tensor
            ``(N,)`` mean loss of each network; gradients are stored in ``.grad`` (replacing
            any) and running statistics are updated, as a training step of `forward` would.
        """
        nb = x.shape[1]
        last = len(self.weights) - 1
        use_drop = bool((self.dropouts > 0).any())
        cache: list[tuple[torch.Tensor, ...]] = []
        h = x
        for k in range(last):
            w, b, gam, bet = self.weights[k], self.biases[k], self.gammas[k], self.betas[k]
            z = torch.baddbmm(b, h, w)
            # Reductions over the batch as plain sums and broadcast arithmetic instead of
            # var_mean / where, which are several times slower on (N, B, w) (measured).
            mean = z.sum(dim=1, keepdim=True) / nb
            zc = z.sub_(mean)
            var = (zc * zc).sum(dim=1, keepdim=True) / nb
            rm, rv = getattr(self, f"running_mean{k}"), getattr(self, f"running_var{k}")
            rm.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
            rv.mul_(1 - self.momentum).add_(var * (nb / max(nb - 1, 1)), alpha=self.momentum)
            rstd = torch.rsqrt(var + self.eps)
            scale = gam * rstd
            a = torch.addcmul(bet, zc, scale)
            slope = torch.addcmul(self.alphas, (a >= 0).to(a.dtype), 1 - self.alphas)
            hn = a.mul_(slope)
            if use_drop:
                keep = _uniform(hn, generator)
                mask = (keep >= self.dropouts) / (1 - self.dropouts)
                slope = slope * mask
                hn = hn * mask
            cache.append((h, zc, rstd, scale, slope))
            h = hn
        logits = torch.baddbmm(self.biases[last], h, self.weights[last])
        logp = torch.log_softmax(logits, dim=-1)
        loss = -logp.gather(-1, y[..., None])[..., 0].mean(dim=1)
        g = logp.exp_()
        g.scatter_add_(-1, y[..., None], torch.full_like(g[..., :1], -1.0).expand_as(y[..., None]))
        g /= nb
        self.weights[last].grad = torch.bmm(h.transpose(1, 2), g)
        self.biases[last].grad = g.sum(dim=1, keepdim=True)
        dh = torch.bmm(g, self.weights[last].transpose(1, 2))
        for k in range(last - 1, -1, -1):
            h_prev, zc, rstd, scale, slope = cache[k]
            da = dh.mul_(slope)
            dbeta = da.sum(dim=1, keepdim=True)
            dgamma = (da * zc).sum(dim=1, keepdim=True) * rstd  # sum(da * xhat)
            dz = torch.addcmul(-scale * dbeta / nb, da, scale).addcmul_(
                zc, -scale * rstd * dgamma / nb
            )
            self.gammas[k].grad = dgamma
            self.betas[k].grad = dbeta
            self.weights[k].grad = torch.bmm(h_prev.transpose(1, 2), dz)
            self.biases[k].grad = dz.sum(dim=1, keepdim=True)
            if k > 0:
                dh = torch.bmm(dz, self.weights[k].transpose(1, 2))
        return loss

    def losses(
        self, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Training-mode ``(N,)`` losses, as `loss_and_grad`, differentiable by autograd.

        ``losses(x, y).sum().backward()`` stores the hand-written gradients in ``.grad``
        (accumulating as autograd does), so the batched model trains in any autograd loop.

        Parameters
        ----------
        x, y, generator
            As in `loss_and_grad`.

        Returns
        -------
        torch.Tensor
            ``(N,)`` mean loss of each network.
        """
        return _HandBackward.apply(self, x, y, generator, *self.parameters())

    def to_sequential(self, i: int) -> nn.Sequential:
        """Return network ``i`` as a `make_mlp` ``nn.Sequential`` (weights, running statistics)."""
        depth = len(self.weights)
        w0 = self.weights[0]
        net = make_mlp(
            in_features=w0.shape[1],
            classes=self.weights[-1].shape[2],
            width=w0.shape[2],
            depth=depth,
            alpha=float(self.alphas[i]),
            dropout=float(self.dropouts[i]),
        ).to(dtype=w0.dtype, device=w0.device)
        lin = [m for m in net if isinstance(m, nn.Linear)]
        bns = [m for m in net if isinstance(m, nn.BatchNorm1d)]
        with torch.no_grad():
            for k, m in enumerate(lin):
                m.weight.copy_(self.weights[k][i].T)
                m.bias.copy_(self.biases[k][i, 0])
            for k, m in enumerate(bns):
                m.weight.copy_(self.gammas[k][i, 0])
                m.bias.copy_(self.betas[k][i, 0])
                m.running_mean.copy_(getattr(self, f"running_mean{k}")[i, 0])
                m.running_var.copy_(getattr(self, f"running_var{k}")[i, 0])
        return net


class BatchedAdam(torch.optim.Optimizer):
    """Adam (PyTorch's update rule) over stacked parameters with a per-network learning rate.

    Parameters
    ----------
    params
        Tensors with the network index first, ``(N, ...)``.
    lr
        ``(N,)`` learning rates.
    betas, eps
        As `torch.optim.Adam`.
    """

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        *,
        lr: torch.Tensor,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        params = list(params)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "step": 0})
        for p in params:
            self.state[p] = {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        """One Adam step from the parameters' ``.grad``; clears the gradients."""
        for group in self.param_groups:
            params = group["params"]
            b1, b2 = group["betas"]
            group["step"] += 1
            c1 = 1 - b1 ** group["step"]
            c2 = math.sqrt(1 - b2 ** group["step"])
            m = [self.state[p]["exp_avg"] for p in params]
            v = [self.state[p]["exp_avg_sq"] for p in params]
            grads = [p.grad for p in params]
            torch._foreach_lerp_(m, grads, 1 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
            denom = torch._foreach_sqrt(v)
            torch._foreach_div_(denom, c2)
            torch._foreach_add_(denom, group["eps"])
            for p, m_p, d in zip(params, m, denom, strict=True):
                lr = group["lr"].reshape(-1, *([1] * (p.ndim - 1))).to(p.dtype)
                p.addcdiv_(m_p * (lr / c1), d, value=-1.0)
                p.grad = None


class _HandBackward(torch.autograd.Function):
    """``(N,)`` losses of a `BatchedMLP` whose backward returns the hand-written gradients."""

    @staticmethod
    def forward(ctx, model, x, y, generator, *params):
        loss = model.loss_and_grad(x, y, generator=generator)
        ctx.grads = [p.grad for p in params]
        for p in params:
            p.grad = None
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grads = ctx.grads
        # The network index leads every parameter, so a weighted sum of the networks'
        # losses weights each network's own gradient; plain sums (all ones) skip the pass.
        if not bool((grad_loss == 1).all()):
            grads = [g * grad_loss.reshape(-1, *([1] * (g.ndim - 1))) for g in grads]
        return (None, None, None, None, *grads)


@dataclass(frozen=True)
class NetworkSetting:
    """One network of a sweep.

    Attributes
    ----------
    alpha
        LeakyReLU slope in [0, 1] (non-linearity is 1 - alpha).
    noise
        Training noise in [0, 1): every step each training label is replaced by a uniformly
        random class with this probability, and Gaussian noise of this standard deviation
        (in units of the standardised inputs) is added to the inputs (matched input noise).
    seed
        Initialisation and batch-order seed.
    lr
        Adam learning rate.
    dropout
        Dropout rate after each activation.
    batch_size
        Mini-batch size; ``None`` is the full training set (one step per epoch).
    """

    alpha: float
    noise: float = 0.0
    seed: int = 0
    lr: float = 1e-3
    dropout: float = 0.0
    batch_size: int | None = None


@dataclass(frozen=True)
class TrainedNetworks:
    """Results of `train_networks`, one entry per setting (in the given order).

    Attributes
    ----------
    settings
        The settings.
    curves
        Separation curve of each network on the clean training set (input first, then each
        hidden block's post-activation features).
    train_accuracy, test_accuracy
        ``(N,)`` accuracies (eval mode, clean inputs).
    seconds
        Wall time of training and measuring.
    train_seconds
        Wall time of training only.
    network_epochs
        Sum of epochs over networks.
    """

    settings: tuple[NetworkSetting, ...]
    curves: tuple[SeparationCurve, ...]
    train_accuracy: torch.Tensor
    test_accuracy: torch.Tensor
    seconds: float
    train_seconds: float
    network_epochs: int

    @property
    def curvature(self) -> torch.Tensor:
        """``(N,)`` curvature of each network's log-separation curve."""
        return torch.tensor([c.curvature for c in self.curves], dtype=torch.float64)

    @property
    def spread(self) -> torch.Tensor:
        """``(N,)`` spread of each network's load."""
        return torch.tensor([c.spread for c in self.curves], dtype=torch.float64)

    @property
    def centroid(self) -> torch.Tensor:
        """``(N,)`` load centroid of each network (1 = deepest layer)."""
        return torch.tensor([c.centroid for c in self.curves], dtype=torch.float64)


def _noisy_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    idx: torch.Tensor,
    noise: torch.Tensor,
    classes: int,
    g: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-network batch ``(N, B, d)``, labels ``(N, B)`` with label and matched input noise.

    Drawn from the CPU generator ``g`` and moved to ``x``'s device: the same draws on
    every device.
    """
    dev = x.device
    xb, yb = x[idx.to(dev)], y[idx.to(dev)]
    if bool((noise > 0).any()):
        flip = (torch.rand(yb.shape, generator=g) < noise.cpu()[:, None]).to(dev)
        yb = torch.where(flip, torch.randint(0, classes, yb.shape, generator=g).to(dev), yb)
        kick = torch.randn(xb.shape, generator=g, dtype=xb.dtype).to(dev)
        xb = xb + noise[:, None, None] * kick
    return xb, yb


def _train_group(
    data: Dataset,
    settings: Sequence[NetworkSetting],
    *,
    epochs: int,
    width: int,
    depth: int,
    seed: int,
    device: torch.device,
) -> BatchedMLP:
    """Train one group (same batch size) as a single batched model on ``device``."""
    x = data.x_train.reshape(len(data.x_train), -1).to(device)
    y = data.y_train.to(device)
    n = len(y)
    bs = settings[0].batch_size or n
    nets = [
        make_mlp(
            in_features=x.shape[1],
            classes=data.classes,
            width=width,
            depth=depth,
            alpha=s.alpha,
            dropout=s.dropout,
            seed=s.seed,
        )
        for s in settings
    ]
    f = lambda key: torch.tensor([getattr(s, key) for s in settings], dtype=torch.float32)  # noqa: E731
    model = BatchedMLP(nets, alphas=f("alpha"), dropouts=f("dropout")).to(device)
    opt = BatchedAdam(list(model.parameters()), lr=f("lr").to(device))
    noise = f("noise").to(device)
    g = torch.Generator().manual_seed(seed)
    per_epoch = max(1, n // bs)  # a trailing partial mini-batch is dropped
    # A full batch needs no shuffle (batch norm is order-free).
    perm = torch.arange(n).expand(len(settings), n)

    def loss_fn(step: int) -> torch.Tensor:
        nonlocal perm
        b = step % per_epoch
        if b == 0 and bs < n:  # each network its own shuffle, drawn before the epoch's noise
            perm = torch.argsort(torch.rand(len(settings), n, generator=g), dim=1)
        xb, yb = _noisy_batch(x, y, perm[:, b * bs : (b + 1) * bs], noise, data.classes, g)
        # The sum of the networks' losses: each network's gradient is its own. nansum, so
        # that one diverged network does not stop the others (its curve shows it).
        return model.losses(xb, yb, generator=g).nansum()

    steps = epochs * per_epoch
    run = training.TrainConfig(steps=steps, log_every=max(1, steps), progress=False)
    training.train(model=model, optimizer=opt, loss_fn=loss_fn, config=run)
    return model


def _measure(
    model: BatchedMLP, data: Dataset
) -> tuple[list[SeparationCurve], torch.Tensor, torch.Tensor]:
    """Curves on the clean training set and accuracies (on the CPU), in eval mode."""
    dev = model.weights[0].device
    x = data.x_train.reshape(len(data.x_train), -1).to(dev)
    y = data.y_train.to(dev)
    n_nets = model.networks
    model.eval()
    with torch.no_grad():
        feats: list[torch.Tensor] = []
        train_pred = model(x, features=feats).argmax(-1)
        test_pred = model(data.x_test.reshape(len(data.x_test), -1).to(dev)).argmax(-1)
    curves = []
    d_in = separation(x, y, name="input")
    for i in range(n_nets):
        d = [d_in] + [
            separation(h[i], y, name=f"network {i} block {k}") for k, h in enumerate(feats)
        ]
        names = ["input"] + [f"block{k}" for k in range(len(feats))]
        curves.append(SeparationCurve.from_separation(names, torch.tensor(d, dtype=torch.float64)))
    train_acc = (train_pred == y).double().mean(dim=1).cpu()
    test_acc = (
        (test_pred.cpu() == data.y_test).double().mean(dim=1)
        if len(data.y_test)
        else torch.full((n_nets,), float("nan"), dtype=torch.float64)
    )
    return curves, train_acc, test_acc


def train_networks(
    data: Dataset,
    settings: Sequence[NetworkSetting],
    *,
    epochs: int = 100,
    width: int = 100,
    depth: int = 8,
    chunk: int = 54,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> TrainedNetworks:
    """Train many MLPs (batched, ``chunk`` networks per model) and measure their curves.

    Parameters
    ----------
    data
        Training and test data (inputs flattened to vectors).
    settings
        One `NetworkSetting` per network.
    epochs
        Passes over the training set (a trailing partial mini-batch is dropped).
    width, depth
        See `make_mlp`.
    chunk
        Networks per batched model (memory: about ``24 * chunk * n_train * width * depth``
        bytes).
    seed
        Seed of batch order, label/input noise and dropout masks (drawn on the CPU, so a
        seed gives the same draws on every device).
    device
        Torch device the networks train on; the returned curves and accuracies are on
        the CPU.

    Returns
    -------
    TrainedNetworks
    """
    if not settings:
        raise InputError(None, "no networks to train")
    for s in settings:
        if not 0.0 <= s.noise < 1.0 or s.lr <= 0 or (s.batch_size is not None and s.batch_size < 2):
            raise InputError(None, f"invalid setting {s}: noise in [0, 1), lr > 0, batch size >= 2")
    t0 = time.perf_counter()
    order = sorted(range(len(settings)), key=lambda i: settings[i].batch_size or 0)
    curves: list[SeparationCurve | None] = [None] * len(settings)
    tr = torch.zeros(len(settings), dtype=torch.float64)
    te = torch.zeros(len(settings), dtype=torch.float64)
    train_s = 0.0
    start = 0
    while start < len(order):
        bs = settings[order[start]].batch_size
        stop = start
        while stop < len(order) and stop - start < chunk and settings[order[stop]].batch_size == bs:
            stop += 1
        ids = order[start:stop]
        t1 = time.perf_counter()
        model = _train_group(
            data,
            [settings[i] for i in ids],
            epochs=epochs,
            width=width,
            depth=depth,
            seed=seed + start,
            device=torch.device(device),
        )
        train_s += time.perf_counter() - t1
        c, a, b = _measure(model, data)
        for j, i in enumerate(ids):
            curves[i], tr[i], te[i] = c[j], a[j], b[j]
        start = stop
    return TrainedNetworks(
        settings=tuple(settings),
        curves=tuple(curves),  # type: ignore[arg-type]
        train_accuracy=tr,
        test_accuracy=te,
        seconds=time.perf_counter() - t0,
        train_seconds=train_s,
        network_epochs=epochs * len(settings),
    )

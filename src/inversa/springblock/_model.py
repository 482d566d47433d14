"""The spring-block model of feature learning, vectorised over parameter settings.

A chain of L blocks at positions x_1 .. x_L joined by springs of stiffness k to a fixed
wall x_0 = 0; the last block is pulled with a constant force P. Each block feels static
(Coulomb) friction mu and random kicks of size sigma. Mapping to a deep network: block l is
layer l, friction plays the non-linearity (1 - alpha), the kicks play the training noise,
and the elongation of spring l, x_l - x_{l-1}, plays the load of layer l (its share of the
drop of log D), so -x_l plays the log-separation curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from inversa.core.errors import InputError
from inversa.springblock._separation import curvature

__all__ = ["SpringBlockConfig", "SpringBlockFit", "fit_spring_block", "simulate"]


@dataclass(frozen=True, kw_only=True)
class SpringBlockConfig:
    """Settings of a spring-block simulation.

    Attributes
    ----------
    blocks
        Number of moving blocks L (= loads on the network's curve).
    order
        1: overdamped, x_l += eta (F_l - mu sign F_l) when |F_l| > mu (else the block sticks);
        2: Langevin with mass 1, damping ``damping``, kinetic friction mu, sticking while
        |F_l| <= mu at rest, and noise decaying as exp(-t / ``noise_decay``).
    stiffness
        Spring constant k.
    pull
        Force P on the last block.
    eta
        Step (order 1) or time step dt (order 2).
    steps
        Number of steps.
    replicas
        Independent noise realisations averaged per setting.
    average_last
        Fraction of the final steps over which positions are averaged.
    damping
        Viscous damping (order 2).
    noise_decay
        Decay time of the noise in steps (order 2); ``None`` keeps it constant.
    """

    blocks: int = 7
    order: int = 1
    stiffness: float = 1.0
    pull: float = 1.0
    eta: float = 0.4
    steps: int = 600
    replicas: int = 8
    average_last: float = 0.25
    damping: float = 1.0
    noise_decay: float | None = None

    def __post_init__(self) -> None:
        if self.blocks < 2 or self.order not in (1, 2) or self.steps < 1 or self.replicas < 1:
            raise InputError(None, "need blocks >= 2, order 1 or 2, steps >= 1, replicas >= 1")
        if not 0 < self.eta * self.stiffness <= 0.5:
            raise InputError(None, "eta * stiffness must be in (0, 0.5] for a stable simulation")
        if not 0 < self.average_last <= 1:
            raise InputError(None, "average_last must be in (0, 1]")


def _spring_force(x: np.ndarray, k: float, pull: float) -> np.ndarray:
    """Net spring force on each block of ``(..., L)`` positions (wall at 0, pull on the last)."""
    f = np.empty_like(x)
    f[..., 0] = -2 * x[..., 0]
    f[..., 1:] = x[..., :-1] - 2 * x[..., 1:]
    f[..., :-1] += x[..., 1:]
    f[..., -1] += x[..., -1]  # the last spring only pulls back towards x_{L-1}
    f *= k
    f[..., -1] += pull
    return f


def simulate(
    friction: torch.Tensor,
    noise: torch.Tensor,
    *,
    config: SpringBlockConfig = SpringBlockConfig(),
    seed: int = 0,
    flatten: bool = False,
) -> torch.Tensor:
    """Mean block positions of the spring-block chain for many settings at once.

    Parameters
    ----------
    friction
        ``(S,)`` static friction mu >= 0 per setting (``(..., S)`` with ``flatten``).
    noise
        ``(S,)`` noise standard deviation sigma >= 0 per setting (same shape as ``friction``).
    config
        Simulation settings.
    seed
        Seed of the noise.
    flatten
        Accept any shape ``(..., S)`` of settings and return ``(..., S, L + 1)``.

    Returns
    -------
    torch.Tensor
        ``(S, L + 1)`` float64 positions x_0 = 0, x_1 .. x_L, averaged over replicas and over
        the last ``average_last`` of the steps. ``-x`` is the model's log-separation curve and
        ``diff(x)`` its load.
    """
    friction = torch.as_tensor(friction, dtype=torch.float64)
    noise = torch.as_tensor(noise, dtype=torch.float64)
    if (friction.ndim != 1 and not flatten) or noise.shape != friction.shape:
        raise InputError(None, "friction and noise must be (S,) tensors of the same shape")
    lead = friction.shape
    friction, noise = friction.reshape(-1), noise.reshape(-1)
    if (friction < 0).any() or (noise < 0).any():
        raise InputError(None, "friction and noise must be non-negative")
    c = config
    # NumPy: thousands of steps on small arrays, where torch's per-call overhead dominates.
    rng = np.random.default_rng(seed)
    shape = (friction.shape[0], c.replicas, c.blocks)
    mu = friction.numpy()[:, None, None]
    sig = noise.numpy()[:, None, None]
    x = np.zeros(shape)
    v = np.zeros(shape)
    acc = np.zeros(shape)
    start = c.steps - max(1, round(c.average_last * c.steps))
    for t in range(c.steps):
        kick = rng.standard_normal(shape)
        if c.order == 1:
            f = _spring_force(x, c.stiffness, c.pull) + sig * kick
            x = x + c.eta * np.where(np.abs(f) > mu, f - mu * np.sign(f), 0.0)
        else:
            amp = sig if c.noise_decay is None else sig * np.exp(-t / c.noise_decay)
            # noise enters as a force with variance sigma^2 / dt (Euler-Maruyama)
            f = _spring_force(x, c.stiffness, c.pull) + amp * kick / np.sqrt(c.eta)
            rest = v == 0
            start_moving = rest & (np.abs(f) > mu)
            a = np.where(
                rest,
                np.where(start_moving, f - mu * np.sign(f), 0.0),
                f - c.damping * v - mu * np.sign(v),
            )
            v_new = v + c.eta * a
            # friction stops a moving block; it cannot push it backwards
            v = np.where(~rest & (v_new * v < 0), 0.0, v_new)
            x = x + c.eta * v
        if t >= start:
            acc += x
    mean = torch.from_numpy((acc / (c.steps - start)).mean(axis=1))
    return torch.nn.functional.pad(mean, (1, 0)).reshape(*lead, c.blocks + 1)


@dataclass(frozen=True)
class SpringBlockFit:
    """Spring-block parameters fitted to networks' load curves.

    The mapping is mu = ``friction_scale`` * (1 - alpha), sigma = ``noise_scale`` * noise.

    Attributes
    ----------
    friction_scale, noise_scale
        Fitted scales (in units of the pull P).
    loss
        Mean squared difference of the normalised loads at the optimum.
    curvature
        ``(S,)`` the model's curvature for each fitted setting.
    load
        ``(S, L)`` the model's normalised loads (sum 1).
    """

    friction_scale: float
    noise_scale: float
    loss: float
    curvature: torch.Tensor
    load: torch.Tensor

    def predict(
        self,
        alphas: torch.Tensor,
        noises: torch.Tensor,
        *,
        config: SpringBlockConfig,
        seed: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Model curvature ``(S,)`` and normalised loads ``(S, L)`` for settings ``(S,)``."""
        x = simulate(
            self.friction_scale * (1 - alphas.double()),
            self.noise_scale * noises.double(),
            config=config,
            seed=seed,
        )
        load = torch.diff(x, dim=-1)
        return curvature(-x), load / load.abs().sum(-1, keepdim=True)


def fit_spring_block(
    alphas: torch.Tensor,
    noises: torch.Tensor,
    loads: torch.Tensor,
    *,
    config: SpringBlockConfig | None = None,
    grid: int = 5,
    seed: int = 0,
) -> SpringBlockFit:
    """Fit the friction and noise scales of the model to observed per-layer loads.

    A coarse log-spaced grid search over (friction_scale, noise_scale) followed by a
    Nelder-Mead refinement (scipy) of the mean squared difference between the model's and
    the networks' normalised loads (each curve's loads divided by the sum of their absolute
    values). The noise of
    the simulation is frozen (fixed ``seed``), so the objective is deterministic.

    Parameters
    ----------
    alphas, noises
        ``(S,)`` LeakyReLU slope and training noise of each observed curve.
    loads
        ``(S, L)`` observed loads (e.g. seed-averaged); L sets the number of blocks.
    config
        Simulation settings (``blocks`` is set to L); default `SpringBlockConfig`.
    grid
        Points per axis of the coarse search.
    seed
        Seed of the simulation noise.

    Returns
    -------
    SpringBlockFit
    """
    from scipy.optimize import minimize

    loads = torch.as_tensor(loads, dtype=torch.float64)
    if loads.ndim != 2 or alphas.shape != (loads.shape[0],) or noises.shape != alphas.shape:
        raise InputError(None, "loads must be (S, L) with (S,) alphas and noises")
    # Normalise by the summed |load|, not the net drop: a curve whose layers undo each
    # other has a net drop near 0, and dividing by it let one such cell dominate the fit.
    totals = loads.abs().sum(-1, keepdim=True)
    if (totals <= 0).any():
        raise InputError(None, "every observed curve needs a nonzero load")
    target = loads / totals
    base = config or SpringBlockConfig()
    cfg = SpringBlockConfig(**{**base.__dict__, "blocks": loads.shape[1]})
    a64, n64 = alphas.double(), noises.double()

    def model_loads(p: np.ndarray) -> torch.Tensor:
        mu0, s0 = np.exp(p)
        x = simulate(mu0 * (1 - a64), s0 * n64, config=cfg, seed=seed)
        e = torch.diff(x, dim=-1)
        return e / e.abs().sum(-1, keepdim=True)

    def objective(p: np.ndarray) -> float:
        err = float(((model_loads(p) - target) ** 2).mean())
        return err if np.isfinite(err) else 1.0  # a stuck chain (no elongation) fits nothing

    # friction in units of the pull: above ~P / 2 the deep blocks cannot move at all
    mus, sigmas = np.geomspace(0.005, 0.3, grid), np.geomspace(0.01, 3.0, grid)
    mm, ss = (t.reshape(-1) for t in np.meshgrid(mus, sigmas, indexing="ij"))
    # the whole coarse grid as one vectorised simulation: (grid^2 * S) settings
    xg = simulate(
        torch.from_numpy(mm)[:, None] * (1 - a64)[None],
        torch.from_numpy(ss)[:, None] * n64[None],
        config=cfg,
        seed=seed,
        flatten=True,
    )
    eg = torch.diff(xg, dim=-1)
    errs = ((eg / eg.abs().sum(-1, keepdim=True) - target) ** 2).mean(dim=(-1, -2)).nan_to_num(1.0)
    i0 = int(errs.argmin())
    start = np.log([mm[i0], ss[i0]])
    res = minimize(
        objective, start, method="Nelder-Mead", options={"xatol": 0.02, "fatol": 1e-7, "maxfev": 24}
    )
    best = res.x if res.fun <= objective(start) else start
    fit_loads = model_loads(best)
    mu0, s0 = np.exp(best)
    x = simulate(mu0 * (1 - a64), s0 * n64, config=cfg, seed=seed)
    return SpringBlockFit(
        friction_scale=float(mu0),
        noise_scale=float(s0),
        loss=objective(best),
        curvature=curvature(-x),
        load=fit_loads,
    )

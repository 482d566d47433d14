"""The spring-block model of feature learning, vectorised over parameter settings.

A chain of L blocks at positions x_1 .. x_L joined by springs of stiffness k to a fixed
wall x_0 = 0; the last block is pulled with a constant force P. Each block feels static
(Coulomb) friction, mu_f against motion towards the pull and mu_b >= mu_f against motion
back towards the wall, and random kicks of size sigma. Mapping to a deep network: block l is
layer l, friction plays the non-linearity (1 - alpha), the kicks play the training noise,
and the elongation of spring l, x_l - x_{l-1}, plays the load of layer l (its share of the
drop of log D), so -x_l plays the log-separation curve. With mu_b > mu_f the kicks ratchet
the blocks forward; that forward drift loads the springs near the wall most (a convex curve),
the one way this chain can put the load on the shallow layers.
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
    backward_friction: torch.Tensor | None = None,
    config: SpringBlockConfig = SpringBlockConfig(),
    seed: int = 0,
    flatten: bool = False,
) -> torch.Tensor:
    """Mean block positions of the spring-block chain for many settings at once.

    Parameters
    ----------
    friction
        ``(S,)`` static friction mu >= 0 per setting against motion towards the pull
        (``(..., S)`` with ``flatten``).
    noise
        ``(S,)`` noise standard deviation sigma >= 0 per setting (same shape as ``friction``).
    backward_friction
        ``(S,)`` friction against motion away from the pull (towards the wall); ``None``: equal
        to ``friction``. With ``backward_friction > friction`` the kicks ratchet the blocks
        towards the pull, as in the paper authors' simulations (``muleft > muright``).
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
    back = friction if backward_friction is None else torch.as_tensor(backward_friction).double()
    if (friction.ndim != 1 and not flatten) or noise.shape != friction.shape:
        raise InputError(None, "friction and noise must be (S,) tensors of the same shape")
    if back.shape != friction.shape:
        raise InputError(None, "backward_friction must have the shape of friction")
    lead = friction.shape
    friction, noise, back = friction.reshape(-1), noise.reshape(-1), back.reshape(-1)
    if (friction < 0).any() or (noise < 0).any() or (back < 0).any():
        raise InputError(None, "friction and noise must be non-negative")
    c = config
    # NumPy: thousands of steps on small arrays, where torch's per-call overhead dominates.
    rng = np.random.default_rng(seed)
    shape = (friction.shape[0], c.replicas, c.blocks)
    mu = friction.cpu().numpy()[:, None, None]
    mu_b = back.cpu().numpy()[:, None, None]
    sig = noise.cpu().numpy()[:, None, None]
    x = np.zeros(shape)
    v = np.zeros(shape)
    acc = np.zeros(shape)
    start = c.steps - max(1, round(c.average_last * c.steps))
    for t in range(c.steps):
        kick = rng.standard_normal(shape)
        if c.order == 1:
            f = _spring_force(x, c.stiffness, c.pull) + sig * kick
            x = x + c.eta * np.where(f > mu, f - mu, np.where(f < -mu_b, f + mu_b, 0.0))
        else:
            amp = sig if c.noise_decay is None else sig * np.exp(-t / c.noise_decay)
            # noise enters as a force with variance sigma^2 / dt (Euler-Maruyama)
            f = _spring_force(x, c.stiffness, c.pull) + amp * kick / np.sqrt(c.eta)
            rest = v == 0
            static = np.where(f > mu, f - mu, np.where(f < -mu_b, f + mu_b, 0.0))
            kinetic = np.where(v > 0, mu, -mu_b)
            a = np.where(rest, static, f - c.damping * v - kinetic)
            v_new = v + c.eta * a
            # friction stops a moving block; it cannot push it backwards
            v = np.where(~rest & (v_new * v < 0), 0.0, v_new)
            x = x + c.eta * v
        if t >= start:
            acc += x
    mean = torch.from_numpy((acc / (c.steps - start)).mean(axis=1))
    return torch.nn.functional.pad(mean, (1, 0)).reshape(*lead, c.blocks + 1)


def _mapping(
    params: np.ndarray, alphas: torch.Tensor, noises: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward friction, backward friction and noise of the settings for ``(..., 4)`` params.

    ``params[..., :]`` = (friction_scale, backward_excess, noise_scale, noise_floor); the
    settings' ``alphas`` and ``noises`` broadcast against the leading dimensions.
    """
    p = torch.as_tensor(params, dtype=torch.float64)
    mu0, beta, s0, n0 = (p[..., i, None] for i in range(4))
    forward = mu0 * (1 - alphas.double())
    return forward, forward + beta, s0 * (noises.double() + n0)


@dataclass(frozen=True)
class SpringBlockFit:
    """Spring-block parameters fitted to networks' load curves.

    The mapping (docs/springblock.md, "The model"):

    - forward friction mu_f = ``friction_scale`` * (1 - alpha): the non-linearity makes the
      blocks stick (the paper's friction <-> non-linearity);
    - backward friction mu_b = mu_f + ``backward_excess``: moving back (a layer losing
      separation it has gained) is harder than moving forward, as in the paper authors'
      simulations (mu_left > mu_right); the excess does not depend on alpha, so even a
      frictionless (linear) chain is ratcheted forward by the kicks;
    - kicks sigma = ``noise_scale`` * (noise + ``noise_floor``): the training noise plus the
      optimiser's own (the paper counts the learning rate among the noise knobs; full-batch
      Adam at 1e-3 still takes finite steps).

    Attributes
    ----------
    friction_scale, backward_excess, noise_scale, noise_floor
        Fitted parameters (frictions and kicks in units of the pull P; the floor in units of
        the training noise).
    loss
        Mean squared difference of the normalised loads at the optimum.
    curvature
        ``(S,)`` the model's curvature for each fitted setting.
    load
        ``(S, L)`` the model's normalised loads (absolute values sum to 1).
    """

    friction_scale: float
    backward_excess: float
    noise_scale: float
    noise_floor: float
    loss: float
    curvature: torch.Tensor
    load: torch.Tensor

    @property
    def params(self) -> np.ndarray:
        """``(4,)`` (friction_scale, backward_excess, noise_scale, noise_floor)."""
        return np.array(
            [self.friction_scale, self.backward_excess, self.noise_scale, self.noise_floor]
        )

    def predict(
        self,
        alphas: torch.Tensor,
        noises: torch.Tensor,
        *,
        config: SpringBlockConfig,
        seed: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Model curvature ``(S,)`` and normalised loads ``(S, L)`` for settings ``(S,)``."""
        fwd, back, sig = _mapping(self.params, alphas, noises)
        x = simulate(fwd, sig, backward_friction=back, config=config, seed=seed)
        load = torch.diff(x, dim=-1)
        return curvature(-x), load / load.abs().sum(-1, keepdim=True)


def fit_spring_block(
    alphas: torch.Tensor,
    noises: torch.Tensor,
    loads: torch.Tensor,
    *,
    config: SpringBlockConfig | None = None,
    grid: int = 3,
    maxfev: int = 80,
    seed: int = 0,
) -> SpringBlockFit:
    """Fit the model's four parameters (see `SpringBlockFit`) to observed per-layer loads.

    A coarse log-spaced grid search followed by a Nelder-Mead refinement (scipy, in log
    parameters) of the mean squared difference between the model's and the networks'
    normalised loads (each curve's loads divided by the sum of their absolute values). The
    noise of the simulation is frozen (fixed ``seed``), so the objective is deterministic.

    Parameters
    ----------
    alphas, noises
        ``(S,)`` LeakyReLU slope and training noise of each observed curve.
    loads
        ``(S, L)`` observed loads (e.g. seed-averaged); L sets the number of blocks.
    config
        Simulation settings (``blocks`` is set to L); default `SpringBlockConfig`.
    grid
        Points per axis of the coarse search (``grid ** 4`` parameter sets, simulated at once).
    maxfev
        Objective evaluations of the Nelder-Mead refinement.
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
    if grid < 1 or maxfev < 0:
        raise InputError(None, "grid must be >= 1 and maxfev >= 0")
    # Normalise by the summed |load|, not the net drop: a curve whose layers undo each
    # other has a net drop near 0, and dividing by it let one such cell dominate the fit.
    totals = loads.abs().sum(-1, keepdim=True)
    if (totals <= 0).any():
        raise InputError(None, "every observed curve needs a nonzero load")
    target = loads / totals
    base = config or SpringBlockConfig()
    cfg = SpringBlockConfig(**{**base.__dict__, "blocks": loads.shape[1]})

    def errors(params: np.ndarray) -> torch.Tensor:
        fwd, back, sig = _mapping(params, alphas, noises)
        x = simulate(fwd, sig, backward_friction=back, config=cfg, seed=seed, flatten=True)
        e = torch.diff(x, dim=-1)
        err = ((e / e.abs().sum(-1, keepdim=True) - target) ** 2).mean(dim=(-1, -2))
        return err.nan_to_num(1.0)  # a stuck chain (no elongation) fits nothing

    def objective(logp: np.ndarray) -> float:
        return float(errors(np.exp(logp)[None])[0])

    # frictions in units of the pull: above ~P / L the deep blocks cannot all move
    axes = [
        np.geomspace(0.02, 0.2, grid),  # friction_scale
        np.geomspace(0.01, 0.4, grid),  # backward_excess
        np.geomspace(0.02, 0.5, grid),  # noise_scale
        np.geomspace(0.01, 0.3, grid),  # noise_floor
    ]
    cands = np.stack([a.reshape(-1) for a in np.meshgrid(*axes, indexing="ij")], axis=-1)
    start = np.log(cands[int(errors(cands).argmin())])
    res = minimize(
        objective,
        start,
        method="Nelder-Mead",
        options={"xatol": 0.02, "fatol": 1e-7, "maxfev": maxfev},
    )
    best = np.exp(res.x if res.fun <= objective(start) else start)
    fwd, back, sig = _mapping(best, alphas, noises)
    x = simulate(fwd, sig, backward_friction=back, config=cfg, seed=seed)
    e = torch.diff(x, dim=-1)
    return SpringBlockFit(
        friction_scale=float(best[0]),
        backward_excess=float(best[1]),
        noise_scale=float(best[2]),
        noise_floor=float(best[3]),
        loss=float(errors(best[None])[0]),
        curvature=curvature(-x),
        load=e / e.abs().sum(-1, keepdim=True),
    )

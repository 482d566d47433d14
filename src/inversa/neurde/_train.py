"""Two-stage training of the neural equilibrium, generic over cases.

Stage 1 fits ``G_eq`` to the Newton equilibria of the cells visited by a reference
(Newton) run over the training window (squared error of ``log G_eq``, i.e. a relative
error per population). Stage 2 unrolls the differentiable solver with
the network for a few steps from reference states and matches the populations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from inversa.core.errors import InputError
from inversa.core.training import TrainConfig, load_weights, save_weights, train
from inversa.neurde._cases import Case, make_case
from inversa.neurde._lattice import geq_newton, macroscopic
from inversa.neurde._neural import EquilibriumNet, NeuralEquilibrium
from inversa.neurde._solver import LBState, NewtonEquilibrium, initial_state, lb_step

__all__ = [
    "NeurdeTrainConfig",
    "load_equilibrium",
    "reference_trajectory",
    "save_equilibrium",
    "shipped_weights",
    "train_equilibrium",
]

_DATA = Path(__file__).parent / "data"


@dataclass(frozen=True, kw_only=True)
class NeurdeTrainConfig:
    """What the training runs on and for how long.

    Attributes
    ----------
    window
        Reference steps ``0 .. window`` used for training (the paper: 500).
    stage1_steps, stage2_steps
        Optimiser steps of the two stages.
    unroll
        Solver steps unrolled in stage 2 (the paper: 25; 20 for the cylinder).
    batch
        Cells per stage-1 batch.
    jitter
        Stage-1 perturbation of the visited states, in units of each field's spread.
    lr1, lr2
        Adam learning rates of the two stages.
    width, depth, features
        Network size (the paper: 64, 4, 64 for Sod; width 32 for the cylinder).
    scale
        Grid scale of the case when it is given by name (see `make_case`).
    seed
        Seed of the initial weights and of every batch.
    """

    window: int = 500
    stage1_steps: int = 2000
    stage2_steps: int = 60
    unroll: int = 25
    batch: int = 4096
    jitter: float = 0.1
    lr1: float = 2e-3
    lr2: float = 1e-4
    width: int = 64
    depth: int = 4
    features: int = 64
    scale: float = 1.0
    seed: int = 0


def reference_trajectory(
    case: Case, *, steps: int, rows: int | None = None, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton run of ``case`` (float64), all states ``0 .. steps`` as float32.

    Parameters
    ----------
    case
        The case.
    steps
        Number of steps.
    rows
        Keep only this many grid rows (shock tubes are uniform in y and periodic, so
        one row gives the same solution at a fifth of the cost).
    device
        Torch device of the run and of the returned tensors.

    Returns
    -------
    tuple of torch.Tensor
        ``F`` and ``G``, each ``(steps + 1, 9, H, W)``.
    """
    fields = case.initial_fields(device=device)
    if rows is not None:
        fields = tuple(f[:rows] for f in fields)
    state = initial_state(*fields, config=case.config)
    Fs, Gs = [state.F.float()], [state.G.float()]
    eq = NewtonEquilibrium()
    boundary = _boundary_on(case, device)
    for _ in range(steps):
        state = lb_step(state, config=case.config, equilibrium=eq, boundary=boundary)
        Fs.append(state.F.float())
        Gs.append(state.G.float())
    return torch.stack(Fs), torch.stack(Gs)


def _boundary_on(case: Case, device: str | torch.device):
    """Return the case's boundary with its obstacle mask on ``device``."""
    if case.boundary.obstacle is None:
        return case.boundary
    return replace(case.boundary, obstacle=case.boundary.obstacle.to(device))


def _in_range(c: torch.Tensor, lb) -> torch.Tensor:
    """Rows ``(rho, ux, uy, T)`` of ``c (N, 4)`` inside the lattice's range, with a margin."""
    rho, ux, uy, T = c.T.double()
    two_e = 2 * T / (lb.gamma - 1) + ux * ux + uy * uy
    mean_x = (two_e + 2 * T) * ux / two_e - lb.shift
    mean_y = (two_e + 2 * T) * uy / two_e
    return (
        (rho > 0)
        & (T > 0)
        & ((ux - lb.shift) ** 2 + T < 0.95)
        & (uy * uy + T < 0.95)
        & (mean_x.abs() < 0.95)
        & (mean_y.abs() < 0.95)
    )


def _equilibrium_states(case: Case, F: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """States ``(N, 4)`` = ``(rho, ux, uy, T)`` at which the solver evaluates ``G_eq``.

    These are the fields of every cell of the populations ``F, G (..., 9, H, W)``,
    except solid cells: they relax to the equilibrium at rest and at the wall
    temperature (see `collide`), which then streams into the fluid, so the network
    must fit that state rather than the cell's own.
    """
    lb = case.config
    rho, ux, uy, T = macroscopic(F.double(), G.double(), gamma=lb.gamma, shift=lb.shift)
    if case.boundary.obstacle is not None:
        solid = case.boundary.obstacle.to(rho.device).expand_as(rho)
        ux = torch.where(solid, 0.0, ux)
        uy = torch.where(solid, 0.0, uy)
        T = torch.where(solid, case.boundary.wall_temperature, T)
    return torch.stack([f.flatten() for f in (rho, ux, uy, T)]).T.float()


def _relative(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).sum() / (b**2).sum()


def train_equilibrium(
    case: Case | str,
    *,
    config: NeurdeTrainConfig | None = None,
    progress: bool = False,
    trajectory: tuple[torch.Tensor, torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[EquilibriumNet, dict[str, float]]:
    """Train the neural equilibrium of a case in two stages.

    Parameters
    ----------
    case
        A `Case`, or its name (built at the grid scale ``config.scale``).
    config
        Training settings (defaults: `NeurdeTrainConfig()`).
    progress
        Show progress bars.
    trajectory
        A precomputed `reference_trajectory` (float32 ``F, G``) covering the window.
    device
        Torch device of the reference run, the network and both stages. The batches
        are drawn on the CPU, so a seed gives the same batches on every device.

    Returns
    -------
    tuple
        ``(network, summary)``; the summary holds the final losses of both stages; the
        network is on ``device``.
    """
    cfg = config or NeurdeTrainConfig()
    case = make_case(case, scale=cfg.scale) if isinstance(case, str) else case
    if cfg.unroll >= cfg.window:
        raise InputError(None, "the unroll must be shorter than the training window")
    if trajectory is None:
        rows = 1 if case.left is not None else None
        trajectory = reference_trajectory(case, steps=cfg.window, rows=rows, device=device)
    traj_F, traj_G = (t.to(device) for t in trajectory)
    lb = case.config
    boundary = _boundary_on(case, device)
    cells = _equilibrium_states(case, traj_F, traj_G)
    # Uniform regions put most samples on a few points, where the value is learned but
    # not the slope; the solver's stability depends on the slope. Each batch therefore
    # perturbs the visited states a little and solves Newton for them afresh.
    jitter = cfg.jitter
    logs = torch.stack((cells[:, 0].log(), cells[:, 1], cells[:, 2], cells[:, 3].log()), dim=1)
    spread = logs.std(dim=0).clamp_min(0.05) * jitter

    torch.manual_seed(cfg.seed)
    net = EquilibriumNet(shift=lb.shift, width=cfg.width, depth=cfg.depth, features=cfg.features)
    net = net.to(device)
    feats = EquilibriumNet.inputs(*cells.T)
    net.mean.copy_(feats.mean(dim=0))
    # A floor keeps fields that never vary here (uy in a shock tube) from being blown
    # up to round-off sensitivity.
    net.std.copy_(feats.std(dim=0).clamp_min(0.05))
    n = cells.shape[0]

    def stage1_loss(step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(cfg.seed + step)
        idx = torch.randint(n, (min(cfg.batch, n),), generator=g).to(device)
        noise = spread * torch.randn(len(idx), 4, generator=g).to(device)
        c = cells[idx].clone()
        c[:, 1:3] += noise[:, 1:3]
        c[:, 0::3] *= torch.exp(noise[:, 0::3])  # density and temperature: relative jitter
        c = torch.where(_in_range(c, lb)[:, None], c, cells[idx])  # keep perturbations valid
        c = c.T[:, :, None]  # (4, B, 1) as (H, W) = (B, 1)
        target, _, _ = geq_newton(*c.double(), gamma=lb.gamma, shift=lb.shift)
        pred = net(*c)[:, :, 0].T  # (B, 9)
        target = target[:, :, 0].T.float()
        # Squared error of log G_eq: a relative error per population, whatever its size.
        loss = ((torch.log(pred) - torch.log(target)) ** 2).mean()
        return loss, {"rel_l2": float(_relative(pred.detach(), target).sqrt())}

    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.stage1_steps, 1))
    r1 = train(
        model=net,
        optimizer=opt,
        loss_fn=stage1_loss,
        config=TrainConfig(
            steps=cfg.stage1_steps, progress=progress, description=f"{case.name} stage 1"
        ),
        scheduler=sched,
    )
    eq = NeuralEquilibrium(net)
    lb32 = lb

    def stage2_loss(step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(cfg.seed + 10_000 + step)
        s = int(torch.randint(cfg.window - cfg.unroll + 1, (1,), generator=g))
        state = LBState(F=traj_F[s], G=traj_G[s], step=s)
        loss = traj_F.new_zeros(())
        for k in range(1, cfg.unroll + 1):
            state = lb_step(state, config=lb32, equilibrium=eq, boundary=boundary)
            loss = loss + _relative(state.F, traj_F[s + k]) + _relative(state.G, traj_G[s + k])
        return loss / cfg.unroll

    r2 = None
    if cfg.stage2_steps > 0:
        opt2 = torch.optim.Adam(net.parameters(), lr=cfg.lr2)
        r2 = train(
            model=net,
            optimizer=opt2,
            loss_fn=stage2_loss,
            config=TrainConfig(
                steps=cfg.stage2_steps,
                grad_clip=1.0,
                progress=progress,
                log_every=1,
                description=f"{case.name} stage 2",
            ),
        )
    net.eval()
    summary = {
        "stage1_loss": r1.final_loss,
        "stage2_loss": float("nan") if r2 is None else r2.final_loss,
        "stage2_first_loss": float("nan") if r2 is None else r2.history[0]["loss"],
    }
    return net, summary


def shipped_weights(case: str) -> Path:
    """Path of the shipped weights of a case (``inversa/neurde/data/CASE.safetensors``)."""
    return _DATA / f"{case}.safetensors"


def save_equilibrium(net: EquilibriumNet, path: str | Path, *, metadata: dict) -> None:
    """Save a trained network (safetensors) with its configuration in the header."""
    save_weights(path, net.state_dict(), metadata={"net": net.config(), **metadata})


def load_equilibrium(
    case_or_path: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[EquilibriumNet, dict]:
    """Load a trained network: a case name (shipped weights) or a ``.safetensors`` path.

    Returns
    -------
    tuple
        ``(network in eval mode, metadata)``.

    Raises
    ------
    InputError
        No such case weights or an unreadable file.
    """
    path = Path(case_or_path)
    if path.suffix != ".safetensors":
        path = shipped_weights(str(case_or_path))
    state, meta = load_weights(path, device=device)
    net = EquilibriumNet(**meta["net"]).to(device)
    net.load_state_dict(state)
    net.eval()
    return net, meta

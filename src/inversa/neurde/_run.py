"""Run a named case with the Newton or the neural equilibrium."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from inversa.core.errors import InputError
from inversa.neurde._cases import Case, make_case
from inversa.neurde._lattice import macroscopic
from inversa.neurde._neural import EquilibriumNet, NeuralEquilibrium
from inversa.neurde._solver import LBState, NewtonEquilibrium, simulate

__all__ = ["SimulationResult", "run_case"]


@dataclass(frozen=True)
class SimulationResult:
    """Outcome of `run_case`.

    Attributes
    ----------
    case
        The case.
    state
        Final populations.
    fields
        Final ``(rho, ux, uy, T)`` stacked as ``(4, H, W)`` (float64).
    records
        ``(step, fields (4, H, W))`` recorded along the way.
    seconds
        Wall-clock time of the steps.
    """

    case: Case
    state: LBState
    fields: torch.Tensor
    records: list[tuple[int, torch.Tensor]]
    seconds: float


def run_case(
    case: Case | str,
    *,
    steps: int,
    equilibrium: str = "newton",
    weights: str | Path | EquilibriumNet | None = None,
    state: LBState | None = None,
    record_every: int = 0,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> SimulationResult:
    """Simulate a case for ``steps`` steps.

    Parameters
    ----------
    case
        A `Case` or its name (see `make_case`).
    steps
        Number of steps.
    equilibrium
        ``"newton"`` (reference) or ``"neural"``.
    weights
        For ``"neural"``: a network, a ``.safetensors`` path, or ``None`` for the
        case's shipped weights.
    state
        Start state (default: the case's initial state).
    record_every
        Record the fields every this many steps (0: none).
    dtype
        Float type (default: float64 for Newton, float32 for the network).
    device
        Torch device.

    Returns
    -------
    SimulationResult

    Raises
    ------
    InputError
        Unknown case or equilibrium, missing weights; `ConvergenceError` (an
        `InputError`) when the run diverges, naming the step and the cell.
    """
    from inversa.neurde._train import load_equilibrium

    case = make_case(case) if isinstance(case, str) else case
    if equilibrium == "newton":
        eq = NewtonEquilibrium()
        dtype = dtype or torch.float64
    elif equilibrium == "neural":
        if isinstance(weights, EquilibriumNet):
            net = weights.to(device)
        else:
            net, _ = load_equilibrium(weights or case.name, device=device)
        eq = NeuralEquilibrium(net)
        dtype = dtype or torch.float32
    else:
        raise InputError(None, f"equilibrium must be 'newton' or 'neural', got {equilibrium!r}")
    if state is None:
        state = case.initial_state(device=device)
    state = LBState(
        F=state.F.to(device=device, dtype=dtype),
        G=state.G.to(device=device, dtype=dtype),
        step=state.step,
        multipliers=None
        if state.multipliers is None
        else state.multipliers.to(device=device, dtype=dtype),
    )
    boundary = case.boundary
    if boundary.obstacle is not None:
        from dataclasses import replace

        boundary = replace(boundary, obstacle=boundary.obstacle.to(device))
    t0 = time.perf_counter()
    with torch.no_grad():
        final, records = simulate(
            state,
            steps=steps,
            config=case.config,
            equilibrium=eq,
            boundary=boundary,
            record_every=record_every,
        )
    seconds = time.perf_counter() - t0
    fields = torch.stack(
        macroscopic(final.F, final.G, gamma=case.config.gamma, shift=case.config.shift), dim=-3
    ).double()
    return SimulationResult(case=case, state=final, fields=fields, records=records, seconds=seconds)

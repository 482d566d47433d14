"""NeurDE: compressible lattice Boltzmann with a neural equilibrium.

A two-population (F: mass and momentum, G: energy) D2Q9 lattice-Boltzmann solver on a
lattice shifted along x, with the maximum-entropy G equilibrium from Newton's method
(the reference) or from a small network ``exp(<alpha(rho, u, T), phi(v_i)>)`` trained
in two stages; the exact Riemann solver and Billig's correlation as outside checks.
"""

from inversa.neurde._cases import CASES, Case, billig_standoff, make_case
from inversa.neurde._lattice import (
    ConvergenceError,
    feq,
    geq_closed_form,
    geq_newton,
    lattice_weights,
    macroscopic,
    validate_state,
)
from inversa.neurde._metrics import (
    RiemannErrors,
    riemann_errors,
    shock_position,
    standoff_distance,
)
from inversa.neurde._neural import EquilibriumNet, NeuralEquilibrium, project_moments
from inversa.neurde._report import train_and_save, write_figures, write_simulation
from inversa.neurde._riemann import GasState, RiemannSolution, exact_riemann
from inversa.neurde._run import SimulationResult, run_case
from inversa.neurde._solver import (
    Boundary,
    ClosedFormEquilibrium,
    Equilibrium,
    LBConfig,
    LBState,
    NewtonEquilibrium,
    collide,
    initial_state,
    lb_step,
    simulate,
    stream,
)
from inversa.neurde._train import (
    NeurdeTrainConfig,
    load_equilibrium,
    reference_trajectory,
    save_equilibrium,
    shipped_weights,
    train_equilibrium,
)

__all__ = [
    "CASES",
    "Boundary",
    "Case",
    "ClosedFormEquilibrium",
    "ConvergenceError",
    "Equilibrium",
    "EquilibriumNet",
    "GasState",
    "LBConfig",
    "LBState",
    "NeuralEquilibrium",
    "NeurdeTrainConfig",
    "NewtonEquilibrium",
    "RiemannErrors",
    "RiemannSolution",
    "SimulationResult",
    "billig_standoff",
    "collide",
    "exact_riemann",
    "feq",
    "geq_closed_form",
    "geq_newton",
    "initial_state",
    "lattice_weights",
    "lb_step",
    "load_equilibrium",
    "macroscopic",
    "make_case",
    "project_moments",
    "reference_trajectory",
    "riemann_errors",
    "run_case",
    "save_equilibrium",
    "shipped_weights",
    "shock_position",
    "simulate",
    "standoff_distance",
    "stream",
    "train_and_save",
    "train_equilibrium",
    "validate_state",
    "write_figures",
    "write_simulation",
]

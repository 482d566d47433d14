"""End-to-end cryo-ET jobs on files: simulate a dataset, reconstruct tilt series, the demo.

These functions are what the CLI commands call; they read and write the field's files
(MRC, STAR, .tlt, .xf) and return in-memory results for programmatic use.
"""

from inversa.workflows._demo import DemoResult, run_demo
from inversa.workflows._reconstruct import (
    ReconstructionConfig,
    preprocess_stack,
    reconstruct_files,
    reconstruct_stack,
)
from inversa.workflows._simulate import SimulatedDataset, SimulationConfig, simulate_dataset

__all__ = [
    "DemoResult",
    "ReconstructionConfig",
    "SimulatedDataset",
    "SimulationConfig",
    "preprocess_stack",
    "reconstruct_files",
    "reconstruct_stack",
    "run_demo",
    "simulate_dataset",
]

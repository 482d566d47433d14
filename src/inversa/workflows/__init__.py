"""End-to-end cryo-ET jobs on files: simulate a dataset, reconstruct tilt series, the demo.

These functions are what the CLI commands call; they read and write the field's files
(MRC, STAR, .tlt, .xf) and return in-memory results for programmatic use.
"""

from inversa.workflows._align_job import AlignJobConfig, AlignJobResult, align_particles_file
from inversa.workflows._average_job import average_particles_file
from inversa.workflows._demo import DemoResult, run_demo
from inversa.workflows._extract_job import ExtractJobResult, extract_particles_file
from inversa.workflows._reconstruct import (
    ReconstructionConfig,
    is_single_output,
    preprocess_stack,
    reconstruct_file,
    reconstruct_files,
    reconstruct_paths,
    reconstruct_stack,
)
from inversa.workflows._refine_job import (
    RefineJobResult,
    refine_output_paths,
    refine_particles_file,
)
from inversa.workflows._simulate import (
    SimulatedDataset,
    SimulationConfig,
    dataset_paths,
    read_deformation,
    simulate_dataset,
)

__all__ = [
    "AlignJobConfig",
    "AlignJobResult",
    "DemoResult",
    "ExtractJobResult",
    "ReconstructionConfig",
    "RefineJobResult",
    "SimulatedDataset",
    "SimulationConfig",
    "align_particles_file",
    "average_particles_file",
    "dataset_paths",
    "extract_particles_file",
    "is_single_output",
    "preprocess_stack",
    "read_deformation",
    "reconstruct_file",
    "reconstruct_files",
    "reconstruct_paths",
    "reconstruct_stack",
    "refine_output_paths",
    "refine_particles_file",
    "run_demo",
    "simulate_dataset",
]

"""``inversa simulate`` and ``inversa reconstruct``."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Literal

import typer

from inversa.cli._app import app
from inversa.cli._options import (
    Device,
    Force,
    Scheduler,
    VoxelSize,
    check_outputs,
    float_list,
    fraction,
    output_folder,
    positive,
)
from inversa.core.errors import InputError


@app.command()
def simulate(
    out_dir: Path = typer.Argument(..., help="Output folder."),
    shape: str = typer.Option(
        "48,160,160",
        callback=float_list("--shape", count=3, integers=True, minimum=1),
        help="Volume shape D,H,W (z,y,x) in voxels.",
    ),
    voxel_size: float = typer.Option(12.0, callback=positive, help="Angstrom per voxel."),
    structure: Path = typer.Option(
        None, help="PDB/mmCIF of the particle (default: the 80S ribosome, PDB 6ZU5)."
    ),
    n_particles: int = typer.Option(12, min=0, help="Copies of the structure in the scene."),
    n_membranes: int = typer.Option(2, min=0, help="Vesicle membranes in the scene."),
    tilt_range: str = typer.Option(
        "-60,60",
        callback=float_list("--tilt-range", count=2, minimum=-90, maximum=90, increasing=True),
        help="MIN,MAX tilt in degrees.",
    ),
    tilt_step: float = typer.Option(3.0, callback=positive, help="Tilt step in degrees."),
    dose: float = typer.Option(
        3.0, callback=positive, help="Electrons per square Angstrom per tilt."
    ),
    ctf: bool = typer.Option(False, "--ctf/--no-ctf", help="Apply a contrast transfer function."),
    defocus: float = typer.Option(
        3.0, min=0.0, help="Defocus in micrometres (underfocus positive)."
    ),
    shift: float = typer.Option(
        0.0, min=0.0, help="Random per-tilt shifts up to this many pixels."
    ),
    rotation: float = typer.Option(
        0.0, min=0.0, help="Random per-tilt in-plane rotations up to degrees."
    ),
    local_deformation: float = typer.Option(
        0.0,
        "--local-deformation",
        min=0.0,
        metavar="PX",
        help="Smooth random per-tilt local warps up to PX pixels (0 = off).",
    ),
    seed: int = typer.Option(0, help="Random seed."),
    force: bool = Force,
) -> None:
    """Simulate a cell-like scene: tilt series MRC, .tlt, .xf, ground truth, particles STAR."""
    from inversa.workflows import SimulationConfig, dataset_paths, simulate_dataset

    d, h, w = shape  # parsed by the option's callback
    lo, hi = tilt_range
    if structure is not None and not structure.is_file():
        raise InputError(structure, "file not found" if not structure.exists() else "not a file")
    config = SimulationConfig(
        shape=(d, h, w),
        voxel_size=voxel_size,
        structure=None if structure is None else str(structure),
        n_particles=n_particles,
        n_membranes=n_membranes,
        tilt_min=lo,
        tilt_max=hi,
        tilt_step=tilt_step,
        dose=dose,
        ctf=ctf,
        defocus_um=defocus,
        shift_px=shift,
        rotation_deg=rotation,
        local_deformation_px=local_deformation,
        seed=seed,
    )
    outputs = dataset_paths(out_dir, config=config)
    check_outputs(list(outputs.values()), folders=[out_dir], force=force)
    with output_folder(out_dir):
        result = simulate_dataset(out_dir, config=config, force=force)
    typer.echo(
        f"simulated {result.stack.shape[0]} tilts of {h}x{w} px, "
        f"{len(result.scene.positions)} particles -> {out_dir}"
    )
    for role, path in result.files.items():
        typer.echo(f"  {role:13s} {path}")


@app.command()
def reconstruct(
    tiltseries: list[Path] = typer.Argument(..., help="Raw tilt-series MRC stack(s)."),
    angles: Path = typer.Option(None, help=".tlt file (default: the stack's .tlt sidecar)."),
    xf: Path = typer.Option(None, help="IMOD .xf alignment (default: the .xf sidecar if any)."),
    method: Literal["wbp", "sirt", "cgls", "cryolithe"] = typer.Option(
        "wbp", help="wbp, sirt, cgls or cryolithe."
    ),
    model: Path = typer.Option(
        None, "--model", help="CryoLithe weights (default: the shipped wavelet model)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Tomogram MRC (one input) or folder."),
    thickness: int = typer.Option(None, min=1, help="Tomogram thickness in voxels (default W/2)."),
    filter: Literal["ramp", "shepp-logan", "cosine", "hann"] = typer.Option(
        "ramp", help="WBP filter: ramp, shepp-logan, cosine, hann."
    ),
    cutoff: float = typer.Option(
        1.0, callback=fraction, help="WBP filter cutoff (fraction of Nyquist, in (0, 1])."
    ),
    iterations: int = typer.Option(50, min=1, help="Iterations of SIRT/CGLS."),
    nonneg: bool = typer.Option(False, "--nonneg", help="Non-negative SIRT."),
    preprocess: Literal["normalize", "log", "none"] = typer.Option(
        "normalize", help="normalize, log or none."
    ),
    defocus: float = typer.Option(
        None, help="Phase-flip for this defocus (micrometres) before reconstructing."
    ),
    voxel_size: float = VoxelSize,
    device: str = Device,
    scheduler: str = Scheduler,
    force: bool = Force,
) -> None:
    """Reconstruct tilt series into tomograms (several at once go through Dask)."""
    from inversa.workflows import ReconstructionConfig, is_single_output, reconstruct_paths

    for stack in tiltseries:  # every input checked before any work
        if not stack.is_file():
            raise InputError(stack, "file not found" if not stack.exists() else "not a file")
    if method == "cryolithe":  # a bad model file fails before any work
        from inversa.cryolithe import default_model_path, load_model

        load_model(model or default_model_path())
    config = ReconstructionConfig(
        method=method,
        model=None if model is None else str(model),
        thickness=thickness,
        filter=filter,
        cutoff=cutoff,
        n_iter=iterations,
        nonneg=nonneg,
        preprocess=preprocess,
        defocus_um=defocus,
        device=device,
    )
    if is_single_output(tiltseries, out):
        check_outputs([out], force=force, inputs=tiltseries)
        guard = contextlib.nullcontext()
    else:
        guard = output_folder(out)  # a failed job leaves no tomograms behind
    with guard:
        written = reconstruct_paths(
            tiltseries,
            out=out,
            config=config,
            angles_path=angles,
            xf_path=xf,
            force=force,
            scheduler=scheduler,
            voxel_size=voxel_size,
            progress=True,
        )
    for path in written:
        typer.echo(f"wrote {path}")

"""``inversa simulate`` and ``inversa reconstruct``."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, Scheduler, parse_floats
from inversa.core.errors import InputError


@app.command()
def simulate(
    out_dir: Path = typer.Argument(..., help="Output folder."),
    shape: str = typer.Option("48,128,128", help="Volume shape D,H,W (z,y,x) in voxels."),
    voxel_size: float = typer.Option(5.0, help="Angstrom per voxel."),
    structure: Path = typer.Option(None, help="PDB/mmCIF of the particle (default: 1AKE chain A)."),
    n_particles: int = typer.Option(12, help="Copies of the structure in the scene."),
    n_membranes: int = typer.Option(2, help="Vesicle membranes in the scene."),
    tilt_range: str = typer.Option("-60,60", help="MIN,MAX tilt in degrees."),
    tilt_step: float = typer.Option(3.0, help="Tilt step in degrees."),
    dose: float = typer.Option(3.0, help="Electrons per square Angstrom per tilt."),
    ctf: bool = typer.Option(False, "--ctf/--no-ctf", help="Apply a contrast transfer function."),
    defocus: float = typer.Option(3.0, help="Defocus in micrometres (underfocus positive)."),
    shift: float = typer.Option(0.0, help="Random per-tilt shifts up to this many pixels."),
    rotation: float = typer.Option(0.0, help="Random per-tilt in-plane rotations up to degrees."),
    seed: int = typer.Option(0, help="Random seed."),
    force: bool = Force,
) -> None:
    """Simulate a cell-like scene: tilt series MRC, .tlt, .xf, ground truth, particles STAR."""
    from inversa.workflows import SimulationConfig, simulate_dataset

    d, h, w = (int(v) for v in parse_floats(shape, count=3, name="--shape"))
    lo, hi = parse_floats(tilt_range, count=2, name="--tilt-range")
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
        seed=seed,
    )
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
    method: str = typer.Option("wbp", help="wbp, sirt or cgls."),
    out: Path = typer.Option(..., "--out", "-o", help="Tomogram MRC (one input) or folder."),
    thickness: int = typer.Option(None, help="Tomogram thickness in voxels (default W/2)."),
    filter: str = typer.Option("ramp", help="WBP filter: ramp, shepp-logan, cosine, hann."),
    cutoff: float = typer.Option(1.0, help="WBP filter cutoff (fraction of Nyquist)."),
    iterations: int = typer.Option(50, help="Iterations of SIRT/CGLS."),
    nonneg: bool = typer.Option(False, "--nonneg", help="Non-negative SIRT."),
    preprocess: str = typer.Option("normalize", help="normalize, log or none."),
    defocus: float = typer.Option(
        None, help="Phase-flip for this defocus (micrometres) before reconstructing."
    ),
    device: str = Device,
    scheduler: str = Scheduler,
    force: bool = Force,
) -> None:
    """Reconstruct tilt series into tomograms (several at once go through Dask)."""
    from inversa.workflows import ReconstructionConfig, reconstruct_files
    from inversa.workflows._reconstruct import reconstruct_file

    config = ReconstructionConfig(
        method=method,
        thickness=thickness,
        filter=filter,
        cutoff=cutoff,
        n_iter=iterations,
        nonneg=nonneg,
        preprocess=preprocess,
        defocus_um=defocus,
        device=device,
    )
    if len(tiltseries) == 1 and out.suffix.lower() in (".mrc", ".rec", ".map"):
        stack = tiltseries[0]
        if xf is None and stack.with_suffix(".xf").exists():
            xf = stack.with_suffix(".xf")
        written = [
            reconstruct_file(
                stack,
                out_path=out,
                config=config,
                angles_path=angles,
                xf_path=xf,
                force=force,
                progress=True,
            )
        ]
    else:
        if angles is not None or xf is not None:
            raise InputError(
                angles or xf,
                "--angles/--xf name one stack's files; with several stacks put "
                "a .tlt (and .xf) beside each stack instead",
            )
        written = reconstruct_files(
            tiltseries, out_dir=out, config=config, force=force, scheduler=scheduler
        )
    for path in written:
        typer.echo(f"wrote {path}")

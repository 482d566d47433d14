"""``inversa icetide`` and ``inversa align-tilts``: joint alignment + reconstruction, peers."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, VoxelSize, check_outputs, output_folder
from inversa.core.errors import InputError


def _check_input(path: Path) -> None:
    if not path.is_file():
        raise InputError(path, "file not found" if not path.exists() else "not a file")


@app.command()
def icetide(
    tiltseries: Path = typer.Argument(..., help="Raw tilt-series MRC stack (square, even size)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    angles: Path = typer.Option(None, help=".tlt file (default: the stack's .tlt sidecar)."),
    xf: Path = typer.Option(None, help="Starting IMOD .xf (default: see --init)."),
    init: str = typer.Option(
        "zero",
        "--init",
        help="Start of the alignment without --xf: 'zero', 'xcorr' (align-tilts' xcorr, on "
        "the phase-flipped stack with --defocus) or an IMOD .xf file (as --xf).",
    ),
    steps: int = typer.Option(1500, min=1, help="Optimiser steps."),
    local_grid: int = typer.Option(
        10, "--local-grid", min=0, help="Local-field control points per axis (0: rigid only)."
    ),
    thickness: int = typer.Option(None, min=1, help="Volume depth in voxels (default W/2)."),
    rays: int = typer.Option(2048, min=1, help="Random detector pixels per step."),
    samples: int = typer.Option(64, min=2, help="Samples per ray."),
    seed: int = typer.Option(0, help="Random seed."),
    sirt: int = typer.Option(
        0, "--sirt", min=0, help="Also write corrected_sirt.mrc with N SIRT iterations (0: no)."
    ),
    defocus: str = typer.Option(
        None,
        "--defocus",
        help="Model the CTF: a ctffind table or IMOD .defocus file (one row per tilt), or "
        "one defocus in micrometres (underfocus positive) for every tilt. The stack must be "
        "as recorded, not phase-flipped.",
    ),
    voltage: float = typer.Option(300.0, min=1.0, help="With --defocus: voltage in kV."),
    cs: float = typer.Option(2.7, min=0.0, help="With --defocus: spherical aberration in mm."),
    amplitude_contrast: float = typer.Option(
        0.07, min=0.0, max=0.99, help="With --defocus: amplitude contrast fraction."
    ),
    ctf_patch: int = typer.Option(
        16, min=1, help="With --defocus: side in pixels of the compared detector patches."
    ),
    ctf_lowpass: float = typer.Option(
        0.5,
        min=0.0,
        max=1.0,
        help="With --defocus: fraction of the steps fitted first to the CTF-restored data "
        "low-passed below each tilt's first CTF zero (coarse to fine; 0: none).",
    ),
    polish: bool = typer.Option(
        True,
        "--polish/--no-polish",
        help="After the fit, refine each tilt's rotation and shift by Gauss-Newton against "
        "the fitted volume's projections (through the CTF and the local fields).",
    ),
    voxel_size: float = VoxelSize,
    device: str = Device,
    force: bool = Force,
) -> None:
    """Fit a neural-field volume with per-tilt shifts, rotations and local fields.

    With --defocus the renderer models the CTF (detector patches filtered through each
    tilt's CTF, compared with the raw stack) and corrected_wbp.mrc is phase-flipped.

    Writes volume.mrc, aligned.xf, local_fields.npz, corrected_wbp.mrc (with --sirt N
    also corrected_sirt.mrc: the stack corrected with the found alignment, reconstructed)
    and log.json; checkpoints to checkpoint.pt, from which a rerun into the same folder
    with the same --steps resumes (another --steps is refused).
    """
    from inversa.core.training import TrainingDiverged
    from inversa.icetide import (
        IceTideConfig,
        icetide_paths,
        read_ctf,
        read_tilt_series,
        run_icetide,
    )

    if init not in ("zero", "xcorr"):
        if xf is not None:
            raise InputError(Path(init), "give a starting .xf with --xf or --init, not both")
        xf, init = Path(init), "zero"
    defocus_file = None
    if defocus is not None:
        try:
            float(defocus)
        except ValueError:
            defocus_file = Path(defocus)
    for path in (tiltseries, angles, xf, defocus_file):
        if path is not None:
            _check_input(path)
    if 0 < local_grid < 4:
        raise InputError(None, f"--local-grid must be 0 or at least 4, got {local_grid}")
    inputs = [p for p in (tiltseries, angles, xf, defocus_file) if p is not None]
    outputs = list(icetide_paths(out, sirt=sirt > 0).values())
    check_outputs(outputs, folders=[out], force=force, inputs=inputs)
    # every input checked first
    _stack, geometry, _ = read_tilt_series(
        tiltseries, angles_path=angles, xf_path=xf, voxel_size=voxel_size
    )
    microscope = {
        "voltage_kv": voltage,
        "spherical_aberration_mm": cs,
        "amplitude_contrast": amplitude_contrast,
    }
    if defocus is not None:
        read_ctf(defocus, geometry.angles, **microscope)
    config = IceTideConfig(
        steps=steps,
        rays_per_step=rays,
        samples_per_ray=samples,
        local_grid=local_grid,
        thickness=thickness,
        ctf_patch=ctf_patch,
        ctf_lowpass=ctf_lowpass,
        init=init,
        polish=polish,
        seed=seed,
    )
    diverged = interrupted = None
    with output_folder(out):
        try:
            result, paths = run_icetide(
                tiltseries,
                out,
                config=config,
                angles_path=angles,
                xf_path=xf,
                defocus=defocus,
                microscope=microscope,
                voxel_size=voxel_size,
                device=device,
                sirt_iterations=sirt,
                force=force,
                progress=True,
            )
        except TrainingDiverged as exc:  # keep the last good checkpoint: no exception here
            diverged = exc
        except KeyboardInterrupt as exc:  # the same: the checkpoint is what a rerun resumes
            interrupted = exc
    if diverged is not None:
        typer.echo(f"error: {diverged} (last good checkpoint: {out / 'checkpoint.pt'})", err=True)
        raise typer.Exit(1)
    if interrupted is not None:
        typer.echo(f"interrupted; rerun the same command to resume from {out / 'checkpoint.pt'}")
        raise typer.Exit(130)
    typer.echo(f"icetide: {steps} steps in {result.seconds:.1f} s -> {out}")
    for role, path in paths.items():
        typer.echo(f"  {role:14s} {path}")


@app.command("align-tilts")
def align_tilts(
    tiltseries: Path = typer.Argument(..., help="Raw tilt-series MRC stack (square, even size)."),
    method: Literal["xcorr", "projmatch"] = typer.Option(
        "xcorr", help="xcorr (IMOD-like) or projmatch (AreTomo-like)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output IMOD .xf file."),
    angles: Path = typer.Option(None, help=".tlt file (default: the stack's .tlt sidecar)."),
    thickness: int = typer.Option(
        None, min=1, help="projmatch: reconstruction depth in voxels (default W/2)."
    ),
    iterations: int = typer.Option(4, min=1, help="projmatch: rounds."),
    force: bool = Force,
) -> None:
    """Align a tilt series with a classical method and write the IMOD .xf."""
    from inversa.core import io
    from inversa.icetide import align_projmatch, align_xcorr, read_tilt_series

    for path in (tiltseries, angles):
        if path is not None:
            _check_input(path)
    inputs = [p for p in (tiltseries, angles) if p is not None]
    check_outputs([out], force=force, inputs=inputs)
    stack, geometry, _ = read_tilt_series(tiltseries, angles_path=angles)
    if method == "xcorr":
        found = align_xcorr(stack, geometry.angles)
    else:
        found = align_projmatch(stack, geometry.angles, thickness=thickness, iterations=iterations)
    io.write_xf(out, found, force=force)
    typer.echo(f"align-tilts ({method}): {geometry.n_tilts} tilts -> {out}")

"""File-level ICE-TIDE job: read a tilt series, fit, write volume, alignment and fields."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from inversa.core import io
from inversa.core.errors import InputError
from inversa.icetide._fit import (
    IceTideConfig,
    IceTideResult,
    check_stack,
    fit_icetide,
    reconstruct_corrected,
)
from inversa.tomography import TiltGeometry, tilt_series_sidecars

__all__ = ["ICETIDE_OUTPUTS", "icetide_paths", "read_tilt_series", "run_icetide", "write_icetide"]

#: Role -> file name of every output in the output folder.
ICETIDE_OUTPUTS = {
    "volume": "volume.mrc",
    "xf": "aligned.xf",
    "local_fields": "local_fields.npz",
    "corrected_wbp": "corrected_wbp.mrc",
    "corrected_sirt": "corrected_sirt.mrc",
    "log": "log.json",
}
CHECKPOINT = "checkpoint.pt"


def icetide_paths(out_dir: str | Path, *, sirt: bool = False) -> dict[str, Path]:
    """Return the output files of :func:`run_icetide` in ``out_dir`` (role -> path).

    ``corrected_sirt`` is one of them only with ``sirt`` (a run with SIRT iterations).
    """
    return {
        role: Path(out_dir) / name
        for role, name in ICETIDE_OUTPUTS.items()
        if sirt or role != "corrected_sirt"
    }


def read_tilt_series(
    stack_path: str | Path,
    *,
    angles_path: str | Path | None = None,
    xf_path: str | Path | None = None,
) -> tuple[torch.Tensor, TiltGeometry, float]:
    """Read a raw stack with its ``.tlt`` (and optional starting ``.xf``), checked.

    The angles come from ``angles_path`` or the ``.tlt`` beside the stack; a starting
    ``.xf`` is used only when ``xf_path`` is given (never a sidecar found by name).

    Returns
    -------
    (torch.Tensor, TiltGeometry, float)
        ``(T, H, W)`` stack, geometry (angles, ``xf`` or ``None``) and voxel size.

    Raises
    ------
    InputError
        A count mismatch, a non-square or odd-sized stack, NaN, a bad ``.xf``.
    """
    stack_path = Path(stack_path)
    # Only an explicit .xf starts the fit: a sidecar may hold a simulation's truth.
    tlt, _ = tilt_series_sidecars(stack_path, angles_path=angles_path)
    xf = None if xf_path is None else Path(xf_path)
    stack, voxel_size = io.read_mrc(stack_path, ndim=3)
    angles = io.read_tlt(tlt)
    if stack.shape[0] != len(angles):
        raise InputError(
            tlt, f"has {len(angles)} angles but {stack_path} has {stack.shape[0]} tilts"
        )
    check_stack(stack, len(angles), path=stack_path)
    geometry = TiltGeometry.from_files(tlt, xf)
    if xf is not None and not bool(torch.isfinite(geometry.xf).all()):
        raise InputError(xf, "contains NaN or infinite values")
    return stack, geometry, voxel_size


def write_icetide(
    out_dir: str | Path,
    result: IceTideResult,
    *,
    stack: torch.Tensor,
    angles: torch.Tensor,
    voxel_size: float,
    config: IceTideConfig,
    sirt_iterations: int = 0,
    force: bool = False,
) -> dict[str, Path]:
    """Write the outputs of a fit (see :data:`ICETIDE_OUTPUTS` and ``docs/icetide.md``).

    ``corrected_wbp.mrc`` (and, with ``sirt_iterations`` > 0, ``corrected_sirt.mrc``) is
    the reconstruction of ``stack`` corrected with the found rigid + local alignment
    (:func:`~inversa.icetide.reconstruct_corrected`), for comparison with the field
    volume and as a check of the alignment written for other tools.
    ``local_fields.npz`` holds ``control`` ``(T, G, G, 2)`` (B-spline control vectors,
    pixels), ``displacement`` ``(T, H, W, 2)`` (the fields on the pixel grid, components
    ``(x, y)`` in pixels), ``angles`` ``(T,)`` and ``model`` (a one-line description of
    the convention).
    """
    paths = icetide_paths(out_dir, sirt=sirt_iterations > 0)
    io.write_mrc(paths["volume"], result.volume, voxel_size=voxel_size, force=force)
    io.write_xf(paths["xf"], result.xf, force=force)
    with io.atomic_write(paths["local_fields"], force=force) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            control=result.control.numpy(),
            displacement=result.displacement.numpy(),
            angles=angles.detach().cpu().double().numpy(),
            model=np.array(
                "raw pixel r of tilt t shows the ideal projection at A_t r + d_t + D_t(r); "
                "A_t, d_t in aligned.xf; D_t = uniform cubic B-spline of control[t] over "
                "the image (inversa.tomography.bspline_field); pixels about the image centre"
            ),
        )
    depth = result.volume.shape[0]
    wbp_volume = reconstruct_corrected(
        stack, angles, result.xf, control=result.control, thickness=depth
    )
    io.write_mrc(paths["corrected_wbp"], wbp_volume, voxel_size=voxel_size, force=force)
    if sirt_iterations > 0:
        sirt_volume = reconstruct_corrected(
            stack,
            angles,
            result.xf,
            control=result.control,
            thickness=depth,
            sirt_iterations=sirt_iterations,
        )
        io.write_mrc(paths["corrected_sirt"], sirt_volume, voxel_size=voxel_size, force=force)
    log = {
        "config": dataclasses.asdict(config),
        "sirt_iterations": sirt_iterations,
        "seconds": result.seconds,
        "history": result.history,
    }
    io.write_json(paths["log"], log, force=force)
    return paths


def run_icetide(
    stack_path: str | Path,
    out_dir: str | Path,
    *,
    config: IceTideConfig,
    angles_path: str | Path | None = None,
    xf_path: str | Path | None = None,
    device: str = "cpu",
    sirt_iterations: int = 0,
    force: bool = False,
    progress: bool = False,
) -> tuple[IceTideResult, dict[str, Path]]:
    """Fit ICE-TIDE to a tilt-series file and write its outputs into ``out_dir``.

    Checkpoints go to ``out_dir/checkpoint.pt``; a rerun into the same folder resumes
    (with the same schedule: another ``steps`` is refused, see :func:`fit_icetide`).
    ``sirt_iterations`` > 0 adds ``corrected_sirt.mrc`` beside ``corrected_wbp.mrc``.
    """
    stack, geometry, voxel_size = read_tilt_series(
        stack_path, angles_path=angles_path, xf_path=xf_path
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = fit_icetide(
        stack,
        geometry,
        config=config,
        device=device,
        checkpoint=out_dir / CHECKPOINT,
        progress=progress,
    )
    paths = write_icetide(
        out_dir,
        result,
        stack=stack,
        angles=geometry.angles,
        voxel_size=voxel_size,
        config=config,
        sirt_iterations=sirt_iterations,
        force=force,
    )
    return result, paths

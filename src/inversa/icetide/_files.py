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
from inversa.tomography import (
    TiltGeometry,
    TiltSeriesCTF,
    tilt_series_from_table,
    tilt_series_sidecars,
)

__all__ = [
    "ICETIDE_OUTPUTS",
    "icetide_paths",
    "read_ctf",
    "read_tilt_series",
    "run_icetide",
    "write_icetide",
]

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


def read_ctf(
    defocus: str | Path | float,
    angles: torch.Tensor,
    *,
    voltage_kv: float = 300.0,
    spherical_aberration_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
) -> TiltSeriesCTF:
    """Read the CTF of a tilt series from a defocus file, or take one defocus for all tilts.

    Parameters
    ----------
    defocus
        An IMOD ctfplotter ``.defocus`` file (by its suffix), any other file as a
        ctffind output table (one row per tilt, in the stack's order), or a number: one
        defocus in micrometres (underfocus positive) for every tilt.
    angles
        ``(T,)`` tilt angles of the stack (degrees); the file must have one row per tilt.
    voltage_kv, spherical_aberration_mm, amplitude_contrast
        The microscope.

    Returns
    -------
    TiltSeriesCTF

    Raises
    ------
    InputError
        Naming the file: unreadable, or another number of tilts than ``angles``.
    """
    kwargs = {
        "voltage_kv": voltage_kv,
        "spherical_aberration_mm": spherical_aberration_mm,
        "amplitude_contrast": amplitude_contrast,
    }
    try:
        value = float(defocus)
    except (TypeError, ValueError):
        value = None
    if value is not None:
        return TiltSeriesCTF(angles=angles, defocus_u_um=value, **kwargs)
    path = Path(defocus)
    if not path.is_file():
        raise InputError(path, "file not found" if not path.exists() else "not a file")
    is_imod = path.suffix.lower() == ".defocus"
    table = io.read_imod_defocus(path) if is_imod else io.read_ctffind(path)
    n = table["defocus_u_um"].numel()
    if n != len(angles):
        raise InputError(path, f"has {n} defocus rows but the tilt series {len(angles)} tilts")
    try:
        return tilt_series_from_table(table, angles=angles, **kwargs)
    except InputError as err:
        raise InputError(path, str(err)) from None


def read_tilt_series(
    stack_path: str | Path,
    *,
    angles_path: str | Path | None = None,
    xf_path: str | Path | None = None,
    voxel_size: float | None = None,
) -> tuple[torch.Tensor, TiltGeometry, float]:
    """Read a raw stack with its ``.tlt`` (and optional starting ``.xf``), checked.

    The angles come from ``angles_path`` or the ``.tlt`` beside the stack; a starting
    ``.xf`` is used only when ``xf_path`` is given (never a sidecar found by name).
    ``voxel_size`` (Angstrom) overrides the stack header's.

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
    stack, voxel_size = io.read_mrc(stack_path, ndim=3, voxel_size=voxel_size)
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
    ctf: TiltSeriesCTF | None = None,
    force: bool = False,
) -> dict[str, Path]:
    """Write the outputs of a fit (see :data:`ICETIDE_OUTPUTS` and ``docs/icetide.md``).

    ``corrected_wbp.mrc`` (and, with ``sirt_iterations`` > 0, ``corrected_sirt.mrc``) is
    the reconstruction of ``stack`` corrected with the found rigid + local alignment
    (:func:`~inversa.icetide.reconstruct_corrected`), for comparison with the field
    volume and as a check of the alignment written for other tools.
    With a ``ctf``, the stack is phase-flipped (per tilt, raw frame) before it is
    corrected. ``local_fields.npz`` holds ``control`` ``(T, G, G, 2)`` (B-spline control vectors,
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
    flip = {"ctf": ctf, "pixel_size_A": voxel_size}
    wbp_volume = reconstruct_corrected(
        stack, angles, result.xf, control=result.control, thickness=depth, **flip
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
            **flip,
        )
        io.write_mrc(paths["corrected_sirt"], sirt_volume, voxel_size=voxel_size, force=force)
    log = {
        "config": dataclasses.asdict(config),
        "sirt_iterations": sirt_iterations,
        "ctf": None
        if ctf is None
        else {
            "defocus_u_um": ctf.defocus_u_um.tolist(),
            "defocus_v_um": ctf.defocus_v_um.tolist(),
            "astigmatism_deg": ctf.astigmatism_deg.tolist(),
            "voltage_kv": ctf.voltage_kv,
            "spherical_aberration_mm": ctf.spherical_aberration_mm,
            "amplitude_contrast": ctf.amplitude_contrast,
            "pixel_size_A": voxel_size,
        },
        "seconds": result.seconds,
        "polish": result.polish,
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
    defocus: str | Path | float | None = None,
    microscope: dict[str, float] | None = None,
    voxel_size: float | None = None,
    device: str = "cpu",
    sirt_iterations: int = 0,
    force: bool = False,
    progress: bool = False,
) -> tuple[IceTideResult, dict[str, Path]]:
    """Fit ICE-TIDE to a tilt-series file and write its outputs into ``out_dir``.

    ``defocus`` (a defocus file or one value in micrometres, :func:`read_ctf`, with the
    ``microscope`` keywords ``voltage_kv``, ``spherical_aberration_mm``,
    ``amplitude_contrast``) switches the CTF model on; ``voxel_size`` overrides the
    stack header's pixel size.

    Checkpoints go to ``out_dir/checkpoint.pt``; a rerun into the same folder resumes
    (with the same schedule: another ``steps`` is refused, see :func:`fit_icetide`).
    ``sirt_iterations`` > 0 adds ``corrected_sirt.mrc`` beside ``corrected_wbp.mrc``.
    """
    stack, geometry, voxel_size = read_tilt_series(
        stack_path, angles_path=angles_path, xf_path=xf_path, voxel_size=voxel_size
    )
    ctf = None
    if defocus is not None:
        ctf = read_ctf(defocus, geometry.angles, **(microscope or {}))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = fit_icetide(
        stack,
        geometry,
        config=config,
        ctf=ctf,
        pixel_size_A=voxel_size,
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
        ctf=ctf,
        force=force,
    )
    return result, paths

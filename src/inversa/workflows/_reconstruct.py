"""Reconstruct tilt series from files: validation, preprocessing, WBP / SIRT / CGLS."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import mrcfile
import torch

from inversa.core import io, parallel
from inversa.core.errors import InputError, OutputExistsError
from inversa.tomography import (
    CTFParams,
    TiltGeometry,
    TiltSeriesProjector,
    cgls,
    phase_flip,
    sirt,
    tilt_series_sidecars,
    wbp,
)

__all__ = [
    "METHODS",
    "PREPROCESSING",
    "ReconstructionConfig",
    "is_single_output",
    "preprocess_stack",
    "reconstruct_file",
    "reconstruct_files",
    "reconstruct_paths",
    "reconstruct_stack",
]

METHODS = ("wbp", "sirt", "cgls", "cryolithe")
PREPROCESSING = ("normalize", "log", "none")


@dataclass(frozen=True, kw_only=True)
class ReconstructionConfig:
    """How to reconstruct a tilt series.

    Attributes
    ----------
    method
        ``"wbp"`` (weighted back-projection), ``"sirt"``, ``"cgls"`` or ``"cryolithe"``
        (the learned local reconstruction, :mod:`inversa.cryolithe`).
    model
        CryoLithe weights file; ``None`` uses the shipped wavelet-head model.
    thickness
        Number of z slices of the tomogram; ``None`` uses the stack width // 2.
    filter, cutoff
        WBP filter (``ramp``, ``shepp-logan``, ``cosine``, ``hann``) and its cutoff as a
        fraction of Nyquist.
    n_iter, tol, nonneg
        Iterations, relative-change stopping tolerance and non-negativity (SIRT only)
        of the iterative methods.
    preprocess
        ``"normalize"``: per tilt ``(mean - x) / mean`` (density bright, unitless contrast);
        ``"log"``: ``-log(x / mean)`` for electron or photon counts; ``"none"``.
    defocus_um
        When given, each tilt image is phase-flipped for this defocus (micrometres,
        underfocus positive) before reconstruction, with ``voltage_kv``,
        ``spherical_aberration_mm`` and ``amplitude_contrast`` (constant over the series).
    device
        Torch device to compute on.
    """

    method: str = "wbp"
    model: str | None = None
    thickness: int | None = None
    filter: str = "ramp"
    cutoff: float = 1.0
    n_iter: int = 50
    tol: float = 1e-4
    nonneg: bool = False
    preprocess: str = "normalize"
    defocus_um: float | None = None
    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(None, f"unknown method {self.method!r}; choose one of {METHODS}")
        if self.preprocess not in PREPROCESSING:
            raise InputError(
                None, f"unknown preprocessing {self.preprocess!r}; choose one of {PREPROCESSING}"
            )
        if self.thickness is not None and self.thickness < 1:
            raise InputError(None, "thickness must be a positive number of slices")
        if self.n_iter < 1:
            raise InputError(None, "the number of iterations must be at least 1")


def preprocess_stack(stack: torch.Tensor, *, mode: str) -> torch.Tensor:
    """Turn raw tilt images into line-integral data.

    Parameters
    ----------
    stack
        ``(..., T, H, W)`` raw images.
    mode
        One of :data:`PREPROCESSING` (see :class:`ReconstructionConfig`).

    Returns
    -------
    torch.Tensor
        ``(..., T, H, W)``.
    """
    if mode == "none":
        return stack
    mean = stack.mean(dim=(-2, -1), keepdim=True)
    if mode == "normalize":
        return (mean - stack) / mean.abs().clamp_min(torch.finfo(stack.dtype).tiny)
    if mode == "log":
        if bool((mean <= 0).any()):
            raise InputError(None, "'log' preprocessing needs positive counts; use 'normalize'")
        # Zero counts are clamped to half a count: the usual finite stand-in for log(0).
        return -torch.log(stack.clamp_min(0.5) / mean)
    raise InputError(None, f"unknown preprocessing {mode!r}; choose one of {PREPROCESSING}")


def reconstruct_stack(
    stack: torch.Tensor,
    geometry: TiltGeometry,
    *,
    config: ReconstructionConfig,
    pixel_size: float = 1.0,
    progress: bool = False,
    out: Any = None,
) -> Any:
    """Reconstruct one raw tilt series.

    Parameters
    ----------
    stack
        ``(T, H, W)`` raw tilt images.
    geometry
        Angles (degrees) and, when set, the IMOD transforms of the raw images (raw ->
        aligned); its detector shape, when set, must be ``(H, W)``.
    config
        Method and its settings.
    pixel_size
        Angstrom per pixel (used by the CTF phase flip).
    progress
        Show a progress bar for iterative methods.
    out
        Where to write the ``(D, H, W)`` tomogram (``out[z0:z1, y0:y1] = box``: a tensor,
        a memory map, or :func:`inversa.core.io.stream_mrc`'s writer); CryoLithe fills it
        a box of rows at a time, so its memory does not grow with the volume. ``None``:
        return a new tensor.

    Returns
    -------
    torch.Tensor or the given ``out``
        ``(D, H, W)`` tomogram on the CPU, float32.
    """
    if stack.ndim != 3:
        raise InputError(
            None, f"a tilt series must be 3-D (T, H, W); got shape {tuple(stack.shape)}"
        )
    n_tilts, height, width = stack.shape
    if geometry.n_tilts != n_tilts:
        raise InputError(None, f"{geometry.n_tilts} tilt angles for a stack of {n_tilts} images")
    if geometry.detector_shape not in (None, (height, width)):
        raise InputError(None, f"detector {geometry.detector_shape} for images {(height, width)}")
    device = torch.device(config.device)
    data = preprocess_stack(stack.to(device=device, dtype=torch.float32), mode=config.preprocess)
    if config.defocus_um is not None:
        ctf = CTFParams(
            pixel_size_A=pixel_size,
            defocus_um=config.defocus_um,
            voltage_kv=config.voltage_kv,
            spherical_aberration_mm=config.spherical_aberration_mm,
            amplitude_contrast=config.amplitude_contrast,
        )
        data = phase_flip(data, ctf)
    depth = _volume_depth(width, config)
    projector = TiltSeriesProjector(
        volume_shape=(depth, height, width),
        geometry=geometry.to(device=device, dtype=torch.float32),
    )
    if config.method == "cryolithe":
        from inversa.cryolithe import default_model_path, load_model
        from inversa.cryolithe import reconstruct as learned

        model, _ = load_model(config.model or default_model_path())
        shape = (depth, height, width)
        return learned(data, geometry, model=model, shape=shape, device=device, out=out)
    elif config.method == "wbp":
        volume = wbp(data, projector, filter=config.filter, cutoff=config.cutoff)
    elif config.method == "sirt":
        volume, _ = sirt(
            projector,
            data,
            n_iter=config.n_iter,
            tol=config.tol,
            nonneg=config.nonneg,
            progress=progress,
        )
    else:
        volume, _ = cgls(projector, data, n_iter=config.n_iter, tol=config.tol, progress=progress)
    volume = volume.detach().to("cpu", torch.float32)
    if out is None:
        return volume
    out[0 : volume.shape[0]] = volume if isinstance(out, torch.Tensor) else volume.numpy()
    return out


def _volume_depth(width: int, config: ReconstructionConfig) -> int:
    """Return the tomogram's number of z slices: ``config.thickness`` or ``width // 2``."""
    return config.thickness or max(1, width // 2)


def reconstruct_file(
    stack_path: str | Path,
    *,
    out_path: str | Path,
    config: ReconstructionConfig,
    angles_path: str | Path | None = None,
    xf_path: str | Path | None = None,
    force: bool = False,
    progress: bool = False,
    voxel_size: float | None = None,
) -> Path:
    """Read a tilt series (MRC + .tlt [+ .xf]), reconstruct it and write the tomogram MRC.

    ``angles_path`` defaults to the stack's ``.tlt`` (or ``.rawtlt``) sidecar and ``xf_path``
    to its ``.xf`` sidecar when present (:func:`inversa.tomography.tilt_series_sidecars`).
    ``voxel_size`` (Angstrom per pixel) overrides the stack's header. Inputs are never
    modified; the output is written atomically.

    Returns
    -------
    pathlib.Path
        The tomogram written.
    """
    stack_path, out_path = Path(stack_path), Path(out_path)
    if out_path.exists() and not force:
        raise OutputExistsError(out_path)
    angles_path, xf_path = tilt_series_sidecars(
        stack_path, angles_path=angles_path, xf_path=xf_path
    )
    stack, pixel_size = io.read_mrc(stack_path, ndim=3, voxel_size=voxel_size)
    angles = io.read_tlt(angles_path)
    if len(angles) != stack.shape[0]:
        raise InputError(
            angles_path, f"has {len(angles)} angles but {stack_path} has {stack.shape[0]} images"
        )
    xf = None
    if xf_path is not None:
        xf = io.read_xf(xf_path)
        if len(xf) != stack.shape[0]:
            raise InputError(
                xf_path, f"has {len(xf)} transforms but {stack_path} has {stack.shape[0]} images"
            )
    geometry = TiltGeometry(angles=angles, xf=xf, detector_shape=tuple(stack.shape[1:]))
    if config.method == "cryolithe":
        # Streamed to the file a box of rows at a time (atomic: nothing is left if it fails).
        shape = (_volume_depth(stack.shape[2], config), *stack.shape[1:])
        with io.stream_mrc(out_path, shape, voxel_size=pixel_size, force=force) as out:
            reconstruct_stack(
                stack, geometry, config=config, pixel_size=pixel_size, progress=progress, out=out
            )
        return out_path
    volume = reconstruct_stack(
        stack, geometry, config=config, pixel_size=pixel_size, progress=progress
    )
    io.write_mrc(out_path, volume, voxel_size=pixel_size, force=force)
    return out_path


def _reconstruct_item(
    item: tuple[Path, Path],
    *,
    config: ReconstructionConfig,
    force: bool,
    voxel_size: float | None = None,
):
    stack_path, out_path = item
    return reconstruct_file(
        stack_path,
        out_path=out_path,
        config=config,
        force=force,
        voxel_size=voxel_size,
    )


def _check_stack(stack_path: Path) -> None:
    # Cheap checks (header and sidecar only) so that a bad stack stops the job up front.
    if not stack_path.is_file():
        raise InputError(stack_path, "file not found" if not stack_path.exists() else "not a file")
    tilt_series_sidecars(stack_path)  # raises without a .tlt
    try:
        with mrcfile.open(stack_path, mode="r", header_only=True, permissive=False):
            pass
    except (ValueError, OSError) as err:
        raise InputError(stack_path, f"not a readable MRC file ({err})") from None


def reconstruct_files(
    stack_paths: list[str | Path],
    *,
    out_dir: str | Path,
    config: ReconstructionConfig,
    force: bool = False,
    scheduler: str | None = None,
    voxel_size: float | None = None,
) -> list[Path]:
    """Reconstruct many tilt series independently through :mod:`inversa.core.parallel`.

    Each stack's angles and alignment come from its ``.tlt``/``.rawtlt`` and ``.xf``
    sidecars; tomograms are written to ``out_dir/{stem}_rec.mrc``. All outputs are
    checked before any work starts, so an existing output, two stacks writing one
    tomogram or a stack that is not an MRC file with a ``.tlt`` stops the job up front.
    ``voxel_size`` overrides the stacks' headers.

    Returns
    -------
    list of pathlib.Path
        The tomograms written, in input order.
    """
    out = Path(out_dir)
    items = [(Path(p), out / f"{Path(p).stem}_rec.mrc") for p in stack_paths]
    first_input: dict[Path, Path] = {}
    for stack_path, out_path in items:
        _check_stack(stack_path)
        # Two stacks with one file name (a/ts.mrc, b/ts.mrc) would write one tomogram.
        if out_path in first_input:
            raise InputError(
                stack_path, f"would write {out_path} like {first_input[out_path]}: rename one"
            )
        first_input[out_path] = stack_path
        if out_path.exists() and not force:
            raise OutputExistsError(out_path)
    out.mkdir(parents=True, exist_ok=True)
    results = parallel.map_items(
        partial(_reconstruct_item, config=config, force=force, voxel_size=voxel_size),
        items,
        scheduler=scheduler,
        description="reconstructing",
    )
    parallel.raise_failures(results)
    return [r.value for r in results]


def is_single_output(stack_paths: list[str | Path], out: str | Path) -> bool:
    """Tell whether ``out`` names one tomogram file (one stack, MRC suffix) or a folder."""
    return len(stack_paths) == 1 and Path(out).suffix.lower() in (".mrc", ".rec", ".map")


def reconstruct_paths(
    stack_paths: list[str | Path],
    *,
    out: str | Path,
    config: ReconstructionConfig,
    angles_path: str | Path | None = None,
    xf_path: str | Path | None = None,
    force: bool = False,
    scheduler: str | None = None,
    voxel_size: float | None = None,
    progress: bool = False,
) -> list[Path]:
    """Run the ``inversa reconstruct`` job: one stack to a file, or many stacks to a folder.

    With :func:`is_single_output`, :func:`reconstruct_file` (explicit ``angles_path`` and
    ``xf_path`` allowed); otherwise :func:`reconstruct_files` into the folder ``out``,
    where every stack brings its own sidecars, so explicit paths are an error.

    Returns
    -------
    list of pathlib.Path
        The tomograms written, in input order.
    """
    if is_single_output(stack_paths, out):
        return [
            reconstruct_file(
                stack_paths[0],
                out_path=out,
                config=config,
                angles_path=angles_path,
                xf_path=xf_path,
                force=force,
                progress=progress,
                voxel_size=voxel_size,
            )
        ]
    if angles_path is not None or xf_path is not None:
        raise InputError(
            angles_path or xf_path,
            "--angles/--xf name one stack's files; with several stacks put "
            "a .tlt (and .xf) beside each stack instead",
        )
    return reconstruct_files(
        stack_paths,
        out_dir=out,
        config=config,
        force=force,
        scheduler=scheduler,
        voxel_size=voxel_size,
    )

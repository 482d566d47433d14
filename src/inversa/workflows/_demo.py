"""``inversa demo``: the main cryo-ET job on built-in data, with a report.

The job runs in stages, each a small function: simulate the scene, reconstruct it (WBP,
SIRT, CryoLithe), cut the particles from the WBP tomogram, refine them, measure everything against
the ground truth, write the figures and the report. Every sentence of the report is
built from the values these stages used, so the text cannot drift from the code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from inversa.core import metrics, phantoms, rotations
from inversa.core.errors import OutputExistsError
from inversa.core.fourier import fourier_shell_correlation, fsc_resolution, lowpass
from inversa.core.io import read_mrc, read_particles, write_json, write_mrc
from inversa.workflows._reconstruct import ReconstructionConfig, reconstruct_file
from inversa.workflows._report import (
    save_fsc_png,
    save_histogram_png,
    save_images_png,
    save_slices_png,
    write_html_report,
)
from inversa.workflows._simulate import SimulatedDataset, SimulationConfig, simulate_dataset

__all__ = ["DEMO_SCENE", "DemoResult", "run_demo"]


# The demo's scene: 80S ribosomes (the usual subtomogram-averaging target) in a bin-4-like
# tomogram at 12 Å, CTF at 3 um underfocus, a misaligned series with its .xf. A 45 Å
# protein such as 1AKE is a featureless blob at this resolution: its orientations cannot be
# recovered, a ribosome's can.
DEMO_SCENE = SimulationConfig(
    shape=(48, 160, 160),
    voxel_size=12.0,
    structure=str(phantoms.builtin_structure_path("ribosome")),
    reference_box=40,
    ctf=True,
    shift_px=2.0,
    rotation_deg=1.0,
)

# Starting reference of the refinement: the true structure blurred to this resolution
# (Angstrom), as users start from a low-passed map of a related structure.
_INITIAL_RESOLUTION_A = 60.0
# Refinement: global search first, then local within this many degrees of the last poses.
_MAX_ANGLE_DEG = 10.0
_REFINE_ITERATIONS = 2
_REFINE_METHOD = "newton"  # the frequency-marched Newton aligner of the paper
_FSC_CURVES = ("refined: half maps", "refined vs true structure", "true poses vs true structure")
# Haar-random rotations drawn to state what a failed alignment's errors look like.
_CHANCE_SAMPLES = 100_000
# How the report names the reconstruction methods.
_LABELS = {"wbp": "WBP", "sirt": "SIRT", "cryolithe": "CryoLithe"}


def _label(method: str) -> str:
    return _LABELS.get(method, method.upper())


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced.

    Attributes
    ----------
    report
        The HTML report (self-contained: figures embedded).
    metrics
        Per method: quality against the ground truth and seconds taken.
    files
        Every file written, by role.
    averaging
        Subtomogram averaging from the WBP tomogram: particle count, half-map FSC 0.143
        resolution, FSC 0.5 against the true structure (Angstrom), angular errors
        against the true poses (degrees) and seconds; ``None`` when skipped.
    simulation
        The scene and acquisition actually simulated.
    structure
        Name of the simulated structure, as read from its file.
    initial_resolution
        Resolution (Angstrom) the true structure was low-passed to as the refinement's
        start; ``None`` when averaging was skipped.
    timings
        Seconds per stage.
    """

    report: Path
    metrics: dict[str, dict[str, float]]
    files: dict[str, Path]
    averaging: dict[str, float] | None = None
    simulation: SimulationConfig | None = None
    structure: str = ""
    initial_resolution: float | None = None
    timings: dict[str, float] | None = None


@dataclass(frozen=True)
class _Tomogram:
    """One reconstruction and its quality against the ground truth."""

    path: Path
    volume: torch.Tensor
    quality: dict[str, float]
    fsc: torch.Tensor


@dataclass(frozen=True)
class _Averaging:
    """Subtomogram averaging outcome, its curves and the settings it used."""

    summary: dict[str, float]
    errors: torch.Tensor
    average: torch.Tensor
    oracle: torch.Tensor
    start: torch.Tensor
    fsc_halves: torch.Tensor
    fsc_truth: torch.Tensor
    fsc_oracle: torch.Tensor
    refine_dir: Path
    method: str
    max_angle_deg: float
    iterations: int
    initial_resolution: float
    chance: dict[str, float]


class _Stages:
    """Show the demo's stages with a rich progress bar on stderr (silent when not a TTY)."""

    def __init__(self, names: list[str], *, enabled: bool | None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        show = console.is_terminal if enabled is None else enabled
        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            disable=not show,
            transient=False,
        )
        self._task = self._progress.add_task(names[0], total=len(names))
        self.seconds: dict[str, float] = {}

    def __enter__(self) -> _Stages:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    @contextmanager
    def stage(self, name: str, description: str) -> Iterator[None]:
        """Time one stage and advance the bar when it ends."""
        self._progress.update(self._task, description=description)
        t0 = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - t0
        self._progress.advance(self._task)


def _quality(
    rec: torch.Tensor, truth: torch.Tensor, *, voxel_size: float
) -> tuple[dict[str, float], torch.Tensor]:
    """Scale-free quality: reconstructions are in arbitrary units, so fit a*x+b first."""
    fitted = metrics.fit_affine(rec, truth)
    fsc = metrics.fourier_shell_correlation(fitted, truth)
    return {
        "psnr_db": float(metrics.psnr(fitted, truth)),
        "ssim": float(metrics.ssim(fitted, truth)),
        "correlation": float(metrics.pearson_correlation(rec, truth)),
        "fsc_0.5_A": metrics.fsc_resolution(fsc, threshold=0.5, pixel_size=voxel_size),
        "fsc_0.143_A": metrics.fsc_resolution(fsc, threshold=0.143, pixel_size=voxel_size),
    }, fsc


def _masked_fsc(a: torch.Tensor, b: torch.Tensor, *, radius: float) -> torch.Tensor:
    """FSC inside the particle mask; a tomogram's mean is arbitrary, so shell 0 counts as 1."""
    from inversa.alignment import spherical_mask

    mask = spherical_mask(tuple(a.shape), radius=radius, dtype=a.dtype)
    inside = mask / mask.sum()
    fsc = fourier_shell_correlation(
        (a - (a * inside).sum()) * mask, (b - (b * inside).sum()) * mask
    )
    fsc[0] = 1.0
    return fsc


def _reconstruct(
    out: Path,
    data: SimulatedDataset,
    config: SimulationConfig,
    *,
    method: str,
    device: str,
    sirt_iterations: int,
    force: bool,
) -> _Tomogram:
    """Reconstruct the written tilt series with one method and score it."""
    base = ReconstructionConfig(
        thickness=config.shape[0],
        device=device,
        defocus_um=config.defocus_um if config.ctf else None,
        voltage_kv=config.voltage_kv,
        spherical_aberration_mm=config.spherical_aberration_mm,
        amplitude_contrast=config.amplitude_contrast,
    )
    # Hann-windowed WBP and early-stopped SIRT: the usual choices for low-dose data.
    # CryoLithe (the shipped model) was trained on data that is not phase-flipped.
    settings = {
        "wbp": replace(base, method="wbp", filter="hann"),
        "sirt": replace(base, method="sirt", n_iter=sirt_iterations, tol=1e-6),
        "cryolithe": replace(base, method="cryolithe", defocus_um=None),
    }
    path = out / f"tomogram_{method}.mrc"
    reconstruct_file(
        data.files["stack"],
        out_path=path,
        config=settings[method],
        xf_path=data.files["xf"],
        force=force,
    )
    volume, _ = read_mrc(path)
    quality, fsc = _quality(volume, data.volume, voxel_size=config.voxel_size)
    return _Tomogram(path=path, volume=volume, quality=quality, fsc=fsc)


def _extract(
    out: Path, data: SimulatedDataset, config: SimulationConfig, *, tomogram: Path, force: bool
):
    """Cut the simulated particles from a tomogram at their true positions."""
    from inversa.workflows._extract_job import extract_particles_file

    return extract_particles_file(
        [tomogram],
        data.files["particles"],
        box=config.reference_box,
        out_dir=out / "subtomograms",
        force=force,
    )


def _refine_config(data: SimulatedDataset, config: SimulationConfig):
    """Return the refinement settings the demo uses."""
    from inversa.alignment import RefineConfig, aligner_config

    box = config.reference_box
    aligner = aligner_config(
        _REFINE_METHOD,
        wedge=(config.tilt_min, config.tilt_max),
        max_angle_deg=_MAX_ANGLE_DEG,
        # The particle and a margin: neighbours and membranes stay out of the scores.
        mask_radius=min(box / 2 - 2, data.scene.particle_radius / config.voxel_size + 2),
    )
    return RefineConfig(aligner=aligner)


def _chance_errors() -> dict[str, float]:
    """Median and 90th percentile of angular errors of Haar-random orientations."""
    generator = torch.Generator().manual_seed(0)
    random = rotations.random_rotations(_CHANCE_SAMPLES, generator=generator, dtype=torch.float64)
    return metrics.angular_error_stats(random, torch.eye(3, dtype=torch.float64))


def _average(
    out: Path, data: SimulatedDataset, config: SimulationConfig, *, extracted, force: bool
) -> _Averaging:
    """Refine the extracted particles from a low-passed start and measure the result."""
    from inversa.workflows._refine_job import refine_particles_file

    start = lowpass(data.reference, resolution=_INITIAL_RESOLUTION_A, pixel_size=config.voxel_size)
    start_path = out / "reference_start.mrc"
    write_mrc(start_path, start, voxel_size=config.voxel_size, force=force)
    refine_config = _refine_config(data, config)
    t0 = time.perf_counter()
    result = refine_particles_file(
        extracted.star,
        out / "refine",
        config=refine_config,
        reference=start_path,
        n_iterations=_REFINE_ITERATIONS,
        # The scene's CTF (one defocus, phase-flipped tilts, no dose damage simulated):
        # each particle is scored and averaged with its 3-D CTF weight.
        tilt_series=config.tilt_series_ctf() if config.ctf else None,
        phase_flipped=True,
        force=force,
    )
    seconds = time.perf_counter() - t0
    summary, curves = _score_average(
        result, data, config, extracted=extracted, mask_radius=refine_config.mask_radius
    )
    return _Averaging(
        summary={**summary, "seconds": seconds},
        start=start,
        fsc_halves=result.average.fsc,
        refine_dir=out / "refine",
        method=refine_config.method,
        max_angle_deg=_MAX_ANGLE_DEG,
        iterations=_REFINE_ITERATIONS,
        initial_resolution=_INITIAL_RESOLUTION_A,
        chance=_chance_errors(),
        **curves,
    )


def _score_average(
    result, data: SimulatedDataset, config: SimulationConfig, *, extracted, mask_radius: float
):
    """Angular errors against the true poses; FSC of the average and of the oracle vs truth."""
    from inversa.alignment import average_particles, poses_from_table

    truth_table, _ = read_particles(data.files["particles"])
    true_rot = poses_from_table(truth_table, pixel_size=config.voxel_size)[0].double()
    estimated = result.alignment.rotations.double()
    errors = metrics.angular_error(estimated, true_rot)
    stats = metrics.angular_error_stats(estimated, true_rot)
    radius = mask_radius
    fsc_truth = _masked_fsc(result.average.map, data.reference, radius=radius)
    # The best these particles allow: their average at the true poses (the oracle).
    cut_table, _ = read_particles(extracted.star)
    true_shift = poses_from_table(cut_table, pixel_size=config.voxel_size)[1]
    volumes = torch.stack([read_mrc(path)[0] for path in extracted.volumes])
    oracle = average_particles(
        volumes,
        true_rot.float(),
        true_shift.float(),
        wedge=(config.tilt_min, config.tilt_max),
        pixel_size=config.voxel_size,
    ).map
    fsc_oracle = _masked_fsc(oracle, data.reference, radius=radius)
    px = config.voxel_size
    summary = {
        "n_particles": float(len(errors)),
        "halfmap_fsc_0.143_A": result.average.resolution,
        "fsc_truth_0.5_A": fsc_resolution(fsc_truth, threshold=0.5, pixel_size=px),
        "fsc_truth_0.143_A": fsc_resolution(fsc_truth, threshold=0.143, pixel_size=px),
        "true_pose_fsc_truth_0.5_A": fsc_resolution(fsc_oracle, threshold=0.5, pixel_size=px),
        "true_pose_fsc_truth_0.143_A": fsc_resolution(fsc_oracle, threshold=0.143, pixel_size=px),
        "median_angular_error_deg": stats["median"],
        "p90_angular_error_deg": stats["p90"],
    }
    curves = {
        "errors": errors,
        "average": result.average.map,
        "oracle": oracle,
        "fsc_truth": fsc_truth,
        "fsc_oracle": fsc_oracle,
    }
    return summary, curves


def _reconstruction_figures(
    out: Path,
    data: SimulatedDataset,
    tomograms: dict[str, _Tomogram],
    *,
    voxel_size: float,
    force: bool,
) -> dict[str, Path]:
    """Tilt images, central slices and FSC curves of the reconstructions."""
    n = len(data.angles)
    return {
        "tilts": save_images_png(
            {f"tilt {float(data.angles[i]):+.0f}°": data.stack[i] for i in (0, n // 2, n - 1)},
            out / "tilts.png",
            force=force,
        ),
        "slices": save_slices_png(
            {"ground truth": data.volume, **{_label(k): t.volume for k, t in tomograms.items()}},
            out / "slices.png",
            force=force,
        ),
        "fsc": save_fsc_png(
            {_label(k): t.fsc for k, t in tomograms.items()},
            out / "fsc.png",
            pixel_size=voxel_size,
            force=force,
        ),
    }


def _average_panels(avg: _Averaging, reference: torch.Tensor) -> dict[str, torch.Tensor]:
    """Title the average, the oracle, the truth and the start by what they are."""
    return {
        "refined average": avg.average,
        "average at true poses": avg.oracle,
        "true structure": reference,
        f"start ({avg.initial_resolution:.0f} Å)": avg.start,
    }


def _averaging_figures(
    out: Path, avg: _Averaging, reference: torch.Tensor, *, voxel_size: float, force: bool
) -> dict[str, Path]:
    """Average panels, FSC curves and the angular-error histogram."""
    return {
        "average": save_slices_png(
            _average_panels(avg, reference), out / "average.png", force=force
        ),
        "average_fsc": save_fsc_png(
            dict(zip(_FSC_CURVES, (avg.fsc_halves, avg.fsc_truth, avg.fsc_oracle), strict=True)),
            out / "average_fsc.png",
            pixel_size=voxel_size,
            ylabel="FSC",
            force=force,
        ),
        "angular_error": save_histogram_png(
            avg.errors, out / "angular_error.png", xlabel="angular error (°)", force=force
        ),
    }


def _structure_label(config: SimulationConfig) -> str:
    """Name and size of the simulated structure, read from the file the scene used."""
    model = phantoms.read_atomic_model(config.structure_path())
    return f"{model.name} ({model.n_atoms} atoms, {2 * model.radius():.0f} Å across)"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _data_text(
    data: SimulatedDataset, config: SimulationConfig, *, structure: str, seconds: float
) -> str:
    """One paragraph on the simulated scene, from the config that made it."""
    d, h, w = config.shape
    angles = data.angles
    ctf = (
        f"CTF at {config.defocus_um:g} µm underfocus (phase-flipped before reconstruction), "
        if config.ctf
        else ""
    )
    misalignment = (
        f"per-tilt misalignment up to {config.shift_px:g} px and {config.rotation_deg:g}° "
        "(undone with the written .xf), "
        if config.shift_px > 0 or config.rotation_deg > 0
        else ""
    )
    return (
        f"Cell-like scene {w}x{h}x{d} voxels at {config.voxel_size:g} Å with "
        f"{_count(len(data.scene.positions), 'copy', 'copies')} of {structure} and "
        f"{_count(config.n_membranes, 'membrane', 'membranes')}; {len(angles)} tilts from "
        f"{float(angles[0]):.0f}° to {float(angles[-1]):.0f}°, {config.dose:g} e/Å² per tilt, "
        "Poisson noise, "
        f"{ctf}{misalignment}seed {config.seed}. Simulated in {seconds:.1f} s."
    )


def _methods_text(config: SimulationConfig, methods: list[str], *, sirt_iterations: int) -> str:
    """One paragraph on how each tomogram was made, from the settings used."""
    ctf = " on phase-flipped tilts" if config.ctf else ""
    parts = {
        "wbp": f"WBP with a Hann-windowed ramp filter{ctf}",
        "sirt": f"SIRT, {sirt_iterations} iterations{ctf}",
    }
    if "cryolithe" in methods:
        from inversa.cryolithe import DataConfig, default_model_path, load_model

        model, info = load_model(default_model_path())
        n_params = sum(p.numel() for p in model.parameters())
        seconds = info.get("training_seconds_total", info.get("training_seconds"))
        trained = f", trained for {float(seconds):.0f} s" if seconds is not None else ""
        # The shipped models were trained with DataConfig()'s defaults.
        training = DataConfig()
        same = Path(config.structure_path()).resolve() == Path(
            training.structure or phantoms.builtin_structure_path("ribosome")
        ).resolve() and (training.voxel_sizes[0] <= config.voxel_size <= training.voxel_sizes[1])
        where = (
            "this scene's structure and voxel size are inside its training distribution "
            "(docs/cryolithe.md scores it on a held-out structure)"
            if same
            else "this scene's structure or voxel size is outside its training data"
        )
        parts["cryolithe"] = (
            f"CryoLithe, the shipped {model.config.head}-head model ({n_params:,} parameters"
            f"{trained} on simulated scenes; {where}), on the tilts as recorded (it learned "
            "the CTF: no phase flip)"
        )
    listed = "; ".join(parts[m] for m in methods)
    return (
        f"Tomograms {config.shape[2]}x{config.shape[1]}x{config.shape[0]} from the written "
        f"files: {listed}. Each is scored after an affine fit to the ground truth."
    )


def _quality_table(tomograms: dict[str, _Tomogram], seconds: dict[str, float]) -> list[list[str]]:
    header = ["method", "PSNR (dB)", "SSIM", "correlation", "FSC 0.5 (Å)", "FSC 0.143 (Å)"]
    rows = [[*header, "seconds"]]
    for method, t in tomograms.items():
        q = t.quality
        rows.append(
            [
                _label(method),
                f"{q['psnr_db']:.2f}",
                f"{q['ssim']:.3f}",
                f"{q['correlation']:.3f}",
                f"{q['fsc_0.5_A']:.1f}",
                f"{q['fsc_0.143_A']:.1f}",
                f"{seconds[method]:.1f}",
            ]
        )
    return rows


def _averaging_sections(
    avg: _Averaging, config: SimulationConfig, figures: dict[str, Path], reference: torch.Tensor
):
    s = avg.summary
    method = "frequency-marched Newton" if avg.method == "newton" else avg.method
    weighting = (
        "each particle scored with its 3-D CTF weight (the scene's CTF on the tilts, "
        "phase-flipped) and CTF-corrected (Wiener) gold-standard averaging"
        if config.ctf
        else "wedge-weighted gold-standard averaging"
    )
    text = (
        f"{int(s['n_particles'])} particles cut from the WBP tomogram "
        f"({config.reference_box}^3 boxes at the true positions), refined against the true "
        f"structure low-passed to {avg.initial_resolution:.0f} Å: {method} (global, then local "
        f"within {avg.max_angle_deg:g}°), {weighting}, "
        f"{avg.iterations} iterations, {s['seconds']:.1f} s. Angular errors of random "
        f"orientations have a median of {avg.chance['median']:.0f}° (90th percentile "
        f"{avg.chance['p90']:.0f}°); 'at true poses' averages the same boxes at the true "
        "orientations, the best these particles allow. A half-map FSC that looks good while "
        "the errors are large is reference bias (both halves fitted noise to the same "
        "starting reference), not signal."
    )
    table = [
        [
            "half-map FSC 0.143 (Å)",
            "FSC 0.5 / 0.143 vs truth (Å)",
            "at true poses: FSC 0.5 / 0.143 vs truth (Å)",
            "median error (°)",
            "90th pct error (°)",
        ],
        [
            f"{s['halfmap_fsc_0.143_A']:.1f}",
            f"{s['fsc_truth_0.5_A']:.1f} / {s['fsc_truth_0.143_A']:.1f}",
            f"{s['true_pose_fsc_truth_0.5_A']:.1f} / {s['true_pose_fsc_truth_0.143_A']:.1f}",
            f"{s['median_angular_error_deg']:.1f}",
            f"{s['p90_angular_error_deg']:.1f}",
        ],
    ]
    return [
        ("Subtomogram averaging", text),
        ("Averaging results", table),
        (
            "Average (central slices)",
            (figures["average"], "Panels: " + ", ".join(_average_panels(avg, reference)) + "."),
        ),
        ("Average FSC", (figures["average_fsc"], "Curves: " + ", ".join(_FSC_CURVES) + ".")),
        ("Angular error against the true poses", figures["angular_error"]),
    ]


def _write_metrics(path: Path, config, timings, tomograms, avg: _Averaging | None, *, force):
    summary = {
        "simulation": asdict(config),
        "timings_s": timings,
        "methods": {k: {**t.quality, "seconds": timings[k]} for k, t in tomograms.items()},
        "subtomogram_averaging": None if avg is None else avg.summary,
    }
    write_json(path, summary, force=force, default=str)


def _write_report(
    out: Path,
    data: SimulatedDataset,
    config: SimulationConfig,
    structure: str,
    tomograms: dict[str, _Tomogram],
    avg: _Averaging | None,
    seconds: dict[str, float],
    *,
    sirt_iterations: int,
    force: bool,
) -> dict[str, Path]:
    """Write the figures, ``metrics.json`` and ``report.html``; return every file by role."""
    files = dict(data.files)
    files.update({f"tomogram_{k}": t.path for k, t in tomograms.items()})
    figures = _reconstruction_figures(
        out, data, tomograms, voxel_size=config.voxel_size, force=force
    )
    files.update({f"figure_{k}": v for k, v in figures.items()})
    sections = [
        ("Data", _data_text(data, config, structure=structure, seconds=seconds["simulate"])),
        (
            "Reconstructions",
            _methods_text(config, list(tomograms), sirt_iterations=sirt_iterations),
        ),
        ("Quality against the ground truth", _quality_table(tomograms, seconds)),
        ("Tilt images", figures["tilts"]),
        ("Central slices", figures["slices"]),
        ("Fourier shell correlation", figures["fsc"]),
    ]
    if avg is not None:
        avg_figures = _averaging_figures(
            out, avg, data.reference, voxel_size=config.voxel_size, force=force
        )
        files["averaging_refine"] = avg.refine_dir
        files.update({f"averaging_{k}": v for k, v in avg_figures.items()})
        sections += _averaging_sections(avg, config, avg_figures, data.reference)
    _write_metrics(out / "metrics.json", config, seconds, tomograms, avg, force=force)
    files["metrics"] = out / "metrics.json"
    files["report"] = write_html_report(
        out / "report.html",
        title="inversa demo: simulate, reconstruct, average",
        sections=sections,
        force=force,
    )
    return files


def run_demo(
    out_dir: str | Path,
    *,
    force: bool = False,
    device: str = "cpu",
    simulation: SimulationConfig | None = None,
    sirt_iterations: int = 15,
    averaging: bool = True,
    cryolithe: bool = True,
    progress: bool | None = None,
) -> DemoResult:
    """Simulate a scene of shipped ribosomes, reconstruct it, report the quality.

    Steps: :func:`simulate_dataset` (cell-like scene, tilt series with Poisson noise at
    the configured dose, ground truth files), then WBP, SIRT and CryoLithe (the shipped
    learned model, :mod:`inversa.cryolithe`) from the written files, then metrics
    against the ground truth (PSNR and SSIM after an affine fit,
    correlation, FSC 0.5 / 0.143 resolution) and a self-contained ``report.html`` (PNG
    figures embedded, also written beside it). With ``averaging``, the particles are then
    cut from the WBP tomogram at their true positions (``particles.star``) and refined
    against the true structure low-passed to 60 Å (frequency-marched Newton,
    gold-standard halves, two iterations); the report adds the average, its FSC curves
    and the angular errors against the true poses.

    Parameters
    ----------
    out_dir
        Folder for all outputs.
    force
        Overwrite the outputs of an earlier run.
    device
        Torch device for the reconstructions.
    simulation
        Scene and acquisition; default ``DEMO_SCENE`` (12 ribosomes, PDB 6ZU5, in a
        160x160x48 tomogram at 12 Å).
    sirt_iterations
        SIRT iterations.
    averaging
        Add subtomogram averaging (needs at least two particles).
    cryolithe
        Reconstruct with the shipped CryoLithe model too.
    progress
        Show the stages on stderr; ``None``: only when stderr is a terminal.

    Returns
    -------
    DemoResult
    """
    out = Path(out_dir)
    report = out / "report.html"
    if report.exists() and not force:
        raise OutputExistsError(report)
    config = simulation or DEMO_SCENE
    do_average = averaging and config.n_particles >= 2
    methods = ["wbp", "sirt", *(["cryolithe"] if cryolithe else [])]
    names = ["simulate", *methods, *(["extract", "refine"] if do_average else []), "report"]
    avg = None
    with _Stages(names, enabled=progress) as stages:
        with stages.stage("simulate", "simulating the scene"):
            data = simulate_dataset(out / "data", config=config, force=force)
            structure = _structure_label(config)
        tomograms = {}
        for method in methods:
            with stages.stage(method, f"reconstructing ({_label(method)})"):
                tomograms[method] = _reconstruct(
                    out,
                    data,
                    config,
                    method=method,
                    device=device,
                    sirt_iterations=sirt_iterations,
                    force=force,
                )
        if do_average:
            with stages.stage("extract", "extracting particles"):
                extracted = _extract(out, data, config, tomogram=tomograms["wbp"].path, force=force)
            with stages.stage("refine", "refining and averaging"):
                avg = _average(out, data, config, extracted=extracted, force=force)
        with stages.stage("report", "writing the report"):
            files = _write_report(
                out,
                data,
                config,
                structure,
                tomograms,
                avg,
                stages.seconds,
                sirt_iterations=sirt_iterations,
                force=force,
            )
    return DemoResult(
        report=report,
        metrics={k: {**t.quality, "seconds": stages.seconds[k]} for k, t in tomograms.items()},
        files=files,
        averaging=None if avg is None else avg.summary,
        simulation=config,
        structure=structure,
        initial_resolution=None if avg is None else avg.initial_resolution,
        timings=dict(stages.seconds),
    )

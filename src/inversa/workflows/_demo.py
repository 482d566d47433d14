"""``inversa demo``: the main cryo-ET job on built-in data, with a report."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from inversa.core import metrics, phantoms
from inversa.core.errors import OutputExistsError
from inversa.core.io import atomic_write, read_mrc, read_particles, write_mrc
from inversa.workflows._reconstruct import ReconstructionConfig, reconstruct_file
from inversa.workflows._report import (
    save_fsc_png,
    save_histogram_png,
    save_images_png,
    save_slices_png,
    write_html_report,
)
from inversa.workflows._simulate import SimulationConfig, simulate_dataset

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced.

    Attributes
    ----------
    report
        The HTML report.
    metrics
        Per method: quality against the ground truth and seconds taken.
    files
        Every file written, by role.
    averaging
        Subtomogram averaging from the WBP tomogram: particle count, half-map FSC 0.143
        resolution, FSC 0.5 against the true structure (Angstrom), angular errors
        against the true poses (degrees) and seconds; ``None`` when skipped.
    """

    report: Path
    metrics: dict[str, dict[str, float]]
    files: dict[str, Path]
    averaging: dict[str, float] | None = None


def _quality(rec: torch.Tensor, truth: torch.Tensor, *, voxel_size: float) -> dict[str, float]:
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


# Starting reference of the demo's refinement: the true structure blurred to this
# resolution (Angstrom), as users start from a low-passed map of a related structure.
_DEMO_INITIAL_RESOLUTION = 60.0


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


def _averaging(
    out: Path,
    data,
    config: SimulationConfig,
    *,
    tomogram: Path,
    force: bool,
) -> tuple[dict[str, float], dict[str, Path], dict[str, torch.Tensor]]:
    """Extract the simulated particles from a tomogram, refine them, measure the result."""
    from inversa.alignment._average import average_particles
    from inversa.alignment._refine import RefineConfig
    from inversa.alignment._star import poses_from_table
    from inversa.core.fourier import fsc_resolution, lowpass
    from inversa.workflows._subtomo import extract_particles_file, refine_particles_file

    t0 = time.perf_counter()
    box = config.reference_box
    extracted = extract_particles_file(
        [tomogram], data.files["particles"], box=box, out_dir=out / "subtomograms", force=force
    )
    start = lowpass(
        data.reference, resolution=_DEMO_INITIAL_RESOLUTION, pixel_size=config.voxel_size
    )
    start_path = out / "reference_start.mrc"
    write_mrc(start_path, start, voxel_size=config.voxel_size, force=force)
    refine_config = RefineConfig(
        method="newton",  # the frequency-marched Newton aligner of the paper
        wedge=(config.tilt_min, config.tilt_max),
        local_angle=10.0,
        # The particle and a margin: neighbours and membranes stay out of the scores.
        mask_radius=min(box / 2 - 2, data.scene.particle_radius / config.voxel_size + 2),
    )
    result = refine_particles_file(
        extracted.star,
        out / "refine",
        config=refine_config,
        reference=start_path,
        n_iterations=2,
        force=force,
    )
    seconds = time.perf_counter() - t0
    truth_table, _ = read_particles(data.files["particles"])
    true_rot = poses_from_table(truth_table, pixel_size=config.voxel_size)[0]
    errors = metrics.angular_error(result.alignment.rotations.double(), true_rot)
    stats = metrics.angular_error_stats(result.alignment.rotations.double(), true_rot)
    average = result.average.map
    mask_radius = refine_config.mask_radius
    fsc_truth = _masked_fsc(average, data.reference, radius=mask_radius)
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
    fsc_oracle = _masked_fsc(oracle, data.reference, radius=mask_radius)
    summary = {
        "n_particles": float(len(errors)),
        "halfmap_fsc_0.143_A": result.average.resolution,
        "fsc_truth_0.5_A": fsc_resolution(fsc_truth, threshold=0.5, pixel_size=config.voxel_size),
        "fsc_truth_0.143_A": fsc_resolution(
            fsc_truth, threshold=0.143, pixel_size=config.voxel_size
        ),
        "true_pose_fsc_truth_0.5_A": fsc_resolution(
            fsc_oracle, threshold=0.5, pixel_size=config.voxel_size
        ),
        "true_pose_fsc_truth_0.143_A": fsc_resolution(
            fsc_oracle, threshold=0.143, pixel_size=config.voxel_size
        ),
        "median_angular_error_deg": stats["median"],
        "p90_angular_error_deg": stats["p90"],
        "seconds": seconds,
    }
    figures = {
        "average": save_slices_png(
            {
                "refined average": average,
                "average at true poses": oracle,
                "true structure": data.reference,
                "start (30 Å)": start,
            },
            out / "average.png",
            force=force,
        ),
        "average_fsc": save_fsc_png(
            {
                "refined: half maps": result.average.fsc,
                "refined vs true structure": fsc_truth,
                "true poses vs true structure": fsc_oracle,
            },
            out / "average_fsc.png",
            pixel_size=config.voxel_size,
            ylabel="FSC",
            force=force,
        ),
        "angular_error": save_histogram_png(
            errors, out / "angular_error.png", xlabel="angular error (°)", force=force
        ),
    }
    return summary, {"refine": out / "refine", **figures}, {"fsc": result.average.fsc}


def _masked_fsc(a: torch.Tensor, b: torch.Tensor, *, radius: float) -> torch.Tensor:
    """FSC inside the particle mask; a tomogram's mean is arbitrary, so shell 0 counts as 1."""
    from inversa.alignment._volumes import spherical_mask
    from inversa.core.fourier import fourier_shell_correlation

    mask = spherical_mask(tuple(a.shape), radius=radius, dtype=a.dtype)
    inside = mask / mask.sum()
    fsc = fourier_shell_correlation(
        (a - (a * inside).sum()) * mask, (b - (b * inside).sum()) * mask
    )
    fsc[0] = 1.0
    return fsc


def run_demo(
    out_dir: str | Path,
    *,
    force: bool = False,
    device: str = "cpu",
    simulation: SimulationConfig | None = None,
    sirt_iterations: int = 15,
    averaging: bool = True,
) -> DemoResult:
    """Simulate a scene of shipped ribosomes, reconstruct it, report the quality.

    Steps: :func:`simulate_dataset` (cell-like scene, tilt series with Poisson noise at
    the configured dose, ground truth files), then WBP and SIRT from the written files,
    then metrics against the ground truth (PSNR and SSIM after an affine fit,
    correlation, FSC 0.5 / 0.143 resolution) and ``report.html`` with PNG figures. With
    ``averaging``, the particles are then cut from the WBP tomogram at their true
    positions (``particles.star``) and refined against the true structure low-passed to
    60 Å (frequency-marched Newton, gold-standard halves, two iterations); the report adds the
    average, its FSC curves and the angular errors against the true poses.

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

    Returns
    -------
    DemoResult
    """
    out = Path(out_dir)
    report = out / "report.html"
    if report.exists() and not force:
        raise OutputExistsError(report)
    config = simulation or DEMO_SCENE
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = simulate_dataset(out / "data", config=config, force=force)
    timings["simulate"] = time.perf_counter() - t0

    truth = data.volume
    recs: dict[str, torch.Tensor] = {}
    results: dict[str, dict[str, float]] = {}
    fscs: dict[str, torch.Tensor] = {}
    files = dict(data.files)
    base = ReconstructionConfig(
        thickness=config.shape[0],
        device=device,
        defocus_um=config.defocus_um if config.ctf else None,
        voltage_kv=config.voltage_kv,
        spherical_aberration_mm=config.spherical_aberration_mm,
        amplitude_contrast=config.amplitude_contrast,
    )
    for method, cfg in (
        # Hann-windowed WBP and early-stopped SIRT: the usual choices for low-dose data.
        ("wbp", replace(base, method="wbp", filter="hann")),
        ("sirt", replace(base, method="sirt", n_iter=sirt_iterations, tol=1e-6)),
    ):
        path = out / f"tomogram_{method}.mrc"
        t0 = time.perf_counter()
        reconstruct_file(
            data.files["stack"],
            out_path=path,
            config=cfg,
            xf_path=data.files["xf"],
            force=force,
        )
        seconds = time.perf_counter() - t0
        rec, _ = read_mrc(path)
        recs[method] = rec
        quality, fscs[method] = _quality(rec, truth, voxel_size=config.voxel_size)
        results[method] = {**quality, "seconds": seconds}
        files[f"tomogram_{method}"] = path

    figs = {
        "slices": save_slices_png(
            {"ground truth": truth, **{k.upper(): v for k, v in recs.items()}},
            out / "slices.png",
            force=force,
        ),
        "tilts": save_images_png(
            {
                f"tilt {float(data.tilt_angles[i]):+.0f}°": data.stack[i]
                for i in (0, len(data.tilt_angles) // 2, len(data.tilt_angles) - 1)
            },
            out / "tilts.png",
            force=force,
        ),
        "fsc": save_fsc_png(
            {k.upper(): v for k, v in fscs.items()},
            out / "fsc.png",
            pixel_size=config.voxel_size,
            force=force,
        ),
    }
    files.update({f"figure_{k}": v for k, v in figs.items()})
    avg_summary = None
    avg_sections: list = []
    if averaging and config.n_particles >= 2:
        avg_summary, avg_files, _ = _averaging(
            out, data, config, tomogram=files["tomogram_wbp"], force=force
        )
        files.update({f"averaging_{k}": v for k, v in avg_files.items()})
        avg_sections = [
            (
                "Subtomogram averaging",
                f"{int(avg_summary['n_particles'])} particles cut from the WBP tomogram "
                f"({config.reference_box}^3 boxes at the true positions), refined against "
                f"the true structure low-passed to {_DEMO_INITIAL_RESOLUTION:.0f} Å: "
                "frequency-marched Newton (global, then local within 10°), wedge-weighted "
                "gold-standard "
                f"averaging, 2 iterations, {avg_summary['seconds']:.1f} s. Angular errors "
                "of random orientations have a median of 132° (90th percentile 171°); "
                "'at true poses' averages the same boxes at the true orientations, the best "
                "these particles allow. "
                "A half-map FSC that looks good while the errors are large is reference "
                "bias (both halves fitted noise to the same starting reference), not signal.",
            ),
            (
                "Averaging results",
                [
                    [
                        "half-map FSC 0.143 (Å)",
                        "FSC 0.5 / 0.143 vs truth (Å)",
                        "at true poses: FSC 0.5 / 0.143 vs truth (Å)",
                        "median error (°)",
                        "90th pct error (°)",
                    ],
                    [
                        f"{avg_summary['halfmap_fsc_0.143_A']:.1f}",
                        f"{avg_summary['fsc_truth_0.5_A']:.1f} / "
                        f"{avg_summary['fsc_truth_0.143_A']:.1f}",
                        f"{avg_summary['true_pose_fsc_truth_0.5_A']:.1f} / "
                        f"{avg_summary['true_pose_fsc_truth_0.143_A']:.1f}",
                        f"{avg_summary['median_angular_error_deg']:.1f}",
                        f"{avg_summary['p90_angular_error_deg']:.1f}",
                    ],
                ],
            ),
            ("Average (central slices)", avg_files["average"].relative_to(out)),
            ("Average FSC", avg_files["average_fsc"].relative_to(out)),
            ("Angular error against the true poses", avg_files["angular_error"].relative_to(out)),
        ]
    summary = {
        "simulation": {k: v for k, v in vars(config).items()},
        "timings_s": timings,
        "methods": results,
        "subtomogram_averaging": avg_summary,
    }
    with atomic_write(out / "metrics.json", force=force) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    files["metrics"] = out / "metrics.json"

    table = [
        ["method", "PSNR (dB)", "SSIM", "correlation", "FSC 0.5 (Å)", "FSC 0.143 (Å)", "seconds"]
    ]
    for method, r in results.items():
        table.append(
            [
                method.upper(),
                f"{r['psnr_db']:.2f}",
                f"{r['ssim']:.3f}",
                f"{r['correlation']:.3f}",
                f"{r['fsc_0.5_A']:.1f}",
                f"{r['fsc_0.143_A']:.1f}",
                f"{r['seconds']:.1f}",
            ]
        )
    d, h, w = config.shape
    angles = data.tilt_angles
    write_html_report(
        report,
        title="inversa demo: simulate -> reconstruct",
        sections=[
            (
                "Data",
                f"Cell-like scene {w}x{h}x{d} voxels at {config.voxel_size} Å with "
                f"{config.n_particles} copies of PDB 1AKE chain A and {config.n_membranes} "
                f"membranes; {len(angles)} tilts from {float(angles[0]):.0f}° to "
                f"{float(angles[-1]):.0f}°, {config.dose} e/Å² per tilt, Poisson noise, "
                + (
                    f"CTF at {config.defocus_um} µm underfocus (phase-flipped before "
                    "reconstruction), "
                    if config.ctf
                    else ""
                )
                + (
                    f"per-tilt misalignment up to {config.shift_px} px and "
                    f"{config.rotation_deg}° (undone with the written .xf), "
                    if config.shift_px > 0 or config.rotation_deg > 0
                    else ""
                )
                + f"seed {config.seed}. Simulated in {timings['simulate']:.1f} s.",
            ),
            ("Quality against the ground truth", table),
            ("Tilt images", figs["tilts"].relative_to(out)),
            ("Central slices", figs["slices"].relative_to(out)),
            ("Fourier shell correlation", figs["fsc"].relative_to(out)),
            *avg_sections,
        ],
        force=force,
    )
    files["report"] = report
    return DemoResult(report=report, metrics=results, files=files, averaging=avg_summary)

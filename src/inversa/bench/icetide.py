"""``inversa bench icetide``: ICE-TIDE beside xcorr + WBP, projection matching and the oracle.

One simulated cell scene (PDB 1AKE particles, a membrane (none in --quick)) at 20 e/A^2
per tilt with the demo's CTF (3 um underfocus, 300 kV, Cs 2.7 mm, 7 % amplitude
contrast), three misalignment levels of the same scene: ``shift`` (shifts up to 5 % of
the field), ``rigid`` (+ in-plane rotations up to 2 degrees), ``local`` (+ B-spline local
deformation up to 2 px). On each level all four methods see the same tilt series:

- ``icetide``: :func:`inversa.icetide.fit_icetide` on the raw stack with the CTF model
  (CTF-filtered patches) after a coarse-to-fine first phase on the Wiener-restored data
  low-passed below the first CTF zero, widened to 1.5 times it (``IceTideConfig``'s
  defaults ``ctf_lowpass``, ``ctf_lowpass_to``), then the default polish of the rigid
  alignment against its own volume (``IceTideConfig.polish``; the alignment before it is
  scored too, as ``icetide_nopolish``), scored on its field volume;
- ``xcorr``: :func:`inversa.icetide.align_xcorr` then WBP;
- ``projmatch``: :func:`inversa.icetide.align_projmatch` (from xcorr) then WBP;
- ``oracle``: WBP with the true rigid alignment and true local fields.

The rigid-alignment floor (``floor``): :func:`inversa.icetide.refine_rigid` fits each tilt's
rotation and shift of the raw stack against the true noise-free volume's projections
through the true CTF (and, at ``local``, the true local fields; ``floor_nolocal``
without them), by Gauss-Newton from the truth; its median errors are what an aligner
can reach on this data at this size and dose.

The classical peers and the oracle get the stack phase-flipped per tilt first, as IMOD's
``ctfphaseflip`` does, and the peers' cross-correlations a low-pass chosen on two other
scenes (seeds 8 and 9; :data:`PEER_LOWPASS`), as IMOD's ``tiltxcorr`` filters and
AreTomo bins. Scores against the truth: median / p90 shift error after removing the best
volume translation (the one ambiguity every method has), median rotation error,
local-field RMSE, FSC 0.143 / 0.5 resolution (Angstrom) and Pearson correlation against
the noise-free volume, each reconstruction first translated by the whole voxels that best
match the truth. Also the hash grid's forward + backward throughput beside a dense
``grid_sample`` grid with as many parameters, and (full run) ICE-TIDE's time at the
issue's size, 128 x 128 x 64 from 41 tilts with the default configuration (no CTF),
timed over a fraction of its steps and scaled to all of them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from inversa.bench._harness import BenchReport

if TYPE_CHECKING:
    from inversa.tomography import SimulatedTiltSeries, SimulationConfig

__all__ = ["LEVELS", "METHODS", "figures", "run"]

LEVELS = ("shift", "rigid", "local")
METHODS = ("icetide", "xcorr", "projmatch", "oracle")
#: Low-pass (cycles per pixel) of the peers' cross-correlations on CTF data, each the
#: best of 0.05-0.3 on the ``local`` level of two other scenes (seeds 8 and 9, not the
#: bench's 7; ``benchmarks/results/icetide_ctf_experiments.json``); 0.25, IMOD's default,
#: without a CTF.
PEER_LOWPASS = {"xcorr": 0.10, "projmatch": 0.15}


def _sizes(quick: bool) -> dict:
    if quick:
        return {
            "shape": (16, 32, 32),
            "tilt_step": 6.0,
            "n_particles": 4,
            "n_membranes": 0,
            "steps": 120,
            "rays": 512,
            "samples": 24,
            "grid": 6,
            "points": 2**14,
            "projmatch_iterations": 2,
            "timing_steps": 0,
        }
    return {
        "shape": (32, 64, 64),
        "tilt_step": 4.0,
        "n_particles": 12,
        "n_membranes": 1,
        "steps": 400,
        "rays": 1024,
        "samples": 40,
        "grid": 6,
        "points": 2**16,
        "projmatch_iterations": 4,
        "timing_steps": 100,
    }


DOSE = 20.0  # e/A^2 per tilt (the demo's 3.0 fails every method at these sizes)
DEFOCUS_UM = 3.0  # the demo's CTF


def _simulate(level: str, sizes: dict, *, ctf: bool = True):
    """Simulate one level; return the config, the simulation and the stack the peers get.

    With ``ctf`` the peers' stack is phase-flipped (the raw one is ``sim.stack``).
    """
    from inversa.core.phantoms import builtin_structure_path
    from inversa.tomography import SimulationConfig, phase_flip, simulate

    w = sizes["shape"][2]
    config = SimulationConfig(
        shape=sizes["shape"],
        voxel_size=8.0,
        structure=str(builtin_structure_path("1ake")),
        reference_box=16,
        n_particles=sizes["n_particles"],
        n_membranes=sizes["n_membranes"],
        tilt_min=-60.0,
        tilt_max=60.0,
        tilt_step=sizes["tilt_step"],
        dose=DOSE,
        ctf=ctf,
        defocus_um=DEFOCUS_UM,
        shift_px=0.05 * w,
        rotation_deg=0.0 if level == "shift" else 2.0,
        local_deformation_px=2.0 if level == "local" else 0.0,
        deformation_grid=sizes["grid"],
        seed=7,
    )
    sim = simulate(config)
    if not ctf:
        return config, sim, sim.stack
    params = config.ctf_params()
    # The CTF is radially symmetric, so flipping the raw (misaligned) images commutes with
    # their shifts and rotations (up to the image borders).
    return config, sim, phase_flip(sim.stack.double(), params).float()


FLOOR_ITERATIONS = 30
FLOOR_FD_STEP = (1e-3, 1e-3)  # degrees, px
FLOOR_POLISH_STEPS = (0.02, 0.005, 0.00125)  # degrees and px alike
FLOOR_SCAN_STEP_DEG = 0.0025


def _error_keys(err: dict, method: str, level: str) -> dict[str, float]:
    """Return the flat alignment-error keys of one method at one level."""
    return {
        f"shift_err_median_px_{method}_{level}": err["shift_err_median_px"],
        f"shift_err_p90_px_{method}_{level}": err["shift_err_p90_px"],
        f"rotation_err_deg_{method}_{level}": err["rotation_err_deg"],
        f"rotation_err_deg_volrot_removed_{method}_{level}": err[
            "rotation_err_deg_volume_rotation_removed"
        ],
    }


def _floor(level: str, config: SimulationConfig, sim: SimulatedTiltSeries) -> dict[str, float]:
    """Measure the oracle floor on one level's raw stack (:func:`inversa.icetide.refine_rigid`).

    It knows the noise-free volume, the CTF and (``local``) the true local fields; at
    ``local`` also without the local fields (``..._floor_nolocal_local``).
    """
    from inversa.icetide import alignment_errors, refine_rigid
    from inversa.tomography import TiltSeriesProjector

    t0 = time.perf_counter()
    volume = sim.volume.double()
    geometry = sim.geometry.replace(xf=None).to(dtype=torch.float64)
    geometry = geometry.replace(detector_shape=None)  # as the simulator projects
    ideal = TiltSeriesProjector(volume_shape=tuple(volume.shape), geometry=geometry).forward(volume)
    params = config.ctf_params()
    runs = [("floor", sim.displacement)]
    if sim.displacement is not None:
        runs.append(("floor_nolocal", None))
    out: dict[str, float] = {}
    for name, displacement in runs:
        xf, info = refine_rigid(
            sim.stack,
            ideal,
            sim.xf,
            ctf=params,
            displacement=displacement,
            iterations=FLOOR_ITERATIONS,
            fd_step=FLOOR_FD_STEP,
            polish_steps=FLOOR_POLISH_STEPS,
            scan_step_deg=FLOOR_SCAN_STEP_DEG,
        )
        control = sim.control if displacement is not None else None
        err = alignment_errors(
            xf, sim.xf, control=control, true_displacement=sim.displacement, angles=sim.angles
        )
        out.update(_error_keys(err, name, level))
        out[f"{name}_last_step_rot_deg_max_{level}"] = info["last_step_rot_deg_max"]
        out[f"{name}_last_step_shift_px_max_{level}"] = info["last_step_shift_px_max"]
        out[f"{name}_polish_rot_deg_max_{level}"] = info["polish_rot_deg_max"]
        out[f"{name}_polish_shift_px_max_{level}"] = info["polish_shift_px_max"]
        out[f"{name}_scan_offset_deg_max_{level}"] = info["scan_offset_deg_max"]
    out[f"seconds_floor_{level}"] = time.perf_counter() - t0
    return out


def _register(volume: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Translate ``volume`` by the whole voxels that best match ``truth`` (circularly).

    A reconstruction is defined up to a translation of the volume (see
    :func:`inversa.icetide.alignment_errors`); every method is scored after this one.
    """
    v, t = volume.double(), truth.double()
    cc = torch.fft.irfftn(torch.fft.rfftn(v).conj() * torch.fft.rfftn(t), s=t.shape)
    peak = torch.unravel_index(torch.argmax(cc), t.shape)
    shifts = [int(k) if int(k) < n // 2 else int(k) - n for k, n in zip(peak, t.shape, strict=True)]
    return torch.roll(v, shifts=shifts, dims=(0, 1, 2))


def _scores(volume: torch.Tensor, truth: torch.Tensor, voxel_size: float) -> dict[str, float]:
    from inversa.core import metrics
    from inversa.core.fourier import fourier_shell_correlation, fsc_resolution

    volume = _register(volume, truth)
    # No method knows the volume's mean (every tilt is normalised to zero mean): the
    # truth's is given to all, else the DC shell alone can sink the FSC below threshold.
    volume = volume - volume.mean() + truth.double().mean()
    curve = fourier_shell_correlation(volume.double(), truth.double())
    box = max(truth.shape)
    return {
        "fsc0143_A": fsc_resolution(curve, threshold=0.143, pixel_size=voxel_size, box_size=box),
        "fsc05_A": fsc_resolution(curve, threshold=0.5, pixel_size=voxel_size, box_size=box),
        "corr": float(metrics.pearson_correlation(volume.double(), truth.double())),
    }


def _throughput(n_points: int) -> dict[str, float]:
    """Forward + backward points per second of the bench's hash grid and a dense grid."""
    import torch.nn.functional as F

    from inversa.core.fields import HashGridConfig, HashGridEncoding

    g = torch.Generator().manual_seed(0)
    enc = HashGridEncoding(
        HashGridConfig(dim=3, n_levels=8, n_features=2, log2_table_size=16, max_resolution=128),
        generator=g,
    )
    n_params = enc.table.numel()
    side = round((n_params / 16) ** (1 / 3))
    dense = torch.nn.Parameter(1e-4 * torch.randn(1, 16, side, side, side, generator=g))
    pts = torch.rand(n_points, 3, generator=g)
    proj = torch.randn(16, generator=g)

    def hash_step() -> None:
        enc.zero_grad()
        (enc(pts) @ proj).sum().backward()

    def dense_step() -> None:
        dense.grad = None
        grid = (2 * pts - 1).view(1, 1, 1, -1, 3)
        feats = F.grid_sample(dense, grid, align_corners=True)[0, :, 0, 0].T
        (feats @ proj).sum().backward()

    out = {}
    for name, fn in (("hashgrid", hash_step), ("densegrid", dense_step)):
        fn()
        t0 = time.perf_counter()
        for _ in range(3):
            fn()
        out[f"{name}_points_per_s"] = 3 * n_points / (time.perf_counter() - t0)
    return out


def _timing(steps: int, device: str) -> dict[str, float]:
    """ICE-TIDE's time at the issue's size (128 x 128 x 64, 41 tilts, default settings).

    ``steps`` of the default 1500 are run (the schedule's fractions kept, so every phase
    is timed in proportion) and the wall clock is scaled to the full run; the polish
    after them is timed once and added.
    """
    from dataclasses import replace

    from inversa.icetide import IceTideConfig, fit_icetide, polish_rigid
    from inversa.tomography import TiltGeometry

    sizes = {**_sizes(False), "shape": (64, 128, 128), "tilt_step": 3.0, "n_particles": 24}
    _config, sim, stack = _simulate("local", sizes, ctf=False)
    default = IceTideConfig(thickness=64)
    cpu0 = time.process_time()
    fit = fit_icetide(
        stack,
        TiltGeometry(angles=sim.angles),
        config=replace(default, steps=steps, polish=False),
        device=device,
    )
    cpu = time.process_time() - cpu0  # what the process got of the (shared) cores
    # The default's polish runs once after all the steps: timed once, not scaled.
    t0, cpu0 = time.perf_counter(), time.process_time()
    polish_rigid(
        stack, fit.volume, TiltGeometry(angles=sim.angles), fit.xf, displacement=fit.displacement
    )
    polish_s, polish_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "icetide_128_n_tilts": sim.geometry.n_tilts,
        "icetide_128_steps_timed": steps,
        "seconds_icetide_128_timed": fit.seconds,
        "cpu_seconds_icetide_128_timed": cpu,
        "torch_threads_icetide_128": torch.get_num_threads(),
        "seconds_icetide_128_polish": polish_s,
        "cpu_seconds_icetide_128_polish": polish_cpu,
        "seconds_icetide_128_default": fit.seconds * default.steps / steps + polish_s,
        "cpu_seconds_icetide_128_default": cpu * default.steps / steps + polish_cpu,
    }


def run(*, quick: bool, device: str = "cpu") -> BenchReport:
    """Run the three misalignment levels side by side, with the CTF (quick: 16x32x32)."""
    from inversa.icetide import (
        IceTideConfig,
        align_projmatch,
        align_xcorr,
        alignment_errors,
        ctf_first_zero,
        ctf_padding,
        fit_icetide,
        reconstruct_corrected,
        split_rigid,
    )
    from inversa.tomography import TiltGeometry, bspline_field

    sizes = _sizes(quick)
    report = BenchReport(name="icetide", quick=quick)
    values = report.values
    seconds = {m: 0.0 for m in ("icetide", "xcorr", "projmatch")}
    depth = sizes["shape"][0]
    lowpass = PEER_LOWPASS
    for level in LEVELS:
        config, sim, stack = _simulate(level, sizes)
        truth, vs = sim.volume, config.voxel_size
        angles, true_xf = sim.angles, sim.xf
        found: dict[str, tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]] = {}

        t0 = time.perf_counter()
        xc = align_xcorr(stack, angles, lowpass=lowpass["xcorr"])
        xcorr_s = time.perf_counter() - t0
        seconds["xcorr"] += xcorr_s
        found["xcorr"] = (xc, None, reconstruct_corrected(stack, angles, xc, thickness=depth))

        t0 = time.perf_counter()
        pm = align_projmatch(
            stack,
            angles,
            thickness=depth,
            iterations=sizes["projmatch_iterations"],
            start=xc,
            lowpass=lowpass["projmatch"],
        )
        seconds["projmatch"] += time.perf_counter() - t0 + xcorr_s  # it starts from xcorr
        found["projmatch"] = (
            pm,
            None,
            reconstruct_corrected(stack, angles, pm, thickness=depth),
        )

        ic_config = IceTideConfig(
            steps=sizes["steps"],
            rays_per_step=sizes["rays"],
            samples_per_ray=sizes["samples"],
            local_grid=sizes["grid"],
            thickness=depth,
            log2_table_size=16,
        )
        ctf = config.tilt_series_ctf()
        fit = fit_icetide(  # the raw stack and its CTF (no phase flip)
            sim.stack,
            TiltGeometry(angles=angles),
            config=ic_config,
            ctf=ctf,
            pixel_size_A=vs,
            device=device,
        )
        values[f"seconds_icetide_{level}"] = fit.seconds
        seconds["icetide"] += fit.seconds
        found["icetide"] = (fit.xf, fit.control, fit.volume)
        unpolished = alignment_errors(
            fit.fit_xf, true_xf, control=fit.control, true_displacement=sim.displacement,
            angles=angles,
        )  # fmt: skip
        values.update(_error_keys(unpolished, "icetide_nopolish", level))
        values[f"icetide_polish_reverted_{level}"] = fit.polish.get("reverted", 0.0)
        oracle_volume = reconstruct_corrected(
            stack, angles, true_xf, control=sim.control, thickness=depth
        )
        found["oracle"] = (true_xf, sim.control, oracle_volume)
        values.update(_floor(level, config, sim))

        for method, (xf, control, volume) in found.items():
            err = alignment_errors(
                xf, true_xf, control=control, true_displacement=sim.displacement, angles=angles
            )
            score = _scores(volume, truth, vs)
            values.update(_error_keys(err, method, level))
            values[f"fsc0143_A_{method}_{level}"] = score["fsc0143_A"]
            values[f"fsc05_A_{method}_{level}"] = score["fsc05_A"]
            values[f"corr_{method}_{level}"] = score["corr"]
            if method == "icetide" and level == "local":
                values[f"local_field_rmse_px_icetide_{level}"] = err["local_field_rmse_px"]
                rest = split_rigid(sim.displacement)[2]  # what is scored as local
                values[f"local_field_rms_px_true_{level}"] = float(
                    rest.square().sum(-1).mean().sqrt()
                )
        if level == "local":  # for the figures (the hardest level): shifts and slices
            values["angles_local"] = angles.tolist()
            for method in ("icetide", "xcorr", "projmatch", "oracle"):
                # effective shifts (rigid + mean local field), volume translation removed
                xf, control = found[method][0], found[method][1]
                shift = xf[:, :, 2].double()
                if control is not None:
                    shift = shift + bspline_field(control, stack.shape[1:]).mean(dim=(1, 2))
                true = true_xf[:, :, 2] + sim.displacement.mean(dim=(1, 2))
                theta = torch.deg2rad(angles.double())
                basis = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
                diff = shift - true
                fit = torch.linalg.lstsq(basis, diff[:, :1]).solution
                offset = torch.stack([(basis @ fit)[:, 0], diff[:, 1].mean().expand(len(theta))], 1)
                values[f"shifts_{method}_local"] = (shift - offset).tolist()
                values[f"slice_{method}_local"] = found[method][2][depth // 2].tolist()
            values["slice_truth_local"] = truth[depth // 2].tolist()
        for method in METHODS:
            if method not in ("icetide", "oracle"):
                report.compare(
                    f"{level}: shift error median, icetide vs {method}",
                    values[f"shift_err_median_px_icetide_{level}"],
                    values[f"shift_err_median_px_{method}_{level}"],
                    unit="px",
                )
        report.compare(
            f"{level}: rotation error, icetide vs floor (oracle volume)",
            values[f"rotation_err_deg_icetide_{level}"],
            values[f"rotation_err_deg_floor_{level}"],
            unit="deg",
        )
        report.compare(
            f"{level}: FSC 0.143, icetide vs oracle",
            values[f"fsc0143_A_icetide_{level}"],
            values[f"fsc0143_A_oracle_{level}"],
            unit="A",
        )
    for method, total in seconds.items():
        values[f"seconds_{method}"] = total / len(LEVELS)
    values.update(_throughput(sizes["points"]))
    values["hashgrid_vs_densegrid"] = (
        values["hashgrid_points_per_s"] / values["densegrid_points_per_s"]
    )
    values["volume_shape"] = list(sizes["shape"])
    values["n_tilts"] = len(angles)
    values["icetide_steps"] = sizes["steps"]
    values["device"] = device
    values["dose_e_per_A2"] = DOSE
    values["defocus_um"] = DEFOCUS_UM
    values["icetide_ctf_patch_px"] = ic_config.ctf_patch
    values["icetide_ctf_padding_px"] = ctf_padding(ctf, vs)
    values["icetide_ctf_lowpass"] = ic_config.ctf_lowpass
    values["icetide_ctf_lowpass_from"] = ic_config.ctf_lowpass_from
    values["icetide_ctf_lowpass_to"] = ic_config.ctf_lowpass_to
    values["icetide_ctf_wiener"] = ic_config.ctf_wiener
    values["icetide_ctf_first_zero_cycles_per_px"] = float(ctf_first_zero(ctf, vs).min())
    values["floor_iterations"] = FLOOR_ITERATIONS
    values["floor_fd_step_deg"] = FLOOR_FD_STEP[0]
    values["floor_fd_step_px"] = FLOOR_FD_STEP[1]
    values["floor_polish_finest_step"] = FLOOR_POLISH_STEPS[-1]
    values["floor_scan_step_deg"] = FLOOR_SCAN_STEP_DEG
    values["xcorr_lowpass_cycles_per_px"] = lowpass["xcorr"]
    values["projmatch_lowpass_cycles_per_px"] = lowpass["projmatch"]
    if sizes["timing_steps"]:
        values.update(_timing(sizes["timing_steps"], device))
    return report


def figures(values: dict, out_dir: Path, *, force: bool) -> list[Path]:
    """Slices of every method at ``local`` (the hardest level), recovered vs true shifts."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from inversa.core.io import atomic_write

    written = []
    for level in ("local",):
        fig, axes = plt.subplots(1, 5, figsize=(15, 3.2))
        for ax, name in zip(axes, ("truth", *METHODS), strict=True):
            ax.imshow(np.asarray(values[f"slice_{name}_{level}"]), cmap="gray")
            fsc = values.get(f"fsc0143_A_{name}_{level}")
            ax.set_title(name if name == "truth" else f"{name}: {fsc:.0f} A")
            ax.axis("off")
        ctf = f", {values['defocus_um']:g} um CTF" if values.get("defocus_um") else ""
        fig.suptitle(f"level {level}{ctf}: central z slice (FSC 0.143)")
        path = out_dir / f"icetide_slices_{level}.png"
        with atomic_write(path, force=force) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    angles = values["angles_local"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    true = np.asarray(values["shifts_oracle_local"])
    for k, axis in enumerate("xy"):
        ax = axes[k]
        ax.plot(angles, true[:, k], "k-", label="true")
        for method, style in (("icetide", "o"), ("xcorr", "x"), ("projmatch", "+")):
            ax.plot(angles, np.asarray(values[f"shifts_{method}_local"])[:, k], style, label=method)
        ax.set_xlabel("tilt (degrees)")
        ax.set_ylabel(f"shift {axis} (px)")
    axes[0].legend()
    path = out_dir / "icetide_shifts_local.png"
    with atomic_write(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    written.append(path)
    return written

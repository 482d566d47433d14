"""``inversa bench cryolithe``: learned local reconstruction beside WBP, SIRT and a 3-D U-Net.

One run, on held-out simulated tomograms: scenes of a structure never used in training
(adenylate kinase, PDB 1AKE, at 8 Angstrom per voxel, with vesicles), imaged with CTF
(3 um underfocus) and about 120 e/A^2 in total, under an in-distribution tilt scheme
(+-60 in 4) and three schemes whose steps the training never saw (+-50 in 2, +-60 in 3,
+-66 in 3 standing for the dose-symmetric scheme: our simulator has no cumulative
radiation damage, so the order of acquisition does not change the images). Every method
is scored against the noise-free density low-passed to the training target resolution
(3 voxels): PSNR (after an affine fit), SSIM, FSC 0.143 resolution and the correlation
over the missing-wedge cone of Fourier space. Methods: WBP (Hann) and SIRT (iterations
chosen on a validation tomogram), both on phase-flipped data; the 3-D U-Net on WBP
trained here on the CryoLithe training distribution; the shipped CryoLithe pixel and
wavelet models. Speed: voxels per second and peak memory of streaming inference.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from inversa.bench._harness import BenchReport, save_figure
from inversa.core.errors import InputError

__all__ = ["figures", "fsc_resolution_without_dc", "run", "wedge_correlation"]

METHODS = ("wbp", "sirt", "unet", "cryolithe", "cryolithe_wavelet")
LABELS = {
    "wbp": "WBP",
    "sirt": "SIRT",
    "unet": "U-Net on WBP",
    "cryolithe": "CryoLithe pixel",
    "cryolithe_wavelet": "CryoLithe wavelet",
}


def wedge_correlation(
    x: torch.Tensor, ref: torch.Tensor, *, tilt_max: float, f_max: float = 0.5
) -> float:
    """Fourier correlation of two volumes over the missing-wedge cone (tilt axis y).

    A frequency ``(kx, ky, kz)`` is measured by a tilt series about y reaching
    ``+-tilt_max`` when the angle of ``(kx, kz)`` from the kx axis is at most
    ``tilt_max``; the rest (around kz) is the missing wedge. Frequencies with
    ``(kx, kz) = 0`` or ``|k| > f_max`` (cycles per voxel) are left out.
    """
    from inversa.core.fourier import frequency_grid

    k = frequency_grid(tuple(x.shape), rfft=True, dtype=torch.float64)  # (..., 3): x, y, z
    kx, kz = k[..., 0], k[..., 2]
    phi = torch.rad2deg(torch.atan2(kz.abs(), kx.abs()))
    radius = k.square().sum(-1).sqrt()
    cone = (phi > tilt_max) & (kx.square() + kz.square() > 0) & (radius <= f_max)
    fa = torch.fft.rfftn(x.to(torch.float64))[cone]
    fb = torch.fft.rfftn(ref.to(torch.float64))[cone]
    den = math.sqrt(float(fa.abs().square().sum()) * float(fb.abs().square().sum()))
    return float((fa * fb.conj()).real.sum()) / den if den > 0 else 0.0


def fsc_resolution_without_dc(fsc: torch.Tensor, *, voxel: float, box: int) -> float:
    """FSC 0.143 resolution of a ``(n_shells,)`` curve with the zero-frequency shell left out.

    Shell 0 is the single sample ``k = 0``: after the affine fit both volumes have the
    target's mean, which is about 0, so its "correlation" is the sign of two rounding
    errors (+-1) and a curve starting at -1 read as ``inf``. It is set to 1 here. The
    result is then finite and at most the box size (a curve already below 0.143 at the
    first non-zero shell gives about ``box * voxel``: nothing resolved), and at least
    Nyquist, ``2 * voxel``, when the curve never falls below 0.143.
    """
    from inversa.core.fourier import fsc_resolution

    curve = fsc.detach().to(torch.float64).clone()
    curve[0] = 1.0
    return fsc_resolution(curve, pixel_size=voxel, box_size=box)


def _scores(x: torch.Tensor, ref: torch.Tensor, *, voxel: float, tilt_max: float) -> dict:
    from inversa.core import metrics
    from inversa.core.fourier import fourier_shell_correlation

    fit = metrics.fit_affine(x, ref)
    fsc = fourier_shell_correlation(fit, ref, ndim=3)
    return {
        "psnr": float(metrics.psnr(fit, ref)),
        "ssim": float(metrics.ssim(fit, ref, ndim=3)),
        "fsc": fsc_resolution_without_dc(fsc, voxel=voxel, box=max(ref.shape)),
        "wedge": wedge_correlation(fit, ref, tilt_max=tilt_max, f_max=1 / 3),
    }


def _held_out(seed: int, shape, n_particles: int):
    from inversa.core import phantoms
    from inversa.cryolithe import make_scene

    return make_scene(
        structure=str(phantoms.builtin_structure_path("1ake")),
        shape=shape,
        voxel_size=8.0,
        n_particles=n_particles,
        n_membranes=1,
        resolution_px=3.0,
        generator=torch.Generator().manual_seed(seed),
    )


def _schemes(quick: bool) -> dict[str, tuple[float, float]]:
    """Return the held-out tilt schemes: name -> (largest tilt, step) in degrees."""
    schemes = {"in_distribution_60_4": (60.0, 4.0), "unseen_50_2": (50.0, 2.0)}
    if not quick:
        schemes |= {"unseen_60_3": (60.0, 3.0), "unseen_dose_symmetric_66_3": (66.0, 3.0)}
    return schemes


def _acquire(scene, tmax: float, step: float, seed: int):
    """Simulate the benchmark's acquisition: +-tmax in step, 120 e/A^2 in all, CTF at 3 um."""
    from inversa.cryolithe import SeriesConfig, simulate_series, tilt_angles

    angles = tilt_angles(tmax, step)
    series = SeriesConfig(angles=angles, dose=120.0 / len(angles), ctf=True, defocus_um=3.0)
    return simulate_series(scene, series, generator=torch.Generator().manual_seed(seed))


def _flipped(data: torch.Tensor, voxel: float) -> torch.Tensor:
    """Phase-flipped tilts for WBP and SIRT (the acquisition's CTF)."""
    from inversa.tomography import CTFParams, phase_flip

    return phase_flip(data, CTFParams(pixel_size_A=voxel, defocus_um=3.0))


def _inference_point(n: int, device: str, threads: int) -> tuple[float, float, float]:
    """First-call MiB, peak MiB and seconds of the shipped wavelet model on ``n^3`` (41 tilts).

    Runs in a :class:`~inversa.bench._harness.SpawnedProbe` child; the images are seeded
    noise (the cost does not depend on the content) and the tomogram streams to a
    temporary MRC file.
    """
    import tempfile

    from inversa.bench._harness import measure_fresh
    from inversa.core.io import stream_mrc
    from inversa.cryolithe import default_model_path, load_model, reconstruct, tilt_angles
    from inversa.tomography import TiltGeometry

    torch.set_num_threads(threads)
    model = load_model(default_model_path("wavelet"), device=device)[0]
    geo = TiltGeometry(angles=torch.tensor(tilt_angles(60.0, 3.0), dtype=torch.float64))
    data = torch.randn(41, n, n, generator=torch.Generator().manual_seed(n))
    with tempfile.TemporaryDirectory() as tmp:

        def call(depth: int, name: str) -> None:
            with stream_mrc(Path(tmp) / name, (depth, n, n)) as out:
                reconstruct(data, geo, model=model, shape=(depth, n, n), device=device, out=out)

        _, first, _ = measure_fresh(lambda: call(4, "first.mrc"))
        _, peak, sec = measure_fresh(lambda: call(n, "volume.mrc"))
    return first, peak, sec


def speed_memory(
    *,
    quick: bool = False,
    device: str = "cpu",
    mmap_threshold: int | None = None,
    repeats: int | None = None,
) -> dict[str, object]:
    """Speed and peak memory of streaming inference at two sizes (the benchmark's block).

    Wavelet head, 41 tilts: one network evaluation ("point") gives a 2x2x2 block, so
    voxels/s = 8 points/s. The tomogram streams to an MRC file (``stream_mrc``), as
    ``inversa reconstruct`` does: the output is on disk, not in memory. Each size runs
    ``repeats`` times (default 3, quick 1), each in its own spawned process
    (:class:`~inversa.bench._harness.SpawnedProbe`): after a first call on 4 slices
    (worker threads, allocator arenas; its growth is ``peak_mib_first_call``) the peak is
    the measured call's own growth of the resident set, with the heap trimmed and the
    kernel's peak reset before it. The keys are the medians over the repeats (glibc's
    arenas move a single peak by up to +-10 MiB from run to run); every run is in
    ``peak_mib_{n}_runs`` and ``seconds_{n}_runs``. ``mmap_threshold`` fixes glibc's
    threshold in that process (a diagnostic; the benchmark keeps glibc's adaptive
    default, what a user's process gets).
    """
    import statistics

    from inversa.bench._harness import SpawnedProbe

    if repeats is None:
        repeats = 1 if quick else 3
    if repeats < 1:
        raise InputError(None, f"repeats must be >= 1, got {repeats}")
    v: dict[str, object] = {}
    sizes = (32, 48) if quick else (128, 256)
    threads = torch.get_num_threads()
    for n in sizes:
        firsts, peaks, secs = [], [], []
        for _ in range(repeats):
            with SpawnedProbe(mmap_threshold=mmap_threshold) as probe:
                first, peak, sec = probe(_inference_point, n, str(device), threads)
            firsts.append(round(first, 1))
            peaks.append(round(peak, 1))
            secs.append(round(sec, 2))
        v.setdefault("peak_mib_first_call", statistics.median(firsts))
        v[f"peak_mib_{n}"] = statistics.median(peaks)
        v[f"peak_mib_{n}_runs"] = peaks
        v[f"seconds_{n}"] = statistics.median(secs)
        v[f"seconds_{n}_runs"] = secs
        v[f"output_mib_{n}"] = round(n**3 * 4 / 2**20, 1)
        v[f"images_mib_{n}"] = round(41 * n * n * 4 / 2**20, 1)
        v["voxels_per_s"] = round(n**3 / v[f"seconds_{n}"])
        v["points_per_s"] = round(n**3 / 8 / v[f"seconds_{n}"])
    v["memory_repeats"] = repeats
    v["mmap_threshold_bytes"] = mmap_threshold  # None: glibc's adaptive default
    v["output_streamed_to_disk"] = True
    v["speed_sizes"] = list(sizes)
    v.setdefault("seconds_256", None)  # the quick run does not reach 256^3
    return v


def run(*, quick: bool = False, device: str = "cpu") -> BenchReport:
    """Run the CryoLithe benchmark and return its report.

    Parameters
    ----------
    quick
        Small held-out volumes, two schemes, a tiny U-Net run (about a minute on 2 cores).
    device
        Where CryoLithe's inference runs (the scores and the speed figures); WBP, SIRT
        and the U-Net run on the CPU.
    """
    from inversa.cryolithe import (
        DataConfig,
        UNetConfig,
        default_model_path,
        load_model,
        reconstruct,
        train_unet,
        unet_reconstruct,
        wbp_normalized,
    )

    report = BenchReport(name="cryolithe", quick=quick)
    v = report.values
    shape = (32, 48, 48) if quick else (48, 96, 96)
    n_particles = 6 if quick else 24
    schemes = _schemes(quick)
    models = {
        "cryolithe": load_model(default_model_path("pixel")),
        "cryolithe_wavelet": load_model(default_model_path("wavelet")),
    }
    # Keys without "wavelet" are the pixel head's (the psnr_cryolithe_db is the
    # main model); the wavelet head's carry "_wavelet". The speed and memory keys are the
    # wavelet head's (one evaluation per 2x2x2 block), as "speed_head" says.
    for key, (model, info) in models.items():  # a resumed training records its totals
        sfx = "_wavelet" if key == "cryolithe_wavelet" else ""
        v[f"model_parameters{sfx}"] = sum(p.numel() for p in model.parameters())
        wall = info.get("training_seconds_total", info.get("training_seconds"))
        v[f"training_seconds{sfx}"] = wall
        v[f"training_cpu_seconds{sfx}"] = info.get(
            "training_cpu_seconds_total", info.get("training_cpu_seconds")
        )
        v[f"training_steps{sfx}"] = info.get("steps")
    v["heads"] = {
        "pixel": "keys with 'cryolithe' and no 'wavelet'; model_parameters, training_*",
        "wavelet": "keys with 'cryolithe_wavelet' or ending '_wavelet'; the speed and memory "
        "keys (seconds_*, points_per_s, voxels_per_s, peak_mib_*)",
    }
    v["speed_head"] = "wavelet"

    # SIRT iterations chosen on a validation tomogram (another held-out scene).
    from inversa.core import metrics
    from inversa.tomography import TiltSeriesProjector, sirt

    def sirt_volume(data, geometry, n_iter):
        op = TiltSeriesProjector(volume_shape=shape, geometry=geometry.to(dtype=torch.float32))
        out, _ = sirt(op, data, n_iter=n_iter, tol=0.0)
        return out

    val = _held_out(999, shape, n_particles)
    vdata, vgeo = _acquire(val, 60.0, 3.0, 998)
    vflip = _flipped(vdata, val.voxel_size)
    candidates = (5, 10, 20, 40) if not quick else (5, 10, 20)
    val_psnr = {
        n: float(
            metrics.psnr(metrics.fit_affine(sirt_volume(vflip, vgeo, n), val.target), val.target)
        )
        for n in candidates
    }
    n_sirt = max(val_psnr, key=val_psnr.get)
    v["sirt_iterations"] = n_sirt

    # The learned peer, trained on the pixel model's training data (its recorded number of
    # scenes; older records: the default).
    data_cfg = (
        DataConfig(n_scenes=1, shape=(48, 48, 48), voxel_sizes=(12.0, 12.5), particles=(1, 1))
        if quick
        else DataConfig(n_scenes=int(models["cryolithe"][1].get("n_scenes", DataConfig().n_scenes)))
    )
    v["unet_training_scenes"] = data_cfg.n_scenes
    # The same budget as CryoLithe in CPU seconds (time.process_time, all threads,
    # simulation included in both): the pixel model's recorded training CPU time. Wall
    # time on a shared machine bought the peer less or more work depending on the load.
    # Older model files without a CPU record fall back to their wall time.
    cpu = v["training_cpu_seconds"]
    clock = "cpu" if cpu is not None else "wall"
    budget = None if quick else float(cpu if cpu is not None else v["training_seconds"])
    unet, unet_info = train_unet(
        data_cfg,
        config=UNetConfig(channels=4 if quick else 8),
        steps=4 if quick else 100_000,
        seconds=budget,
        clock=clock,
    )
    v["unet_budget_clock"] = clock
    v["unet_training_cpu_seconds"] = unet_info["training_cpu_seconds"]
    v["unet_budget_seconds"] = budget
    v["unet_training_steps"] = unet_info["steps"]
    v["unet_training_seconds"] = unet_info["training_seconds"]
    v["unet_parameters"] = unet_info["parameters"]

    per: dict[str, dict[str, list[float]]] = {m: {} for m in METHODS}
    per_scheme: dict[str, dict[str, float]] = {}
    slices = {}
    cryo_seconds = []
    n_tomos = 1 if quick else 2
    for t in range(n_tomos):
        scene = _held_out(100 + t, shape, n_particles)
        for s_i, (name, (tmax, step)) in enumerate(schemes.items()):
            data, geo = _acquire(scene, tmax, step, 1000 * t + s_i)
            flip = _flipped(data, scene.voxel_size)
            vols = {
                "wbp": wbp_normalized(flip, geo, shape),
                "sirt": sirt_volume(flip, geo, n_sirt),
                "unet": unet_reconstruct(data, geo, model=unet, shape=shape),
            }
            for key, (model, _) in models.items():
                t0 = time.perf_counter()
                vols[key] = reconstruct(data, geo, model=model, shape=shape, device=device)
                if key == "cryolithe_wavelet":
                    cryo_seconds.append((time.perf_counter() - t0, len(geo.angles)))
            for m, vol in vols.items():
                sc = _scores(vol, scene.target, voxel=scene.voxel_size, tilt_max=tmax)
                for k, val_ in sc.items():
                    per[m].setdefault(k, []).append(val_)
                per_scheme.setdefault(f"{m}_{name}", {}).setdefault("psnr", [])
                per_scheme[f"{m}_{name}"]["psnr"].append(sc["psnr"])
            if t == 0 and s_i == 0:
                mid_z, mid_y = shape[0] // 2, shape[1] // 2
                fits = {m: metrics.fit_affine(vol, scene.target) for m, vol in vols.items()}
                fits["truth"] = scene.target
                slices = {
                    m: {
                        "xy": [[round(float(a), 3) for a in row] for row in f[mid_z]],
                        "xz": [[round(float(a), 3) for a in row] for row in f[:, mid_y]],
                    }
                    for m, f in fits.items()
                }

    def mean(xs):
        return sum(xs) / len(xs)

    for m in METHODS:
        for key, name, unit in (
            ("psnr", "psnr", "_db"),
            ("ssim", "ssim", ""),
            ("fsc", "fsc0143", "_A"),
        ):
            vals = per[m][key]
            v[f"{name}_{m}{unit}"] = round(mean(vals), 4)
            v[f"{name}_{m}{unit}_per_tomogram"] = [round(x, 4) for x in vals]
        v[f"wedge_fsc_{m}"] = round(mean(per[m]["wedge"]), 4)
        v[f"wedge_fsc_{m}_per_tomogram"] = [round(x, 4) for x in per[m]["wedge"]]
    unseen = [n for n in schemes if n.startswith("unseen")]
    for m, key in (
        ("unet", "psnr_unet_unseen_scheme_db"),
        ("cryolithe", "psnr_cryolithe_unseen_scheme_db"),  # the pixel head (the main model)
        ("cryolithe_wavelet", "psnr_cryolithe_wavelet_unseen_scheme_db"),
    ):
        v[key] = round(mean([x for n in unseen for x in per_scheme[f"{m}_{n}"]["psnr"]]), 4)
    v["psnr_by_scheme_db"] = {k: round(mean(d["psnr"]), 4) for k, d in per_scheme.items()}
    v["held_out"] = {
        "structure": "1AKE (adenylate kinase), never in training",
        "voxel_size_A": 8.0,
        "shape": list(shape),
        "scenes": n_tomos,
        "tomograms": n_tomos * len(schemes),  # one per scene and scheme: the lists' entries
        "schemes": {k: list(s) for k, s in schemes.items()},
        "total_dose_e_per_A2": 120.0,
        "defocus_um": 3.0,
    }

    v.update(speed_memory(quick=quick, device=device))
    v["device"] = str(device)
    v["torch_threads"] = torch.get_num_threads()
    v["slices"] = slices
    for m in METHODS:
        report.compare(
            f"PSNR {LABELS[m]} (dB)",
            v[f"psnr_{m}_db"],
            v["psnr_wbp_db"],
            unit="dB",
            higher_is_better=True,
        )
    return report


def figures(values: dict, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Slices (xy and xz, the wedge direction) of every method on one held-out tomogram."""
    import numpy as np

    from inversa.bench._harness import pyplot

    slices = values.get("slices") or {}
    if not slices:
        return []
    plt = pyplot()
    names = ["truth", *[m for m in METHODS if m in slices]]
    fig, axes = plt.subplots(2, len(names), figsize=(2.4 * len(names), 4.2))
    for c, m in enumerate(names):
        for r, plane in enumerate(("xy", "xz")):
            img = np.asarray(slices[m][plane], dtype=float)
            ref = np.asarray(slices["truth"][plane], dtype=float)
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=float(ref.min()), vmax=float(ref.max()))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("target" if m == "truth" else LABELS[m], fontsize=8)
            if c == 0:
                ax.set_ylabel(plane)
    fig.tight_layout()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [save_figure(fig, out_dir / "cryolithe_slices.png", force=force)]

"""``inversa bench alignment``: the Newton aligner against exhaustive matched filtering.

One run, the same particles for both methods: the density of the shipped atomic model in a
64^3 box (quick: 32^3), Haar-uniform rotations, shifts uniform in a ball of 3 voxels,
white noise at 0 dB and -10 dB SNR (signal variance over noise variance inside the
mask), with and without a +-60 degree missing wedge applied to the particle's spectrum.
Ours aligns every particle of every condition; the exhaustive baseline (global 15 degree
grid refined locally to 0.47 degrees, coarse levels Fourier-cropped as RELION does) costs
seconds per particle on 2 cores, so it aligns the first few particles of the 0 dB sets
with and without the wedge (the count is in the JSON), and its full-band variant (the
plain matched filter of the issue's anchor) aligns one. The 0 dB particles aligned by
ours are averaged (half maps, FSC 0.143). Scaling: seconds per particle against box size
and band limit. With a GPU, the 0 dB set is aligned again there by both methods
(``*_cuda`` keys). A PNG of error against time per particle for both methods is written to
``benchmarks/results/`` when that folder exists.

CTF part (``ctf_*`` keys): subtomograms of the shipped ribosome reconstructed by WBP from
per-particle tilt series with per-tilt CTF (defocus 2-5 um per series, +-0.1 um per tilt,
astigmatism, the particle's depth offset) and dose accumulation (dose-symmetric,
exposure filter), at 0 dB and -10 dB (:func:`make_ctf_particles`). Ours with the 3-D
CTF weight, ours with the binary wedge and the exhaustive baseline with the 3-D CTF
weight align the same particles; the CTF-corrected (Wiener) and the plain wedge-weighted
averages at our poses are compared by their FSC with the truth. :func:`figures` draws
the example particle's weight (central sections) and the two FSC curves.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from inversa.alignment import (
    ExhaustiveConfig,
    NewtonConfig,
    ParticleCTF,
    align_exhaustive,
    align_newton,
    average_particles,
    ctf_weight_volume,
    rotate_volume,
    shift_volume,
    spherical_mask,
    wedge_mask,
)
from inversa.bench._harness import BenchReport, pyplot
from inversa.core import phantoms
from inversa.core.fourier import fourier_shell_correlation, fsc_resolution
from inversa.core.rotations import geodesic_distance, random_rotations

__all__ = ["figures", "make_ctf_particles", "make_particles", "run"]


def make_particles(
    n: int,
    count: int,
    *,
    snr_db: float | None,
    wedge: tuple[float, float] | None,
    seed: int,
    max_shift: float = 3.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Simulate a reference and particles of the shipped structure.

    Returns
    -------
    reference : torch.Tensor
        ``(n, n, n)``.
    particles : torch.Tensor
        ``(count, n, n, n)``: reference rotated, shifted, noised, wedge-filtered.
    rotations, shifts : torch.Tensor
        ``(count, 3, 3)`` and ``(count, 3)`` the true poses.
    """
    model = phantoms.read_atomic_model(phantoms.builtin_structure_path())
    voxel = 2 * model.radius() / (0.7 * n)  # the structure spans 70% of the box
    res = 2.5 * voxel

    def render(rotation=None):
        return phantoms.density_from_atoms(
            model, voxel_size=voxel, shape=(n, n, n), rotation=rotation, resolution=res
        )

    g = torch.Generator().manual_seed(seed)
    rots = random_rotations(count, generator=g)
    direction = torch.nn.functional.normalize(torch.randn(count, 3, generator=g), dim=1)
    shifts = direction * max_shift * torch.rand(count, 1, generator=g) ** (1 / 3)
    vols = shift_volume(torch.stack([render(r) for r in rots]), shifts)
    if snr_db is not None:
        mask = spherical_mask((n, n, n)) > 0.5
        signal_var = vols[:, mask].var(dim=1)
        sigma = torch.sqrt(signal_var / 10 ** (snr_db / 10))
        vols = vols + sigma[:, None, None, None] * torch.randn(vols.shape, generator=g)
    if wedge is not None:
        w = wedge_mask((n, n, n), tilt_min=wedge[0], tilt_max=wedge[1])
        vols = torch.fft.ifftn(torch.fft.fftn(vols, dim=(-3, -2, -1)) * w, dim=(-3, -2, -1)).real
    return render(), vols, rots, shifts


def make_ctf_particles(
    n: int,
    count: int,
    *,
    snr_db: float | None,
    seed: int,
    max_shift: float = 3.0,
    tilt_range: tuple[float, float, float] = (-60.0, 60.0, 3.0),
    dose_per_tilt: float = 3.0,
    ice_thickness_A: float = 1500.0,
    field_A: float = 4000.0,
    defocus_range_um: tuple[float, float] = (2.0, 5.0),
    resolution_vox: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, ParticleCTF, float]:
    """Simulate subtomograms of the shipped ribosome from per-particle CTF tilt series.

    Each particle (the reference rotated, then shifted) is projected at every tilt
    (:class:`~inversa.tomography.TiltSeriesProjector`), each projection multiplied in
    Fourier space by its tilt's CTF at the particle's depth-corrected defocus (the tilt
    series' defocus uniform in ``defocus_range_um``, a per-tilt offset of +-0.1 um, astigmatism
    0.05 um, the particle's height in ice of ``ice_thickness_A`` and its place in a
    ``field_A`` wide field) and by the exposure filter of its pre-exposure
    (dose-symmetric order, ``dose_per_tilt`` e/A^2), then reconstructed by WBP (signed
    CTF, no phase flip). Noise: white images through the same WBP, scaled to
    ``snr_db`` (variance inside the mask, as :func:`make_particles`). The ribosome
    spans 70% of the box (about 7 A per voxel at 64^3, so the CTF's rings are resolved),
    rendered at a resolution of ``resolution_vox`` voxels (2: Nyquist).

    Returns
    -------
    reference : torch.Tensor
        ``(n, n, n)`` the structure (no CTF).
    particles : torch.Tensor
        ``(count, n, n, n)``.
    rotations, shifts : torch.Tensor
        ``(count, 3, 3)``, ``(count, 3)`` the true poses.
    ctf : ParticleCTF
        The particles' tilt-series metadata and positions.
    voxel : float
        Angstrom per voxel.
    """
    from inversa.tomography import (
        TiltGeometry,
        TiltSeriesCTF,
        TiltSeriesProjector,
        dose_symmetric_exposure,
        exposure_filter,
        wbp,
    )

    model = phantoms.read_atomic_model(phantoms.builtin_structure_path("ribosome"))
    voxel = 2 * model.radius() / (0.7 * n)
    reference = phantoms.density_from_atoms(
        model, voxel_size=voxel, shape=(n, n, n), resolution=resolution_vox * voxel
    )
    g = torch.Generator().manual_seed(seed)
    rots = random_rotations(count, generator=g)
    direction = torch.nn.functional.normalize(torch.randn(count, 3, generator=g), dim=1)
    shifts = direction * max_shift * torch.rand(count, 1, generator=g) ** (1 / 3)
    lo, hi, step = tilt_range
    geometry = TiltGeometry.from_range(lo, hi, step, detector_shape=(n, n))
    angles = geometry.angles.to(torch.float64)
    t = angles.numel()
    # One tilt series per 4 particles: its own defocus, per-tilt offsets and astigmatism.
    n_series = max(1, (count + 3) // 4)
    series = []
    for _ in range(n_series):
        lo_df, hi_df = defocus_range_um
        base = lo_df + (hi_df - lo_df) * float(torch.rand((), generator=g))
        offset = 0.1 * (2 * torch.rand(t, generator=g, dtype=torch.float64) - 1)
        astig = 180 * float(torch.rand((), generator=g))
        series.append(
            TiltSeriesCTF(
                angles=angles,
                defocus_u_um=base + offset + 0.05,
                defocus_v_um=base + offset - 0.05,
                astigmatism_deg=astig,
                pre_exposure=dose_symmetric_exposure(angles, dose_per_tilt),
            )
        )
    index = torch.arange(count) // 4
    positions = torch.stack(
        [
            (torch.rand(count, generator=g, dtype=torch.float64) - 0.5) * field_A,
            (torch.rand(count, generator=g, dtype=torch.float64) - 0.5) * field_A,
            (torch.rand(count, generator=g, dtype=torch.float64) - 0.5) * ice_thickness_A,
        ],
        dim=1,
    )
    ctf = ParticleCTF(
        series=tuple(series), series_index=index, positions_A=positions, pixel_size_A=voxel
    )
    projector = TiltSeriesProjector(volume_shape=(n, n, n), geometry=geometry)
    # 2-D frequencies (k_u, k_v) of the tilt images, 1/A, rfft layout.
    ku = torch.fft.rfftfreq(n, d=voxel, dtype=torch.float64)
    kv = torch.fft.fftfreq(n, d=voxel, dtype=torch.float64)
    k2d = torch.stack(torch.meshgrid(kv, ku, indexing="ij")[::-1], dim=-1)  # (n, n//2+1, 2)
    radius = torch.linalg.vector_norm(k2d, dim=-1)
    mask = spherical_mask((n, n, n)) > 0.5
    signal, noise = [], []
    for i in range(count):
        vol = shift_volume(rotate_volume(reference, rots[i]), shifts[i])
        proj = projector.forward(vol)  # (T, n, n)
        local = series[int(index[i])].at_position(positions[i])
        transfer = local.tilt_ctf(
            k2d[None].expand(t, -1, -1, -1), torch.arange(t)[:, None, None]
        ) * exposure_filter(radius[None], local.pre_exposure[:, None, None])
        spec = torch.fft.rfft2(proj.to(torch.float64)) * transfer
        images = torch.fft.irfft2(spec, s=(n, n)).to(torch.float32)
        signal.append(wbp(images, projector))
        if snr_db is not None:
            white = torch.randn(images.shape, generator=g)
            noise.append(wbp(white, projector))
    vols = torch.stack(signal)
    if snr_db is not None:
        noise_vols = torch.stack(noise)
        scale = torch.sqrt(
            vols[:, mask].var(dim=1) / (10 ** (snr_db / 10) * noise_vols[:, mask].var(dim=1))
        )
        vols = vols + scale[:, None, None, None] * noise_vols
    return reference, vols, rots, shifts, ctf, voxel


def _errors(result, rots, shifts) -> tuple[torch.Tensor, torch.Tensor]:
    ang = geodesic_distance(result.rotations.double(), rots.double())
    return ang, torch.linalg.vector_norm(result.shifts - shifts, dim=1)


def _plot(points: dict[str, list[tuple[float, float]]], path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, pts in points.items():
        xs, ys = zip(*pts, strict=True)
        ax.scatter(xs, ys, label=label, s=14)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("seconds per particle")
    ax.set_ylabel("geodesic error (degrees)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cuda_timings(v, ref, parts, rots, shifts, config, n_exh) -> None:
    """Align the 0 dB no-wedge set again on the GPU (``*_cuda`` keys), both methods."""

    def timed(fn):
        fn(1)  # warm-up: kernels, cuFFT plans
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn(None)
        torch.cuda.synchronize()
        return out, time.perf_counter() - t0

    ref_c, parts_c = ref.cuda(), parts.cuda()
    big = dataclasses.replace(config, batch_size=64)  # the GPU wants large batches
    res, secs = timed(lambda k: align_newton(ref_c, parts_c[:k], config=big))
    ang, _ = _errors(res, rots.cuda(), shifts.cuda())
    exh, e_secs = timed(
        lambda k: align_exhaustive(ref_c, parts_c[: k or n_exh], config=ExhaustiveConfig())
    )
    e_ang, _ = _errors(exh, rots[:n_exh].cuda(), shifts[:n_exh].cuda())
    v.update(
        cuda_device=torch.cuda.get_device_name(),
        seconds_per_particle_cuda=secs / parts.shape[0],
        median_error_deg_cuda=float(ang.median()),
        exhaustive_seconds_per_particle_cuda=e_secs / n_exh,
        exhaustive_median_error_deg_cuda=float(e_ang.median()),
        speedup_cuda=(e_secs / n_exh) / (secs / parts.shape[0]),
    )


def _masked_fsc(volume: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    mask = spherical_mask(tuple(truth.shape))
    return fourier_shell_correlation(volume * mask, truth * mask)


def _ctf_part(v: dict, *, quick: bool, n_exh: int) -> None:
    """CTF'd subtomograms: ours with the 3-D CTF weight vs the binary wedge vs exhaustive."""
    n = 32 if quick else 64
    count = 4 if quick else 100
    low = 2 if quick else 40
    n_exh = 1 if quick else n_exh
    config = NewtonConfig()
    ref, parts, rots, shifts, ctf, voxel = make_ctf_particles(n, count, snr_db=0.0, seed=10)
    res = align_newton(ref, parts, config=config, ctf=ctf)
    ang, _ = _errors(res, rots, shifts)
    wedge = align_newton(ref, parts, config=NewtonConfig(wedge=(-60.0, 60.0)))
    w_ang, _ = _errors(wedge, rots, shifts)
    t0 = time.perf_counter()
    exh = align_exhaustive(
        ref, parts[:n_exh], config=ExhaustiveConfig(), ctf=ctf.subset(slice(0, n_exh))
    )
    exh_s = (time.perf_counter() - t0) / n_exh
    e_ang, _ = _errors(exh, rots[:n_exh], shifts[:n_exh])
    # Both averages at our poses (CTF weight): CTF-corrected (Wiener) vs wedge-weighted.
    corrected = average_particles(parts, res.rotations, res.shifts, ctf=ctf, pixel_size=voxel)
    plain = average_particles(
        parts, res.rotations, res.shifts, wedge=(-60.0, 60.0), pixel_size=voxel
    )
    fsc_ctf, fsc_plain = _masked_fsc(corrected.map, ref), _masked_fsc(plain.map, ref)
    res_ctf = fsc_resolution(fsc_ctf, threshold=0.143, pixel_size=voxel, box_size=n)
    res_plain = fsc_resolution(fsc_plain, threshold=0.143, pixel_size=voxel, box_size=n)
    _, lparts, lrots, lshifts, lctf, _ = make_ctf_particles(n, low, snr_db=-10.0, seed=11)
    lres = align_newton(ref, lparts, config=config, ctf=lctf)
    l_ang, _ = _errors(lres, lrots, lshifts)
    example = ctf_weight_volume(ctf, 0, n)
    c = n // 2
    v.update(
        ctf_median_error_deg=float(ang.median()),
        ctf_p90_error_deg=float(ang.quantile(0.9)),
        ctf_minus10db_median_error_deg=float(l_ang.median()),
        wedge_only_on_ctf_median_error_deg=float(w_ang.median()),
        exhaustive_ctf_median_error_deg=float(e_ang.median()),
        ctf_average_fsc0143_A=res_ctf,
        plain_average_fsc0143_A=res_plain,
        ctf_seconds_per_particle=res.seconds / count,
        wedge_only_on_ctf_seconds_per_particle=wedge.seconds / count,
        exhaustive_ctf_seconds_per_particle=exh_s,
        ctf_n_particles=count,
        ctf_minus10db_n_particles=low,
        exhaustive_ctf_n_particles=n_exh,
        ctf_box=n,
        ctf_voxel_A=voxel,
        ctf_same_particles_median_error_deg=float(ang[:n_exh].median()),
        ctf_average_fsc=[float(x) for x in fsc_ctf],
        plain_average_fsc=[float(x) for x in fsc_plain],
        ctf_weight_section_xz=example[:, c, :].tolist(),
        ctf_weight_section_xy=example[c, :, :].tolist(),
    )


def figures(values: dict, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Draw the example particle's 3-D CTF weight (central sections) and the averages' FSC."""
    import numpy as np

    from inversa.bench._harness import save_figure

    plt = pyplot()
    written = []
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, key, title, labels in (
        (
            axes[0],
            "ctf_weight_section_xz",
            "k_y = 0 (plane normal to the tilt axis)",
            ("k_x", "k_z"),
        ),
        (axes[1], "ctf_weight_section_xy", "k_z = 0", ("k_x", "k_y")),
    ):
        image = ax.imshow(np.asarray(values[key]), cmap="RdBu_r", vmin=-1, vmax=1, origin="lower")
        ax.set_title(title)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.8, label="3-D CTF x exposure weight")
    written.append(save_figure(fig, out_dir / "alignment_ctf_weight.png", force=force))

    fig, ax = plt.subplots(figsize=(5, 3.5))
    voxel, n = values["ctf_voxel_A"], values["ctf_box"]
    for key, label in (("ctf_average_fsc", "CTF-corrected"), ("plain_average_fsc", "plain")):
        fsc = np.asarray(values[key])
        freq = np.arange(fsc.size) / (n * voxel)
        ax.plot(freq, fsc, label=label)
    ax.axhline(0.143, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("spatial frequency (1/A)")
    ax.set_ylabel("FSC with the truth")
    ax.legend()
    fig.tight_layout()
    written.append(save_figure(fig, out_dir / "alignment_ctf_fsc.png", force=force))
    return written


def run(*, quick: bool) -> BenchReport:
    """Run the alignment benchmark (see the module docstring).

    Parameters
    ----------
    quick
        32^3 box and few particles (under a minute on 2 idle cores) instead of 64^3 and
        200 particles.

    Returns
    -------
    BenchReport
    """
    report = BenchReport("alignment", quick)
    n = 32 if quick else 64
    count = 8 if quick else 200
    n_exh = 2 if quick else 5
    wedge = (-60.0, 60.0)
    config = NewtonConfig()
    v = report.values
    v.update(
        box=n,
        n_particles=count,
        n_exhaustive_particles=n_exh,
        wedge_deg=60.0,
        band_limits=list(config.band_limits),
        l0=config.l0,
        n_candidates=config.n_candidates,
        max_shift_true_vox=3.0,
        structure="1ake chain A",
    )
    per_particle: dict[str, list[tuple[float, float]]] = {"ours": [], "exhaustive": []}

    ref, parts, rots, shifts = make_particles(n, count, snr_db=0.0, wedge=None, seed=0)
    res = align_newton(ref, parts, config=config)
    ang, sh = _errors(res, rots, shifts)
    ours_s = res.seconds / count
    per_particle["ours"] += [(ours_s, max(float(a), 1e-3)) for a in ang]
    v.update(
        median_error_deg=float(ang.median()),
        p90_error_deg=float(ang.quantile(0.9)),
        median_shift_error_vox=float(sh.median()),
        seconds_per_particle=ours_s,
    )

    t0 = time.perf_counter()
    exh = align_exhaustive(ref, parts[:n_exh], config=ExhaustiveConfig())
    exh_s = (time.perf_counter() - t0) / n_exh
    e_ang, _ = _errors(exh, rots[:n_exh], shifts[:n_exh])
    per_particle["exhaustive"] += [(exh_s, max(float(a), 1e-3)) for a in e_ang]
    same = ang[:n_exh]
    v.update(
        exhaustive_median_error_deg=float(e_ang.median()),
        exhaustive_p90_error_deg=float(e_ang.quantile(0.9)),
        exhaustive_seconds_per_particle=exh_s,
        speedup=exh_s / ours_s,
        median_error_same_particles_deg=float(same.median()),
    )
    report.compare("seconds per particle (0 dB, no wedge)", ours_s, exh_s)
    report.compare(
        "median error, same particles", float(same.median()), float(e_ang.median()), unit="deg"
    )
    if not quick:
        # The plain matched filter (full band at every level, the anchor), once.
        t0 = time.perf_counter()
        plain = align_exhaustive(ref, parts[:1], config=ExhaustiveConfig(multiresolution=False))
        plain_s = time.perf_counter() - t0
        p_ang, _ = _errors(plain, rots[:1], shifts[:1])
        per_particle["exhaustive, full band"] = [(plain_s, max(float(p_ang[0]), 1e-3))]
        v.update(
            exhaustive_plain_seconds_per_particle=plain_s,
            exhaustive_plain_error_deg=float(p_ang[0]),
            speedup_vs_plain=plain_s / ours_s,
        )
        report.compare("seconds per particle vs full-band exhaustive", ours_s, plain_s)

    avg = average_particles(parts, res.rotations, res.shifts)
    v["fsc_resolution_fraction_of_nyquist"] = 2.0 / avg.resolution

    wcfg = NewtonConfig(wedge=wedge)
    _, wparts, wrots, wshifts = make_particles(n, count, snr_db=0.0, wedge=wedge, seed=1)
    wres = align_newton(ref, wparts, config=wcfg)
    w_ang, _ = _errors(wres, wrots, wshifts)
    t0 = time.perf_counter()
    wexh = align_exhaustive(ref, wparts[:n_exh], config=ExhaustiveConfig(wedge=wedge))
    wexh_s = (time.perf_counter() - t0) / n_exh
    we_ang, _ = _errors(wexh, wrots[:n_exh], wshifts[:n_exh])
    v.update(
        wedge_median_error_deg=float(w_ang.median()),
        wedge_p90_error_deg=float(w_ang.quantile(0.9)),
        wedge_seconds_per_particle=wres.seconds / count,
        wedge_median_error_same_particles_deg=float(w_ang[:n_exh].median()),
        exhaustive_wedge_median_error_deg=float(we_ang.median()),
        exhaustive_wedge_seconds_per_particle=wexh_s,
    )
    report.compare(
        "median error with wedge, same particles",
        float(w_ang[:n_exh].median()),
        float(we_ang.median()),
        unit="deg",
    )

    low = max(4, count // 4)
    for tag, wdg in (("", None), ("wedge_", wedge)):
        _, lparts, lrots, lshifts = make_particles(n, low, snr_db=-10.0, wedge=wdg, seed=2)
        lres = align_newton(ref, lparts, config=NewtonConfig(wedge=wdg))
        l_ang, _ = _errors(lres, lrots, lshifts)
        v[f"minus10db_{tag}median_error_deg"] = float(l_ang.median())
        v[f"minus10db_{tag}p90_error_deg"] = float(l_ang.quantile(0.9))
    v["minus10db_n_particles"] = low

    # Scaling: seconds per particle against box size and band limit (0 dB, no wedge).
    boxes = (24, 32) if quick else (32, 64, 96)
    few = 1 if quick else 4
    for box in boxes:
        r_, p_, _, _ = make_particles(box, few, snr_db=0.0, wedge=None, seed=3)
        v[f"seconds_per_particle_box{box}"] = align_newton(r_, p_, config=config).seconds / few
    for top in (16, 24) if quick else (16, 24, 32):
        bands = tuple(b for b in (8, 16, 24, 32) if b <= top)
        cfg = NewtonConfig(band_limits=bands)
        r_ = align_newton(ref, parts[:few], config=cfg)
        a_, _ = _errors(r_, rots[:few], shifts[:few])
        v[f"seconds_per_particle_band{top}"] = r_.seconds / few
        v[f"median_error_deg_band{top}"] = float(a_.median())
        per_particle[f"ours, L<={top}"] = [(r_.seconds / few, max(float(x), 1e-3)) for x in a_]

    _ctf_part(v, quick=quick, n_exh=n_exh)

    if torch.cuda.is_available():
        _cuda_timings(v, ref, parts, rots, shifts, config, n_exh)
    out = Path("benchmarks/results")
    if out.is_dir():
        name = "alignment_error_vs_time_quick.png" if quick else "alignment_error_vs_time.png"
        _plot(per_particle, out / name)
    v["snr_db"] = [0.0, -10.0]
    return report

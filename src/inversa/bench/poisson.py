"""``inversa bench poisson``: whether Poisson objectives matter for MSE at low dose.

Measures, in one run:

- the diagonal model (16 modes, gains ``1/j``): exact MSE of ML, MAP, HG, OG at the best
  identity-Tikhonov weight per dose, checked against Monte Carlo
  (``diag_theory_vs_mc_max_rel_error``);
- the CT study (Shepp-Logan + pydicom's CT_small, validation-tuned weights) on the test
  images: ``mse_ml``, ``mse_map``, ``mse_hg``, ``mse_og`` over ``doses``;
- the time to solve each estimator to a relative change of 1e-4 (256x256, 180 angles;
  quick: 64x64, 45 angles) beside ASTRA's CPU SIRT and CGLS on the same data.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from inversa.bench._harness import Astra2D, BenchReport, has_astra
from inversa.core import phantoms
from inversa.poisson import (
    LinearPoissonModel,
    SolverConfig,
    StudyConfig,
    best_regularisation,
    diagonal_mse,
    diagonal_mse_mc,
    estimate,
    plot_mse_vs_dose,
    poisson_ml,
    run_study,
)
from inversa.tomography import Radon2D

__all__ = ["figures", "run"]


def _diagonal(report: BenchReport, *, quick: bool) -> None:
    j = torch.arange(1, 17, dtype=torch.float64)
    a, x = 1.0 / j, torch.ones(16, dtype=torch.float64)
    doses = [0.1, 1.0, 10.0, 100.0]
    grid = torch.logspace(-3, 3, 13, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    n_mc = 20_000 if quick else 200_000
    worst = 0.0
    best: dict[str, list[float]] = {e: [] for e in ("ml", "map", "hg", "og")}
    regs: dict[str, list[float]] = {e: [] for e in best}
    for s in doses:
        for e in best:
            reg, mse = best_regularisation(e, x, a, dose=s, reg_grid=grid)
            best[e].append(mse)
            regs[e].append(reg)
            theory = diagonal_mse(e, x, a, dose=s, reg=reg)
            mc = diagonal_mse_mc(e, x, a, dose=s, reg=reg, n_samples=n_mc, generator=g)
            worst = max(worst, float(((mc - theory).abs() / theory).max()))
    v = report.values
    v["diag_doses"] = doses
    v["diag_mc_samples"] = n_mc
    v["diag_theory_vs_mc_max_rel_error"] = worst
    for e in best:
        v[f"diag_best_mse_{e}"] = best[e]
        v[f"diag_best_reg_{e}"] = regs[e]


def _timings(report: BenchReport, *, quick: bool) -> None:
    n, n_ang = (64, 45) if quick else (256, 180)
    angles = torch.arange(n_ang, dtype=torch.float32) * (180.0 / n_ang)
    op = Radon2D(image_shape=(n, n), angles=angles)
    truth = phantoms.shepp_logan_2d(n).float().clamp_min(0.0)
    model = LinearPoissonModel(operator=op, dose=1.0)
    y = model.sample(truth, generator=torch.Generator().manual_seed(2))
    v = report.values
    v.update(timing_size=n, timing_angles=n_ang, timing_dose=1.0, timing_reg=10.0)
    cap = 2000
    for e in ("ml", "map", "hg", "og"):
        t0 = time.perf_counter()
        _, info = estimate(
            e,
            model,
            y,
            reg=10.0,
            penalty="gradient",
            nonneg=e in ("ml", "map"),
            solver=SolverConfig(n_iter=cap),
        )
        v[f"seconds_{e}"] = time.perf_counter() - t0
        v[f"iterations_{e}"] = info.n_iter
        v[f"converged_{e}"] = info.converged
    t0 = time.perf_counter()
    _, info = poisson_ml(model, y, method="mlem", solver=SolverConfig(n_iter=cap))
    v["seconds_mlem"] = time.perf_counter() - t0
    v.update(iterations_mlem=info.n_iter, converged_mlem=info.converged)
    if not has_astra():
        v["astra_sirt_seconds"] = v["astra_cgls_seconds"] = None
        return
    sino = (y / model.dose).numpy().astype(np.float32)
    peer = Astra2D(n, angles.numpy(), op.range_shape[-1])
    n_sirt, n_cgls = (200, 50)
    t0 = time.perf_counter()
    peer.run("SIRT", sino=sino, n_iter=n_sirt)
    v["astra_sirt_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    peer.run("CGLS", sino=sino, n_iter=n_cgls)
    v["astra_cgls_seconds"] = time.perf_counter() - t0
    peer.close()
    v.update(astra_sirt_iterations=n_sirt, astra_cgls_iterations=n_cgls)


def run(*, quick: bool = False) -> BenchReport:
    """Run the Poisson benchmark and return its report.

    Parameters
    ----------
    quick
        Small sizes (the CT study at 24x24 with 18 angles, timings at 64x64).
    """
    report = BenchReport(name="poisson", quick=quick)
    _diagonal(report, quick=quick)
    config = (
        StudyConfig(
            size=24,
            n_angles=18,
            reg_grid=(1.0, 10.0, 100.0, 1000.0),
            n_validation=1,
            n_realisations=3,
            n_iter=100,
        )
        if quick
        else StudyConfig()
    )
    study = run_study(config)
    v = report.values
    v["doses"] = study.doses
    v["counts_per_ray"] = study.counts_per_ray
    for e in ("ml", "map", "hg", "og"):
        v[f"mse_{e}"] = study.mse[e]
        v[f"mse_{e}_ci95"] = study.mse_ci[e]
        v[f"reg_{e}"] = study.reg[e]
    v.update(study_size=config.size, study_angles=config.n_angles, study_penalty=config.penalty)
    _timings(report, quick=quick)
    low = 0
    for e in ("map", "hg", "og"):
        report.compare(
            f"MSE at dose {study.doses[low]:g}: ML vs {e.upper()}",
            v[f"mse_{e}"][low],
            v["mse_ml"][low],
            unit="",
        )
    for e in ("hg", "og"):
        report.compare(
            f"MSE at dose {study.doses[low]:g}: {e.upper()} vs MAP",
            v[f"mse_{e}"][low],
            v["mse_map"][low],
            unit="",
        )
    for e in ("map", "hg", "og"):
        report.compare(
            f"seconds {e.upper()} vs ASTRA SIRT", v[f"seconds_{e}"], v["astra_sirt_seconds"]
        )
    report.compare("seconds OG (CG) vs ASTRA CGLS", v["seconds_og"], v["astra_cgls_seconds"])
    return report


def figures(values: dict, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Draw ``poisson_mse_vs_dose.png`` (CT study, test images) from the JSON values."""
    names = ("ml", "map", "hg", "og")
    size, angles = values["study_size"], values["study_angles"]
    path = plot_mse_vs_dose(
        values["doses"],
        {e: values[f"mse_{e}"] for e in names},
        {e: values[f"mse_{e}_ci95"] for e in names},
        title=f"{size}x{size}, {angles} angles (validation-tuned weights)",
        path=out_dir / "poisson_mse_vs_dose.png",
        force=force,
    )
    return [path]

"""The CT study: MSE versus dose of ML, MAP, HG and OG, tuned on validation images."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from inversa.core import metrics, phantoms
from inversa.core.errors import InputError
from inversa.core.io import atomic_write
from inversa.poisson._estimators import EstimatorName, estimate
from inversa.poisson._models import LinearPoissonModel
from inversa.poisson._optimizers import SolverConfig
from inversa.poisson._penalties import PenaltyKind
from inversa.tomography import Radon2D

__all__ = [
    "StudyConfig",
    "StudyResult",
    "ct_small_image",
    "plot_mse_vs_dose",
    "random_ellipses",
    "run_study",
    "write_figure",
]

ESTIMATORS: tuple[EstimatorName, ...] = ("ml", "map", "hg", "og")


def ct_small_image(size: int = 128, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Load the 128x128 CT slice shipped with pydicom (``CT_small.dcm``) as an image in [0, 1].

    Hounsfield units are mapped to ``clip(HU + 1000, 0) / max`` (air 0, densest pixel 1),
    then resized (antialiased bilinear) to ``size``.

    Returns
    -------
    torch.Tensor
        ``(size, size)`` non-negative image.
    """
    return phantoms.real_image("ct_small", size=size, dtype=dtype)


def random_ellipses(
    n_images: int, size: int, *, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Random non-negative ellipse phantoms in [0, 1] (validation images).

    A large body ellipse plus 8 smaller ellipses of random position, size, angle and
    (possibly negative) contrast, clipped at 0 and scaled to a maximum of 1.

    Returns
    -------
    torch.Tensor
        ``(n_images, size, size)``.
    """
    c = (torch.arange(size, dtype=torch.float64) - size // 2) / (size / 2)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    out = []
    for _ in range(n_images):
        u = torch.rand(8, 6, generator=generator, dtype=torch.float64)
        body = (xx / 0.7) ** 2 + (yy / 0.9) ** 2 <= 1.0
        img = 0.5 * body.double()
        for cx, cy, ax, ay, th, v in u:
            th = math.pi * th
            x0, y0 = 0.9 * (cx - 0.5), 1.1 * (cy - 0.5)
            xr = (xx - x0) * math.cos(th) + (yy - y0) * math.sin(th)
            yr = -(xx - x0) * math.sin(th) + (yy - y0) * math.cos(th)
            inside = (xr / (0.05 + 0.25 * ax)) ** 2 + (yr / (0.05 + 0.25 * ay)) ** 2 <= 1.0
            img = img + (v - 0.35) * (inside & body).double()
        img = img.clamp_min(0.0)
        out.append(img / img.max())
    return torch.stack(out).to(dtype)


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """Sizes and settings of the CT study.

    Parameters
    ----------
    size
        Image edge in pixels (the test images are resized to it).
    n_angles
        Projection angles over 180 degrees.
    doses
        Dose values ``s`` (expected counts per unit line integral, pixel units).
    reg_grid
        Candidate regularisation weights, tuned per estimator and dose.
    penalty
        Regulariser of MAP, HG and OG.
    n_validation
        Random ellipse phantoms used for tuning (never the test images).
    n_realisations
        Noise realisations per test image.
    n_iter, tol
        Solver cap and relative-change threshold.
    seed
        Seed of every random draw.
    """

    size: int = 64
    n_angles: int = 45
    doses: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    reg_grid: tuple[float, ...] = (0.0, 0.1, 0.316, 1.0, 3.16, 10.0, 31.6, 100.0, 316.0, 1000.0)
    penalty: PenaltyKind = "gradient"
    n_validation: int = 2
    n_realisations: int = 6
    n_iter: int = 300
    tol: float = 1e-3
    seed: int = 0

    @classmethod
    def quick(cls) -> StudyConfig:
        """Small sizes for a quick laptop run."""
        return cls(
            size=32,
            n_angles=24,
            reg_grid=(0.0, 0.1, 1.0, 10.0, 100.0, 1000.0),
            n_validation=2,
            n_realisations=3,
            n_iter=150,
        )


@dataclass
class StudyResult:
    """Results of :func:`run_study` per dose (lists aligned with ``doses``).

    Attributes
    ----------
    doses
        The doses ``s``.
    counts_per_ray
        Mean expected count per measured ray on the test images at each dose.
    mse, mse_ci, psnr, psnr_ci
        Per estimator: mean over test images and realisations, and the 95% half-width
        over realisations (``1.96 std / sqrt(R)`` of the per-realisation image mean).
    reg
        Per estimator: the weight chosen on the validation images.
    iterations
        Per estimator: mean iterations of the test solves.
    test_images
        Names of the test images.
    """

    config: StudyConfig
    doses: list[float]
    counts_per_ray: list[float] = field(default_factory=list)
    mse: dict[str, list[float]] = field(default_factory=dict)
    mse_ci: dict[str, list[float]] = field(default_factory=dict)
    psnr: dict[str, list[float]] = field(default_factory=dict)
    psnr_ci: dict[str, list[float]] = field(default_factory=dict)
    reg: dict[str, list[float]] = field(default_factory=dict)
    iterations: dict[str, list[float]] = field(default_factory=dict)
    test_images: tuple[str, ...] = ("shepp_logan", "ct_small")

    def table(self) -> str:
        """Format a text table: dose, counts per ray, MSE +- CI and PSNR per estimator."""
        head = f"{'dose':>8} {'cnt/ray':>8} " + " ".join(
            f"{'MSE ' + e.upper():>20} {'PSNR':>6}" for e in ESTIMATORS
        )
        lines = [head]
        for i, s in enumerate(self.doses):
            cells = [f"{s:8.3g} {self.counts_per_ray[i]:8.3g}"]
            for e in ESTIMATORS:
                cells.append(
                    f"{self.mse[e][i]:11.3e}+-{self.mse_ci[e][i]:7.1e} {self.psnr[e][i]:6.2f}"
                )
            lines.append(" ".join(cells))
        return "\n".join(lines)


def _mse(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return (x - ref).square().mean(dim=(-2, -1))


def run_study(
    config: StudyConfig, *, progress: bool = False, device: str | torch.device = "cpu"
) -> StudyResult:
    """Run the CT study: Shepp-Logan and CT_small, linear Poisson data over the doses.

    For each dose, each regularised estimator's weight is chosen from ``reg_grid`` by the
    lowest mean MSE on ``n_validation`` random ellipse phantoms (one noise draw each);
    then the test images get ``n_realisations`` fresh noise draws each.

    Parameters
    ----------
    config
        Study settings.
    progress
        Print one line per dose.
    device
        Torch device of the images, the data and the solvers. The noise is drawn from a
        CPU generator, so a seed gives the same draws on every device.

    Returns
    -------
    StudyResult
        MSE, PSNR and their confidence half-widths per dose and estimator.
    """
    if len(config.doses) < 1 or any(not s > 0 for s in config.doses):
        raise InputError(None, "doses must be positive")
    g = torch.Generator().manual_seed(config.seed)
    n = config.size
    angles = torch.arange(config.n_angles, dtype=torch.float32) * (180.0 / config.n_angles)
    op = Radon2D(image_shape=(n, n), angles=angles)
    test = torch.stack([phantoms.shepp_logan_2d(n).float().clamp_min(0.0), ct_small_image(n)])
    val = random_ellipses(config.n_validation, n, generator=g)
    test, val = test.to(device), val.to(device)
    result = StudyResult(config=config, doses=list(config.doses))
    for d in (
        result.mse,
        result.mse_ci,
        result.psnr,
        result.psnr_ci,
        result.reg,
        result.iterations,
    ):
        d.update({e: [] for e in ESTIMATORS})
    solve = {
        "solver": SolverConfig(n_iter=config.n_iter, tol=config.tol),
        "penalty": config.penalty,
    }
    r = config.n_realisations
    for s in config.doses:
        model = LinearPoissonModel(operator=op, dose=s)
        result.counts_per_ray.append(float(model.mean(test).mean()))
        y_val = model.sample(val, generator=g)
        y_test = model.sample(test.expand(r, *test.shape), generator=g)
        for e in ESTIMATORS:
            best_reg = 0.0
            if e != "ml":
                best = math.inf
                for reg in config.reg_grid:
                    # Each weight from the default start: a warm start from a noisy
                    # weak-weight solution biases capped solves towards it.
                    x_hat, _ = estimate(e, model, y_val, reg=reg, nonneg=e == "map", **solve)
                    score = float(_mse(x_hat, val).mean())
                    if score < best:
                        best, best_reg = score, reg
            x_hat, info = estimate(
                e, model, y_test, reg=best_reg, nonneg=e in ("ml", "map"), **solve
            )
            per_real = _mse(x_hat, test).mean(dim=-1)  # (R,) mean over the test images
            psnr = metrics.psnr(x_hat, test.expand_as(x_hat), data_range=1.0, ndim=2).mean(dim=-1)
            half = (lambda v: 1.96 * float(v.std()) / math.sqrt(r)) if r > 1 else (lambda v: 0.0)
            result.mse[e].append(float(per_real.mean()))
            result.mse_ci[e].append(half(per_real))
            result.psnr[e].append(float(psnr.mean()))
            result.psnr_ci[e].append(half(psnr))
            result.reg[e].append(best_reg)
            result.iterations[e].append(float(info.n_iter))
        if progress:
            print(
                f"dose {s:g}: "
                + ", ".join(
                    f"{e} {result.mse[e][-1]:.3e} (reg {result.reg[e][-1]:g})" for e in ESTIMATORS
                )
            )
    return result


def write_figure(result: StudyResult, path: str | Path, *, force: bool = False) -> Path:
    """Write the log-log figure of MSE versus dose with 95% error bars (PNG).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    title = f"{result.config.size}x{result.config.size}, {result.config.n_angles} angles"
    return plot_mse_vs_dose(
        result.doses, result.mse, result.mse_ci, title=title, path=path, force=force
    )


def plot_mse_vs_dose(
    doses: list[float],
    mse: dict[str, list[float]],
    mse_ci: dict[str, list[float]],
    *,
    title: str,
    path: str | Path,
    force: bool = False,
) -> Path:
    """Plot MSE versus dose per estimator on log-log axes with error bars (PNG).

    Parameters
    ----------
    doses
        Dose values, length D.
    mse, mse_ci
        Estimator name (``ml``, ``map``, ``hg``, ``og``) -> D values and 95% half-widths.
    title, path, force
        Figure title, output file, overwrite an existing file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    labels = {"ml": "Poisson ML", "map": "Poisson MAP", "hg": "HG", "og": "OG"}
    for e in ESTIMATORS:
        ax.errorbar(doses, mse[e], yerr=mse_ci[e], marker="o", capsize=3, label=labels[e])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("dose s (counts per unit line integral)")
    ax.set_ylabel("MSE (test images, range [0, 1])")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_write(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(path)

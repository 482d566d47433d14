"""Poisson versus Gaussian objectives for low-dose imaging.

Measurement models with a dose knob (:class:`LinearPoissonModel`,
:class:`TransmissionModel`), the estimators compared by the study (Poisson ML by MLEM,
Poisson MAP, HG = heteroscedastic Gaussian, OG = homoscedastic Gaussian, and the
transmission counterparts PWLS and penalised likelihood) run as a :class:`SolverConfig`
says and reporting a :class:`inversa.core.solve.SolveInfo`, the diagonal model with exact
per-mode MSE, and the CT study.
"""

from inversa.core.solve import SolveInfo
from inversa.poisson._diagonal import (
    best_regularisation,
    diagonal_estimate,
    diagonal_mse,
    diagonal_mse_mc,
)
from inversa.poisson._estimators import (
    ESTIMATOR_ALIASES,
    EstimatorName,
    canonical_estimator,
    estimate,
    heteroscedastic_ls,
    homoscedastic_ls,
    poisson_map,
    poisson_ml,
    transmission_pl,
    transmission_pwls,
)
from inversa.poisson._models import LinearPoissonModel, TransmissionModel, check_counts
from inversa.poisson._optimizers import SolverConfig
from inversa.poisson._penalties import Penalty, PenaltyKind
from inversa.poisson._study import (
    StudyConfig,
    StudyResult,
    ct_small_image,
    plot_mse_vs_dose,
    random_ellipses,
    run_study,
    write_figure,
)

__all__ = [
    "ESTIMATOR_ALIASES",
    "EstimatorName",
    "LinearPoissonModel",
    "Penalty",
    "PenaltyKind",
    "SolveInfo",
    "SolverConfig",
    "StudyConfig",
    "StudyResult",
    "TransmissionModel",
    "best_regularisation",
    "canonical_estimator",
    "check_counts",
    "ct_small_image",
    "diagonal_estimate",
    "diagonal_mse",
    "diagonal_mse_mc",
    "estimate",
    "heteroscedastic_ls",
    "homoscedastic_ls",
    "plot_mse_vs_dose",
    "poisson_map",
    "poisson_ml",
    "random_ellipses",
    "run_study",
    "transmission_pl",
    "transmission_pwls",
    "write_figure",
]

"""JDR: joint denoising and rewiring of graphs by spectral alignment (ICLR 2025).

Public API: the algorithm (:func:`jdr`, :class:`JDRConfig`, :func:`alignment`), the
PyTorch Geometric transform :class:`JDR`, the cSBM generator, GCN/GPRGNN training on
random splits with confidence intervals, the DIGL and FoSR baselines, and a
validation-only hyperparameter search.
"""

from inversa.jdr._algorithm import DENOISE_CHOICES, JDRConfig, JDRResult, alignment, jdr
from inversa.jdr._baselines import digl, fosr
from inversa.jdr._csbm import csbm, csbm_parameters
from inversa.jdr._io import read_graph, write_graph
from inversa.jdr._models import GCN, GPRGNN, gcn_operator
from inversa.jdr._search import SEARCH_SPACE, search_jdr
from inversa.jdr._train import (
    SPLITS,
    Accuracy,
    TrainConfig,
    evaluate,
    random_split,
    train_node_classifier,
)
from inversa.jdr._transform import JDR

__all__ = [
    "DENOISE_CHOICES",
    "GCN",
    "GPRGNN",
    "JDR",
    "SEARCH_SPACE",
    "SPLITS",
    "Accuracy",
    "JDRConfig",
    "JDRResult",
    "TrainConfig",
    "alignment",
    "csbm",
    "csbm_parameters",
    "digl",
    "evaluate",
    "fosr",
    "gcn_operator",
    "jdr",
    "random_split",
    "read_graph",
    "search_jdr",
    "train_node_classifier",
    "write_graph",
]

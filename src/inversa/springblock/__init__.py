"""Spring-block theory of feature learning: per-layer separation, batched MLPs, the model.

Measure how feature learning is spread over the layers of any PyTorch model
(`separation_curve`), train many deep MLPs at once over the noise x non-linearity grid
(`train_networks`, `phase_diagram`), and compare with the spring-block model (`simulate`,
`fit_spring_block`). See docs/springblock.md.
"""

from inversa.springblock._cnn import make_cnn, train_cnns
from inversa.springblock._data import Dataset, gaussian_mixture, load_dataset
from inversa.springblock._io import load_model, save_mlp
from inversa.springblock._mlp import (
    BatchedAdam,
    BatchedMLP,
    NetworkSetting,
    TrainedNetworks,
    make_mlp,
    train_networks,
)
from inversa.springblock._model import (
    SpringBlockConfig,
    SpringBlockFit,
    fit_spring_block,
    simulate,
)
from inversa.springblock._phase import (
    ModelComparison,
    PhaseDiagram,
    PhaseDiagramGrid,
    compare_spring_block,
    phase_diagram,
    plot_phase_diagram,
    refit_phase_diagram,
)
from inversa.springblock._separation import (
    SeparationCurve,
    curvature,
    layer_features,
    load_centroid,
    load_spread,
    separation,
    separation_curve,
)

__all__ = [
    "BatchedAdam",
    "BatchedMLP",
    "Dataset",
    "ModelComparison",
    "NetworkSetting",
    "PhaseDiagram",
    "PhaseDiagramGrid",
    "SeparationCurve",
    "SpringBlockConfig",
    "SpringBlockFit",
    "TrainedNetworks",
    "compare_spring_block",
    "curvature",
    "fit_spring_block",
    "gaussian_mixture",
    "layer_features",
    "load_centroid",
    "load_dataset",
    "load_model",
    "load_spread",
    "make_cnn",
    "make_mlp",
    "phase_diagram",
    "plot_phase_diagram",
    "refit_phase_diagram",
    "save_mlp",
    "separation",
    "separation_curve",
    "simulate",
    "train_cnns",
    "train_networks",
]

import pytest
import torch

from inversa.core.errors import InputError
from inversa.springblock import (
    SpringBlockConfig,
    SpringBlockFit,
    compare_spring_block,
    refit_phase_diagram,
)


def _model_grid():
    # "networks" that are the model itself (3 alphas x 3 noises x 2 seeds): the comparison
    # must then agree in every cell, in-sample and held out
    alphas, noises = [0.0, 0.5, 1.0], [0.0, 0.4, 0.8]
    cfg = SpringBlockConfig(blocks=5, replicas=4, steps=300)
    truth = SpringBlockFit(
        friction_scale=0.15,
        backward_excess=0.3,
        noise_scale=0.3,
        noise_floor=0.05,
        loss=0.0,
        curvature=torch.zeros(1),
        load=torch.zeros(1, 5),
    )
    a = torch.tensor(alphas, dtype=torch.float64).repeat_interleave(3)
    n = torch.tensor(noises, dtype=torch.float64).repeat(3)
    curv, load = truth.predict(a, n, config=cfg)
    loads = load.reshape(3, 3, 1, 5).expand(3, 3, 2, 5)
    return alphas, noises, loads, curv.reshape(3, 3, 1).expand(3, 3, 2), cfg


def test_compare_and_refit_agree_on_the_models_own_grid():
    alphas, noises, loads, curv, cfg = _model_grid()
    assert (curv > 0.01).any() and (curv < -0.01).any()  # both phases are present
    c = compare_spring_block(alphas, noises, loads, curv, model_config=cfg, straight_tol=0.005)
    assert c.sign_agreement == 1.0 and c.heldout_seeds == 1.0
    assert c.heldout_cells >= 8 / 9
    assert c.model_curvature.shape == (3, 3)
    values = {
        "alphas": alphas,
        "noises": noises,
        "network_loads": loads.tolist(),
        "network_curvature": curv.tolist(),
        "curvature": curv.mean(-1).tolist(),
    }
    new = refit_phase_diagram(values, model_config=cfg, straight_tol=0.005)
    assert new["sign_agreement"] == 1.0 and new["curvature"] == values["curvature"]
    assert new["model_backward_excess"] > 0 and "model_noise_floor" in new
    with pytest.raises(InputError, match="network_loads"):
        refit_phase_diagram({"alphas": alphas, "noises": noises})
    with pytest.raises(InputError, match="grid"):
        compare_spring_block(alphas, noises, loads[:2], curv, model_config=cfg)

"""Double fibration transforms: data, ground-truth operators, models, geometry read-out."""

from __future__ import annotations

import math

import pytest
import torch

from inversa.core.errors import InputError
from inversa.fibration import (
    FitConfig,
    FittedOperator,
    GRFConfig,
    LearnConfig,
    LevelSetConfig,
    LevelSetEnsemble,
    build_model,
    codimension,
    curve_level_set,
    default_speed_map,
    fit_operator,
    geodesic_ray_transform,
    load_levelset,
    make_pairs,
    make_transform,
    pixel_coordinates,
    predict,
    radon_transform,
    relative_error,
    sample_grf,
    save_levelset,
    smooth_delta,
    speed_error,
    speed_from_level_sets,
    trace_rays,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- data -------------------------------------------------------------------------------


def test_grf_is_band_limited_reproducible_and_unit_rms():
    cfg = GRFConfig(size=32, bandwidth=3.0, support=1.0)
    f = sample_grf(6, cfg, generator=_gen(1), dtype=torch.float64)
    assert f.shape == (6, 32, 32)
    torch.testing.assert_close(f.square().mean(dim=(-2, -1)), torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(f, sample_grf(6, cfg, generator=_gen(1), dtype=torch.float64))
    assert not torch.allclose(f, sample_grf(6, cfg, generator=_gen(2), dtype=torch.float64))
    # Spectrum: the window (radius 1, taper 0.1) widens it a little; far beyond the band
    # limit there is next to nothing, while a wider band puts energy there.
    k = torch.fft.fftfreq(32, d=1 / 32)
    kk = (k[:, None] ** 2 + k[None, :] ** 2).sqrt()
    power = torch.fft.fft2(f).abs().square().sum(0)
    far = float(power[kk > 9].sum() / power.sum())
    assert far < 0.01
    wide = sample_grf(6, GRFConfig(size=32, bandwidth=16.0), generator=_gen(1))
    power_wide = torch.fft.fft2(wide.double()).abs().square().sum(0)
    assert float(power_wide[kk > 9].sum() / power_wide.sum()) > 0.05


@pytest.mark.parametrize("bandwidth", [0.0, -1.0, 17.0, float("nan")])
def test_bandwidth_out_of_range_is_refused(bandwidth):
    with pytest.raises(InputError, match="bandwidth"):
        GRFConfig(size=32, bandwidth=bandwidth)


@pytest.mark.parametrize("n", [0, -3, 100_001, 2.5, True])
def test_sample_count_out_of_range_is_refused(n):
    with pytest.raises(InputError, match="sample count"):
        sample_grf(n, GRFConfig(size=16, bandwidth=2.0), generator=_gen())


def test_noise_is_relative_to_the_output_rms():
    tr = make_transform("radon", 16)
    grf = GRFConfig(size=16, bandwidth=3.0)
    _, clean = make_pairs(tr, 8, grf, seed=3)
    _, noisy = make_pairs(tr, 8, grf, seed=3, noise=0.1)
    ratio = float((noisy - clean).square().mean().sqrt() / clean.square().mean().sqrt())
    assert 0.07 < ratio < 0.13


# --- ground-truth transforms ------------------------------------------------------------


def test_geodesic_with_constant_speed_is_the_radon_transform():
    size = 32
    f = sample_grf(4, GRFConfig(size=size, bandwidth=4.0), generator=_gen(), dtype=torch.float64)
    radon = make_transform("radon", size).operator(f)
    straight = geodesic_ray_transform(torch.ones(size, size, dtype=torch.float64))(f)
    assert relative_error(straight, radon) < 0.01
    bent = make_transform("geodesic", size).operator(f)
    assert relative_error(bent, radon) > 0.02  # the lens does bend the rays


def test_rays_in_a_linear_speed_profile_are_circular_arcs():
    """c = 1 + 0.3 y: rays are circles centred on the line where c would vanish."""
    size = 64
    y = pixel_coordinates(size)[..., 1]
    speed = 1.0 + 0.3 * y
    start = torch.tensor([[-0.8, 0.0]], dtype=torch.float64)
    path = trace_rays(speed, start, torch.tensor([[1.0, 0.0]]), step=0.01, n_steps=160)[:, 0]
    centre = torch.tensor([-0.8, -1.0 / 0.3], dtype=torch.float64)
    radius = (path - centre).norm(dim=-1)
    assert float((radius - 1.0 / 0.3).abs().max()) < 2e-3
    assert float(path[-1, 1]) < -0.05  # it bends towards the slow side (-y)


def test_circular_means_of_a_constant_are_one_inside_the_image():
    size = 32
    tr = make_transform("circular", size)
    means = tr.operator(torch.ones(size, size, dtype=torch.float64))
    # circles of radius < 0.05 around a centre within the image stay inside it:
    # the smallest radius (0.114) around centre (1, 0) leaves the image on the right,
    # but around the centre at angle pi (-1, 0) it is inside up to the left edge.
    assert float(means.max()) <= 1 + 1e-12
    inside = means[size // 2, 0]  # centre (-1, 0), radius 0.128: pixels from -1.0 on
    assert float(inside) > 0.45
    zeros = tr.operator(torch.zeros(size, size, dtype=torch.float64))
    assert float(zeros.abs().max()) == 0.0


def test_bad_speed_maps_are_refused():
    with pytest.raises(InputError, match="positive"):
        geodesic_ray_transform(torch.zeros(8, 8))
    with pytest.raises(InputError, match="NaN"):
        geodesic_ray_transform(torch.full((8, 8), float("nan")))
    with pytest.raises(InputError, match="square"):
        geodesic_ray_transform(torch.ones(8, 9))
    with pytest.raises(InputError, match="expected"):
        make_transform("geodesic", 16, speed=torch.ones(8, 8))
    with pytest.raises(InputError, match="unknown transform"):
        make_transform("spherical", 16)


def test_speed_map_from_exact_rays_is_recovered():
    size = 32
    tr = make_transform("geodesic", size)
    index = torch.arange(0, size * size, 5)
    curves = tr.true_curves(index)
    phi = torch.stack([curve_level_set(c, size) for c in curves])
    speed = speed_from_level_sets(phi, band=1.5 * 2 / size)
    assert speed_error(speed, tr.speed) < 0.01
    flat = speed_error(torch.ones(size, size), tr.speed)
    assert flat > 0.05  # the lens is not negligible: the target is meaningful


# --- models -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["levelset", "deeponet", "fno", "attention", "ridge"])
def test_every_model_maps_inputs_to_chosen_outputs(kind):
    size = 16
    tr = make_transform("circular", size)
    f, y = make_pairs(tr, 4, GRFConfig(size=size, bandwidth=3.0), seed=0)
    model = fit_operator(kind, f, y, tr.out_coords, config=FitConfig(steps=2, outputs=32))
    index = torch.tensor([0, 5, 200])
    part = model(f[:2], index)
    assert part.shape == (2, 3)
    full = predict(model, f[:2], chunk=100)
    assert full.shape == (2, size * size)
    torch.testing.assert_close(full[:, index], part.detach(), rtol=1e-4, atol=1e-5)


def test_ridge_reproduces_the_training_pairs_and_fails_off_their_span():
    size = 16
    tr = make_transform("radon", size)
    grf = GRFConfig(size=size, bandwidth=3.0)
    f, y = make_pairs(tr, 8, grf, seed=0)
    model = fit_operator("ridge", f, y, tr.out_coords)
    assert relative_error(predict(model, f), y) < 1e-3
    ft, yt = make_pairs(tr, 8, grf, seed=1)
    assert relative_error(predict(model, ft), yt) > 0.3


def test_levelset_config_is_checked():
    with pytest.raises(InputError):
        LevelSetConfig(eps_px=0.0)
    with pytest.raises(InputError):
        LevelSetConfig(delta="box")


def test_hat_delta_on_exact_lines_is_radon2d_and_the_gaussian_is_not():
    """Joseph's projector is a hat across each line, half-width max(|cos|, |sin|) pixel.

    A level-set kernel with a hat delta can therefore represent ``Radon2D`` exactly; a
    Gaussian delta of any single width leaves a floor of about 1 %.
    """
    size = 32
    tr = make_transform("radon", size)
    f, y = make_pairs(tr, 8, GRFConfig(size=size, bandwidth=8.0), seed=0)
    x = pixel_coordinates(size).reshape(-1, 2)
    c = tr.out_coords.double()
    dist = c[:, :1] * x[:, 0] + c[:, 1:2] * x[:, 1] - c[:, 2:]  # (Y, X), normalised
    width = torch.maximum(c[:, 0].abs(), c[:, 1].abs())[:, None]
    pixel = 2.0 / size
    hat = smooth_delta(dist / width, pixel, "hat") / width * pixel  # pixel units as Radon2D
    err_hat = relative_error(f.double().flatten(1) @ hat.T, y)
    assert err_hat < 1e-5
    gauss = smooth_delta(dist, 0.5 * pixel, "gaussian") * pixel
    assert relative_error(f.double().flatten(1) @ gauss.T, y) > 0.005
    assert radon_transform(size).domain_shape == (size, size)


def test_hat_trains_as_its_gaussian_then_blends_in():
    size = 16
    tr = make_transform("radon", size)
    cfg = LevelSetConfig(delta="hat", eps_px=1.0, eps_start_px=4.0, anneal=0.5, hat_end=0.75)
    net = build_model("levelset", size, tr.out_coords, levelset=cfg)
    net.anneal(0.0)
    assert net.blend == 0.0
    # the starting Gaussian has standard deviation eps_start_px
    assert math.isclose(net.eps * net.eps_factor / math.sqrt(6), 4.0 * 2 / size, rel_tol=1e-9)
    net.anneal(0.625)
    assert math.isclose(net.blend, 0.5) and math.isclose(net.eps_factor, 1.0)
    net.anneal(0.9)
    assert net.blend == 1.0
    t = torch.linspace(-2, 2, 101, dtype=torch.float64)
    half = smooth_delta(t, 1.0, "hat", blend=0.5)
    both = 0.5 * smooth_delta(t, 1.0, "hat") + 0.5 * smooth_delta(t, 1 / math.sqrt(6), "gaussian")
    torch.testing.assert_close(half, both)
    with pytest.raises(InputError):
        LevelSetConfig(anneal=0.6, hat_end=0.5)


def _train_levelset(tr, *, n=16, steps=250, out_coords=None, targets=None, size=16):
    grf = GRFConfig(size=size, bandwidth=3.0)
    f = sample_grf(n, grf, generator=_gen(5))
    y = tr(f) if targets is None else targets(f)
    coords = tr.out_coords if out_coords is None else out_coords
    fit = FitConfig(steps=steps, outputs=128, batch=8, lr=1e-2)
    return fit_operator("levelset", f, y.reshape(n, -1), coords, config=fit), grf


def test_levelset_learns_radon_and_reads_codimension_one():
    size = 16
    tr = make_transform("radon", size)
    model, grf = _train_levelset(tr, targets=lambda f: tr.operator(f.double()).float())
    ft, yt = make_pairs(tr, 8, grf, seed=9)
    err = relative_error(predict(model, ft), yt)
    assert err < 0.35
    codim, rho = codimension(model.model)
    assert codim == 1, rho


def test_codimension_two_for_point_evaluations():
    """The identity (f -> f at output points) is a fibration by points: codimension 2."""
    size = 16
    xy = pixel_coordinates(size, dtype=torch.float32).reshape(-1, 2)
    coords = torch.cat([xy, torch.zeros(xy.shape[0], 1)], dim=-1)
    tr = make_transform("radon", size)
    model, _ = _train_levelset(
        tr, out_coords=coords, targets=lambda f: f.reshape(f.shape[0], -1), steps=400
    )
    codim, rho = codimension(model.model)
    assert codim == 2, rho


def test_saved_model_round_trips_and_other_transforms_are_refused(tmp_path):
    size = 16
    tr = make_transform("radon", size)
    f, y = make_pairs(tr, 4, GRFConfig(size=size, bandwidth=3.0), seed=0)
    model = fit_operator("levelset", f, y, tr.out_coords, config=FitConfig(steps=3))
    path = tmp_path / "m.safetensors"
    save_levelset(path, model, transform="radon")
    loaded, meta = load_levelset(path, transform="radon", size=size)
    assert meta["transform"] == "radon"
    torch.testing.assert_close(predict(loaded, f), predict(model, f))
    with pytest.raises(InputError, match="radon transform, not circular"):
        load_levelset(path, transform="circular")
    with pytest.raises(InputError, match="size"):
        load_levelset(path, size=32)


def test_default_speed_map_is_one_where_rays_enter():
    c = default_speed_map(64)
    r = pixel_coordinates(64).square().sum(-1).sqrt()
    assert float((c[r > 0.9] - 1).abs().max()) < 0.01
    assert math.isclose(float(c.max()), 1.3, rel_tol=0.01)


# --- robust training: anchoring, restarts --------------------------------------------------


def _dead_start(size: int, cfg: LevelSetConfig, offset: float = 4.0):
    """A level-set network whose zero sets lie far off the image (the 64^2 collapse)."""
    tr = make_transform("radon", size)
    net = build_model("levelset", size, tr.out_coords, levelset=cfg)
    m = cfg.feature_dim
    with torch.no_grad():  # one feature pair constant: phi_1 += offset^2 / sqrt(m) everywhere
        for sub in (net.key, net.query):
            sub.linear.weight[m - 1].zero_()
            sub.linear.bias[m - 1] = offset
            sub.mlp.layers[-1].weight[m - 1].zero_()
            sub.mlp.layers[-1].bias[m - 1] = 0.0
    return tr, FittedOperator("levelset", net, 1.0)


def test_anchor_revives_a_kernel_whose_level_sets_left_the_image():
    """Without the anchor a kernel off the image has no gradient and stays zero (error 1)."""
    size = 16
    errors = {}
    for anchor in (0.0, 1.0):
        cfg = LevelSetConfig(eps_start_px=1.0, anneal=0.0, hat_end=0.0, anchor=anchor)
        tr, start = _dead_start(size, cfg)
        net = start.model
        with torch.no_grad():
            gap = net.anchor_gap(net.phi(net.x_coords, net.y_coords))
        assert float(gap[0].min()) > 20  # every output's zero set misses the grid
        grf = GRFConfig(size=size, bandwidth=3.0)
        f = sample_grf(16, grf, generator=_gen(5))
        y = tr.operator(f.double()).float().reshape(16, -1)
        fit = FitConfig(steps=300, outputs=128, batch=8, lr=1e-2)
        model = fit_operator("levelset", f, y, tr.out_coords, config=fit, init=start)
        ft, yt = make_pairs(tr, 8, grf, seed=9)
        errors[anchor] = relative_error(predict(model, ft), yt)
    assert errors[0.0] > 0.999, errors
    assert errors[1.0] < 0.95, errors  # alive and learning (0.89 measured at 300 steps)


def test_a_dead_fit_restarts_from_a_new_initialisation():
    size = 16
    tr = make_transform("radon", size)
    f = sample_grf(8, GRFConfig(size=size, bandwidth=3.0), generator=_gen(5))
    y = tr.operator(f.double()).float().reshape(8, -1)
    cfg = LevelSetConfig(anneal=0.5, hat_end=0.5)
    runs = {}
    for dead_loss in (1e-9, 10.0):  # every check fails / none does
        fit = FitConfig(steps=20, outputs=32, batch=4, restarts=2, dead_loss=dead_loss)
        runs[dead_loss] = fit_operator("levelset", f, y, tr.out_coords, config=fit, levelset=cfg)
    assert runs[1e-9].restarts == 2 and runs[1e-9].steps_run == 10 + 10 + 20
    assert runs[10.0].restarts == 0 and runs[10.0].steps_run == 20
    other = runs[1e-9].model.key.linear.weight
    assert not torch.equal(other, runs[10.0].model.key.linear.weight)  # a new init
    with pytest.raises(InputError):
        FitConfig(restarts=-1)
    with pytest.raises(InputError):
        LevelSetConfig(anchor=-1.0)


def test_quadratic_keys_start_as_the_affine_ones():
    size = 16
    tr = make_transform("radon", size)
    plain = build_model("levelset", size, tr.out_coords, generator=_gen(3))
    quad = build_model(
        "levelset", size, tr.out_coords, generator=_gen(3), levelset=LevelSetConfig(quadratic=True)
    )
    x, yc = plain.x_coords, plain.y_coords[:5]
    torch.testing.assert_close(plain.phi(x, yc), quad.phi(x, yc))
    assert quad.key.quadratic.weight.shape[1] == 3


def test_an_ensemble_averages_its_kept_members():
    size = 16
    tr = make_transform("radon", size)
    grf = GRFConfig(size=size, bandwidth=3.0)
    f, y = make_pairs(tr, 6, grf, seed=0)
    fit = FitConfig(steps=30, outputs=64, batch=4, ensemble=3, keep=1.5)
    ens = fit_operator("levelset", f, y, tr.out_coords, config=fit, seed=2)
    net = ens.model
    assert isinstance(net, LevelSetEnsemble)
    train = ens.train_errors
    assert len(train) == 3 and ens.steps_run == 3 * 30
    best = min(train)
    kept = [e for e in train if e == best or (e < 1.0 and e <= 1.5 * best)]
    assert len(net.members) == len(kept)
    assert train.index(best) == [train.index(e) for e in kept][net.best_index]
    # Member 0 is the plain fit of the same seed.
    single = fit_operator(
        "levelset", f, y, tr.out_coords, config=FitConfig(steps=30, outputs=64, batch=4), seed=2
    )
    assert relative_error(predict(single, f), y) == pytest.approx(train[0], rel=1e-5)
    # The prediction is the members' mean, so it fits no worse than they do on average.
    ft, _ = make_pairs(tr, 4, grf, seed=9)
    each = torch.stack([m(ft) for m in net.members]).mean(0) * ens.scale
    torch.testing.assert_close(predict(ens, ft), each, rtol=1e-5, atol=1e-6)
    assert relative_error(predict(ens, f), y) <= sum(kept) / len(kept) + 1e-5


def test_ensemble_settings_are_checked():
    for bad in ({"ensemble": 0}, {"keep": 0.5}):
        with pytest.raises(InputError):
            FitConfig(**bad)
    with pytest.raises(InputError, match="ensemble"):
        LearnConfig(fit=FitConfig(ensemble=2))
    tr = make_transform("radon", 16)
    member = build_model("levelset", 16, tr.out_coords)
    start = FittedOperator("levelset", LevelSetEnsemble([member]), 1.0)
    f, y = make_pairs(tr, 2, GRFConfig(size=16, bandwidth=3.0), seed=0)
    with pytest.raises(InputError, match="ensemble"):
        fit_operator("levelset", f, y, tr.out_coords, config=FitConfig(steps=1), init=start)
    with pytest.raises(InputError):
        LevelSetEnsemble([])

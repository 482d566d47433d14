"""LoFi: the network, the tasks, training, plug-and-play and the file helpers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from inversa.core.errors import InputError
from inversa.core.fields import grid_coordinates
from inversa.core.metrics import psnr
from inversa.core.phantoms import random_ellipses, shepp_logan_2d
from inversa.lofi import (
    LoFi,
    LoFiConfig,
    PnPConfig,
    TrainingConfig,
    load_model,
    measurement_input,
    pnp_admm,
    predict,
    read_array,
    save_model,
    save_unet,
    simulate,
    step_pair,
    task_config,
    task_operator,
    train_lofi,
    train_unet,
    training_images,
    tv_denoise,
    tv_reconstruct,
    unet_predict,
    write_array,
)
from inversa.tomography import fbp

SMALL = LoFiConfig(
    reference_size=16,
    n_spokes=4,
    n_radii=3,
    max_radius=2.0,
    spoke_hidden=8,
    spoke_features=4,
    mixer_hidden=(8,),
)


def _ramp(n: int) -> torch.Tensor:
    xy = grid_coordinates((n, n), dtype=torch.float32)
    return 0.6 * xy[..., 0] - 0.2 * xy[..., 1] + 0.3


def test_forward_shapes_and_chunked_predict():
    model = LoFi(SMALL)
    img = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    coords = torch.rand(2, 5, 2, generator=torch.Generator().manual_seed(1))
    assert model(img, coords).shape == (2, 5)
    full = predict(model, img[:, 0])
    assert full.shape == (2, 16, 16)
    torch.testing.assert_close(predict(model, img[:, 0], chunk=7), full)
    assert predict(model, img[0, 0], size=40).shape == (40, 40)
    with pytest.raises(InputError, match="LoFi expects"):
        model(img[:, 0], coords)


def test_same_object_same_output_at_any_resolution():
    # The pattern lives in reference pixels and the filter starts as the identity: a linear
    # image (reproduced exactly by bilinear sampling) gives the same values at the same
    # coordinates whether it is sampled on 16 or 48 pixels.
    model = LoFi(dataclasses.replace(SMALL, mode="bilinear"))
    coords = torch.tensor([[[0.5, 0.5], [0.45, 0.55], [0.6, 0.4]]])
    with torch.no_grad():
        coarse = model(_ramp(16)[None, None], coords)
        fine = model(_ramp(48)[None, None], coords)
    torch.testing.assert_close(coarse, fine, atol=1e-5, rtol=1e-5)


def test_output_is_local():
    # Before training the filter is the identity, so a pixel far outside the pattern of a
    # query cannot change that query's value; a pixel inside it does.
    model = LoFi(SMALL)
    img = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    q = torch.tensor([[[0.25, 0.25]]])  # pixel (8, 8) of 32
    far, near = img.clone(), img.clone()
    far[..., 28, 28] += 5.0
    near[..., 8, 9] += 5.0
    with torch.no_grad():
        base = model(img, q)
        # Up to FFT rounding (the identity filter goes through rfft2 / irfft2).
        assert float((model(far, q) - base).abs().max()) < 1e-5
        assert float((model(near, q) - base).abs().max()) > 1e-3


def test_save_load_round_trip_and_refusals(tmp_path):
    model = LoFi(SMALL, seed=3)
    path = save_model(tmp_path / "m.safetensors", model, task="sparse-ct", info={"steps": 1})
    loaded, meta = load_model(path, task="sparse-ct")
    assert meta["task"] == "sparse-ct" and meta["info"]["steps"] == 1
    img = torch.rand(12, 12, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(predict(loaded, img), predict(model, img))
    with pytest.raises(InputError, match="trained for task sparse-ct, not denoise"):
        load_model(path, task="denoise")
    from inversa.core.nets import UNet, UNetConfig

    other = save_unet(tmp_path / "u.safetensors", UNet(UNetConfig(dim=2, depth=1)), task="denoise")
    with pytest.raises(InputError, match="not a LoFi model"):
        load_model(other)


def test_tasks_simulate_and_fbp_inputs():
    g = torch.Generator().manual_seed(5)
    x = random_ellipses(32, count=2, generator=torch.Generator().manual_seed(6))
    for name in ("sparse-ct", "limited-ct", "lowdose-ct"):
        task = task_config(name)
        y, inp = simulate(task, x, generator=g)
        assert y.shape[:2] == (2, task.n_angles) and inp.shape == (2, 32, 32)
        # The input is a (degraded) reconstruction of the image, not noise.
        assert float(psnr(inp, x, data_range=1.0)) > 10.0
    task = task_config("denoise")
    y, inp = simulate(task, x, generator=g)
    assert torch.equal(y, inp)
    assert abs(float((inp - x).std()) - task.sigma) < 0.01


def test_lowdose_log_transform_recovers_line_integrals_at_high_dose():
    task = dataclasses.replace(task_config("lowdose-ct"), n0=1e9)
    x = shepp_logan_2d(32).clamp_min(0.0)[None]
    y, _ = simulate(task, x, generator=torch.Generator().manual_seed(7))
    exact = task_operator(task, 32).forward(x)
    torch.testing.assert_close(y, exact, atol=0.05, rtol=0.01)


def test_measurement_input_checks(tmp_path):
    task = task_config("sparse-ct")
    op = task_operator(task, 24)
    sino = op.forward(shepp_logan_2d(24)[None])[0]
    torch.testing.assert_close(measurement_input(task, sino), fbp(sino, op))
    f = tmp_path / "s.npy"
    with pytest.raises(InputError, match="sinogram has 29 angles but the model's task") as exc:
        measurement_input(task, sino[:29], path=f)
    assert str(exc.value.path) == str(f)
    with pytest.raises(InputError, match="2-D array"):
        measurement_input(task, sino[None], path=f)
    bad = sino.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        measurement_input(task_config("denoise"), bad, path=f)


def test_step_pairs_are_reproducible():
    cfg = TrainingConfig(size=16, n_images=3, steps=2, model=SMALL)
    images = training_images(cfg)
    assert images.shape == (3, 16, 16)
    task = task_config("denoise")
    a = step_pair(task, images, 5, seed=0)
    b = step_pair(task, images, 5, seed=0)
    c = step_pair(task, images, 6, seed=0)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    with pytest.raises(InputError, match="n_images"):
        TrainingConfig(n_images=11)


def test_training_learns_and_resumes_exactly(tmp_path):
    cfg = TrainingConfig(size=16, n_images=2, steps=40, queries=128, lr=3e-3, model=SMALL)
    model, info = train_lofi("denoise", cfg)
    hist = info["history"]
    assert hist[-1]["loss"] < hist[0]["loss"]
    ckpt = tmp_path / "c.pt"
    half = dataclasses.replace(cfg, steps=20)
    # The learning-rate schedule depends on the total steps, so resume within one config:
    train_lofi("denoise", cfg, checkpoint=ckpt)  # writes checkpoints at 20 and 40
    import torch as _t

    state = _t.load(ckpt, weights_only=True)
    assert state["step"] == 40
    del half
    resumed, rinfo = train_lofi("denoise", cfg, checkpoint=ckpt)
    assert rinfo["resumed_from"] == 40
    for (_, p), (_, q) in zip(
        model.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(p, q)


def test_unet_peer_trains_on_the_same_pairs():
    cfg = TrainingConfig(size=16, n_images=2, steps=5, model=SMALL, unet_channels=4, unet_depth=2)
    unet, info = train_unet("sparse-ct", cfg)
    assert info["steps"] == 5 and info["parameters"] > 0
    out = unet_predict(unet, torch.rand(18, 18))  # padded to a multiple of 4, cropped back
    assert out.shape == (18, 18)


def test_tv_operators_are_adjoint_and_tv_denoise_behaves():
    from inversa.lofi._pnp import _div, _grad

    g = torch.Generator().manual_seed(8)
    x = torch.randn(7, 9, dtype=torch.float64, generator=g)
    p = torch.randn(2, 7, 9, dtype=torch.float64, generator=g)
    lhs = float((_grad(x) * p).sum())
    rhs = float((x * -_div(p)).sum())
    assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))
    const = torch.full((8, 8), 0.3)
    torch.testing.assert_close(tv_denoise(const, 0.5), const)
    clean = shepp_logan_2d(32)
    noisy = clean + 0.1 * torch.randn(32, 32, generator=g)
    den = tv_denoise(noisy, 0.08, n_iter=100)
    assert float(psnr(den, clean, data_range=1.0)) > float(psnr(noisy, clean, data_range=1.0)) + 3


def test_tv_and_pnp_beat_fbp_on_sparse_views():
    task = task_config("sparse-ct")
    n = 32
    op = task_operator(task, n)
    x = shepp_logan_2d(n).clamp_min(0.0)
    y = op.forward(x)
    x0 = fbp(y, op)
    tv = tv_reconstruct(op, y, lam=3e-4, n_iter=60)
    pnp = pnp_admm(
        op, y, lambda v: tv_denoise(v, 0.02), x0=x0, config=PnPConfig(rho=0.01, n_iter=20)
    )
    base = float(psnr(x0, x, data_range=1.0))
    assert float(psnr(tv, x, data_range=1.0)) > base + 10
    assert float(psnr(pnp, x, data_range=1.0)) > base + 10


@pytest.mark.parametrize("suffix", [".npy", ".mrc", ".tif", ".png"])
def test_array_files_round_trip(tmp_path, suffix):
    img = torch.rand(10, 12, generator=torch.Generator().manual_seed(9))
    path = write_array(tmp_path / f"a{suffix}", img)
    back = read_array(path)
    atol = 1e-4 if suffix == ".png" else 1e-7
    torch.testing.assert_close(back, img, atol=atol, rtol=0)


def test_read_array_refusals(tmp_path):
    np.save(tmp_path / "cube.npy", np.zeros((2, 4, 4), dtype=np.float32))
    with pytest.raises(InputError, match="2-D array"):
        read_array(tmp_path / "cube.npy")
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan]], dtype=np.float32))
    with pytest.raises(InputError, match="NaN"):
        read_array(tmp_path / "nan.npy")
    with pytest.raises(InputError, match="unknown file type"):
        read_array(tmp_path / "x.jpeg2")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="not a readable image"):
        read_array(tmp_path / "junk.png")

"""CryoLithe: patches, wavelet, network invariances, streaming inference, model files."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.core.training import save_weights
from inversa.cryolithe import (
    SliceSet,
    SliceSetConfig,
    UNetConfig,
    WBPUNet,
    default_model_path,
    extract_patches,
    haar3d_forward,
    haar3d_inverse,
    haar_matrix,
    load_model,
    prepare_projections,
    reconstruct,
    sample_points,
    save_model,
    tilt_angles,
    voxel_points,
)
from inversa.tomography import TiltGeometry


def _geometry(angles, xf=None) -> TiltGeometry:
    return TiltGeometry(angles=torch.tensor(angles, dtype=torch.float64), xf=xf)


# --- wavelet -------------------------------------------------------------------------


def test_haar_perfect_reconstruction_and_orthogonality():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 4, 8, generator=g, dtype=torch.float64)
    c = haar3d_forward(x)
    assert c.shape == (2, 8, 3, 2, 4)
    torch.testing.assert_close(haar3d_inverse(c), x, rtol=0, atol=1e-12)
    m = haar_matrix(dtype=torch.float64)
    torch.testing.assert_close(m @ m.T, torch.eye(8, dtype=torch.float64), rtol=0, atol=1e-12)
    assert math.isclose(float(c.square().sum()), float(x.square().sum()), rel_tol=1e-12)


def test_haar_constant_block_has_only_the_approximation():
    x = torch.zeros(4, 4, 4, dtype=torch.float64)
    x[2:, :2, 2:] = 1.0  # exactly the block (1, 0, 1)
    c = haar3d_forward(x)
    assert float(c[0, 1, 0, 1]) == pytest.approx(math.sqrt(8))
    assert float(c[1:].abs().max()) < 1e-12
    assert float(c[0].abs().sum()) == pytest.approx(math.sqrt(8))


def test_haar_odd_size_is_refused():
    with pytest.raises(InputError):
        haar3d_forward(torch.zeros(3, 4, 4))


# --- patches -------------------------------------------------------------------------


def test_patch_of_a_delta_lands_where_the_point_projects():
    images = torch.zeros(2, 16, 20)
    # tilt 0 (0 deg): a delta 2 rows below and 3 columns right of the image centre
    images[0, 8 + 2, 10 + 3] = 1.0
    # tilt 1 (60 deg): the point (x=2, y=1, z=0) projects to u = 1, v = 1
    images[1, 8 + 1, 10 + 1] = 5.0
    geo = _geometry([0.0, 60.0])
    p = extract_patches(images, geo, torch.tensor([[0.0, 0.0, 0.0], [2.0, 1.0, 0.0]]), patch_size=7)
    assert p.shape == (2, 2, 7, 7)
    assert float(p[0, 0, 3 + 2, 3 + 3]) == pytest.approx(1.0, abs=1e-5)
    assert float(p[0, 0].sum()) == pytest.approx(1.0, abs=1e-5)
    assert float(p[1, 1, 3, 3]) == pytest.approx(5.0, abs=1e-5)


def test_patches_honour_the_xf_and_sample_bilinearly():
    images = torch.zeros(1, 16, 16)
    images[0, 8, 8] = 1.0
    # .xf shifts by +1 px in x: raw = aligned - 1, so the delta at raw x = 0 is seen at u = 1
    xf = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    p = extract_patches(images, _geometry([0.0], xf), torch.tensor([[1.0, 0.0, 0.0]]), patch_size=3)
    assert float(p[0, 0, 1, 1]) == pytest.approx(1.0, abs=1e-5)
    half = extract_patches(images, _geometry([0.0]), torch.tensor([[0.5, 0.0, 0.0]]), patch_size=3)
    assert float(half[0, 0, 1, 1]) == pytest.approx(0.5, abs=1e-5)
    assert float(half[0, 0, 1, 0]) == pytest.approx(0.5, abs=1e-5)


def test_axis_aligned_fast_path_equals_general_sampling():
    # With a shift-only .xf (or none) patches come from integer windows blended once; a
    # tiny rotation takes the general grid_sample path. Both must agree, in and outside.
    g = torch.Generator().manual_seed(3)
    images = torch.randn(3, 12, 16, generator=g)
    points = torch.cat(
        [torch.rand(40, 3, generator=g) * 24 - 12, torch.tensor([[30.0, -20.0, 0.0]])]
    )
    xf = torch.zeros(3, 2, 3, dtype=torch.float64)
    xf[:, 0, 0] = xf[:, 1, 1] = 1.0
    xf[:, :, 2] = torch.tensor([[0.3, -1.2], [0.0, 0.0], [-2.5, 0.7]], dtype=torch.float64)
    tilted = xf.clone()
    tilted[:, 0, 1], tilted[:, 1, 0] = 1e-5, -1e-5  # not shift-only: general path
    fast = extract_patches(images, _geometry([-40.0, 0.0, 35.0], xf), points, patch_size=5)
    slow = extract_patches(images, _geometry([-40.0, 0.0, 35.0], tilted), points, patch_size=5)
    torch.testing.assert_close(fast, slow, atol=2e-3, rtol=0)
    assert float(fast[-1].abs().max()) == 0.0  # far outside every image
    assert float(fast[:-1].abs().sum()) > 0


def test_prepare_projections_is_unit_scale_and_shift_free():
    g = torch.Generator().manual_seed(1)
    data = torch.randn(3, 8, 10, generator=g) + 7.0
    out = prepare_projections(data)
    assert float(out.std()) == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(prepare_projections(3.0 * data + 2.0), out, atol=1e-4, rtol=1e-4)


# --- network -------------------------------------------------------------------------


@pytest.mark.parametrize("head", ["pixel", "wavelet"])
def test_sliceset_is_a_set_function_of_the_tilts(head):
    cfg = SliceSetConfig(patch_size=5, row_features=4, set_features=6, row_out=3, head=head)
    net = SliceSet(cfg, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(2)
    patches = torch.randn(4, 6, 5, 5, generator=g)
    angles = torch.tensor([-50.0, -30.0, -10.0, 10.0, 30.0, 50.0])
    out = net(patches, angles)
    assert out.shape == (4, cfg.n_out)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    torch.testing.assert_close(net(patches[:, perm], angles[perm]), out, atol=1e-6, rtol=1e-5)
    keep = torch.tensor([True, False, True, True, False, True])
    torch.testing.assert_close(
        net(patches, angles, keep), net(patches[:, keep], angles[keep]), atol=1e-6, rtol=1e-5
    )
    # the angles matter: the same patches at other angles give other values
    assert not torch.allclose(net(patches, angles + 5.0), out)


@pytest.mark.parametrize("head", ["pixel", "wavelet"])
def test_fused_inference_equals_the_training_path(head):
    cfg = SliceSetConfig(patch_size=5, row_features=4, set_features=6, row_out=3, head=head)
    net = SliceSet(cfg, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():  # non-zero biases, so the folded bias is exercised
        net.row.bias.normal_(generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(6)
    patches = torch.randn(7, 5, 5, 5, generator=g)
    angles = torch.tensor([-60.0, -20.0, 0.0, 25.0, 55.0])
    reference = net(patches, angles)  # grad enabled: the unfused path
    with torch.no_grad():
        fused = net(patches, angles)
    torch.testing.assert_close(fused, reference.detach(), atol=1e-5, rtol=1e-5)


def test_model_file_round_trip_and_refusal(tmp_path):
    net = SliceSet(SliceSetConfig(patch_size=3, row_features=2, set_features=2, row_out=2))
    save_model(tmp_path / "m.safetensors", net, info={"training_seconds": 1.5})
    back, info = load_model(tmp_path / "m.safetensors")
    assert info["training_seconds"] == 1.5
    x, a = torch.randn(2, 3, 3, 3), torch.tensor([0.0, 10.0, 20.0])
    torch.testing.assert_close(back(x, a), net(x, a))
    save_weights(tmp_path / "other.safetensors", {"w": torch.zeros(2)}, metadata={"x": 1})
    with pytest.raises(InputError, match="not a CryoLithe model"):
        load_model(tmp_path / "other.safetensors")


# --- streaming inference -------------------------------------------------------------


class _CentreTilt0(nn.Module):
    """Stub network: the centre sample of tilt 0 (as the voxel or the block's mean)."""

    def __init__(self, head: str) -> None:
        super().__init__()
        self.config = SliceSetConfig(patch_size=3, head=head)

    def forward(self, patches, angles):
        v = patches[:, 0, 1, 1]
        if self.config.head == "pixel":
            return v[:, None]
        return torch.cat([math.sqrt(8) * v[:, None], torch.zeros(len(v), 7)], dim=1)


def test_reconstruct_places_every_point_right_for_both_heads_and_odd_sizes():
    g = torch.Generator().manual_seed(3)
    data = torch.randn(1, 7, 9, generator=g)
    geo = _geometry([0.0])
    images = prepare_projections(data)
    # pixel head: at 0 degrees every voxel (k, j, i) sees image pixel (j, i)
    f32 = torch.float32  # the stored images exactly as prepare_projections makes them
    vol = reconstruct(
        data, geo, model=_CentreTilt0("pixel"), shape=(5, 7, 9), chunk=11, images_dtype=f32
    )
    torch.testing.assert_close(vol, images.expand(5, 7, 9), atol=1e-5, rtol=1e-5)
    # wavelet head: every 2x2x2 block holds the mean of its 2x2 image pixels (odd sizes
    # are padded by one at the start, so the first row and column are blocks of their own)
    vol = reconstruct(
        data, geo, model=_CentreTilt0("wavelet"), shape=(5, 7, 9), chunk=5, images_dtype=f32
    )
    padded = torch.nn.functional.pad(images[0], (1, 0, 1, 0))
    pooled = torch.nn.functional.avg_pool2d(padded[None, None], 2)[0, 0]
    # (the pad row and column lie outside the image, where bilinear sampling reads 0)
    expect = pooled.repeat_interleave(2, 0).repeat_interleave(2, 1)[1:, 1:]
    torch.testing.assert_close(vol[2], expect, atol=1e-5, rtol=1e-5)


def test_reconstruct_is_chunk_independent_and_deterministic():
    g = torch.Generator().manual_seed(4)
    data = torch.randn(5, 8, 8, generator=g)
    geo = _geometry(list(tilt_angles(40, 20)))
    net = SliceSet(SliceSetConfig(patch_size=3, row_features=4, set_features=4, head="wavelet"))
    a = reconstruct(data, geo, model=net, shape=(4, 8, 8), chunk=3)
    b = reconstruct(data, geo, model=net, shape=(4, 8, 8), chunk=1000)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert torch.equal(a, reconstruct(data, geo, model=net, shape=(4, 8, 8), chunk=3))
    # the default chunk (device-dependent) gives the same tomogram; a bad one is refused
    default = reconstruct(data, geo, model=net, shape=(4, 8, 8))
    torch.testing.assert_close(default, a, atol=1e-6, rtol=1e-5)
    with pytest.raises(InputError, match="chunk"):
        reconstruct(data, geo, model=net, shape=(4, 8, 8), chunk=0)


@pytest.mark.parametrize("head", ["pixel", "wavelet"])
def test_bands_of_image_rows_give_the_training_path_under_large_shifts(head):
    # Shift-only .xf: each band of volume rows reads only its band of image rows, per tilt
    # displaced by the shift; shifts beyond the patch and the image edge (windows partly
    # or wholly outside) must still give the network applied to extract_patches.
    g = torch.Generator().manual_seed(21)
    angles = list(tilt_angles(45, 15))
    data = torch.randn(len(angles), 12, 10, generator=g)
    xf = torch.zeros(len(angles), 2, 3, dtype=torch.float64)
    xf[:, 0, 0] = xf[:, 1, 1] = 1.0
    xf[:, 1, 2] = torch.tensor([-9.0, 4.5, 0.25, -2.7, 13.0, 6.0, -5.5])[: len(angles)]
    xf[:, 0, 2] = torch.linspace(-3.0, 3.0, len(angles), dtype=torch.float64)
    geo = _geometry(angles, xf)
    net = SliceSet(SliceSetConfig(patch_size=5, row_features=4, set_features=6, head=head))
    shape = (6, 12, 10)
    points = voxel_points(shape, block=net.config.block).reshape(-1, 3)
    patches = extract_patches(prepare_projections(data), geo, points, patch_size=5)
    with torch.no_grad():
        direct = net(patches, geo.angles.float())
    if head == "pixel":
        expect = direct[:, 0].reshape(shape)
    else:
        expect = haar3d_inverse(direct.reshape(3, 6, 5, 8).permute(3, 0, 1, 2))
    f32 = torch.float32
    for chunk, workers in ((5, 1), (12, 2), (10_000, 2)):  # one-row bands .. one band
        got = reconstruct(
            data, geo, model=net, shape=shape, chunk=chunk, workers=workers, images_dtype=f32
        )
        torch.testing.assert_close(got, expect, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("head", ["pixel", "wavelet"])
def test_reconstruct_into_a_memmap_or_a_streamed_file_equals_in_memory(tmp_path, head):
    import numpy as np

    from inversa.core import io

    g = torch.Generator().manual_seed(9)
    angles = list(tilt_angles(50, 20))
    data = torch.randn(len(angles), 11, 13, generator=g)
    geo = _geometry(angles)
    net = SliceSet(SliceSetConfig(patch_size=5, row_features=4, set_features=6, head=head))
    shape = (7, 11, 13)  # odd sizes: the wavelet head's padded first slab
    ref = reconstruct(data, geo, model=net, shape=shape, workers=1)
    # chunks smaller and larger than one slab, one or two worker threads
    for chunk, workers in ((5, 2), (40, 1), (1000, 2)):
        mm = np.lib.format.open_memmap(tmp_path / "m.npy", mode="w+", dtype=np.float32, shape=shape)
        mem = reconstruct(data, geo, model=net, shape=shape, chunk=chunk, workers=workers)
        torch.testing.assert_close(mem, ref, atol=1e-6, rtol=1e-5)  # chunk-independent
        got = reconstruct(data, geo, model=net, shape=shape, chunk=chunk, workers=workers, out=mm)
        assert got is mm
        assert torch.equal(torch.from_numpy(np.array(mm)), mem)
        with io.stream_mrc(tmp_path / "t.mrc", shape, force=True) as out:
            reconstruct(data, geo, model=net, shape=shape, chunk=chunk, workers=workers, out=out)
        assert torch.equal(io.read_mrc(tmp_path / "t.mrc")[0], mem)
    # the folded, tilt-by-tilt inference is the network's own (training) function
    with torch.enable_grad():
        patches = extract_patches(
            prepare_projections(data), geo, voxel_points(shape).reshape(-1, 3), patch_size=5
        )
        if head == "pixel":
            direct = net(patches, geo.angles.float())[:, 0].reshape(shape)
            exact = reconstruct(data, geo, model=net, shape=shape, images_dtype=torch.float32)
            torch.testing.assert_close(exact, direct.detach(), atol=1e-5, rtol=1e-4)
    with pytest.raises(InputError, match="out has shape"):
        reconstruct(data, geo, model=net, shape=shape, out=torch.empty(7, 11, 12))


def test_half_precision_images_equal_float32_within_tolerance():
    from inversa.cryolithe._features import _band_rows, _projection_stats

    g = torch.Generator().manual_seed(12)
    angles = list(tilt_angles(60, 3))
    raw = torch.randn(len(angles), 1, 40, 44, generator=g)
    data = 5.0 * torch.nn.functional.avg_pool2d(raw, 3, stride=1, padding=1)[:, 0] + 1.0
    full = torch.nn.functional.pad(prepare_projections(data), (10, 10, 10, 10))
    first = torch.zeros(len(angles), dtype=torch.long)  # every row: the whole padded stack
    half = _band_rows(data, *_projection_stats(data), first, 40 + 20, 10, dtype=torch.float16)
    assert half.dtype == torch.float16
    assert float(full[:, 10:-10, 10:-10].std()) == pytest.approx(1.0, abs=1e-3)
    # one rounding of unit-std values (2**-11 relative), nothing else
    assert bool(((half.float() - full).abs() <= 2**-10 * full.abs() + 1e-4).all())
    geo = _geometry(angles)
    for head in ("pixel", "wavelet"):
        model, _ = load_model(default_model_path(head))
        f32 = reconstruct(data, geo, model=model, shape=(12, 40, 44), images_dtype=torch.float32)
        f16 = reconstruct(data, geo, model=model, shape=(12, 40, 44))  # the default
        diff = (f16 - f32) / f32.std()
        assert 0 < float(diff.abs().max()) < 2e-2  # stated: 0.4 % at most, 0.03 % typical
        assert float(diff.std()) < 2e-3
    with pytest.raises(InputError, match="images_dtype"):
        reconstruct(data, geo, model=model, shape=(12, 40, 44), images_dtype=torch.int16)


def test_a_failure_mid_way_leaves_no_tomogram(tmp_path, monkeypatch):
    from inversa.core import io
    from inversa.workflows import ReconstructionConfig, reconstruct_file

    stack = 100.0 + torch.randn(5, 32, 32, generator=torch.Generator().manual_seed(1))
    io.write_mrc(tmp_path / "ts.mrc", stack, voxel_size=10.0)
    io.write_tlt(tmp_path / "ts.tlt", torch.linspace(-40, 40, 5))
    model = tmp_path / "m.safetensors"
    save_model(model, SliceSet(SliceSetConfig(patch_size=3, head="pixel")))
    config = ReconstructionConfig(method="cryolithe", model=str(model), thickness=8)
    out = tmp_path / "tomo.mrc"
    counter = itertools.count()  # next() is atomic: chunks may run on worker threads
    original = SliceSet.from_pooled

    def failing(self, pooled):
        if next(counter) == 2:  # the third chunk fails, after two have been made
            raise RuntimeError("interrupted")
        return original(self, pooled)

    monkeypatch.setattr(SliceSet, "from_pooled", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        reconstruct_file(tmp_path / "ts.mrc", out_path=out, config=config)
    assert next(counter) >= 3  # other workers may have started a chunk meanwhile
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "ts.mrc", "ts.tlt"]
    monkeypatch.setattr(SliceSet, "from_pooled", original)
    reconstruct_file(tmp_path / "ts.mrc", out_path=out, config=config)
    assert tuple(io.read_mrc(out)[0].shape) == (8, 32, 32)  # 4 chunks of 2,048 points


def test_grouped_set_sum_equals_one_tilt_at_a_time():
    from inversa.cryolithe import pooled_set_sum

    g = torch.Generator().manual_seed(2)
    patches = torch.randn(7, 20, 5, 5, generator=g)
    w, b = torch.randn(7, 5, 6, generator=g), torch.randn(7, 6, generator=g)
    one = pooled_set_sum(patches, w, b, group_bytes=0)
    expect = sum(torch.relu(patches[t].reshape(-1, 5) @ w[t] + b[t]) for t in range(7))
    torch.testing.assert_close(one, expect.reshape(20, 5, 6))
    for group_bytes in (20 * 5 * 6 * 4 * 3, 1 << 30):  # groups of 3, all at once
        torch.testing.assert_close(pooled_set_sum(patches, w, b, group_bytes=group_bytes), one)


def test_rotating_xf_resamples_once_and_matches_the_exact_path():
    g = torch.Generator().manual_seed(8)
    # smooth images (the double interpolation only blurs the finest detail)
    raw = torch.randn(5, 1, 24, 28, generator=g)
    data = torch.nn.functional.avg_pool2d(raw, 5, stride=1, padding=2)[:, 0] * 25
    angles = [-40.0, -20.0, 0.0, 20.0, 40.0]
    xf = torch.zeros(5, 2, 3, dtype=torch.float64)
    for t, deg in enumerate([3.0, -2.0, 0.5, 1.0, -3.0]):
        c, s_ = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        xf[t, :, :2] = torch.tensor([[c, -s_], [s_, c]])
        xf[t, :, 2] = torch.tensor([0.7 * t - 1.0, 0.4 - 0.3 * t])
    geo = _geometry(angles, xf)
    model, _ = load_model(default_model_path("pixel"))
    fast = reconstruct(data, geo, model=model, shape=(8, 24, 28))
    exact = reconstruct(data, geo, model=model, shape=(8, 24, 28), exact_xf=True)
    inner = (slice(None), slice(4, -4), slice(4, -4))  # away from the image borders
    err = (fast - exact)[inner].std() / exact[inner].std()
    assert float(err) < 0.1
    # and the .xf matters: ignoring it is far worse
    plain = reconstruct(data, _geometry(angles), model=model, shape=(8, 24, 28))
    assert float((plain - exact)[inner].std() / exact[inner].std()) > 3 * float(err)


def test_reconstruct_refuses_a_volume_that_does_not_fit():
    net = SliceSet(SliceSetConfig(patch_size=3))
    with pytest.raises(InputError, match="does not fit"):
        reconstruct(torch.zeros(3, 8, 8), _geometry([0.0, 1.0, 2.0]), model=net, shape=(4, 8, 9))
    with pytest.raises(InputError, match="tilt angles"):
        reconstruct(torch.zeros(3, 8, 8), _geometry([0.0, 1.0]), model=net, shape=(4, 8, 8))


# --- training pieces -----------------------------------------------------------------


def test_sample_points_focus_on_structure():
    t = torch.zeros(1, 4, 8, 8)
    t[0, 1, 2, 5] = 10.0
    pts, vals = sample_points(
        t, 200, focus=1.0, block=1, generator=torch.Generator().manual_seed(0)
    )
    assert (vals[:, 0] == 10.0).float().mean() > 0.95
    # voxel (k=1, j=2, i=5) of a (4, 8, 8) volume is at (5 - 4, 2 - 4, 1 - 2)
    assert torch.equal(pts[vals[:, 0] == 10.0][0], torch.tensor([1.0, -2.0, -1.0]))
    pts, _ = sample_points(t, 500, focus=0.0, block=1, generator=torch.Generator().manual_seed(0))
    assert len({tuple(p.tolist()) for p in pts}) > 150  # uniform: spread over the volume


def test_voxel_points_follow_the_centre_convention():
    p = voxel_points((2, 4, 6))
    assert torch.equal(p[0, 0, 0], torch.tensor([-3.0, -2.0, -1.0]))
    b = voxel_points((2, 4, 6), block=2)
    assert b.shape == (1, 2, 3, 3)
    assert torch.equal(b[0, 0, 0], torch.tensor([-2.5, -1.5, -0.5]))


def test_unet_peer_shapes_and_residual():
    net = WBPUNet(UNetConfig(channels=2, depth=2))
    x = torch.randn(1, 1, 8, 8, 8)
    y = net(x)
    assert y.shape == x.shape
    with torch.no_grad():
        net.out.weight.zero_()
        net.out.bias.zero_()
    torch.testing.assert_close(net(x), x)


def test_unet_peer_stops_at_its_wall_time_budget():
    from inversa.core import phantoms
    from inversa.cryolithe import DataConfig, train_unet

    small = str(phantoms.builtin_structure_path("1ake"))  # small: a quick scene
    data = DataConfig(
        structure=small, n_scenes=1, shape=(16, 32, 32), voxel_sizes=(8.0, 8.0), particles=(1, 1)
    )
    cfg = UNetConfig(channels=2, depth=1)
    _, info = train_unet(data, config=cfg, steps=50, crop=16, seconds=1e-3)
    assert info["steps"] == 1  # over budget from the start: one step, then stop
    assert info["budget_seconds"] == 1e-3
    _, info = train_unet(data, config=cfg, steps=3, crop=16)
    assert info["steps"] == 3 and info["budget_seconds"] is None
    with pytest.raises(InputError):
        train_unet(data, config=cfg, steps=3, seconds=0.0)
    # the same budget in CPU seconds (the benchmark's equal-budget rule)
    _, info = train_unet(data, config=cfg, steps=50, crop=16, seconds=1e-3, clock="cpu")
    assert info["steps"] == 1 and info["budget_clock"] == "cpu"
    assert info["training_cpu_seconds"] > 0
    with pytest.raises(InputError, match="clock"):
        train_unet(data, config=cfg, steps=3, seconds=1.0, clock="gpu")


def test_training_resumes_exactly(tmp_path, monkeypatch):
    from inversa.core import phantoms
    from inversa.cryolithe import DataConfig, TrainingConfig, train_model

    data = DataConfig(
        structure=str(phantoms.builtin_structure_path("1ake")),
        n_scenes=1,
        shape=(16, 24, 24),
        voxel_sizes=(8.0, 8.0),
        particles=(2, 2),
        membranes=(0, 0),
        tilt_max=(40.0, 40.0),
        tilt_steps=(10.0,),
    )
    model = SliceSetConfig(patch_size=3, row_features=4, set_features=4, head="wavelet")

    def config(steps):
        return TrainingConfig(
            model=model,
            data=data,
            steps=steps,
            batch_points=16,
            series_every=2,
            warmup=1,
            checkpoint_every=2,
        )

    straight, info = train_model(config(4), progress=False)
    assert info["steps_run"] == 4 and math.isfinite(info["final_loss"])
    ckpt = tmp_path / "ckpt.pt"
    import inversa.cryolithe._train as train_module

    calls = []
    real = train_module.extract_patches

    def dies_at_step_3(*args, **kwargs):  # an interruption after the step-2 checkpoint
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "extract_patches", dies_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train_model(config(4), checkpoint=ckpt, progress=False)
    monkeypatch.setattr(train_module, "extract_patches", real)
    resumed, info = train_model(config(4), checkpoint=ckpt, progress=False)
    assert info["resumed_from"] == 2
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("head", ["pixel", "wavelet"])
def test_shipped_models_load_and_record_their_training(head):
    from inversa.cryolithe import default_model_path

    path = default_model_path(head)
    assert path.stat().st_size < 4 * 2**20  # "a few MB at most"
    model, info = load_model(path)
    assert model.config.head == head
    # both heads: one 6,000-step run on one thread; the pixel head with the paper's patch
    # size on 96 scenes (docs/cryolithe.md, "Shipped models"), the wavelet head the defaults
    assert info["steps"] == info["steps_run"] == 6000 and info["resumed_from"] == 0
    assert info["training_seconds"] > 0
    assert "inversa cryolithe train" in info["command"]
    if head == "pixel":
        assert model.config.patch_size == 21 and info["n_scenes"] == 96
        assert "--patch-size 21 --scenes 96" in info["command"]
        assert 0 < info["training_cpu_seconds"] <= 1600.0
    else:
        assert model.config.patch_size == 9
        assert 0 < info["training_cpu_seconds"] <= 625.0


def test_make_scenes_draws_again_when_particles_do_not_fit(monkeypatch):
    from inversa.core.errors import InputError
    from inversa.cryolithe import _data

    real = _data.make_scene
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs["n_particles"])
        if len(calls) == 1:  # the first draw's particles do not fit
            raise InputError(None, "could place only 4 of 5 particles without overlap")
        return real(**kwargs)

    monkeypatch.setattr(_data, "make_scene", flaky)
    config = _data.DataConfig(n_scenes=2, shape=(32, 64, 64), particles=(1, 1), membranes=(0, 0))
    scenes = _data.make_scenes(config)
    assert len(scenes) == 2 and len(calls) >= 3  # the refused draw was drawn again
    monkeypatch.setattr(
        _data, "make_scene", lambda **kw: (_ for _ in ()).throw(InputError(None, "x"))
    )
    with pytest.raises(InputError):
        _data.make_scenes(config)

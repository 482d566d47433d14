"""ICE-TIDE with a CTF: patch rendering, defocus files, phase flipping, the CTF fit."""

from __future__ import annotations

import pytest
import torch
from test_icetide import _blobs, _pixels, _shift_only_config  # shared with those tests

from inversa.core.errors import InputError
from inversa.icetide import (
    IceTideConfig,
    alignment_errors,
    ctf_padding,
    filter_patches,
    fit_icetide,
    phase_flip_tilts,
    read_ctf,
    render_rays,
    rigid_xf,
)
from inversa.tomography import (
    CTFParams,
    TiltGeometry,
    TiltSeriesCTF,
    TiltSeriesProjector,
    apply_ctf,
    phase_flip,
    tilt_ctf_grid,
)

PIXEL_A = 8.0


def _patch_points(y0, x0, size, pad, h, w, t):
    iy = torch.arange(size, dtype=torch.float64) + y0 - pad
    ix = torch.arange(size, dtype=torch.float64) + x0 - pad
    yy, xx = torch.meshgrid(iy, ix, indexing="ij")
    pts = torch.stack([xx - w // 2, yy - h // 2], -1).reshape(1, -1, 2)
    return pts.expand(t, -1, -1)


def test_ctf_patches_equal_the_ctf_filtered_full_projection():
    shape, (h, w) = (12, 48, 48), (48, 48)
    _volume, field = _blobs(shape, 6, seed=3, sigma=1.5, margin=14)
    geometry = TiltGeometry.from_range(-60, 60, 40)
    t = geometry.n_tilts
    defocus = torch.tensor([1.5, 2.5, 3.0, 2.0], dtype=torch.float64)
    ctf = TiltSeriesCTF(angles=geometry.angles, defocus_u_um=defocus)
    full = render_rays(field, geometry.angles, _pixels(t, h, w), volume_shape=shape, n_samples=200)
    want = apply_ctf(full.reshape(t, h, w), CTFParams(pixel_size_A=PIXEL_A, defocus_um=defocus))
    pad = ctf_padding(ctf, PIXEL_A)
    assert pad == 6  # 3 um at 8 A: the CTF moves Nyquist detail by 4.6 px

    def patch_error(inner, margin):
        size = inner + 2 * margin
        pts = _patch_points(14, 18, size, margin, h, w, t)
        patch = render_rays(field, geometry.angles, pts, volume_shape=shape, n_samples=200)
        transfer = tilt_ctf_grid(ctf, (size, size), pixel_size_A=PIXEL_A)
        got = filter_patches(patch.reshape(t, size, size), transfer)
        got = got[:, margin : margin + inner, margin : margin + inner]
        ref = want[:, 14 : 14 + inner, 18 : 18 + inner]
        return float((got - ref).abs().max() / ref.abs().max())

    assert patch_error(16, pad) < 0.02  # measured 0.009
    assert patch_error(16, 0) > 0.3  # without the margin the check fails


def test_read_ctf_from_a_number_and_from_ctffind_and_imod_files(tmp_path):
    angles = torch.tensor([-30.0, 0.0, 30.0], dtype=torch.float64)
    one = read_ctf("2.5", angles, voltage_kv=200.0)
    assert one.defocus_u_um.tolist() == [2.5, 2.5, 2.5] and one.voltage_kv == 200.0
    ctffind = tmp_path / "diag.txt"
    ctffind.write_text(
        "# ctffind output\n1 20000 21000 30 0 0.1 8\n2 25000 25000 0 0 0.1 8\n"
        "3 30000 31000 -10 0 0.1 8\n"
    )
    table = read_ctf(ctffind, angles)
    torch.testing.assert_close(table.defocus_u_um, torch.tensor([2.0, 2.5, 3.0]).double())
    torch.testing.assert_close(table.defocus_v_um, torch.tensor([2.1, 2.5, 3.1]).double())
    imod = tmp_path / "ts.defocus"
    imod.write_text("1 1 -30.0 -30.0 2000 2\n2 2 0.0 0.0 2500\n3 3 30.0 30.0 3000\n")
    torch.testing.assert_close(read_ctf(imod, angles).defocus_u_um, table.defocus_u_um)
    with pytest.raises(InputError, match="2 defocus rows but the tilt series 3") as err:
        imod.write_text("1 1 -30.0 -30.0 2000 2\n2 2 0.0 0.0 2500\n")
        read_ctf(imod, angles)
    assert str(err.value.path) == str(imod)
    with pytest.raises(InputError, match="not found"):
        read_ctf(tmp_path / "missing.defocus", angles)


def test_phase_flip_tilts_equals_phase_flip_for_one_defocus():
    images = torch.randn(3, 20, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ctf = TiltSeriesCTF(angles=torch.tensor([-20.0, 0.0, 20.0]), defocus_u_um=2.0)
    flipped = phase_flip_tilts(images, ctf, pixel_size_A=PIXEL_A)
    reference = phase_flip(images, CTFParams(pixel_size_A=PIXEL_A, defocus_um=2.0))
    torch.testing.assert_close(flipped, reference)
    with pytest.raises(InputError, match="tilts"):
        phase_flip_tilts(images[:2], ctf, pixel_size_A=PIXEL_A)


def test_fit_refuses_a_ctf_of_another_length_or_without_pixel_size():
    stack = 10.0 - torch.rand(3, 16, 16)
    geometry = TiltGeometry(angles=torch.tensor([-20.0, 0.0, 20.0]))
    config = IceTideConfig(steps=1, rays_per_step=16, samples_per_ray=4, local_grid=0)
    ctf = TiltSeriesCTF(angles=torch.tensor([0.0, 10.0]), defocus_u_um=2.0)
    with pytest.raises(InputError, match="CTF has 2 tilts"):
        fit_icetide(stack, geometry, config=config, ctf=ctf, pixel_size_A=PIXEL_A)
    ctf = TiltSeriesCTF(angles=geometry.angles, defocus_u_um=2.0)
    with pytest.raises(InputError, match="pixel size"):
        fit_icetide(stack, geometry, config=config, ctf=ctf)


def test_resume_with_another_data_term_is_refused(tmp_path):
    stack = 10.0 - torch.rand(3, 16, 16)
    geometry = TiltGeometry(angles=torch.tensor([-20.0, 0.0, 20.0]))
    config = IceTideConfig(
        steps=2, rays_per_step=64, samples_per_ray=4, local_grid=0, thickness=8,
        log2_table_size=8, n_levels=2, base_resolution=4, hidden=(8,), ctf_patch=4,
    )  # fmt: skip
    ctf = TiltSeriesCTF(angles=geometry.angles, defocus_u_um=2.0)
    ckpt = tmp_path / "c.pt"
    fit_icetide(stack, geometry, config=config, ctf=ctf, pixel_size_A=PIXEL_A, checkpoint=ckpt)
    saved = ckpt.read_bytes()
    with pytest.raises(InputError, match=r"CTF model on 4 px patches.*this run has no CTF"):
        fit_icetide(stack, geometry, config=config, checkpoint=ckpt)
    bigger = IceTideConfig(**{**config.__dict__, "ctf_patch": 8})
    with pytest.raises(InputError, match=r"on 4 px patches.*on 8 px patches"):
        fit_icetide(stack, geometry, config=bigger, ctf=ctf, pixel_size_A=PIXEL_A, checkpoint=ckpt)
    assert ckpt.read_bytes() == saved


def test_ctf_model_fits_the_scene_where_the_plain_model_fits_its_ctf_image():
    # Per-tilt defocus 1.5-3.5 um: no single volume explains these images by plain line
    # integrals. The CTF model's field is the scene (correlation with it measured 0.91 vs
    # 0.76 without the model) and its shifts are as good (measured 0.38 vs 0.30 px median;
    # with these 80 steps neither is better: see docs/icetide.md, "CTF").
    shape = (8, 32, 32)
    volume, _ = _blobs(shape, 20, seed=1, sigma=1.8, margin=3)
    geometry = TiltGeometry.from_range(-60, 60, 15.0)
    t = geometry.n_tilts
    g = torch.Generator().manual_seed(1)
    true = (torch.rand(t, 2, generator=g, dtype=torch.float64) * 2 - 1) * 1.0
    xf = rigid_xf(torch.zeros(t, dtype=torch.float64), true)
    raw = TiltSeriesProjector(volume_shape=shape, geometry=geometry.replace(xf=xf))
    defocus = 2.5 + torch.linspace(-1, 1, t, dtype=torch.float64)[torch.randperm(t, generator=g)]
    ctf = TiltSeriesCTF(angles=geometry.angles, defocus_u_um=defocus)
    params = CTFParams(pixel_size_A=PIXEL_A, defocus_um=defocus)
    stack = (10.0 - apply_ctf(raw.forward(volume), params)).float()
    config = _shift_only_config(ctf_patch=8, ctf_lowpass=0.0)  # the patch model alone

    def score(**kw):
        fit = fit_icetide(stack, geometry, config=config, **kw)
        v = torch.stack([fit.volume.double().flatten(), volume.flatten()])
        return float(torch.corrcoef(v)[0, 1]), alignment_errors(fit.xf, xf)["shift_err_median_px"]

    corr_ctf, shift_ctf = score(ctf=ctf, pixel_size_A=PIXEL_A)
    corr_plain, shift_plain = score()
    assert corr_ctf > 0.85 and corr_ctf > corr_plain + 0.08
    assert shift_ctf < 0.5 and shift_plain < 0.5

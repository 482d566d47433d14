import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inversa.core import fourier
from inversa.core.metrics import (
    angular_error,
    angular_error_stats,
    fit_affine,
    fourier_shell_correlation,
    fsc_resolution,
    pearson_correlation,
    psnr,
    ssim,
)
from inversa.core.rotations import axis_angle_to_matrix, random_rotations

F64 = torch.float64


def _pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    ref = torch.randn(shape, generator=g, dtype=F64).cumsum(-1)  # some structure
    x = ref + 0.5 * torch.randn(shape, generator=g, dtype=F64)
    return x, ref


def test_psnr_matches_skimage_and_batches():
    x, ref = _pair((3, 20, 24))
    for i in range(3):
        expected = peak_signal_noise_ratio(
            ref[i].numpy(), x[i].numpy(), data_range=float(ref[i].max() - ref[i].min())
        )
        assert psnr(x[i], ref[i]).item() == pytest.approx(expected, rel=1e-12)
    batched = psnr(x, ref, ndim=2)
    assert batched.shape == (3,)
    torch.testing.assert_close(batched[1], psnr(x[1], ref[1]))
    mse = (x - ref).square().mean()
    assert psnr(x, ref, data_range=2.0).item() == pytest.approx(10 * math.log10(4 / mse.item()))


@pytest.mark.parametrize(("shape", "win"), [((32, 27), 7), ((15, 16, 17), 7), ((20, 20), 5)])
def test_ssim_matches_skimage(shape, win):
    x, ref = _pair(shape, seed=1)
    data_range = float(ref.max() - ref.min())
    expected = structural_similarity(x.numpy(), ref.numpy(), data_range=data_range, win_size=win)
    assert ssim(x, ref, data_range=data_range, win_size=win).item() == pytest.approx(
        expected, abs=1e-10
    )
    assert ssim(x, ref, win_size=win).item() == pytest.approx(expected, abs=1e-10)
    assert ssim(ref, ref, win_size=win).item() == pytest.approx(1.0, abs=1e-12)


def test_ssim_batched_float32():
    x, ref = _pair((2, 3, 16, 16), seed=2)
    out = ssim(x.float(), ref.float(), ndim=2)
    assert out.shape == (2, 3) and out.dtype == torch.float32
    expected = structural_similarity(
        x[1, 2].numpy(), ref[1, 2].numpy(), data_range=float(ref[1, 2].max() - ref[1, 2].min())
    )
    assert out[1, 2].item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="ndim"):
        ssim(x, ref)
    with pytest.raises(ValueError, match="win_size"):
        ssim(x[0, 0], ref[0, 0], win_size=4)


def test_pearson_and_fit_affine():
    x, ref = _pair((4, 50), seed=3)
    r = pearson_correlation(x, ref, ndim=1)
    for i in range(4):
        assert r[i].item() == pytest.approx(np.corrcoef(x[i].numpy(), ref[i].numpy())[0, 1])
    torch.testing.assert_close(
        pearson_correlation(-3 * ref + 2, ref), torch.tensor(-1.0, dtype=F64)
    )
    assert pearson_correlation(torch.ones(5), torch.arange(5.0)).item() == 0.0
    # An exact affine copy is recovered exactly; otherwise the fit is the lstsq solution.
    torch.testing.assert_close(fit_affine(0.1 * ref - 7, ref), ref)
    fitted = fit_affine(x, ref, ndim=1)
    for i in range(4):
        design = np.stack([x[i].numpy(), np.ones(50)], axis=1)
        coef = np.linalg.lstsq(design, ref[i].numpy(), rcond=None)[0]
        np.testing.assert_allclose(fitted[i].numpy(), design @ coef, atol=1e-12)
    torch.testing.assert_close(
        fit_affine(torch.ones(5, dtype=F64), torch.arange(5.0, dtype=F64)),
        torch.full((5,), 2.0, dtype=F64),
    )


def test_angular_error_and_stats():
    g = torch.Generator().manual_seed(4)
    r_true = random_rotations(10, generator=g, dtype=F64)
    angles = torch.arange(10, dtype=F64)  # 0, 1, ..., 9 degrees
    axes = torch.nn.functional.normalize(torch.randn(10, 3, generator=g, dtype=F64), dim=-1)
    r_est = r_true @ axis_angle_to_matrix(torch.deg2rad(angles)[:, None] * axes)
    torch.testing.assert_close(angular_error(r_est, r_true), angles)
    stats = angular_error_stats(r_est, r_true)
    assert stats["mean"] == pytest.approx(4.5)
    assert stats["median"] == pytest.approx(4.5)
    assert stats["p90"] == pytest.approx(np.percentile(np.arange(10.0), 90))


def test_fsc_reexports():
    assert fourier_shell_correlation is fourier.fourier_shell_correlation
    assert fsc_resolution is fourier.fsc_resolution
    a = torch.randn(8, 8, 8, generator=torch.Generator().manual_seed(5), dtype=F64)
    torch.testing.assert_close(fourier_shell_correlation(a, a), torch.ones(5, dtype=F64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    x, ref = _pair((2, 16, 16), seed=6)
    gx, gref = x.cuda(), ref.cuda()
    torch.testing.assert_close(ssim(gx, gref, ndim=2).cpu(), ssim(x, ref, ndim=2))
    torch.testing.assert_close(psnr(gx, gref, ndim=2).cpu(), psnr(x, ref, ndim=2))
    torch.testing.assert_close(fit_affine(gx, gref).cpu(), fit_affine(x, ref))

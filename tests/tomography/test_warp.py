import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from inversa.core.errors import InputError
from inversa.tomography._warp import (
    Warp2D,
    align_images,
    invert_xf,
    warp_images,
    warp_images_adjoint,
)


def _xf(angle_deg: float, shift: tuple[float, float], scale: float = 1.0) -> torch.Tensor:
    a = math.radians(angle_deg)
    return torch.tensor(
        [
            [
                [scale * math.cos(a), -math.sin(a), shift[0]],
                [math.sin(a), scale * math.cos(a), shift[1]],
            ]
        ],
        dtype=torch.float64,
    )


def _rand(*shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_identity_and_integer_shift():
    img = _rand(1, 7, 8)
    torch.testing.assert_close(warp_images(img, _xf(0, (0, 0))), img, rtol=0, atol=1e-15)
    # out(r) = img(r + d): d = (2, -1) moves content left by 2 and down by 1
    out = warp_images(img, _xf(0, (2.0, -1.0)))
    expected = torch.zeros_like(img)
    expected[0, 1:, :-2] = img[0, :-1, 2:]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-15)


def test_quarter_turn_is_an_exact_permutation_about_the_centre_pixel():
    img = _rand(1, 9, 9)
    out = warp_images(img, _xf(90, (0, 0)))
    # A = [[0, -1], [1, 0]]: out(x, y) = img(-y, x)
    c = 4
    for i in range(9):
        for j in range(9):
            x, y = j - c, i - c
            src = (x + c, -y + c)  # (row, col) of (x', y') = (-y, x)
            assert float(out[0, i, j]) == pytest.approx(float(img[0, src[0], src[1]]), abs=1e-12)


def test_matches_scipy_affine_transform():
    img = _rand(1, 12, 11)
    xf = _xf(17, (1.3, -0.6), scale=1.05)
    out = warp_images(img, xf)[0].numpy()
    a = xf[0, :, :2].numpy()
    d = xf[0, :, 2].numpy()
    centre = np.array([12 // 2, 11 // 2], dtype=float)  # (row, col)
    # input (row, col) = M (row, col) + offset, with (x, y) swapped to (y, x)
    m = np.array([[a[1, 1], a[1, 0]], [a[0, 1], a[0, 0]]])
    offset = centre + d[::-1] - m @ centre
    ref = ndimage.affine_transform(
        img[0].numpy(), m, offset=offset, order=1, mode="grid-constant", cval=0.0
    )
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_align_undoes_warp_in_the_interior():
    n = 40
    y, x = torch.meshgrid(
        torch.arange(n, dtype=torch.float64) - n // 2,
        torch.arange(n, dtype=torch.float64) - n // 2,
        indexing="ij",
    )
    img = torch.exp(-((x - 2) ** 2 + (y + 1) ** 2) / 200)[None]
    xf = _xf(12, (1.5, -2.25))
    back = align_images(warp_images(img, xf), xf)
    inner = (x.abs() < 12) & (y.abs() < 12)
    assert float((back[0] - img[0])[inner].abs().max()) < 5e-3
    torch.testing.assert_close(invert_xf(invert_xf(xf)), xf, rtol=1e-12, atol=1e-12)


def test_adjoint_and_batching_with_several_images():
    xf = torch.cat([_xf(5, (0.3, 0.1)), _xf(-20, (-1.1, 2.4), 0.9), _xf(0, (0, 0))])
    op = Warp2D(image_shape=(6, 5), xf=xf)
    x = _rand(2, 3, 6, 5)
    y = torch.randn(2, 3, 6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    lhs = float((op.forward(x) * y).sum())
    rhs = float((x * op.adjoint(y)).sum())
    assert abs(lhs - rhs) < 1e-12 * abs(lhs)
    torch.testing.assert_close(warp_images_adjoint(y, xf), op.adjoint(y), rtol=0, atol=0)


def test_bad_xf_raises():
    with pytest.raises(InputError):
        warp_images(torch.zeros(2, 4, 4), torch.zeros(3, 2, 3))
    with pytest.raises(InputError):
        Warp2D(image_shape=(4, 4), xf=torch.zeros(2, 3, 3))

"""The one frequency grid: layouts, options and agreement with torch.fft."""

import pytest
import torch

from inversa.core.errors import InputError
from inversa.core.fourier import frequency_grid


@pytest.mark.parametrize("shape", [(5,), (6,), (4, 7), (5, 6), (3, 4, 5), (6, 5, 4)])
def test_full_unshifted_matches_fftfreq_per_axis(shape):
    k = frequency_grid(shape, fftshift=False, dtype=torch.float64)
    assert k.shape == (*shape, len(shape))
    for axis, n in enumerate(shape):
        component = len(shape) - 1 - axis  # component 0 is x, the last axis
        index = [0] * len(shape)
        index[axis] = slice(None)
        torch.testing.assert_close(
            k[tuple(index)][..., component], torch.fft.fftfreq(n, dtype=torch.float64)
        )


@pytest.mark.parametrize("shape", [(5, 7), (6, 8), (5, 4, 6)])
def test_fftshift_puts_zero_at_n_over_2_and_matches_fftshift(shape):
    k = frequency_grid(shape, fftshift=True, dtype=torch.float64)
    centre = tuple(n // 2 for n in shape)
    assert torch.count_nonzero(k[centre]) == 0
    dims = tuple(range(len(shape)))
    unshifted = frequency_grid(shape, fftshift=False, dtype=torch.float64)
    torch.testing.assert_close(k, torch.fft.fftshift(unshifted, dim=dims))
    # the default of a full spectrum is the centred layout
    torch.testing.assert_close(frequency_grid(shape, dtype=torch.float64), k)


@pytest.mark.parametrize("shape", [(5, 7), (6, 8), (4, 5, 6), (5, 4, 7)])
def test_rfft_is_the_nonnegative_half_of_the_full_grid(shape):
    full = frequency_grid(shape, fftshift=False, dtype=torch.float64)
    half = frequency_grid(shape, rfft=True, dtype=torch.float64)
    w = shape[-1]
    assert half.shape == (*shape[:-1], w // 2 + 1, len(shape))
    torch.testing.assert_close(
        half[..., 0][(0,) * (len(shape) - 1)], torch.fft.rfftfreq(w).double()
    )
    # Same frequencies as the full grid except the sign of x Nyquist (even w).
    torch.testing.assert_close(half[..., : w // 2, :], full[..., : w // 2, :])
    # rfft shape equals that of torch.fft.rfftn
    assert half.shape[:-1] == torch.fft.rfftn(torch.zeros(shape)).shape
    shifted = frequency_grid(shape, rfft=True, fftshift=True, dtype=torch.float64)
    torch.testing.assert_close(shifted, torch.fft.fftshift(half, dim=tuple(range(len(shape) - 1))))


def test_norm_spacing_device_dtype():
    shape = (4, 6)
    k = frequency_grid(shape, fftshift=False, dtype=torch.float64)
    r = frequency_grid(shape, fftshift=False, norm=True, dtype=torch.float64)
    torch.testing.assert_close(r, torch.linalg.vector_norm(k, dim=-1))
    # spacing in Angstrom gives cycles per Angstrom; per-axis 1/n gives integer offsets
    torch.testing.assert_close(
        frequency_grid(shape, fftshift=False, spacing=2.5, dtype=torch.float64), k / 2.5
    )
    ints = frequency_grid(shape, fftshift=False, spacing=[1 / 4, 1 / 6], dtype=torch.float64)
    torch.testing.assert_close(ints[..., 0][0], torch.tensor([0.0, 1, 2, -3, -2, -1]).double())
    torch.testing.assert_close(ints[..., 1][:, 0], torch.tensor([0.0, 1, -2, -1]).double())
    assert frequency_grid(shape, dtype=torch.float16).dtype == torch.float16
    assert frequency_grid(shape, device="meta").device.type == "meta"
    with pytest.raises(InputError, match="spacings"):
        frequency_grid(shape, spacing=[1.0, 2.0, 3.0])

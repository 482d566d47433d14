import pytest
import torch

from inversa.alignment._average import average_particles
from inversa.alignment._volumes import rotate_volume, shift_volume, wedge_mask
from inversa.core import phantoms, rotations
from inversa.core.errors import InputError
from inversa.core.fourier import fourier_shell_correlation

N = 16


@pytest.fixture(scope="module")
def data():
    model = phantoms.read_atomic_model(phantoms.builtin_structure_path())
    ref = phantoms.reference_density(
        model, voxel_size=4.0, box=24, resolution=8.0, dtype=torch.float64
    )
    g = torch.Generator().manual_seed(0)
    rots = rotations.random_rotations(N, generator=g, dtype=torch.float64)
    shifts = (torch.rand(N, 3, generator=g, dtype=torch.float64) - 0.5) * 4
    particles = shift_volume(rotate_volume(ref, rots), shifts)
    return ref, rots, shifts, particles, g


def _wedged(x):
    w = wedge_mask(x.shape[-3:], dtype=x.dtype)
    return torch.fft.ifftn(torch.fft.fftn(x, dim=(-3, -2, -1)) * w, dim=(-3, -2, -1)).real


def test_average_of_rotated_copies_is_the_reference(data):
    ref, rots, shifts, particles, _ = data
    result = average_particles(particles, rots, shifts, pixel_size=4.0)
    fsc = fourier_shell_correlation(result.map, ref)
    assert (fsc[: int(0.8 * 12)] > 0.97).all(), fsc
    assert result.resolution == pytest.approx(8.0)  # half maps agree up to Nyquist
    assert (result.fsc[:10] > 0.95).all()
    assert result.map.shape == result.half1.shape == result.half2.shape == ref.shape


def test_wedge_weighting_restores_what_unweighted_averaging_dilutes(data):
    ref, rots, shifts, particles, _ = data
    wedged = _wedged(particles)
    weighted = average_particles(wedged, rots, shifts, wedge=(-60.0, 60.0)).map
    plain = average_particles(wedged, rots, shifts).map
    fsc_w = fourier_shell_correlation(weighted, ref)[:10]
    assert (fsc_w > 0.97).all(), fsc_w
    err_w = (weighted - ref).norm() / ref.norm()
    err_p = (plain - ref).norm() / ref.norm()
    assert err_w < err_p - 0.05, (err_w, err_p)


def test_half_map_fsc_falls_with_noise(data):
    ref, rots, shifts, particles, g = data
    resolutions, means = [], []
    for sigma in (0.5, 2.0, 8.0):
        noisy = particles + sigma * ref.std() * torch.randn(particles.shape, generator=g)
        result = average_particles(noisy, rots, shifts, pixel_size=4.0)
        resolutions.append(result.resolution)
        means.append(float(result.fsc[1:].mean()))
    assert means[0] > means[1] > means[2]
    assert resolutions[0] <= resolutions[1] <= resolutions[2]
    assert resolutions[2] > resolutions[0]


def test_bad_inputs(data):
    _, rots, shifts, particles, _ = data
    with pytest.raises(InputError, match="half sets"):
        average_particles(particles, rots, shifts, subsets=torch.ones(N, dtype=torch.int64))
    with pytest.raises(InputError, match="shifts"):
        average_particles(particles, rots, shifts[:-1])

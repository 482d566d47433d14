import pytest
import torch

from inversa.core.errors import InputError
from inversa.tomography import CTFParams, TiltSeriesCTF, ctf_2d, ctf_at, tilt_ctf_grid


def test_tilt_ctf_grid_equals_ctf_2d_per_tilt():
    defocus = torch.tensor([1.5, 2.0, 3.5], dtype=torch.float64)
    ctf = TiltSeriesCTF(angles=torch.tensor([-30.0, 0.0, 30.0]), defocus_u_um=defocus)
    grid = tilt_ctf_grid(ctf, (12, 20), pixel_size_A=4.0)
    ref = ctf_2d(CTFParams(pixel_size_A=4.0, defocus_um=defocus), (12, 20), rfft=True)
    assert grid.shape == (3, 12, 11)
    assert grid.dtype == torch.float64
    torch.testing.assert_close(grid, ref.double(), atol=2e-5, rtol=0)
    # chosen tilts, repeats allowed, in the order given
    picked = tilt_ctf_grid(ctf, (12, 20), pixel_size_A=4.0, tilts=torch.tensor([2, 0, 2]))
    torch.testing.assert_close(picked, grid[[2, 0, 2]])


def test_tilt_ctf_grid_astigmatism_in_the_image_frame():
    ctf = TiltSeriesCTF(
        angles=torch.tensor([0.0]), defocus_u_um=2.0, defocus_v_um=3.0, astigmatism_deg=0.0
    )
    grid = tilt_ctf_grid(ctf, (16, 16), pixel_size_A=5.0)[0]
    k = 3 / (16 * 5.0)
    along_x = ctf_at(torch.tensor([k, 0.0]), defocus_u_um=2.0, defocus_v_um=2.0)
    along_y = ctf_at(torch.tensor([0.0, k]), defocus_u_um=3.0, defocus_v_um=3.0)
    assert float(grid[0, 3]) == pytest.approx(float(along_x), abs=1e-6)  # x: defocus U
    assert float(grid[3, 0]) == pytest.approx(float(along_y), abs=1e-6)  # y: defocus V
    assert abs(float(along_x) - float(along_y)) > 0.05


def test_tilt_ctf_grid_refuses_bad_tilts_and_sizes():
    ctf = TiltSeriesCTF(angles=torch.tensor([0.0, 10.0]), defocus_u_um=2.0)
    with pytest.raises(InputError, match="tilt indices"):
        tilt_ctf_grid(ctf, (8, 8), pixel_size_A=1.0, tilts=torch.tensor([2]))
    with pytest.raises(InputError, match="positive"):
        tilt_ctf_grid(ctf, (0, 8), pixel_size_A=1.0)

"""Helpers shared inside core: reading an input file, reporting a solve, SSIM's ndim."""

import pytest
import torch

from inversa.core.errors import InputError
from inversa.core.io import read_json, read_star, read_tlt
from inversa.core.metrics import ssim
from inversa.core.solve import finish


def test_readers_report_a_missing_file_and_a_folder_alike(tmp_path):
    for reader in (read_json, read_star, read_tlt):
        with pytest.raises(InputError, match="file not found"):
            reader(tmp_path / "missing")
        with pytest.raises(InputError, match="cannot read file"):
            reader(tmp_path)


def test_tilt_file_line_endings_are_universal(tmp_path):
    angles = torch.tensor([-3.0, 0.0, 3.0], dtype=torch.float64)
    for name, newline in (("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")):
        path = tmp_path / f"{name}.tlt"
        path.write_bytes(newline.join(["-3", "0", "3"]).encode() + newline.encode())
        assert torch.equal(read_tlt(path), angles), name


def test_finish_reports_convergence_and_histories():
    info = finish(4, torch.tensor([False, True]), 0.5, objective=[3.0, 2.0])
    assert (info.n_iter, info.converged, info.relative_change) == (4, False, 0.5)
    assert info.objective == (3.0, 2.0) and info.residual_norms == ()
    done = finish(2, torch.zeros(2, dtype=torch.bool), 0.0, residual_norms=[1.0])
    assert done.converged and done.residual_norms == (1.0,)


def test_ssim_needs_ndim_for_batched_input():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="pass ndim=2 or ndim=3"):
        ssim(x, x)
    with pytest.raises(ValueError, match="ndim must be 2 or 3"):
        ssim(x[0, 0], x[0, 0], ndim=3)
    assert torch.allclose(ssim(x, x, ndim=2), torch.ones(2, 3, dtype=x.dtype))

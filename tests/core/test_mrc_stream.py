"""Streaming MRC writer: slab by slab, atomic, the same file as write_mrc."""

from __future__ import annotations

import io as io_module

import mrcfile
import numpy as np
import pytest
import torch

from inversa.core import io
from inversa.core.errors import InputError, OutputExistsError


def _volume(shape=(5, 6, 7)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 3 + 1


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_streamed_volume_equals_write_mrc(tmp_path):
    vol = _volume()
    with io.stream_mrc(tmp_path / "s.mrc", tuple(vol.shape), voxel_size=7.5) as out:
        assert len(out) == 5 and out.shape == (5, 6, 7)
        out[3:5] = vol[3:5]  # any order, tensors or arrays
        out[0:3] = vol[0:3].numpy()
    io.write_mrc(tmp_path / "w.mrc", vol, voxel_size=7.5)
    got, voxel = io.read_mrc(tmp_path / "s.mrc", ndim=3)
    assert voxel == 7.5
    assert torch.equal(got, vol)
    with mrcfile.open(tmp_path / "s.mrc") as a, mrcfile.open(tmp_path / "w.mrc") as b:
        for key in ("dmin", "dmax", "dmean", "rms", "mode", "nx", "ny", "nz", "ispg"):
            assert float(a.header[key]) == pytest.approx(float(b.header[key]), rel=1e-5), key
    assert mrcfile.validate(str(tmp_path / "s.mrc"), print_file=io_module.StringIO())
    assert _leftovers(tmp_path) == []


def test_a_failure_mid_way_leaves_nothing(tmp_path):
    target = tmp_path / "t.mrc"
    with pytest.raises(RuntimeError, match="boom"), io.stream_mrc(target, (4, 3, 3)) as out:
        out[0:2] = torch.ones(2, 3, 3)
        raise RuntimeError("boom")
    assert not target.exists() and _leftovers(tmp_path) == []
    # an existing file is left as it was
    io.write_mrc(target, torch.zeros(4, 3, 3))
    with (
        pytest.raises(RuntimeError, match="boom"),
        io.stream_mrc(target, (4, 3, 3), force=True) as out,
    ):
        out[0:2] = torch.ones(2, 3, 3)
        raise RuntimeError("boom")
    assert torch.equal(io.read_mrc(target)[0], torch.zeros(4, 3, 3))
    assert _leftovers(tmp_path) == []


def test_missing_repeated_or_bad_slabs_are_refused(tmp_path):
    target = tmp_path / "t.mrc"
    with pytest.raises(InputError, match="never written"), io.stream_mrc(target, (4, 3, 3)) as out:
        out[0:3] = torch.ones(3, 3, 3)
    assert not target.exists()
    with pytest.raises(InputError, match="already written"), io.stream_mrc(target, (4, 3, 3)) as o:
        o[0:2] = torch.ones(2, 3, 3)
        o[1:3] = torch.ones(2, 3, 3)
    with pytest.raises(InputError, match="NaN"), io.stream_mrc(target, (2, 3, 3)) as o:
        o[0:2] = torch.full((2, 3, 3), float("nan"))
    with pytest.raises(InputError, match="slab of shape"), io.stream_mrc(target, (2, 3, 3)) as o:
        o[0:2] = torch.ones(1, 3, 3)
    with pytest.raises(InputError, match="z slices"), io.stream_mrc(target, (2, 3, 3)) as o:
        o[0] = torch.ones(3, 3)
    with pytest.raises(InputError, match="shape"), io.stream_mrc(target, (3, 3)):
        pass
    assert not target.exists() and _leftovers(tmp_path) == []


def test_bands_of_rows_fill_the_volume_in_any_order(tmp_path):
    vol = torch.arange(4 * 5 * 3, dtype=torch.float32).reshape(4, 5, 3)
    target = tmp_path / "rows.mrc"
    with io.stream_mrc(target, (4, 5, 3)) as out:
        out[2:4, 3:5] = vol[2:4, 3:5]  # boxes of whole rows, out of order
        out[0:2] = vol[0:2]
        out[2:4, 0:3] = vol[2:4, 0:3]
    back, _ = io.read_mrc(target)
    assert torch.equal(back, vol)
    header = mrcfile.open(target).header
    assert float(header.dmean) == pytest.approx(float(vol.mean()))
    assert float(header.rms) == pytest.approx(float(vol.std(unbiased=False)))
    with (
        pytest.raises(InputError, match="never written"),
        io.stream_mrc(target, (4, 5, 3), force=True) as o,
    ):
        o[0:4, 0:4] = vol[:, :4]  # row 4 of every slice missing
    with (
        pytest.raises(InputError, match="already written"),
        io.stream_mrc(target, (4, 5, 3), force=True) as o,
    ):
        o[0:2, 0:3] = vol[0:2, 0:3]
        o[1:2, 2:5] = vol[1:2, 2:5]
    with (
        pytest.raises(InputError, match="slab of shape"),
        io.stream_mrc(target, (4, 5, 3), force=True) as o,
    ):
        o[0:2, 0:3] = vol[0:2, 0:2]
    assert torch.equal(io.read_mrc(target)[0], vol)  # the failed writes left it as it was
    assert _leftovers(tmp_path) == []


def test_existing_output_needs_force(tmp_path):
    target = tmp_path / "t.mrc"
    io.write_mrc(target, torch.zeros(2, 3, 3))
    with pytest.raises(OutputExistsError), io.stream_mrc(target, (2, 3, 3)):
        pass
    with io.stream_mrc(target, (2, 3, 3), force=True) as out:
        out[0:2] = np.full((2, 3, 3), 2.0, dtype=np.float32)
    assert torch.equal(io.read_mrc(target)[0], torch.full((2, 3, 3), 2.0))

import os
import warnings

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile
import torch

from inversa.core.errors import InputError, OutputExistsError
from inversa.core.io import (
    RELION5_PARTICLE_COLUMNS,
    atomic_write,
    make_optics_table,
    read_mrc,
    read_particles,
    read_star,
    read_tlt,
    read_xf,
    write_mrc,
    write_particles,
    write_star,
    write_tlt,
    write_xf,
)


def _write_raw(path, array):
    # mrcfile warns when it computes header statistics of NaN/inf data; here that is the point.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with mrcfile.new(path) as mrc:
            mrc.set_data(array)


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


# ---------------------------------------------------------------- atomic writes


def test_atomic_write_renames_temp_with_same_suffix(tmp_path):
    target = tmp_path / "out.mrc"
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".out.mrc.tmp-")
        assert tmp.suffix == ".mrc"
        assert not target.exists()
        tmp.write_text("payload")
    assert target.read_text() == "payload"
    assert _leftovers(tmp_path) == []
    # The usual umask-derived mode, not mkstemp's private 0o600.
    mask = os.umask(0o022)
    os.umask(mask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~mask


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(ZeroDivisionError), atomic_write(target) as tmp:
        tmp.write_text("partial")
        _ = 1 / 0
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_existing_file_on_failure_with_force(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target, force=True) as tmp:
        tmp.write_text("new")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_write_refuses_existing_before_work(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    entered = False
    with pytest.raises(OutputExistsError) as info, atomic_write(target):
        entered = True
    assert not entered
    assert "out.txt" in str(info.value)
    assert target.read_text() == "old"
    with atomic_write(target, force=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_atomic_write_missing_parent(tmp_path):
    with pytest.raises(InputError, match="does not exist"), atomic_write(tmp_path / "no" / "f.txt"):
        pass


def test_output_exists_error_for_every_writer(tmp_path):
    target = tmp_path / "exists"
    target.write_text("keep")
    writers = [
        lambda: write_mrc(target, torch.zeros(2, 2)),
        lambda: write_tlt(target, [1.0]),
        lambda: write_xf(target, torch.zeros(1, 2, 3)),
        lambda: write_star(target, {"a": pd.DataFrame({"rlnX": [1]})}),
        lambda: write_particles(
            target, pd.DataFrame({"rlnX": [1]}), make_optics_table(pixel_size=1)
        ),
    ]
    for write in writers:
        with pytest.raises(OutputExistsError):
            write()
    assert target.read_text() == "keep"


# ---------------------------------------------------------------- MRC


@pytest.mark.parametrize("shape", [(5, 6), (3, 5, 6)])
def test_mrc_round_trip(tmp_path, shape):
    data = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "x.mrc"
    write_mrc(path, data, voxel_size=2.5)
    back, voxel = read_mrc(path)
    assert back.dtype == torch.float32
    assert back.shape == data.shape
    torch.testing.assert_close(back, data, rtol=0, atol=0)
    assert voxel == pytest.approx(2.5)
    with open(os.devnull, "w") as sink:
        assert mrcfile.validate(str(path), print_file=sink)
    with mrcfile.open(path) as mrc:
        assert float(mrc.header.dmax) == pytest.approx(float(data.max()))
        assert float(mrc.header.dmin) == pytest.approx(float(data.min()))
        assert float(mrc.header.dmean) == pytest.approx(float(data.mean()), abs=1e-6)
        np.testing.assert_array_equal(mrc.data, data.numpy())
    assert _leftovers(tmp_path) == []
    back[0] = 1.0  # a normal read is a private, writable copy


def test_mrc_mmap_equals_read(tmp_path):
    data = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(1))
    path = tmp_path / "m.mrc"
    write_mrc(path, data, voxel_size=3.0)
    mapped, voxel_m = read_mrc(path, mmap=True)
    loaded, voxel_l = read_mrc(path)
    assert voxel_m == voxel_l == pytest.approx(3.0)
    assert mapped.dtype == torch.float32
    torch.testing.assert_close(mapped, loaded, rtol=0, atol=0)
    torch.testing.assert_close(mapped.sum(), data.sum())


def test_mrc_integer_and_half_converted(tmp_path):
    ints = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    halves = np.linspace(-1, 1, 12, dtype=np.float16).reshape(3, 4)
    for name, array in (("i.mrc", ints), ("h.mrc", halves)):
        with mrcfile.new(tmp_path / name) as mrc:
            mrc.set_data(array)
        for mmap in (False, True):
            with pytest.warns(UserWarning, match=rf"{name}.*voxel size is unset"):
                back, voxel = read_mrc(tmp_path / name, mmap=mmap)
            assert back.dtype == torch.float32
            np.testing.assert_array_equal(back.numpy(), array.astype(np.float32))
            assert voxel == 1.0  # unset (zero) cell -> 1.0, with a warning


def test_mrc_write_converts_dtype_and_detaches(tmp_path):
    data = torch.arange(8, dtype=torch.float64).reshape(2, 2, 2).requires_grad_()
    write_mrc(tmp_path / "d.mrc", data)
    back, _ = read_mrc(tmp_path / "d.mrc", ndim=3)
    torch.testing.assert_close(back, data.detach().float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mrc_write_from_cuda(tmp_path):
    data = torch.arange(8.0, device="cuda").reshape(2, 2, 2)
    write_mrc(tmp_path / "c.mrc", data)
    torch.testing.assert_close(read_mrc(tmp_path / "c.mrc")[0], data.cpu())


def test_mrc_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.mrc.*not found"):
        read_mrc(tmp_path / "nope.mrc")


def test_mrc_not_an_mrc(tmp_path):
    path = tmp_path / "junk.mrc"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    for mmap in (False, True):
        with pytest.raises(InputError, match=r"junk\.mrc"):
            read_mrc(path, mmap=mmap)


def test_mrc_wrong_dimensionality(tmp_path):
    write_mrc(tmp_path / "img.mrc", torch.zeros(4, 5))
    write_mrc(tmp_path / "vol.mrc", torch.zeros(3, 4, 5))
    with pytest.raises(InputError, match=r"img\.mrc.*expected 3-D"):
        read_mrc(tmp_path / "img.mrc", ndim=3)
    with pytest.raises(InputError, match=r"vol\.mrc.*expected 2-D"):
        read_mrc(tmp_path / "vol.mrc", ndim=2)
    assert read_mrc(tmp_path / "img.mrc", ndim=2)[0].shape == (4, 5)
    with pytest.raises(InputError):
        read_mrc(tmp_path / "img.mrc", ndim=4)


def test_mrc_complex_rejected(tmp_path):
    path = tmp_path / "complex.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ones((2, 3), dtype=np.complex64))
    with pytest.raises(InputError, match=r"complex\.mrc.*unsupported MRC data type"):
        read_mrc(path)


def test_mrc_stack_counts_as_3d(tmp_path):
    path = tmp_path / "stack.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ones((3, 4, 5), dtype=np.float32))
        mrc.set_image_stack()
        mrc.voxel_size = 2.0
    data, _ = read_mrc(path, ndim=3)
    assert data.shape == (3, 4, 5)


def test_mrc_non_finite(tmp_path):
    array = np.zeros((3, 4, 5), dtype=np.float32)
    array[1, 2, 3] = np.nan
    path = tmp_path / "nan.mrc"
    _write_raw(path, array)
    for mmap in (False, True):
        with pytest.raises(InputError, match=r"nan\.mrc.*NaN"):
            read_mrc(path, mmap=mmap)
    with pytest.raises(InputError, match="NaN"):
        write_mrc(tmp_path / "out.mrc", torch.tensor([[float("inf")]]))
    assert not (tmp_path / "out.mrc").exists()


def test_mrc_non_finite_chunked_scan(tmp_path, monkeypatch):
    import inversa.core.io._mrc as mrc_module

    monkeypatch.setattr(mrc_module, "_FINITE_CHUNK_ELEMENTS", 7)
    array = np.zeros((6, 3, 2), dtype=np.float32)
    path = tmp_path / "ok.mrc"
    write_mrc(path, torch.from_numpy(array))
    assert read_mrc(path, mmap=True)[0].shape == (6, 3, 2)
    array[5, 2, 1] = np.inf  # in the last chunk
    _write_raw(tmp_path / "inf.mrc", array)
    with pytest.raises(InputError, match="infinite"):
        read_mrc(tmp_path / "inf.mrc", mmap=True)


def test_mrc_write_rejects_bad_input(tmp_path):
    with pytest.raises(InputError, match="2-D or 3-D"):
        write_mrc(tmp_path / "a.mrc", torch.zeros(2, 2, 2, 2))
    with pytest.raises(InputError, match="voxel size"):
        write_mrc(tmp_path / "a.mrc", torch.zeros(2, 2), voxel_size=0.0)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- .tlt and .xf


def test_tlt_round_trip(tmp_path):
    angles = torch.tensor([-60.0, -57.0, 0.0, 1.234567, 59.9999994], dtype=torch.float64)
    path = tmp_path / "ts.tlt"
    write_tlt(path, angles)
    back = read_tlt(path)
    assert back.dtype == torch.float64
    torch.testing.assert_close(back, angles, rtol=0, atol=1e-6)
    assert len(path.read_text().splitlines()) == 5


def test_tlt_blank_lines_and_errors(tmp_path):
    path = tmp_path / "a.tlt"
    path.write_text("\n -3.0\n\n  0\n3e0\n\n")
    torch.testing.assert_close(read_tlt(path), torch.tensor([-3.0, 0.0, 3.0], dtype=torch.float64))
    path.write_text("1.0\n2.0\nabc\n")
    with pytest.raises(InputError, match=r"a\.tlt: line 3: not a number"):
        read_tlt(path)
    path.write_text("1.0 2.0\n")
    with pytest.raises(InputError, match=r"line 1: expected 1 numbers, found 2"):
        read_tlt(path)
    path.write_text("\n\n")
    with pytest.raises(InputError, match="no values"):
        read_tlt(path)
    path.write_text("1\nnan\n")
    with pytest.raises(InputError, match="line 2"):
        read_tlt(path)
    with pytest.raises(InputError, match=r"gone\.tlt.*not found"):
        read_tlt(tmp_path / "gone.tlt")
    with pytest.raises(InputError):
        write_tlt(tmp_path / "b.tlt", torch.zeros(2, 2))


def test_xf_round_trip_and_layout(tmp_path):
    xf = torch.tensor(
        [
            [[0.9998477, -0.0174524, 12.345], [0.0174524, 0.9998477, -6.5]],
            [[1.0, 0.0, -1234567.891], [0.0, 1.0, 0.0]],
        ],
        dtype=torch.float64,
    )
    path = tmp_path / "ts.xf"
    write_xf(path, xf)
    lines = path.read_text().splitlines()
    # IMOD column layout when the values fit: 4 x %12.7f, 2 x %12.3f.
    expected = [0.9998477, -0.0174524, 0.0174524, 0.9998477, 12.345, -6.5]
    widths = ["12.7f"] * 4 + ["12.3f"] * 2
    assert lines[0] == "".join(format(v, w) for v, w in zip(expected, widths, strict=True))
    assert len(lines[1].split()) == 6  # an over-wide shift stays separated
    back = read_xf(path)
    assert back.shape == (2, 2, 3)
    assert back.dtype == torch.float64
    torch.testing.assert_close(back, xf, rtol=0, atol=1e-6)


def test_xf_meaning_of_entries(tmp_path):
    path = tmp_path / "m.xf"
    path.write_text("1 2 3 4 5 6\n")
    xf = read_xf(path)[0]
    # x' = A11 x + A12 y + DX with the row [A11, A12, DX].
    point = torch.tensor([10.0, 100.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(
        xf @ point,
        torch.tensor([1 * 10 + 2 * 100 + 5.0, 3 * 10 + 4 * 100 + 6.0], dtype=torch.float64),
    )


def test_xf_parse_errors(tmp_path):
    path = tmp_path / "bad.xf"
    path.write_text("1 0 0 1 0 0\n1 0 0 1 0\n")
    with pytest.raises(InputError, match=r"bad\.xf: line 2: expected 6 numbers, found 5"):
        read_xf(path)
    path.write_text("1 0 0 1 0 0\n\n1 0 0 x 0 0\n")
    with pytest.raises(InputError, match=r"bad\.xf: line 3: not a number"):
        read_xf(path)
    with pytest.raises(InputError, match="shape"):
        write_xf(tmp_path / "w.xf", torch.zeros(3, 3, 3))


# ---------------------------------------------------------------- STAR


def _particles(n=3):
    rng = np.random.default_rng(2)
    table = {
        "rlnTomoName": [f"TS_{i % 2:02d}" for i in range(n)],
        "rlnCenteredCoordinateXAngst": rng.normal(size=n) * 100,
        "rlnCenteredCoordinateYAngst": rng.normal(size=n) * 100,
        "rlnCenteredCoordinateZAngst": rng.normal(size=n) * 100,
        "rlnOriginXAngst": np.round(rng.normal(size=n), 3),
        "rlnOriginYAngst": np.round(rng.normal(size=n), 3),
        "rlnOriginZAngst": np.round(rng.normal(size=n), 3),
        "rlnAngleRot": rng.uniform(-180, 180, n),
        "rlnAngleTilt": rng.uniform(0, 180, n),
        "rlnAnglePsi": rng.uniform(-180, 180, n),
        "rlnTomoSubtomogramRot": np.zeros(n),
        "rlnTomoSubtomogramTilt": np.zeros(n),
        "rlnTomoSubtomogramPsi": np.zeros(n),
        "rlnOpticsGroup": np.ones(n, dtype=int),
        "rlnRandomSubset": np.arange(n) % 2 + 1,
    }
    assert tuple(table) == RELION5_PARTICLE_COLUMNS
    return pd.DataFrame(table)


def test_star_round_trip_readable_by_starfile(tmp_path):
    tables = {
        "general": pd.DataFrame({"rlnTomoSubTomosAre2DStacks": [0]}),
        "particles": _particles(),
    }
    path = tmp_path / "t.star"
    write_star(path, tables)
    raw = starfile.read(path, always_dict=True)
    assert list(raw) == ["general", "particles"]
    back = read_star(path)
    assert list(back) == ["general", "particles"]
    pd.testing.assert_frame_equal(
        back["particles"], tables["particles"], check_dtype=False, atol=1e-6, rtol=0
    )
    assert back["general"]["rlnTomoSubTomosAre2DStacks"].tolist() == [0]


def test_star_key_value_block_becomes_one_row(tmp_path):
    path = tmp_path / "kv.star"
    path.write_text("data_general\n\n_rlnTomoSubTomosAre2DStacks 1\n_rlnTomoName TS_01\n")
    back = read_star(path)
    assert back["general"].shape == (1, 2)
    assert back["general"]["rlnTomoName"].iloc[0] == "TS_01"


def test_star_errors(tmp_path):
    with pytest.raises(InputError, match=r"absent\.star.*not found"):
        read_star(tmp_path / "absent.star")
    junk = tmp_path / "junk.star"
    junk.write_text("hello world\n")
    with pytest.raises(InputError, match=r"junk\.star.*no data block"):
        read_star(junk)
    with pytest.raises(InputError, match="DataFrame"):
        write_star(tmp_path / "w.star", {"a": {"rlnX": 1}})
    with pytest.raises(InputError, match="no tables"):
        write_star(tmp_path / "w.star", {})
    assert not (tmp_path / "w.star").exists()


def test_particles_round_trip_block_order(tmp_path):
    particles = _particles(4)
    optics = make_optics_table(pixel_size=10.0, tomo_tilt_series_pixel_size=2.5)
    path = tmp_path / "particles.star"
    write_particles(path, particles, optics)
    text = path.read_text()
    assert text.index("data_optics") < text.index("data_particles")
    assert list(starfile.read(path, always_dict=True)) == ["optics", "particles"]
    back_particles, back_optics = read_particles(path)
    pd.testing.assert_frame_equal(back_particles, particles, check_dtype=False, atol=1e-6, rtol=0)
    pd.testing.assert_frame_equal(back_optics, optics, check_dtype=False)
    assert back_optics["rlnTomoSubtomogramBinning"].iloc[0] == pytest.approx(4.0)


def test_read_particles_errors(tmp_path):
    optics = make_optics_table(pixel_size=1.0)
    path = tmp_path / "p.star"
    write_particles(path, _particles().drop(columns=["rlnCenteredCoordinateYAngst"]), optics)
    with pytest.raises(InputError, match=r"p\.star.*rlnCenteredCoordinateYAngst"):
        read_particles(path)
    write_particles(path, _particles().drop(columns=["rlnAngleRot"]), optics, force=True)
    with pytest.raises(InputError, match=r"rlnAngleRot, rlnFoo"):
        read_particles(path, required=("rlnTomoName", "rlnAngleRot", "rlnFoo"))
    bad_group = _particles()
    bad_group["rlnOpticsGroup"] = 2
    write_particles(path, bad_group, optics, force=True)
    with pytest.raises(InputError, match=r"optics group\(s\) \[2\]"):
        read_particles(path)
    write_star(path, {"particles": _particles()}, force=True)
    with pytest.raises(InputError, match="data_optics"):
        read_particles(path)


def test_make_optics_table_values_and_errors():
    optics = make_optics_table(pixel_size=5.0, voltage=200.0, cs=0.01, amplitude_contrast=0.1)
    row = optics.iloc[0]
    assert len(optics) == 1
    assert row["rlnOpticsGroup"] == 1
    assert row["rlnImageDimensionality"] == 3
    assert row["rlnVoltage"] == 200.0
    assert row["rlnSphericalAberration"] == 0.01
    assert row["rlnAmplitudeContrast"] == 0.1
    assert row["rlnImagePixelSize"] == row["rlnTomoTiltSeriesPixelSize"] == 5.0
    for bad in (
        {"pixel_size": 0.0},
        {"pixel_size": 1.0, "voltage": -1.0},
        {"pixel_size": 1.0, "amplitude_contrast": 1.5},
        {"pixel_size": 1.0, "tomo_tilt_series_pixel_size": float("nan")},
    ):
        with pytest.raises(InputError):
            make_optics_table(**bad)

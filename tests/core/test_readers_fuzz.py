"""Property-based fuzzing of the file readers: any input gives a valid result or InputError.

The ``.tlt``, ``.xf``, MRC and STAR readers get random bytes and text, and valid files
mutated by truncation, byte flips, inserted junk, deleted spans, swapped lines and
numbers replaced by huge values, NaN or nothing. The property: the reader either returns
a well-formed result or raises `InputError`; any other exception (or a warning other
than the documented voxel-size one) fails the test. Files written by the writers must
read back equal.

The default run is small and reproducible (``derandomize``, 200 examples per test).
For a bigger campaign set the number of examples and, to explore new inputs on every
run, a random seed::

    INVERSA_FUZZ_EXAMPLES=20000 INVERSA_FUZZ_RANDOM=1 \\
        pytest tests/core/test_readers_fuzz.py --hypothesis-show-statistics

Round-trip tests run an eighth as many examples (at least 10).
"""

from __future__ import annotations

import math
import os
import re
import struct
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from inversa.core.errors import InputError
from inversa.core.io import (
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

EXAMPLES = int(os.environ.get("INVERSA_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("INVERSA_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROUND_TRIP = settings(FUZZ, max_examples=max(10, EXAMPLES // 8))

# Values that stress number parsing: huge, tiny, non-finite, empty, not numbers.
NASTY_TOKENS = [
    "1e999",
    "-1e999",
    "1e308",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "",
    "0x10",
    "1_000",
    "9" * 400,
    "-0",
    "1e-320",
    "abc",
    "<NA>",
    "'",
    '"',
    "#",
    "data_",
    "loop_",
    "_rlnX",
    ";",
    "\x00",
    "\xe9",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    # One folder for all examples of the module: each example rewrites its file.
    return tmp_path_factory.mktemp("fuzz")


# --- mutations ----------------------------------------------------------------------------


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """Apply one to four random damages to ``seed``."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(["truncate", "flip", "insert", "delete", "token", "lines", "word"])
        )
        n = len(data)
        pos = draw(st.integers(0, max(n - 1, 0)))
        if kind == "truncate":
            del data[pos:]
        elif kind == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 32))]
        elif kind == "token":
            # Replace one whitespace-separated token by a nasty one.
            tokens = re.split(rb"(\s+)", bytes(data))
            words = [i for i, t in enumerate(tokens) if t and not t.isspace()]
            if words:
                i = draw(st.sampled_from(words))
                tokens[i] = draw(st.sampled_from(NASTY_TOKENS)).encode("utf-8")
                data = bytearray(b"".join(tokens))
        elif kind == "lines":
            lines = bytes(data).split(b"\n")
            if len(lines) > 1:
                i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
                op = draw(st.sampled_from(["swap", "dup", "drop"]))
                if op == "swap":
                    lines[i], lines[j] = lines[j], lines[i]
                elif op == "dup":
                    lines.insert(j, lines[i])
                else:
                    del lines[i]
                data = bytearray(b"\n".join(lines))
        elif kind == "word" and n >= 4:
            # Overwrite an aligned 32-bit word with an extreme integer (MRC header fields).
            at = draw(st.integers(0, min(n, 1024) // 4 - 1)) * 4
            value = draw(
                st.sampled_from([0, -1, -(2**31), 2**31 - 1, 2**20, 3, 4, 6, 12, 101, 1024])
                | st.integers(-(2**31), 2**31 - 1)
            )
            data[at : at + 4] = struct.pack("<i", value)
    return bytes(data)


def inputs(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, random text, and mutations of valid files."""
    text = st.text(
        alphabet=st.sampled_from([*"0123456789.-+eE \t\n#_'\"abcdlopr;", "\xe9", "\x00"]),
        max_size=300,
    ).map(lambda s: s.encode("utf-8"))
    return st.one_of(
        st.binary(max_size=400),
        text,
        st.sampled_from(seeds),
        st.sampled_from(seeds).flatmap(mutated),
    )


def _read(reader, path: Path, data: bytes, **kwargs):
    """Run ``reader`` on ``data``; return its result, or None on InputError."""
    path.write_bytes(data)
    with warnings.catch_warnings():
        # The one warning a reader may give: an MRC header without a voxel size.
        warnings.filterwarnings("ignore", message=".*voxel size is unset", category=UserWarning)
        try:
            result = reader(path, **kwargs)
        except InputError as err:
            assert str(path) in str(err) or err.path is None
            assert "\n" not in err.problem.strip()
            event("InputError")
            return None
    event("read")
    return result


# --- .tlt and .xf -------------------------------------------------------------------------

TLT_SEEDS = [
    b"-60.0\n-30.0\n0.0\n30.0\n60.0\n",
    b"  -3.000000\n   0.000000\n\n   3.000000\n",
    b"1e2\n",
]
XF_SEEDS = [
    b"   1.0000000   0.0000000   0.0000000   1.0000000       0.000       0.000\n" * 3,
    b" 0.9998 -0.0175 0.0175 0.9998 12.5 -3.25\n\n 1 0 0 1 0 0\n",
]


@FUZZ
@given(data=inputs(TLT_SEEDS))
def test_read_tlt_fuzz(folder, data):
    angles = _read(read_tlt, folder / "a.tlt", data)
    if angles is not None:
        assert angles.dtype == torch.float64 and angles.ndim == 1 and len(angles) >= 1
        assert bool(torch.isfinite(angles).all())


@FUZZ
@given(data=inputs(XF_SEEDS))
def test_read_xf_fuzz(folder, data):
    xf = _read(read_xf, folder / "a.xf", data)
    if xf is not None:
        assert xf.dtype == torch.float64 and xf.shape[1:] == (2, 3) and len(xf) >= 1
        assert bool(torch.isfinite(xf).all())


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@ROUND_TRIP
@given(angles=st.lists(finite, min_size=1, max_size=40))
def test_tlt_round_trip(folder, angles):
    path = folder / "r.tlt"
    write_tlt(path, angles, force=True)
    back = read_tlt(path)
    np.testing.assert_allclose(back.numpy(), angles, rtol=0, atol=5.1e-7)


@ROUND_TRIP
@given(values=st.lists(st.lists(finite, min_size=6, max_size=6), min_size=1, max_size=20))
def test_xf_round_trip(folder, values):
    xf = torch.tensor(values, dtype=torch.float64)[:, [0, 1, 4, 2, 3, 5]].reshape(-1, 2, 3)
    path = folder / "r.xf"
    write_xf(path, xf, force=True)
    back = read_xf(path)
    np.testing.assert_allclose(back[:, :, :2].numpy(), xf[:, :, :2].numpy(), rtol=0, atol=5.1e-8)
    np.testing.assert_allclose(back[:, :, 2].numpy(), xf[:, :, 2].numpy(), rtol=0, atol=5.1e-4)


# --- MRC ----------------------------------------------------------------------------------


def _mrc_seeds() -> list[bytes]:
    import tempfile

    seeds = []
    rng = np.random.default_rng(0)
    arrays = [
        rng.normal(size=(3, 4, 5)).astype(np.float32),
        rng.normal(size=(6, 7)).astype(np.float32),
        rng.integers(-100, 100, size=(2, 3, 4)).astype(np.int16),
        rng.integers(0, 255, size=(4, 4)).astype(np.uint8),
        rng.normal(size=(2, 2, 3)).astype(np.float16),
    ]
    with tempfile.TemporaryDirectory() as folder:
        for i, array in enumerate(arrays):
            path = Path(folder) / f"s{i}.mrc"
            with mrcfile.new(path) as mrc:
                mrc.set_data(array)
                mrc.voxel_size = 1.5 * (i % 2)  # some seeds without a voxel size
            seeds.append(path.read_bytes())
    return seeds


MRC_SEEDS = _mrc_seeds()


@FUZZ
@given(data=inputs(MRC_SEEDS), mmap=st.booleans())
def test_read_mrc_fuzz(folder, data, mmap):
    result = _read(read_mrc, folder / "a.mrc", data, mmap=mmap)
    if result is not None:
        volume, voxel = result
        assert volume.dtype == torch.float32 and volume.ndim in (2, 3) and volume.numel() > 0
        assert bool(torch.isfinite(volume).all())
        assert math.isfinite(voxel) and voxel > 0


@ROUND_TRIP
@given(
    shape=st.lists(st.integers(1, 6), min_size=2, max_size=3),
    voxel=st.floats(0.1, 100.0),
    seed=st.integers(0, 2**16),
)
def test_mrc_round_trip(folder, shape, voxel, seed):
    data = torch.from_numpy(np.random.default_rng(seed).normal(size=shape).astype(np.float32))
    path = folder / "r.mrc"
    write_mrc(path, data, voxel_size=voxel, force=True)
    for mmap in (False, True):
        back, back_voxel = read_mrc(path, mmap=mmap)
        torch.testing.assert_close(back, data, rtol=0, atol=0)
        assert back_voxel == pytest.approx(voxel, rel=1e-6)


# --- STAR ---------------------------------------------------------------------------------


def _star_seeds() -> list[bytes]:
    import tempfile

    particles = pd.DataFrame(
        {
            "rlnTomoName": ["TS_01", "TS_02", "TS 03"],
            "rlnCenteredCoordinateXAngst": [1.5, -2.0, 3.25],
            "rlnCenteredCoordinateYAngst": [0.0, 1.0, 2.0],
            "rlnCenteredCoordinateZAngst": [10.0, 20.0, 30.0],
            "rlnAngleRot": [10.0, 20.0, 30.0],
            "rlnOpticsGroup": [1, 1, 1],
        }
    )
    seeds = [
        b"data_general\n\n_rlnTomoSubTomosAre2DStacks 0\n_rlnTomoName 'TS 01'\n",
        b"# comment\ndata_\nloop_\n_rlnA #1\n_rlnB #2\n1 x\n2 y # trailing\n",
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.star"
        write_particles(path, particles, make_optics_table(pixel_size=4.0))
        seeds.append(path.read_bytes())
    return seeds


STAR_SEEDS = _star_seeds()


def _valid_tables(blocks: dict) -> None:
    assert isinstance(blocks, dict) and blocks
    for table in blocks.values():
        assert isinstance(table, pd.DataFrame)
        assert table.columns.is_unique and all(isinstance(c, str) and c for c in table.columns)


@FUZZ
@given(data=inputs(STAR_SEEDS))
def test_read_star_fuzz(folder, data):
    blocks = _read(read_star, folder / "a.star", data)
    if blocks is not None:
        _valid_tables(blocks)


@FUZZ
@given(data=st.sampled_from(STAR_SEEDS[2:]).flatmap(mutated))
def test_read_particles_fuzz(folder, data):
    result = _read(read_particles, folder / "p.star", data)
    if result is not None:
        particles, optics = result
        _valid_tables({"particles": particles, "optics": optics})
        for table in (particles, optics):
            for column in ("rlnCenteredCoordinateXAngst", "rlnImagePixelSize"):
                if column in table.columns:
                    values = table[column].to_numpy(dtype=np.float64)
                    assert np.isfinite(values).all()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


words = st.text(alphabet=st.sampled_from(list("abcXYZ_09 .-:/")), max_size=12).filter(
    lambda s: not _is_number(s) and not s.startswith(("_", "data_", "loop_")) and s.strip() == s
)
names = st.text(alphabet=st.sampled_from(list("abcdefXYZ0189")), min_size=1, max_size=10).map(
    lambda s: "rln" + s
)


@st.composite
def star_tables(draw) -> dict[str, pd.DataFrame]:
    tables = {}
    for block in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
        rows = draw(st.integers(1, 6))
        columns = {}
        for column in draw(st.lists(names, min_size=1, max_size=5, unique=True)):
            kind = draw(st.sampled_from(["int", "float", "text"]))
            if kind == "int":
                values = draw(
                    st.lists(st.integers(-(10**12), 10**12), min_size=rows, max_size=rows)
                )
            elif kind == "float":
                values = draw(st.lists(finite, min_size=rows, max_size=rows))
            else:
                values = draw(st.lists(words, min_size=rows, max_size=rows))
            columns[column] = values
        tables[block] = pd.DataFrame(columns)
    return tables


@ROUND_TRIP
@given(tables=star_tables())
def test_star_round_trip(folder, tables):
    path = folder / "r.star"
    write_star(path, tables, force=True)
    back = read_star(path)
    assert list(back) == list(tables)
    for name, table in tables.items():
        got = back[name]
        assert list(got.columns) == list(table.columns)
        for column in table.columns:
            want = table[column]
            if want.dtype.kind == "f":
                np.testing.assert_allclose(got[column].to_numpy(float), want, rtol=0, atol=5.1e-7)
            else:
                assert got[column].tolist() == want.tolist()

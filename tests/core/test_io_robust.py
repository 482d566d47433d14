"""Readers turn every malformed file into one InputError; writers leave no stale temporaries."""

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import inversa
from inversa.core.errors import InputError, OutputExistsError
from inversa.core.io import (
    atomic_write,
    make_optics_table,
    read_json,
    read_mrc,
    read_particles,
    read_star,
    read_tlt,
    read_xf,
    write_json,
    write_mrc,
    write_particles,
    write_star,
    write_tlt,
)
from inversa.core.io._atomic import _HOST_TAG


def _particles_text(pixel_size="10.0", rows=("TS_01 1.0 2.0 3.0 1", "TS_01 4.0 5.0 6.0 1")):
    return (
        "# RELION 5\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnImagePixelSize #2\n"
        f"1 {pixel_size}\n\n"
        "data_particles\n\nloop_\n_rlnTomoName #1\n_rlnCenteredCoordinateXAngst #2\n"
        "_rlnCenteredCoordinateYAngst #3\n_rlnCenteredCoordinateZAngst #4\n_rlnOpticsGroup #5\n"
        + "".join(row + "\n" for row in rows)
    )


# --- STAR ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("data_\n", r"line 1: block data_ is empty"),
        ("data_x\nloop_\n_rlnA #1\n_rlnA #2\n1 2\n", r"line 4: column rlnA listed twice"),
        ("data_x\n_rlnA 1\n_rlnA 2\n", r"line 3: key rlnA listed twice"),
        ("data_x\nloop_\n_rlnA\n_rlnB\n1 2\n3\n", r"line 6: expected 2 values, found 1"),
        ("data_x\nloop_\n_rlnA\n1 2\n", r"line 4: expected 1 values, found 2"),
        ("data_x\n_rlnA 1\ndata_x\n_rlnA 2\n", r"line 3: block data_x appears twice"),
        ("data_x\nloop_\n_rlnA\n'open 1\n", r"line 4: unclosed quote"),
        ("data_x\nloop_\n1 2\n", r"line 3: loop_ of data_x has no labels"),
        ("data_x\n_rlnA\n", r"line 2: expected '_name value'"),
        ("data_x\nloop_\n_rlnA\n1\nloop_\n_rlnB\n2\n", r"line 5: only one loop_"),
        ("\n\n  \n# only a comment\n", r"no data block"),
        ("", r"no data block"),
    ],
)
def test_star_malformed_names_the_line(tmp_path, text, problem):
    path = tmp_path / "bad.star"
    path.write_text(text)
    with pytest.raises(InputError, match=r"bad\.star: " + problem):
        read_star(path)


def test_star_cut_mid_row_is_an_error_not_fewer_particles(tmp_path):
    path = tmp_path / "p.star"
    path.write_text(_particles_text())
    assert len(read_particles(path)[0]) == 2
    path.write_text(_particles_text()[:-6])  # the last row loses its last fields
    with pytest.raises(InputError, match=r"line 19: expected 5 values, found 3"):
        read_particles(path)


def test_star_non_numeric_pixel_size_is_an_input_error(tmp_path):
    path = tmp_path / "p.star"
    path.write_text(_particles_text(pixel_size="ten"))
    with pytest.raises(InputError, match=r"data_optics, column rlnImagePixelSize.*'ten'"):
        read_particles(path)
    path.write_text(_particles_text(pixel_size="nan"))
    with pytest.raises(InputError, match=r"rlnImagePixelSize, row 1: NaN"):
        read_particles(path)
    path.write_text(_particles_text(rows=("TS_01 1.0 x 3.0 1",)))
    with pytest.raises(InputError, match=r"rlnCenteredCoordinateYAngst, row 1: 'x'"):
        read_particles(path)


def test_star_latin1_comment_and_quotes_are_read(tmp_path):
    path = tmp_path / "l.star"
    body = "# r\xe9glage fait \xe0 la main\ndata_a\nloop_\n_rlnTomoName #1\n_rlnX #2\n"
    body += "'TS 01' 1.5 # trailing comment\n\"it's\" 2\nTS_#3 3\n"
    path.write_bytes(body.encode("latin-1"))
    table = read_star(path)["a"]
    assert table["rlnTomoName"].tolist() == ["TS 01", "it's", "TS_#3"]
    assert table["rlnX"].dtype == np.float64
    assert table["rlnX"].tolist() == [1.5, 2.0, 3.0]


def test_star_types_and_empty_loop(tmp_path):
    path = tmp_path / "t.star"
    path.write_text(
        "data_a\nloop_\n_i\n_f\n_s\n_n\n1 1 a 1\n2 2.5 b <NA>\n"
        "data_empty\nloop_\n_rlnX\n"
        "data_kv\n_rlnA 3\n_rlnB 2.5\n_rlnC word\n"
    )
    blocks = read_star(path)
    a = blocks["a"]
    assert a["i"].dtype == np.int64
    assert a["f"].dtype == np.float64
    assert a["s"].tolist() == ["a", "b"]
    assert np.isnan(a["n"].iloc[1])
    assert list(blocks["empty"].columns) == ["rlnX"] and len(blocks["empty"]) == 0
    assert blocks["kv"].iloc[0].tolist() == [3, 2.5, "word"]


def test_star_directory_and_writer_refusals(tmp_path):
    with pytest.raises(InputError, match="cannot read file"):
        read_star(tmp_path)
    for table in (
        pd.DataFrame({"bad name": [1]}),
        pd.DataFrame({"rlnA": ["two\nlines"]}),
        pd.DataFrame({"rlnA": ["_looks_like_a_label"]}),
    ):
        with pytest.raises(InputError, match="cannot be written to STAR"):
            write_star(tmp_path / "w.star", {"a": table})
    assert not (tmp_path / "w.star").exists()
    # Text with spaces and empty text are quoted by the writer and read back unchanged.
    table = pd.DataFrame({"rlnTomoName": ["TS 01", ""], "rlnX": [1.0, 2.0]})
    write_star(tmp_path / "ok.star", {"a": table})
    assert read_star(tmp_path / "ok.star")["a"]["rlnTomoName"].tolist() == ["TS 01", ""]


def test_particles_round_trip_keeps_optics_checks(tmp_path):
    optics = make_optics_table(pixel_size=4.0)
    particles = pd.DataFrame(
        {
            "rlnTomoName": ["TS_01"],
            "rlnCenteredCoordinateXAngst": [1.0],
            "rlnCenteredCoordinateYAngst": [2.0],
            "rlnCenteredCoordinateZAngst": [3.0],
        }
    )
    write_particles(tmp_path / "p.star", particles, optics)
    back, back_optics = read_particles(tmp_path / "p.star")
    assert back_optics["rlnImagePixelSize"].iloc[0] == 4.0
    assert back["rlnTomoName"].tolist() == ["TS_01"]


# --- MRC ----------------------------------------------------------------------------------


def _mrc_bytes(tmp_path, **fields):
    path = tmp_path / "good.mrc"
    write_mrc(path, torch.ones(3, 4, 5), voxel_size=2.0, force=True)
    raw = bytearray(path.read_bytes())
    offsets = {"nx": 0, "ny": 4, "nz": 8, "mode": 12, "nsymbt": 92}
    for name, value in fields.items():
        raw[offsets[name] : offsets[name] + 4] = struct.pack("<i", value)
    return bytes(raw)


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"nx": -5}, "must be positive"),
        ({"nz": 0}, "must be positive"),
        ({"nx": 1 << 20, "ny": 1 << 10}, "cut short"),
        ({"mode": 77}, "not a readable MRC file"),
    ],
)
def test_mrc_bad_header_is_an_input_error(tmp_path, mmap, fields, problem):
    path = tmp_path / "bad.mrc"
    path.write_bytes(_mrc_bytes(tmp_path, **fields))
    with pytest.raises(InputError, match=rf"bad\.mrc: .*{problem}"):
        read_mrc(path, mmap=mmap)


def test_mrc_truncated_and_empty(tmp_path):
    raw = _mrc_bytes(tmp_path)
    for size in (0, 100, 1024, len(raw) - 4):
        path = tmp_path / f"cut{size}.mrc"
        path.write_bytes(raw[:size])
        for mmap in (False, True):
            with pytest.raises(InputError, match=rf"cut{size}\.mrc"):
                read_mrc(path, mmap=mmap)


def test_mrc_voxel_size_zero_warns_once_and_can_be_overridden(tmp_path):
    import mrcfile

    path = tmp_path / "novox.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.ones((2, 3, 4), dtype=np.float32))  # voxel size left at 0
    with pytest.warns(UserWarning, match=r"novox\.mrc: the header's voxel size is unset") as rec:
        _, voxel = read_mrc(path)
    assert voxel == 1.0 and len(rec) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit value needs no warning
        _, voxel = read_mrc(path, voxel_size=3.5, mmap=True)
    assert voxel == 3.5
    write_mrc(tmp_path / "v.mrc", torch.ones(2, 2), voxel_size=2.0)
    assert read_mrc(tmp_path / "v.mrc")[1] == 2.0
    assert read_mrc(tmp_path / "v.mrc", voxel_size=5.0)[1] == 5.0  # override wins
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="voxel size must be positive"):
            read_mrc(tmp_path / "v.mrc", voxel_size=bad)


# --- .tlt / .xf ---------------------------------------------------------------------------


def test_tilt_readers_missing_and_binary(tmp_path):
    for reader in (read_tlt, read_xf):
        with pytest.raises(InputError, match=r"nope: file not found"):
            reader(tmp_path / "nope")
        path = tmp_path / "bin"
        path.write_bytes(b"\xff\xfe\x00\x01")
        with pytest.raises(InputError, match=r"bin: cannot read text file"):
            reader(path)
        path.write_text("1e999" if reader is read_tlt else "1 0 0 1 0 1e999")
        with pytest.raises(InputError, match="NaN or infinite"):
            reader(path)


# --- stale temporaries --------------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_atomic_write_removes_only_dead_writers_temporaries(tmp_path):
    target = tmp_path / "out.tlt"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        dead_tmp = tmp_path / f".out.tlt.tmp-{_HOST_TAG}-{_dead_pid()}-abc123_x.tlt"
        live_tmp = tmp_path / f".out.tlt.tmp-{_HOST_TAG}-{live.pid}-def456_y.tlt"
        other_host = tmp_path / f".out.tlt.tmp-00000000-{_dead_pid()}-ghi789_z.tlt"
        other_target = tmp_path / f".other.tlt.tmp-{_HOST_TAG}-{_dead_pid()}-jkl012_w.tlt"
        for p in (dead_tmp, live_tmp, other_host, other_target):
            p.write_text("partial")
        write_tlt(target, [1.0, 2.0])
        assert not dead_tmp.exists()
        assert live_tmp.exists() and other_host.exists() and other_target.exists()
        assert read_tlt(target).tolist() == [1.0, 2.0]
    finally:
        live.kill()
        live.wait()


@pytest.mark.slow
def test_killed_writer_leftover_removed_by_forced_rerun(tmp_path):
    target = tmp_path / "out.json"
    script = textwrap.dedent(
        f"""
        import time
        from inversa.core.io import atomic_write
        with atomic_write({str(target)!r}) as tmp:
            tmp.write_text("partial")
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert len(leftovers) == 1 and f"-{child.pid}-" in leftovers[0]
    write_json(target, {"a": 1})
    write_json(target, {"a": 2}, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert read_json(target) == {"a": 2}


def test_atomic_write_temp_name_carries_pid(tmp_path):
    with atomic_write(tmp_path / "x.mrc") as tmp:
        assert tmp.name.startswith(f".x.mrc.tmp-{_HOST_TAG}-{os.getpid()}-")
        assert tmp.suffix == ".mrc"
        tmp.write_text("x")


# --- JSON ---------------------------------------------------------------------------------


def test_write_json_read_json_round_trip_and_errors(tmp_path):
    path = tmp_path / "a.json"
    payload = {"b": [1, 2.5, None], "a": "x", "nan": float("nan")}
    write_json(path, payload)
    text = path.read_text()
    assert text.endswith("}\n") and '  "b"' in text
    back = read_json(path)
    assert back["b"] == [1, 2.5, None] and np.isnan(back["nan"])
    with pytest.raises(OutputExistsError):
        write_json(path, {})
    write_json(path, {"b": 1, "a": 2}, force=True, indent=None, sort_keys=True)
    assert path.read_text() == '{"a": 2, "b": 1}\n'
    write_json(tmp_path / "d.json", {"p": tmp_path}, default=str)
    assert read_json(tmp_path / "d.json") == {"p": str(tmp_path)}
    with pytest.raises(TypeError):
        write_json(tmp_path / "t.json", {"p": object()})
    assert not (tmp_path / "t.json").exists()
    with pytest.raises(InputError, match=r"none\.json: file not found"):
        read_json(tmp_path / "none.json")
    for name, raw, problem in (
        ("cut.json", b'{"a": [1, 2', "not valid JSON.*line 1"),
        ("latin.json", b'{"a": "\xe9"}', "not UTF-8"),
        ("empty.json", b"", "not valid JSON"),
        ("deep.json", b"[" * 100_000, "not valid JSON"),
    ):
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(InputError, match=problem):
            read_json(tmp_path / name)
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps([1]).encode())
    assert read_json(tmp_path / "bom.json") == [1]


# --- numba cache --------------------------------------------------------------------------


def _numba_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env["OMP_NUM_THREADS"] = env["NUMBA_NUM_THREADS"] = "1"
    return env


def _run(script, env, cwd=None):
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def _cache_files(folder):
    return sorted(
        f for _, _, files in os.walk(folder) for f in files if f.endswith((".nbi", ".nbc"))
    )


def test_numba_cache_goes_to_user_folder(tmp_path):
    # A cache=True function in a module beside the test stands in for the kernels: numba
    # would cache it in ./__pycache__ unless inversa's import redirected the cache.
    (tmp_path / "kern.py").write_text(
        "from numba import njit\n\n\n@njit(cache=True)\ndef add_one(x):\n    return x + 1\n"
    )
    env = _numba_env(tmp_path)
    script = """
        import os
        import inversa
        import kern
        assert kern.add_one(1) == 2
        print(os.environ["NUMBA_CACHE_DIR"])
    """
    (cache_dir,) = _run(script, env, cwd=tmp_path)
    assert cache_dir == str(tmp_path / "xdg" / "inversa" / "numba")
    assert _cache_files(cache_dir)
    assert not (tmp_path / "__pycache__").exists() or not _cache_files(tmp_path / "__pycache__")
    # numba imported before inversa still follows, and a folder the user chose is kept.
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    script = "import numba, os, inversa; print(os.environ['NUMBA_CACHE_DIR'])"
    assert _run(script, env) == [str(tmp_path / "mine")]


@pytest.mark.slow
def test_numba_kernels_cache_outside_src(tmp_path):
    script = """
        import os
        import inversa.tomography._joseph as j
        assert j._inside(0.0, 1.0, 1, 0, 2)
        print(os.environ["NUMBA_CACHE_DIR"])
        print(j._inside._cache._cache_path)
    """
    src = Path(inversa.__file__).parent
    start = time.time()
    cache_dir, function_dir = _run(script, _numba_env(tmp_path))
    assert function_dir.startswith(cache_dir)
    assert cache_dir.startswith(str(tmp_path)) and _cache_files(cache_dir)
    fresh = [f for f in _cache_files(src) if f.startswith("_joseph._inside")]
    assert not [f for f in fresh if any(p.stat().st_mtime >= start for p in src.rglob(f))]

"""Fault injection: a real ``inversa align`` killed with SIGKILL, then rerun."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

import inversa.cli._alignment  # noqa: F401  (registers the commands)
from inversa.alignment import poses_from_table, rotate_volume
from inversa.cli import main
from inversa.core import phantoms, rotations
from inversa.core.io import make_optics_table, read_mrc, read_particles, write_mrc, write_particles

PIXEL = 4.0
BOX = 24
CHUNK = 4


def _dataset(root, n):
    model = phantoms.read_atomic_model(phantoms.builtin_structure_path())
    ref = phantoms.reference_density(model, voxel_size=PIXEL, box=BOX, resolution=8.0)
    g = torch.Generator().manual_seed(2)
    rots = rotations.random_rotations(n, generator=g)
    vols = rotate_volume(ref, rots) + 0.3 * ref.std() * torch.randn(n, BOX, BOX, BOX, generator=g)
    kick = rotations.axis_angle_to_matrix(0.05 * torch.randn(n, 3, generator=g))
    euler = rotations.matrix_to_euler((rots @ kick).double()).numpy()
    (root / "sub").mkdir(parents=True)
    for i in range(n):
        write_mrc(root / "sub" / f"p{i:03d}.mrc", vols[i], voxel_size=PIXEL)
    table = pd.DataFrame(
        {
            "rlnTomoName": ["ts"] * n,
            "rlnImageName": [f"sub/p{i:03d}.mrc" for i in range(n)],
            "rlnAngleRot": euler[:, 0],
            "rlnAngleTilt": euler[:, 1],
            "rlnAnglePsi": euler[:, 2],
            "rlnOpticsGroup": [1] * n,
        }
    )
    write_particles(root / "in.star", table, make_optics_table(pixel_size=PIXEL))
    write_mrc(root / "ref.mrc", ref, voxel_size=PIXEL)


def _args(root, out):
    return ["align", str(root / "in.star"), "--reference", str(root / "ref.mrc"), "--out",
            str(out), "--max-angle-deg", "6", "--method", "exhaustive", "--chunk-size",
            str(CHUNK)]  # fmt: skip


def _kill_after_chunks(root, out, n_chunks, timeout=120.0):
    """Start a real ``inversa align``, SIGKILL it once ``n_chunks`` checkpoints exist."""
    env = {**os.environ, "DASK_NUM_WORKERS": "1", "OMP_NUM_THREADS": "1"}
    code = "import sys; from inversa.cli._app import _entry; sys.argv[0] = 'inversa'; _entry()"
    log = root / f"{out.name}.stderr"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *_args(root, out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    partial = out.with_name(out.name + ".partial")
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(partial.glob("chunk-*.json"))) >= n_chunks:
                break
            time.sleep(0.02)
        assert proc.poll() is None, log.read_text()  # still running: kill it
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not out.exists()
    return sorted(p.name for p in partial.glob("chunk-*.json"))


def _same_poses(a_path, b_path):
    a, _ = read_particles(a_path, required=())
    b, _ = read_particles(b_path, required=())
    assert a["rlnImageName"].tolist() == b["rlnImageName"].tolist()
    ra, sa = poses_from_table(a, pixel_size=PIXEL)
    rb, sb = poses_from_table(b, pixel_size=PIXEL)
    assert float(rotations.geodesic_distance(ra, rb).max()) < 1e-3
    torch.testing.assert_close(sa, sb, atol=1e-4, rtol=0)


def test_sigkilled_align_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    n = 16
    _dataset(tmp_path, n)
    full = tmp_path / "full.star"
    assert main(_args(tmp_path, full)) == 0
    out = tmp_path / "out.star"
    done = _kill_after_chunks(tmp_path, out, 1)
    assert len(done) < n // CHUNK
    assert (tmp_path / "out.star.lock").exists()  # left by the killed run: stale
    capsys.readouterr()
    assert main(_args(tmp_path, out)) == 0
    assert f"{len(done)} chunk(s) resumed" in capsys.readouterr().out
    _same_poses(out, full)
    assert not (tmp_path / "out.star.partial").exists()
    assert not (tmp_path / "out.star.lock").exists()


@pytest.mark.slow
def test_sigkilled_align_with_a_rewritten_input_redoes_its_chunk(tmp_path, capsys):
    n = 40
    _dataset(tmp_path, n)
    out = tmp_path / "out.star"
    done = _kill_after_chunks(tmp_path, out, 3)
    # overwrite a particle of a checkpointed chunk with another particle's data
    row = int(done[0][len("chunk-") : -len(".json")]) * CHUNK + 1
    data, _ = read_mrc(tmp_path / "sub" / f"p{(row + 7) % n:03d}.mrc")
    write_mrc(tmp_path / "sub" / f"p{row:03d}.mrc", data, voxel_size=PIXEL, force=True)
    capsys.readouterr()
    assert main(_args(tmp_path, out)) == 0
    assert "checkpointed chunk(s) redone" in capsys.readouterr().out
    fresh = tmp_path / "fresh.star"
    assert main(_args(tmp_path, fresh)) == 0
    _same_poses(out, fresh)
    assert len(read_particles(out, required=())[0]) == n

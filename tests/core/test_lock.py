"""The output lock (core/io/_lock.py): one run per output, stale locks taken over."""

import json
import os
import socket
import subprocess
import sys

import pytest

from inversa.core.errors import InputError
from inversa.core.io import output_lock


def _dead_pid():
    # A child that has exited and been reaped: its pid is free (reuse within the test is
    # vanishingly unlikely).
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_holder_is_refused_and_lock_is_released(tmp_path):
    out = tmp_path / "out.star"
    with output_lock(out) as lock:
        assert lock == tmp_path / "out.star.lock"
        owner = json.loads(lock.read_text())
        assert owner == {"pid": os.getpid(), "host": socket.gethostname()}
        with pytest.raises(InputError, match=f"pid {os.getpid()}"), output_lock(out):
            pass
        assert lock.exists()  # the refused run left the holder's lock alone
    assert not lock.exists()
    with output_lock(out):  # free again
        pass


def test_lock_is_released_when_the_job_fails(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), output_lock(out):
        raise RuntimeError("job failed")
    assert not (tmp_path / "out.lock").exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    out = tmp_path / "out.star"
    lock = tmp_path / "out.star.lock"
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    with output_lock(out):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"pid": 1, "host": "another-host"}),  # cannot be probed from here
        json.dumps({"pid": os.getppid(), "host": socket.gethostname()}),  # alive
        "garbage",
    ],
)
def test_other_locks_are_refused(tmp_path, content):
    lock = tmp_path / "out.star.lock"
    lock.write_text(content)
    with pytest.raises(InputError, match="another run"), output_lock(tmp_path / "out.star"):
        pass
    assert lock.read_text() == content

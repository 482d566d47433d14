"""Atomic file writes: write to a temporary sibling, then rename onto the target."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from inversa.core.errors import InputError, OutputExistsError

__all__ = ["atomic_write"]


def _umask() -> int:
    # os.umask can only be read by setting it; restore it at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import: re-reading per write would briefly change the process umask
# while other threads (see inversa.core.parallel) may be creating files.
_FILE_MODE = 0o666 & ~_umask()


# Temporaries carry the writer's host and pid so that a later write of the same target
# can tell a dead writer's leftover (killed mid-write) from a live writer's file.
_HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-{_HOST_TAG}-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # this process: perhaps another thread writing the same target
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else, or cannot tell: keep it
    return True


# Leftovers of dead writers, per directory: scanned once per process (a directory of many
# thousands of outputs would otherwise be listed again for every file written), then
# consumed target by target. A writer that dies after the scan is cleaned up next run.
_TEMP_NAME = re.compile(
    r"\.(?P<target>.+)\.tmp-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[a-z0-9_]{8}(?P<suffix>.*)"
)
_leftovers: dict[str, dict[str, list[tuple[str, int]]]] = {}
_leftovers_lock = threading.Lock()


def _scan_leftovers(parent: Path) -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    try:
        names = os.listdir(parent)
    except OSError:
        return found
    for name in names:
        match = _TEMP_NAME.fullmatch(name)
        if match is None or match["host"] != _HOST_TAG:
            continue  # not ours, or another host's: its pids mean nothing here
        if Path(match["target"]).suffix != match["suffix"]:
            continue
        found.setdefault(match["target"], []).append((name, int(match["pid"])))
    return found


def _remove_stale_temporaries(target: Path) -> None:
    """Remove temporaries of ``target`` left by writers on this host whose pid is gone."""
    if os.name != "posix":
        return  # no cheap, reliable liveness test for a pid
    key = os.path.realpath(target.parent)
    with _leftovers_lock:
        if key not in _leftovers:
            _leftovers[key] = _scan_leftovers(target.parent)
        candidates = _leftovers[key].pop(target.name, [])
    for name, pid in candidates:
        if not _pid_alive(pid):
            with contextlib.suppress(OSError):
                (target.parent / name).unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Write a file atomically: readers never see a partial file.

    Yields a temporary path in the same directory as ``path``, named
    ``.{name}.tmp-{host}-{pid}-XXXXXXXX{suffix}`` so that libraries that look at the suffix
    (``.mrc``, ``.star``) still recognise it. A temporary of the same target left behind
    by a writer that died on this host (its pid is gone, e.g. after a kill) is removed
    first; those of live writers are never touched. The temporary file already exists
    (empty), so writers must overwrite it. When the ``with`` block ends without an
    exception the file is renamed onto ``path`` with ``os.replace`` (atomic on one file
    system) and given the usual permissions (``0o666`` minus the umask); on any exception
    it is removed and ``path`` is left untouched.

    Parameters
    ----------
    path
        The file to create.
    force
        Overwrite ``path`` if it exists. Without it an existing ``path`` raises
        `OutputExistsError` before any work is done.

    Yields
    ------
    pathlib.Path
        The temporary path to write to.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    InputError
        The parent directory does not exist, or ``path`` is a directory.
    """
    target = Path(path)
    if target.is_dir():
        raise InputError(target, "is a directory, not a file")
    if target.exists() and not force:
        raise OutputExistsError(target)
    parent = target.parent
    if not parent.is_dir():
        raise InputError(target, f"parent directory {parent} does not exist")
    _remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=target.suffix, dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

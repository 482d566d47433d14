"""An advisory lock on an output: ``OUT.lock`` holding the owner's pid and host."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from inversa.core.errors import InputError

__all__ = ["output_lock"]


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _read_owner(lock: Path) -> dict | None:
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return None
    return owner


def _is_stale(owner: dict | None) -> bool:
    # Only a lock of this host can be judged: a pid on another machine cannot be probed.
    if owner is None or owner.get("host") != socket.gethostname():
        return False
    return not _pid_alive(owner["pid"])


def _try_create(lock: Path, payload: bytes) -> bool:
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, payload)
    finally:
        os.close(fd)
    return True


def _take_over(lock: Path, owner: dict) -> None:
    """Remove a stale lock, unless another run took it over first (then leave theirs)."""
    aside = lock.with_name(f"{lock.name}.stale-{os.getpid()}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return  # someone else removed it; the next create decides
    if _read_owner(aside) != owner:
        # We moved a fresh lock that a racing run had just created: put it back.
        with contextlib.suppress(FileExistsError):
            os.link(aside, lock)
    aside.unlink(missing_ok=True)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``PATH.lock`` while a job writes ``path``: a second run on it is refused.

    The lock file is created with ``O_EXCL`` and holds ``{"pid", "host"}`` of the owner.
    A lock left by a dead process of this host is taken over; a lock of a live process,
    of another host, or one that cannot be read is refused. The file is removed when the
    ``with`` block ends, whatever the outcome.

    Parameters
    ----------
    path
        The output (file or folder) to protect; its parent folder must exist.

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    InputError
        Another run holds the lock (the message names its pid and host), or the lock file
        cannot be created.
    """
    target = Path(path)
    lock = _lock_path(target)
    payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
    for _ in range(3):
        try:
            if _try_create(lock, payload):
                break
        except OSError as err:
            raise InputError(lock, f"cannot create the lock file ({err.strerror})") from err
        owner = _read_owner(lock)
        if not _is_stale(owner):
            who = (
                f"pid {owner['pid']} on {owner.get('host')}" if owner else "an unreadable lock file"
            )
            raise InputError(
                target,
                f"another run is writing this output ({who}); wait for it, or remove "
                f"{lock} if that run is gone",
            )
        _take_over(lock, owner)
    else:
        raise InputError(target, f"could not take the lock {lock} (contended)")
    try:
        yield lock
    finally:
        # Remove only our own lock (never one a later run took over).
        if _read_owner(lock) == json.loads(payload):
            lock.unlink(missing_ok=True)

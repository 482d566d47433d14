"""Atomic file writes: write to a temporary sibling, then rename onto the target."""

from __future__ import annotations

import contextlib
import os
import tempfile
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


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Write a file atomically: readers never see a partial file.

    Yields a temporary path in the same directory as ``path``, named
    ``.{name}.tmp-XXXXXXXX{suffix}`` so that libraries that look at the suffix (``.mrc``,
    ``.star``) still recognise it. The temporary file already exists (empty), so writers
    must overwrite it. When the ``with`` block ends without an exception the file is
    renamed onto ``path`` with ``os.replace`` (atomic on one file system) and given the
    usual permissions (``0o666`` minus the umask); on any exception it is removed and
    ``path`` is left untouched.

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
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", suffix=target.suffix, dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

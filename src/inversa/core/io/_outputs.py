"""Output checks made before any work starts, and output folders that clean up after a failure.

One implementation for the command line and the file-level jobs alike: a run that would
fail to write its outputs is refused before it spends minutes computing, with one
`InputError` naming the output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from inversa.core.errors import InputError, OutputExistsError

__all__ = ["check_outputs", "output_folder"]


def _probe_writable(folder: Path, target: Path) -> None:
    # os.access misleads for root and on read-only mounts: create and remove a probe file.
    try:
        fd, probe = tempfile.mkstemp(prefix=".inversa-probe-", dir=folder)
    except OSError as exc:
        raise InputError(target, f"cannot write in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def _existing_ancestor(path: Path) -> Path:
    parent = path.absolute()
    while not parent.exists():
        parent = parent.parent
    return parent


def check_outputs(
    files: Sequence[str | os.PathLike[str]] = (),
    *,
    folders: Sequence[str | os.PathLike[str]] = (),
    force: bool = False,
    inputs: Sequence[str | os.PathLike[str]] = (),
) -> None:
    """Check, before any work, that all outputs of a run can be written.

    Nothing is created: a folder's writability is probed in the nearest existing folder
    at or above it, and the probe file is removed at once.

    Parameters
    ----------
    files
        Output files. None may be a folder or one of ``inputs``, none may exist unless
        ``force``, and each one's folder must exist (or be one of ``folders``) and be
        writable.
    folders
        Output folders the run creates if missing. None may be a file, and the nearest
        existing folder at or above each must be a writable folder.
    force
        Whether existing output files may be replaced.
    inputs
        The run's input files: an output that is one of them is refused even with
        ``force`` (inputs are never modified).

    Raises
    ------
    InputError
        Naming the first output that cannot be written and why.
    OutputExistsError
        An output file exists and ``force`` is false.
    """
    planned = {Path(f).absolute() for f in folders}
    sources = {Path(f).resolve() for f in inputs}
    for folder in map(Path, folders):
        if folder.exists() and not folder.is_dir():
            raise InputError(folder, "exists and is not a folder (an output folder is expected)")
        base = _existing_ancestor(folder)
        if not base.is_dir():
            raise InputError(folder, f"cannot create the folder: {base} is a file")
        _probe_writable(base, folder)
    probed: set[Path] = set()  # many outputs in one folder: probe it once
    for file in map(Path, files):
        if file.is_dir():
            raise InputError(file, "is a folder (an output file is expected)")
        if file.resolve() in sources:
            raise InputError(file, "is an input of this command; choose another output")
        if file.exists() and not force:
            raise OutputExistsError(file)
        parent = file.absolute().parent
        if parent in planned or parent in probed:
            continue
        if not parent.exists():
            raise InputError(file, f"the folder {file.parent} does not exist")
        if not parent.is_dir():
            raise InputError(file, f"{file.parent} is not a folder")
        _probe_writable(parent, file)
        probed.add(parent)


def _tree(folder: Path) -> set[Path]:
    return set(folder.rglob("*")) if folder.is_dir() else set()


@contextlib.contextmanager
def output_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Create an output folder (and missing parents) for the ``with`` block.

    If the block raises, everything this run created is removed again: the folder itself
    when it did not exist, else the files and folders that appeared in it during the
    block. What was there before stays (an overwritten file cannot be restored, which is
    why overwriting needs ``force``).

    Raises
    ------
    InputError
        The folder cannot be created (see `check_outputs`).
    """
    folder = Path(path)
    check_outputs(folders=[folder])
    created = None
    probe = folder.absolute()
    while not probe.exists():
        created = probe
        probe = probe.parent
    before = _tree(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(folder, f"cannot create the folder ({exc.strerror or exc})") from None
    try:
        yield folder
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        else:
            # Shallowest first: removing a new folder removes what is inside it.
            for new in sorted(_tree(folder) - before, key=lambda p: len(p.parts)):
                if new.is_dir() and not new.is_symlink():
                    shutil.rmtree(new, ignore_errors=True)
                else:
                    new.unlink(missing_ok=True)
        raise

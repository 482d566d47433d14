"""Map a function over many independent items (particles, tilt series) with Dask.

`map_items` runs locally on Dask's threaded or multiprocessing scheduler, or on a running
``distributed`` scheduler given by its address; per-item failures are caught and
reported as `ItemResult` entries so that one bad file does not stop a long batch.
`raise_failures` turns the failures into a single error at the end.
"""

from __future__ import annotations

import errno
import functools
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
from dask.callbacks import Callback
from rich.console import Console
from rich.progress import Progress

from inversa.core.errors import InputError

__all__ = ["ItemResult", "map_items", "raise_failures"]

_LABEL_LENGTH = 80
# Seconds to wait for a scheduler given by its address before giving up.
CONNECT_TIMEOUT = 5
_USER_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT})


@dataclass(frozen=True)
class ItemResult:
    """The outcome of one item of `map_items`.

    Attributes
    ----------
    index
        Position of the item in the input sequence.
    label
        Short text naming the item: the file name for paths, else its ``repr`` (at most
        80 characters).
    value
        What the function returned; ``None`` when it failed.
    error
        ``None`` on success, else ``"ExceptionType: message (at file:line in function)"``
        naming where the exception was raised.
    input_error
        Whether the failure was an `InputError` (bad user input rather than a bug), or
        an `OSError` the user can fix (disk full, read-only, permission denied).
    """

    index: int
    label: str
    value: Any
    error: str | None
    input_error: bool = False

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None


def _label(item: Any) -> str:
    if isinstance(item, os.PathLike):
        text = os.fspath(item)
    elif isinstance(item, str):
        text = item
    else:
        text = repr(item)
    return text if len(text) <= _LABEL_LENGTH else text[: _LABEL_LENGTH - 3] + "..."


def _summary(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {last.filename}:{last.lineno} in {last.name})"
    return text


def _user_error(exc: BaseException) -> bool:
    # A full disk or a read-only output is the user's to fix, like a bad input file.
    if isinstance(exc, OSError) and exc.errno in _USER_ERRNOS:
        return True
    return isinstance(exc, InputError)


def _run_one(
    fn: Callable[[Any], Any], item: Any, index: int, label: str, catch: bool
) -> ItemResult:
    # Runs on the worker: the summary is made there because tracebacks do not pickle.
    try:
        value = fn(item)
    except Exception as exc:
        if not catch:
            raise
        return ItemResult(index, label, None, _summary(exc), _user_error(exc))
    return ItemResult(index, label, value, None)


class _ProgressCallback(Callback):
    """Advance a rich progress bar as the local Dask scheduler finishes item tasks."""

    def __init__(self, progress: Progress, task: Any, keys: set[str]) -> None:
        super().__init__()
        self._progress, self._task, self._keys = progress, task, keys

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if key in self._keys:
            self._progress.advance(self._task)


def _map_local(
    tasks: list[Callable[[], ItemResult]], scheduler: str, progress: Progress, task: Any
) -> list[ItemResult]:
    keys = [f"inversa-item-{i}" for i in range(len(tasks))]
    delayed = [
        dask.delayed(call, pure=False)(dask_key_name=key)
        for call, key in zip(tasks, keys, strict=True)
    ]
    with _ProgressCallback(progress, task, set(keys)):
        (results,) = dask.compute(delayed, scheduler=scheduler)
    return list(results)


def _map_distributed(
    tasks: list[Callable[[], ItemResult]], address: str, progress: Progress, task: Any
) -> list[ItemResult]:
    # Imported here: distributed is heavy and only needed for a remote scheduler.
    from distributed import Client, as_completed

    results: list[ItemResult | None] = [None] * len(tasks)
    try:
        # distributed waits 30 s by default; an unreachable address should fail fast.
        client = Client(address, set_as_default=False, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise InputError(address, f"cannot reach the Dask scheduler ({exc})") from None
    with client:
        futures = [client.submit(call, pure=False) for call in tasks]
        position = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures, loop=client.loop):
                # result() re-raises the item's exception when fail_fast left it uncaught.
                results[position[future.key]] = future.result()
                progress.advance(task)
        finally:
            client.cancel(futures)
    return [result for result in results if result is not None]


def map_items(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    scheduler: str | None = None,
    description: str = "",
    progress: bool = True,
    fail_fast: bool = False,
) -> list[ItemResult]:
    """Apply ``fn`` to every item independently, in parallel, keeping input order.

    Parameters
    ----------
    fn
        Function of one item. It must be picklable (a module-level function or a
        `functools.partial` of one) for ``"processes"`` and for a scheduler address.
    items
        The items (paths, indices, parameter sets).
    scheduler
        ``None``: Dask's local threaded scheduler (good when ``fn`` spends its time in
        PyTorch/NumPy, which release the GIL). ``"processes"``: Dask's local
        multiprocessing scheduler (workers are spawned, so a calling script needs the
        ``if __name__ == "__main__":`` guard). Any other string: the address of a running
        ``distributed`` scheduler (e.g. ``"tcp://10.0.0.5:8786"``); a client is
        connected for this call and closed afterwards. Local worker counts follow Dask's
        configuration (``num_workers``).
    description
        Text shown beside the progress bar.
    progress
        Show a transient progress bar (only when the console is a terminal).
    fail_fast
        Re-raise the first exception raised by ``fn`` (unchanged) instead of recording
        it; with a scheduler address the remaining items are cancelled.

    Returns
    -------
    list[ItemResult]
        One result per item, in input order.
    """
    items = list(items)
    tasks = [
        functools.partial(_run_one, fn, item, index, _label(item), not fail_fast)
        for index, item in enumerate(items)
    ]
    show = progress and Console().is_terminal
    with Progress(transient=True, disable=not show) as bar:
        task = bar.add_task(description or "items", total=len(tasks))
        if not tasks:
            return []
        if scheduler is None:
            return _map_local(tasks, "threads", bar, task)
        if scheduler == "processes":
            return _map_local(tasks, "processes", bar, task)
        return _map_distributed(tasks, scheduler, bar, task)


def raise_failures(results: Sequence[ItemResult]) -> None:
    """Raise one error listing every failed item; do nothing when all succeeded.

    Parameters
    ----------
    results
        The output of `map_items`.

    Raises
    ------
    InputError
        Every failure was an `InputError` (bad input files or values).
    RuntimeError
        At least one failure was another exception.
    """
    failed = [result for result in results if not result.ok]
    if not failed:
        return
    lines = [f"  [{r.index}] {r.label}: {r.error}" for r in failed]
    message = f"{len(failed)} of {len(results)} items failed:\n" + "\n".join(lines)
    if all(result.input_error for result in failed):
        raise InputError(None, message)
    raise RuntimeError(message)

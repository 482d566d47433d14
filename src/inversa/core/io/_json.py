"""JSON files: one atomic writer and one reader that names the file on bad input."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from inversa.core.errors import InputError
from inversa.core.io._atomic import atomic_write
from inversa.core.io._read import read_input_bytes

__all__ = ["read_json", "write_json"]


def write_json(
    path: str | os.PathLike[str],
    payload: Any,
    *,
    force: bool = False,
    indent: int | None = 2,
    default: Callable[[Any], Any] | None = None,
    sort_keys: bool = False,
) -> None:
    """Write ``payload`` as JSON (UTF-8, trailing newline), atomically.

    Parameters
    ----------
    path
        Output file.
    payload
        Anything `json.dumps` accepts (NaN and infinity are written as JSON5-style
        ``NaN``/``Infinity``, which `read_json` and Python read back).
    force
        Overwrite an existing file.
    indent
        Indentation; ``None`` writes one line.
    default
        Called on objects JSON cannot hold (e.g. ``str``), as in `json.dumps`.
    sort_keys
        Sort object keys.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    TypeError
        ``payload`` holds an object JSON cannot hold and ``default`` does not convert it
        (a programming error, raised before anything is written).
    """
    text = json.dumps(payload, indent=indent, default=default, sort_keys=sort_keys) + "\n"
    with atomic_write(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file.

    Parameters
    ----------
    path
        The JSON file.

    Returns
    -------
    object
        The decoded value (dicts, lists, numbers, strings, booleans, ``None``).

    Raises
    ------
    InputError
        The file is missing, unreadable, not UTF-8, or not valid JSON (the message gives
        the line and column).
    """
    raw = read_input_bytes(path)
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise InputError(path, f"not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise InputError(
            path, f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None
    except RecursionError:
        raise InputError(path, "not valid JSON: nested too deeply") from None

"""Reading an input file whole, with the one error every reader gives for a bad path."""

from __future__ import annotations

import os
from pathlib import Path

from inversa.core.errors import InputError

__all__ = ["read_input_bytes"]


def read_input_bytes(path: str | os.PathLike[str]) -> bytes:
    """Return the bytes of the input file ``path``.

    Raises
    ------
    InputError
        The file is missing, or cannot be read (a folder, no permission, ...).
    """
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except OSError as err:
        raise InputError(path, f"cannot read file ({err.strerror or err})") from None

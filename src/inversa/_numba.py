"""Where numba keeps its compiled-function cache: a per-user folder, not the package.

The kernels use ``@njit(cache=True)``. By default numba writes its cache next to the
source, into the installed package's ``__pycache__``, which may be read-only or shared
between users. `configure_numba_cache` points ``NUMBA_CACHE_DIR`` at a per-user folder
unless the user set it. It runs on ``import inversa``: numba reads the variable when a
``cache=True`` function is decorated (and again at each compilation), so it must be set
before any kernel module is imported.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

__all__ = ["configure_numba_cache", "default_numba_cache_dir"]


def default_numba_cache_dir() -> Path:
    """Return the per-user cache folder: ``$XDG_CACHE_HOME/inversa/numba`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "inversa" / "numba"


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def configure_numba_cache() -> str | None:
    """Set ``NUMBA_CACHE_DIR`` to a writable per-user folder unless it is already set.

    Falls back to ``<tmp>/inversa-numba-<uid>`` when the home cache is not writable, and
    leaves numba's default when neither is.

    Returns
    -------
    str or None
        The cache folder in effect, ``None`` when numba's default is kept.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    for folder in (default_numba_cache_dir(), Path(tempfile.gettempdir()) / f"inversa-numba-{uid}"):
        if _writable(folder):
            os.environ["NUMBA_CACHE_DIR"] = str(folder)
            config = sys.modules.get("numba.core.config")
            if config is not None:
                # numba was imported first and read the old value; make it re-read now.
                config.reload_config()
            return str(folder)
    return None

"""Optional dependencies: which extra provides a module, and one error when it is missing.

Methods import their optional dependencies (ObsPy, SeisBench, PyG, scikit-learn, ASTRA,
scikit-image, pydicom, spherical) inside functions, through `require`, so that
``import inversa`` works without them and a missing one is reported as one line naming
the extra to install::

    obspy = require("obspy")          # the module, or MissingDependencyError
    from obspy.core.event import Pick  # submodules import normally afterwards

The command line also maps a stray `ModuleNotFoundError` for one of these modules to the
same message (`missing_dependency`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from inversa.core.errors import InputError

__all__ = ["EXTRAS", "MissingDependencyError", "missing_dependency", "require"]

# Top-level module -> the ``inversa[...]`` extra that installs it.
EXTRAS: dict[str, str] = {
    "obspy": "seismic",
    "seisbench": "seismic",
    "torch_geometric": "graphs",
    "sklearn": "springblock",
    "astra": "bench",
    "skimage": "bench",
    "imageio": "imaging",
    "pydicom": "poisson",
    "spherical": "dev",
}


class MissingDependencyError(InputError):
    """An optional dependency is not installed; the message names the extra to install.

    Parameters
    ----------
    module
        The top-level module that could not be imported, e.g. ``"obspy"``.
    extra
        The extra that installs it, e.g. ``"seismic"``.
    """

    def __init__(self, module: str, extra: str) -> None:
        self.module, self.extra = module, extra
        super().__init__(
            None, f'{module} is not installed; install it with: pip install "inversa[{extra}]"'
        )


def require(module: str, *, extra: str | None = None) -> ModuleType:
    """Import an optional dependency or raise `MissingDependencyError`.

    Parameters
    ----------
    module
        Module to import, e.g. ``"obspy"`` or ``"torch_geometric.data"``.
    extra
        The extra that installs it; looked up in `EXTRAS` from the top-level name when
        omitted.

    Returns
    -------
    types.ModuleType
        The imported module.
    """
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only the dependency itself being absent is reported this way; a module missing
        # inside an installed package is that package's problem and keeps its error.
        if exc.name != top:
            raise
        raise MissingDependencyError(top, extra or EXTRAS.get(top, "all")) from None


def missing_dependency(exc: ModuleNotFoundError) -> MissingDependencyError | None:
    """Return the error naming the extra for an optional module's import failure, else ``None``.

    A module set to ``None`` in `sys.modules` (hidden) raises a `ModuleNotFoundError`
    with the same ``name``, so hidden and absent modules are treated alike.
    """
    top = (exc.name or "").partition(".")[0]
    extra = EXTRAS.get(top)
    return None if extra is None else MissingDependencyError(top, extra)

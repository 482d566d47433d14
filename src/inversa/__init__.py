"""inversa: learning and inverse problems on one shared core.

The flagship is cryo-electron tomography (simulate, reconstruct, align, average);
beside it CT under Poisson noise and several scientific machine-learning methods.
``inversa.core`` holds the shared primitives, ``inversa.tomography`` the forward models
with exact adjoints and the classical reconstructions.
"""

from inversa._numba import configure_numba_cache as _configure_numba_cache

# Before any numba kernel is decorated: its cache goes to a per-user folder, not src/.
_configure_numba_cache()

__version__ = "0.1.0"
__all__ = ["__version__"]

"""Shared primitives with no method logic.

Rotations, Fourier tools, metrics, I/O, phantoms, noise models, parallel maps, linear
operators, the helpers and report (``SolveInfo``) of batched iterative solvers, and the
training loop with its checkpoint formats. Import the submodules directly, e.g.
``from inversa.core import rotations`` or ``from inversa.core.solve import SolveInfo``.
"""

"""Shared primitives with no method logic.

Rotations, Fourier tools, metrics, I/O, phantoms, noise models, parallel maps and linear
operators. Import the submodules directly, e.g. ``from inversa.core import rotations``.
"""

"""Shared primitives with no method logic.

Rotations, Fourier tools, metrics, I/O, phantoms, noise models, parallel maps, linear
operators and the training loop with its checkpoint formats. Import the submodules
directly, e.g. ``from inversa.core import rotations``.
"""

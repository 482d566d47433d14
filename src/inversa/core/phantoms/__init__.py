"""Test objects: Shepp-Logan phantoms, densities of atomic models and cell-like scenes.

- :func:`shepp_logan_2d`, :func:`shepp_logan_3d`: the CT head phantoms, exact at pixel
  (voxel) centres.
- :func:`read_atomic_model`, :func:`density_from_atoms`, :func:`reference_density`: atomic
  structures (PDB/mmCIF via gemmi) rendered as voxel-integrated Gaussian atoms;
  :func:`builtin_structure_path` gives a shipped structure (PDB 1AKE chain A).
- :func:`cell_scene`: vesicles and many randomly placed, randomly rotated copies of a
  structure, with the ground-truth positions and orientations.
- :func:`random_ellipses`: random ellipse phantoms in [0, 1], exact at pixel centres and
  the same object at every resolution (training images of the learned methods).
- :func:`real_image`, :func:`real_image_names`: real test images shipped with pydicom
  (``CT_small.dcm``) and scikit-image (``camera``, ``coins``), in [0, 1], with their
  licences (extra ``imaging``; ``data/PROVENANCE.md``).
"""

from inversa.core.phantoms._atomic import (
    AtomicModel,
    builtin_structure_path,
    density_from_atoms,
    read_atomic_model,
    reference_density,
    scattering_weights,
)
from inversa.core.phantoms._ellipses import random_ellipses
from inversa.core.phantoms._real import real_image, real_image_names
from inversa.core.phantoms._scene import Scene, cell_scene
from inversa.core.phantoms._shepp_logan import shepp_logan_2d, shepp_logan_3d

__all__ = [
    "AtomicModel",
    "Scene",
    "builtin_structure_path",
    "cell_scene",
    "density_from_atoms",
    "random_ellipses",
    "read_atomic_model",
    "real_image",
    "real_image_names",
    "reference_density",
    "scattering_weights",
    "shepp_logan_2d",
    "shepp_logan_3d",
]

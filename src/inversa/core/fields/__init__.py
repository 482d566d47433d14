"""Neural-field building blocks shared by the learned imaging methods.

One home for the pieces CryoLithe, ICE-TIDE and LoFi all need, so that no method imports
another. Coordinates are ``(..., d)`` with x first and lie in ``[0, 1]^d``.

- `HashGridEncoding` / `hash_grid_encode`: multi-resolution hash grid (Instant-NGP), 2-D
  and 3-D, ``(..., d) -> (..., L * F)``, exact gradients for the table and the points.
- `FourierFeatures` / `fourier_features`: random Gaussian (`GaussianFourierConfig`) or
  axis-aligned log-spaced (`PositionalFourierConfig`) frequencies.
- `MLP`, `SetMLP`, `masked_mean`: small fully connected blocks; the set block is
  permutation invariant over a set axis with an optional mask.
- `FourierFilter`: a learnable complex Fourier-domain filter, its real and imaginary
  outputs stacked with the input, ``(B, C, H, W) -> (B, 3C, H, W)``.
- `RingSpokeSampler`: a multi-scale ring/spoke pattern of sample points around each query
  coordinate (learned offsets and global scale), bicubic or bilinear, ``(B, Q, 2) ->
  (B, Q, spokes, radii, C)``; `sample_points` interpolates images at ``[0, 1]^2`` points.
  Both measure lengths in pixels of a reference resolution, so they work at any size.
- `NeuralField`: encoding + MLP, ``(..., d) -> (..., c)``, with chunked `sample_grid`;
  `grid_coordinates` gives a grid's voxel-centre coordinates.

Every block is built from a frozen keyword-only config and an explicit generator.
See ``docs/fields.md``.
"""

from inversa.core.fields._field import (
    EncodingConfig,
    NeuralField,
    NeuralFieldConfig,
    grid_coordinates,
)
from inversa.core.fields._fourier import (
    FourierFeatures,
    GaussianFourierConfig,
    PositionalFourierConfig,
    fourier_features,
)
from inversa.core.fields._hashgrid import (
    HashGridConfig,
    HashGridEncoding,
    hash_grid_corners,
    hash_grid_encode,
)
from inversa.core.fields._local import (
    FourierFilter,
    FourierFilterConfig,
    RingSpokeConfig,
    RingSpokeSampler,
    sample_points,
)
from inversa.core.fields._mlp import (
    ACTIVATIONS,
    MLP,
    MLPConfig,
    SetMLP,
    SetMLPConfig,
    masked_mean,
)

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "EncodingConfig",
    "FourierFeatures",
    "FourierFilter",
    "FourierFilterConfig",
    "GaussianFourierConfig",
    "HashGridConfig",
    "HashGridEncoding",
    "MLPConfig",
    "NeuralField",
    "NeuralFieldConfig",
    "PositionalFourierConfig",
    "RingSpokeConfig",
    "RingSpokeSampler",
    "SetMLP",
    "SetMLPConfig",
    "fourier_features",
    "grid_coordinates",
    "hash_grid_corners",
    "hash_grid_encode",
    "masked_mean",
    "sample_points",
]

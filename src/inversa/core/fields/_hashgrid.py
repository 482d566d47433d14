"""Multi-resolution hash-grid encoding (Instant-NGP) in plain PyTorch, 2-D and 3-D."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import nn

from inversa.core.fields._configured import ConfiguredModule

__all__ = ["HashGridConfig", "HashGridEncoding", "hash_grid_corners", "hash_grid_encode"]

# Instant-NGP's spatial-hash primes; the first is 1 so that neighbouring cells along x
# land in neighbouring rows (better cache use), as in the original.
_PRIMES = (1, 2654435761, 805459861)


@dataclass(frozen=True, kw_only=True)
class HashGridConfig:
    """Shape of a multi-resolution hash grid.

    Level ``l`` (``0 <= l < n_levels``) is a regular grid of ``N_l`` cells per axis over
    ``[0, 1]^dim`` (so ``N_l + 1`` vertices per axis), with
    ``N_l = floor(base_resolution * b^l)`` and the growth factor
    ``b = (max_resolution / base_resolution)^(1 / (n_levels - 1))``. Each level owns a block
    of ``min((N_l + 1)^dim, 2^log2_table_size)`` rows of ``n_features`` features in one flat
    table: a level whose vertices fit is indexed densely (vertex ``(i_x, i_y[, i_z])`` is
    row ``i_x + (N_l + 1) i_y + (N_l + 1)^2 i_z`` of its block), a finer one by the spatial
    hash ``(i_x * 1 XOR i_y * 2654435761 XOR i_z * 805459861) mod 2^log2_table_size``.

    Parameters
    ----------
    dim
        Input dimension, 2 or 3.
    n_levels
        Number of levels ``L``.
    n_features
        Features per level ``F``; the encoding has ``L * F`` features.
    log2_table_size
        ``T``: at most ``2^T`` rows per level.
    base_resolution, max_resolution
        Cells per axis of the coarsest and the finest level.
    init_scale
        Table entries start uniform in ``[-init_scale, init_scale]`` (Instant-NGP: 1e-4).
    """

    dim: int
    n_levels: int = 16
    n_features: int = 2
    log2_table_size: int = 19
    base_resolution: int = 16
    max_resolution: int = 2048
    init_scale: float = 1e-4

    def __post_init__(self) -> None:
        if self.dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {self.dim}")
        if self.n_levels < 1 or self.n_features < 1:
            raise ValueError("n_levels and n_features must be positive")
        if not 1 <= self.log2_table_size <= 30:
            raise ValueError(f"log2_table_size must be in [1, 30], got {self.log2_table_size}")
        if not 1 <= self.base_resolution <= self.max_resolution:
            raise ValueError("need 1 <= base_resolution <= max_resolution")
        if self.n_levels == 1 and self.max_resolution != self.base_resolution:
            raise ValueError("a single level needs max_resolution == base_resolution")
        if not (math.isfinite(self.init_scale) and self.init_scale >= 0):
            raise ValueError(f"init_scale must be finite and >= 0, got {self.init_scale}")

    @property
    def growth_factor(self) -> float:
        """Resolution ratio ``b`` between consecutive levels."""
        if self.n_levels == 1:
            return 1.0
        ratio = self.max_resolution / self.base_resolution
        return ratio ** (1.0 / (self.n_levels - 1))

    @cached_property
    def resolutions(self) -> tuple[int, ...]:
        """Cells per axis ``N_l`` of every level, coarse to fine."""
        b = self.growth_factor
        # the small slack keeps the finest level at max_resolution despite rounding in b**l
        return tuple(
            min(self.max_resolution, math.floor(self.base_resolution * b**level + 1e-6))
            for level in range(self.n_levels)
        )

    @cached_property
    def dense(self) -> tuple[bool, ...]:
        """Whether each level is indexed densely (its vertices fit in the table)."""
        return tuple((n + 1) ** self.dim <= 2**self.log2_table_size for n in self.resolutions)

    @cached_property
    def level_offsets(self) -> tuple[int, ...]:
        """First row of each level's block in the flat table; the last entry is the total."""
        offsets = [0]
        for n, dense in zip(self.resolutions, self.dense, strict=True):
            rows = (n + 1) ** self.dim if dense else 2**self.log2_table_size
            offsets.append(offsets[-1] + rows)
        return tuple(offsets)

    @property
    def table_rows(self) -> int:
        """Rows of the flat table (all levels)."""
        return self.level_offsets[-1]

    @property
    def out_features(self) -> int:
        """Width ``L * F`` of the encoding."""
        return self.n_levels * self.n_features


def _group_rows(
    cell: torch.Tensor, levels: range, config: HashGridConfig, out: torch.Tensor
) -> None:
    """Write the table rows ``(G, 2^d, P)`` of the cell corners into ``out``.

    ``cell`` ``(G, d, P)`` holds the lower vertex of every point's cell at the ``G`` levels
    of the group, all dense or all hashed. Corner ``c`` takes the upper vertex on axis
    ``k`` when bit ``k`` of ``c`` is set: the per-axis vertex pairs are combined by
    broadcasting over a ``(G, 2, ..., 2, P)`` block with the points innermost (contiguous,
    so the element-wise kernels vectorise); no ``(P, 2^d, d)`` corner array is built.
    """
    d, n_points = config.dim, cell.shape[-1]
    dense = config.dense[levels.start]
    rows = None
    for k in range(d):
        shape = [len(levels)] + [1] * d + [n_points]
        shape[d - k] = 2
        if dense:
            strides = [(config.resolutions[level] + 1) ** k for level in levels]
            scale = torch.tensor(strides, device=cell.device)[:, None, None]
        else:
            scale = _PRIMES[k]
        lower = cell[:, k]
        pair = torch.stack([lower, lower + 1], dim=1).mul_(scale).view(shape)
        # int64 products are exact, so their low bits equal Instant-NGP's uint32 hash
        rows = pair if rows is None else (rows + pair if dense else rows ^ pair)
    rows = rows.reshape(out.shape)
    offsets = [config.level_offsets[level] for level in levels]
    offsets = torch.tensor(offsets, device=cell.device)[:, None, None]
    if dense:
        torch.add(rows, offsets, out=out)
    else:
        torch.bitwise_and(rows, 2**config.log2_table_size - 1, out=out).add_(offsets)


def _corners(coords: torch.Tensor, config: HashGridConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Level-major rows and weights, each ``(L, 2^d, P)``, for ``(..., d)`` coordinates."""
    if coords.shape[-1] != config.dim:
        raise ValueError(f"coords must end in {config.dim}, got shape {tuple(coords.shape)}")
    if not coords.is_floating_point():
        raise ValueError("coords must be a floating-point tensor")
    d, n_levels = config.dim, config.n_levels
    x = coords.reshape(-1, d).clamp(0.0, 1.0)
    res = torch.tensor(config.resolutions, device=x.device, dtype=x.dtype)[:, None, None]
    pos = x.T.unsqueeze(0) * res  # (L, d, P)
    # cell N - 1 owns the far boundary x = 1 (fraction 1), so vertices stay in 0..N
    cell = torch.minimum(pos.detach().floor().clamp_(min=0), res - 1)
    frac = pos - cell
    # a NaN point reads row 0 and comes out NaN through its weights, instead of
    # indexing out of range (a device-side assert on CUDA)
    cell = cell.nan_to_num_(0.0).long()
    weights = None
    for k in range(d):
        shape = [n_levels] + [1] * d + [x.shape[0]]
        shape[d - k] = 2
        w = torch.stack([1 - frac[:, k], frac[:, k]], dim=1).view(shape)
        weights = w if weights is None else weights * w
    rows = torch.empty(n_levels, 2**d, x.shape[0], dtype=torch.long, device=x.device)
    # resolutions grow with the level, so the dense levels are a prefix
    n_dense = sum(config.dense)
    for group in (range(n_dense), range(n_dense, n_levels)):
        if len(group):
            sl = slice(group.start, group.stop)
            _group_rows(cell[sl], group, config, out=rows[sl])
    return rows, weights.reshape(n_levels, 2**d, x.shape[0])


def hash_grid_corners(
    coords: torch.Tensor, *, config: HashGridConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Table rows and interpolation weights of the ``2^d`` cell corners at every level.

    Parameters
    ----------
    coords
        ``(..., d)`` points in ``[0, 1]^d`` (x first); points outside are clamped to the
        boundary, so their gradient is zero there.
    config
        The grid.

    Returns
    -------
    rows
        ``(..., L, 2^d)`` int64 rows of the flat table (level offsets included); corner
        ``c`` is the upper vertex along axis ``k`` when bit ``k`` of ``c`` is set.
    weights
        ``(..., L, 2^d)`` (bi/tri)linear weights, summing to 1 over the corners,
        differentiable with respect to ``coords``.
    """
    rows, weights = _corners(coords, config)
    shape = (*coords.shape[:-1], config.n_levels, 2**config.dim)
    return rows.permute(2, 0, 1).reshape(shape), weights.permute(2, 0, 1).reshape(shape)


def hash_grid_encode(
    coords: torch.Tensor, table: torch.Tensor, *, config: HashGridConfig
) -> torch.Tensor:
    """Encode points with a multi-resolution hash grid.

    Parameters
    ----------
    coords
        ``(..., d)`` points in ``[0, 1]^d`` (x first); clamped to the unit cube.
    table
        ``(config.table_rows, F)`` features of all levels (see `HashGridConfig`); cast to
        ``coords``' dtype, so the result follows the input's dtype.
    config
        The grid.

    Returns
    -------
    torch.Tensor
        ``(..., L * F)`` features, level-major (level 0's ``F`` features first).
        Differentiable with respect to ``table`` and ``coords`` (exact, piecewise
        (bi/tri)linear in ``coords``).
    """
    if table.shape != (config.table_rows, config.n_features):
        raise ValueError(
            f"table must be ({config.table_rows}, {config.n_features}), got {tuple(table.shape)}"
        )
    rows, weights = _corners(coords, config)  # (L, 2^d, P)
    # One gather for all levels and corners (its backward is one scatter-add), level-major
    # so that consecutive reads stay inside one level's block of the table.
    feats = table.to(coords.dtype).index_select(0, rows.reshape(-1))
    feats = feats.reshape(*rows.shape, config.n_features)
    out = (feats * weights.unsqueeze(-1)).sum(dim=1)  # (L, P, F)
    return out.movedim(0, 1).reshape(*coords.shape[:-1], config.out_features)


class HashGridEncoding(ConfiguredModule):
    """Learnable multi-resolution hash-grid encoding, ``(..., d) -> (..., L * F)``.

    Parameters
    ----------
    config
        The grid; ``config.table_rows x F`` learnable features in ``self.table``.
    generator
        Source of randomness for the initial table (uniform in
        ``[-init_scale, init_scale]``).
    """

    def __init__(self, config: HashGridConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        table = torch.empty(config.table_rows, config.n_features)
        table.uniform_(-config.init_scale, config.init_scale, generator=generator)
        self.table = nn.Parameter(table)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Encode ``(..., d)`` points in ``[0, 1]^d`` as ``(..., L * F)`` features."""
        return hash_grid_encode(coords, self.table, config=self.config)

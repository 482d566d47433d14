"""A neural field: an encoding followed by an MLP, with chunked evaluation on a grid."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import nn

from inversa.core.fields._fourier import (
    FourierFeatures,
    GaussianFourierConfig,
    PositionalFourierConfig,
)
from inversa.core.fields._hashgrid import HashGridConfig, HashGridEncoding
from inversa.core.fields._mlp import MLP, MLPConfig

__all__ = ["EncodingConfig", "NeuralField", "NeuralFieldConfig", "grid_coordinates"]

EncodingConfig = HashGridConfig | GaussianFourierConfig | PositionalFourierConfig

_ENCODINGS: dict[str, type] = {
    "hash_grid": HashGridConfig,
    "gaussian_fourier": GaussianFourierConfig,
    "positional_fourier": PositionalFourierConfig,
}


def _plain(config: object) -> dict:
    """Return a config's declared fields as JSON-able values (tuples become lists)."""
    return {
        f.name: list(v) if isinstance(v := getattr(config, f.name), tuple) else v
        for f in fields(config)
    }


def _grid_points(
    shape: tuple[int, ...], start: int, stop: int, *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Voxel-centre coordinates of flat (C-order) voxels ``start..stop-1``, ``(n, d)``, x first."""
    flat = torch.arange(start, stop, device=device)
    coords = []
    for n in reversed(shape):  # last axis (x) first
        coords.append(((flat % n).to(dtype) + 0.5) / n)
        flat = flat // n
    return torch.stack(coords, dim=-1)


def grid_coordinates(
    shape: Sequence[int],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Voxel-centre coordinates of a grid in ``[0, 1]^d``.

    Parameters
    ----------
    shape
        ``(H, W)`` or ``(D, H, W)`` (any length ``d``), indexed [z, y, x].
    device, dtype
        Of the result (default device, default float dtype).

    Returns
    -------
    torch.Tensor
        ``(*shape, d)`` with the coordinate vector (x, y[, z]) last: voxel ``[..., i]``
        along an axis of length ``n`` sits at ``(i + 0.5) / n``.
    """
    shape = tuple(int(n) for n in shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"shape must be non-empty with positive sizes, got {shape}")
    dtype = dtype or torch.get_default_dtype()
    device = torch.device(device) if device is not None else torch.device("cpu")
    points = _grid_points(shape, 0, math.prod(shape), device=device, dtype=dtype)
    return points.reshape(*shape, len(shape))


@dataclass(frozen=True, kw_only=True)
class NeuralFieldConfig:
    """An encoding and the MLP that reads it.

    Parameters
    ----------
    encoding
        `HashGridConfig`, `GaussianFourierConfig` or `PositionalFourierConfig`.
    mlp
        Its ``in_features`` must equal ``encoding.out_features``; ``out_features`` is the
        number ``c`` of field channels.
    """

    encoding: EncodingConfig
    mlp: MLPConfig

    def __post_init__(self) -> None:
        if self.mlp.in_features != self.encoding.out_features:
            raise ValueError(
                f"mlp.in_features ({self.mlp.in_features}) must equal "
                f"encoding.out_features ({self.encoding.out_features})"
            )

    def to_dict(self) -> dict:
        """JSON-able form (for weight-file headers); `from_dict` reads it back."""
        kind = next(k for k, cls in _ENCODINGS.items() if isinstance(self.encoding, cls))
        return {"encoding": {"kind": kind, **_plain(self.encoding)}, "mlp": _plain(self.mlp)}

    @classmethod
    def from_dict(cls, data: dict) -> NeuralFieldConfig:
        """Rebuild a config written by `to_dict`.

        Raises
        ------
        ValueError
            When the encoding kind is unknown or a field is missing or invalid.
        """
        try:
            encoding = dict(data["encoding"])
            kind = encoding.pop("kind")
            mlp = dict(data["mlp"])
            mlp["hidden_features"] = tuple(mlp.get("hidden_features", ()))
            return cls(encoding=_ENCODINGS[kind](**encoding), mlp=MLPConfig(**mlp))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a neural-field configuration: {exc!r}") from exc


class NeuralField(nn.Module):
    """A coordinate network ``(..., d) -> (..., c)``: an encoding, then an MLP.

    Coordinates live in ``[0, 1]^d`` (x first); `grid_coordinates` gives a voxel grid's.

    Parameters
    ----------
    config
        Encoding and MLP.
    generator
        Source of randomness for the table, the Gaussian frequencies and the weights.
    """

    def __init__(self, config: NeuralFieldConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        if isinstance(config.encoding, HashGridConfig):
            self.encoding: nn.Module = HashGridEncoding(config.encoding, generator=generator)
        else:
            self.encoding = FourierFeatures(config.encoding, generator=generator)
        self.mlp = MLP(config.mlp, generator=generator)

    @property
    def in_features(self) -> int:
        """Coordinate dimension ``d``."""
        return self.config.encoding.dim

    @property
    def out_features(self) -> int:
        """Number of channels ``c``."""
        return self.config.mlp.out_features

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Evaluate the field at ``(..., d)`` points; returns ``(..., c)``."""
        return self.mlp(self.encoding(coords))

    @torch.no_grad()
    def sample_grid(self, shape: Sequence[int], *, chunk: int = 2**16) -> torch.Tensor:
        """Evaluate the field at the voxel centres of a grid, ``chunk`` points at a time.

        Coordinates are made per chunk, so beyond the result itself the memory used is
        that of one chunk whatever the grid size. No gradients are recorded.

        Parameters
        ----------
        shape
            ``(H, W)`` or ``(D, H, W)``, of length ``d``; indexed [z, y, x].
        chunk
            Points per evaluation.

        Returns
        -------
        torch.Tensor
            ``(*shape, c)`` on the field's device, in its dtype.
        """
        shape = tuple(int(n) for n in shape)
        if len(shape) != self.in_features or min(shape) < 1:
            raise ValueError(f"shape must be {self.in_features} positive sizes, got {shape}")
        if chunk < 1:
            raise ValueError(f"chunk must be positive, got {chunk}")
        ref = next(self.mlp.parameters())
        total = math.prod(shape)
        out = torch.empty(total, self.out_features, device=ref.device, dtype=ref.dtype)
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            points = _grid_points(shape, start, stop, device=ref.device, dtype=ref.dtype)
            out[start:stop] = self(points)
        return out.reshape(*shape, self.out_features)

"""Linear operators: the small interface every forward model implements.

An operator acts on the trailing ``domain_shape`` dimensions of a tensor and returns a
tensor whose trailing dimensions are ``range_shape``; any leading dimensions are batch
dimensions and pass through unchanged. ``adjoint`` is the exact transpose of
``forward`` (checked for every registered operator by one generic test suite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["DiagonalOperator", "IdentityOperator", "LinearOperator", "MatrixOperator"]


class LinearOperator:
    """Base class of linear maps ``A: R^domain_shape -> R^range_shape``.

    Subclasses define ``domain_shape``, ``range_shape``, ``forward`` and ``adjoint``.
    """

    domain_shape: tuple[int, ...]
    range_shape: tuple[int, ...]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the operator: ``(..., *domain_shape) -> (..., *range_shape)``."""
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the exact adjoint: ``(..., *range_shape) -> (..., *domain_shape)``."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``forward``."""
        return self.forward(x)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``A^T A``: ``(..., *domain_shape) -> (..., *domain_shape)``."""
        return self.adjoint(self.forward(x))

    def norm(
        self,
        *,
        n_iter: int = 30,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> float:
        """Estimate the spectral norm ``||A||_2`` by power iteration on ``A^T A``."""
        x = torch.randn(self.domain_shape, generator=generator, dtype=dtype, device="cpu")
        x = x.to(device)
        x = x / torch.linalg.vector_norm(x)
        sq = 0.0
        for _ in range(n_iter):
            z = self.normal(x)
            sq = float(torch.linalg.vector_norm(z))
            if sq == 0.0:
                return 0.0
            x = z / sq
        return math.sqrt(sq)


@dataclass(frozen=True, eq=False)
class MatrixOperator(LinearOperator):
    """A dense matrix acting on vectors: ``(..., n) -> (..., m)`` for a ``(m, n)`` matrix."""

    matrix: torch.Tensor

    @property
    def domain_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Trailing shape of the inputs."""
        return (self.matrix.shape[1],)

    @property
    def range_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Trailing shape of the outputs."""
        return (self.matrix.shape[0],)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x @ M^T``."""
        return x @ self.matrix.mT

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Return ``y @ M``."""
        return y @ self.matrix


@dataclass(frozen=True, eq=False)
class DiagonalOperator(LinearOperator):
    """Elementwise multiplication by a fixed tensor ``d`` of shape ``domain_shape``."""

    diagonal: torch.Tensor

    @property
    def domain_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Trailing shape of the inputs."""
        return tuple(self.diagonal.shape)

    @property
    def range_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Trailing shape of the outputs."""
        return tuple(self.diagonal.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``d * x``."""
        return self.diagonal * x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Return ``d * y`` (real diagonal: self-adjoint)."""
        return self.diagonal * y


@dataclass(frozen=True)
class IdentityOperator(LinearOperator):
    """The identity on tensors whose trailing dimensions are ``shape``."""

    shape: tuple[int, ...]

    @property
    def domain_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Trailing shape of the inputs."""
        return self.shape

    @property
    def range_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Trailing shape of the outputs."""
        return self.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x``."""
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Return ``y``."""
        return y

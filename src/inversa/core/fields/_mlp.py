"""Small MLP blocks: a plain/residual MLP and a permutation-invariant set MLP."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from inversa.core.fields._configured import ConfiguredModule

__all__ = ["ACTIVATIONS", "MLP", "MLPConfig", "SetMLP", "SetMLPConfig", "masked_mean"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "silu": F.silu,
    "softplus": F.softplus,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}
"""Activation names accepted by `MLPConfig`."""

# Kaiming gains; GELU, SiLU and softplus behave like ReLU for initialisation purposes.
_GAINS = {
    "relu": math.sqrt(2),
    "gelu": math.sqrt(2),
    "silu": math.sqrt(2),
    "softplus": math.sqrt(2),
    "tanh": 5 / 3,
    "sigmoid": 1.0,
    "identity": 1.0,
}


@dataclass(frozen=True, kw_only=True)
class MLPConfig:
    """A fully connected network ``in -> hidden[0] -> ... -> hidden[-1] -> out``.

    Parameters
    ----------
    in_features, out_features
        Input and output widths.
    hidden_features
        Widths of the hidden layers (empty: one linear layer).
    activation
        Name in `ACTIVATIONS`, applied after every hidden layer.
    output_activation
        Name in `ACTIVATIONS` applied to the output, or ``None`` for a linear output.
    residual
        Add a skip connection ``h + act(W h + b)`` around every hidden layer whose input
        and output widths agree.
    bias
        Learnable biases.
    """

    in_features: int
    out_features: int
    hidden_features: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    output_activation: str | None = None
    residual: bool = False
    bias: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.hidden_features, tuple):
            raise ValueError("hidden_features must be a tuple")
        widths = (self.in_features, *self.hidden_features, self.out_features)
        if any(not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be positive integers, got {widths}")
        for name in (self.activation, self.output_activation):
            if name is not None and name not in ACTIVATIONS:
                raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}")


class MLP(ConfiguredModule):
    """Fully connected network applied to the last axis, ``(..., in) -> (..., out)``.

    Initialisation: hidden weights Kaiming-uniform for the activation's gain
    (``U(-g sqrt(3 / fan_in), g sqrt(3 / fan_in))``, ``g = sqrt 2`` for ReLU-like, 5/3 for
    tanh), output weights ``U(-1 / sqrt(fan_in), 1 / sqrt(fan_in))`` (unit-variance inputs
    give outputs of variance about 1/3), all biases zero.

    Parameters
    ----------
    config
        The architecture.
    generator
        Source of randomness for the initial weights.
    """

    input_field = "in_features"

    def __init__(self, config: MLPConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        widths = (config.in_features, *config.hidden_features, config.out_features)
        self.layers = nn.ModuleList(
            nn.Linear(a, b, bias=config.bias) for a, b in itertools.pairwise(widths)
        )
        gain = _GAINS[config.activation]
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                fan_in = layer.in_features
                hidden = i < len(self.layers) - 1
                bound = gain * math.sqrt(3 / fan_in) if hidden else 1 / math.sqrt(fan_in)
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to ``(..., in)``; returns ``(..., out)``."""
        act = ACTIVATIONS[self.config.activation]
        h = x
        for layer in self.layers[:-1]:
            z = act(layer(h))
            h = h + z if self.config.residual and z.shape[-1] == h.shape[-1] else z
        out = self.layers[-1](h)
        if self.config.output_activation is not None:
            out = ACTIVATIONS[self.config.output_activation](out)
        return out


def masked_mean(
    x: torch.Tensor, mask: torch.Tensor | None = None, *, dim: int = -2
) -> torch.Tensor:
    """Mean over a set axis, ignoring masked-out elements.

    Parameters
    ----------
    x
        ``(..., n_set, f)`` values (set axis ``dim``, ``-2`` by default).
    mask
        ``(..., n_set)`` booleans, ``True`` for the elements to keep (broadcast against
        ``x`` without its last axis); ``None`` keeps all. Dropped elements may hold
        anything, NaN included: they are zeroed, not multiplied.
    dim
        The set axis of ``x``.

    Returns
    -------
    torch.Tensor
        ``x`` reduced over ``dim``; zero where every element is dropped.
    """
    if mask is None:
        return x.mean(dim=dim)
    keep = mask.unsqueeze(-1)
    x = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))
    count = keep.to(x.dtype).sum(dim=dim).clamp(min=1)
    return x.sum(dim=dim) / count


@dataclass(frozen=True, kw_only=True)
class SetMLPConfig:
    """A Deep-Sets block: an element MLP, a mean over the set, then a head MLP.

    Parameters
    ----------
    element
        Applied to every element, ``(..., n_set, d) -> (..., n_set, h)``.
    head
        Applied to the pooled features, ``(..., h) -> (..., d_out)``; ``None`` returns
        the pooled features.
    """

    element: MLPConfig
    head: MLPConfig | None = None

    def __post_init__(self) -> None:
        if self.head is not None and self.head.in_features != self.element.out_features:
            raise ValueError(
                f"head.in_features ({self.head.in_features}) must equal "
                f"element.out_features ({self.element.out_features})"
            )

    @property
    def out_features(self) -> int:
        """Output width ``d_out``."""
        return (self.head or self.element).out_features


class SetMLP(nn.Module):
    """Permutation-invariant network over a set axis, ``(..., n_set, d) -> (..., d_out)``.

    ``head(mean_i element(x_i))`` over the kept elements: any number of elements works
    (CryoLithe's average over tilts), and the result does not depend on their order nor on
    the values of masked-out ones.

    Parameters
    ----------
    config
        The two MLPs.
    generator
        Source of randomness for the initial weights.
    """

    def __init__(self, config: SetMLPConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.element = MLP(config.element, generator=generator)
        self.head = None if config.head is None else MLP(config.head, generator=generator)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pool ``(..., n_set, d)`` to ``(..., d_out)``; ``mask`` ``(..., n_set)``, True = keep."""
        if mask is not None:
            # zero dropped inputs too, so NaN/inf there cannot leak into the gradients
            x = torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
        pooled = masked_mean(self.element(x), mask, dim=-2)
        return pooled if self.head is None else self.head(pooled)

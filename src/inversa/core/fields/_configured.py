"""What the configured field modules share: their widths, read from their config."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

__all__ = ["ConfiguredModule"]


class ConfiguredModule(nn.Module):
    """Base of a module ``(..., in_features) -> (..., out_features)`` built from a config.

    A subclass sets ``self.config``, a frozen config with ``out_features`` and the input
    width in the field named by ``input_field`` (``dim`` for the coordinate encodings);
    the widths are read from it so that they cannot disagree.
    """

    input_field: ClassVar[str] = "dim"

    @property
    def in_features(self) -> int:
        """Input width (``d`` for an encoding)."""
        return getattr(self.config, self.input_field)

    @property
    def out_features(self) -> int:
        """Output width (``config.out_features``)."""
        return self.config.out_features

"""Small convolutional networks shared by the learned methods.

:class:`UNet` is a plain 2-D or 3-D U-Net (two 3x3(x3) convolutions with leaky ReLU per
level, max pooling down, transposed convolutions up, skip connections concatenated),
optionally residual on its input. Configure it with a frozen :class:`UNetConfig`; methods
that post-process an image or a volume (a denoiser on WBP, a learned correction) build on
it instead of writing their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from inversa.core.errors import InputError

__all__ = ["UNet", "UNetConfig"]


@dataclass(frozen=True, kw_only=True)
class UNetConfig:
    """Shape of a :class:`UNet`.

    Attributes
    ----------
    dim
        Spatial dimensions: 2 (images, ``(B, C, H, W)``) or 3 (volumes, ``(B, C, D, H, W)``).
    channels
        Feature channels of the first level; doubled at each of the ``depth`` poolings.
    depth
        Number of poolings by 2; every spatial size must be divisible by ``2**depth``.
    in_channels, out_channels
        Channels of the input and of the output.
    residual
        Add the input to the output (needs ``in_channels == out_channels``).
    """

    dim: int = 3
    channels: int = 8
    depth: int = 2
    in_channels: int = 1
    out_channels: int = 1
    residual: bool = True

    def __post_init__(self) -> None:
        if self.dim not in (2, 3):
            raise InputError(None, f"UNet dim must be 2 or 3, got {self.dim}")
        if self.channels < 1 or self.depth < 1:
            raise InputError(None, "UNet channels and depth must be >= 1")
        if self.in_channels < 1 or self.out_channels < 1:
            raise InputError(None, "UNet in_channels and out_channels must be >= 1")
        if self.residual and self.in_channels != self.out_channels:
            raise InputError(None, "a residual UNet needs in_channels == out_channels")

    @property
    def multiple(self) -> int:
        """The number every spatial size must be divisible by (``2**depth``)."""
        return 2**self.depth


def _block(dim: int, a: int, b: int) -> nn.Sequential:
    conv = nn.Conv2d if dim == 2 else nn.Conv3d
    return nn.Sequential(
        conv(a, b, 3, padding=1),
        nn.LeakyReLU(0.1),
        conv(b, b, 3, padding=1),
        nn.LeakyReLU(0.1),
    )


class UNet(nn.Module):
    """U-Net ``(B, in_channels, *spatial) -> (B, out_channels, *spatial)``.

    ``spatial`` is ``(H, W)`` for ``dim=2`` and ``(D, H, W)`` for ``dim=3``; each size must
    be divisible by ``2**depth`` (else :class:`InputError`; pad first, e.g. with
    :meth:`pad_to_multiple`). With ``residual=True`` the output is ``x + net(x)``.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        c = [config.channels * 2**i for i in range(config.depth + 1)]
        up = nn.ConvTranspose2d if dim == 2 else nn.ConvTranspose3d
        conv = nn.Conv2d if dim == 2 else nn.Conv3d
        self.down = nn.ModuleList(
            [_block(dim, config.in_channels, c[0])]
            + [_block(dim, c[i], c[i + 1]) for i in range(config.depth)]
        )
        self.up = nn.ModuleList(up(c[i + 1], c[i], 2, stride=2) for i in range(config.depth))
        self.merge = nn.ModuleList(_block(dim, 2 * c[i], c[i]) for i in range(config.depth))
        self.out = conv(c[0], config.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to ``(B, in_channels, *spatial)``.

        Returns
        -------
        torch.Tensor
            ``(B, out_channels, *spatial)``.
        """
        cfg = self.config
        if x.ndim != cfg.dim + 2 or x.shape[1] != cfg.in_channels:
            raise InputError(
                None,
                f"UNet expects (B, {cfg.in_channels}, {'D, ' if cfg.dim == 3 else ''}H, W), "
                f"got {tuple(x.shape)}",
            )
        m = cfg.multiple
        if any(n % m for n in x.shape[2:]):
            raise InputError(
                None, f"UNet spatial sizes {tuple(x.shape[2:])} must be divisible by {m}"
            )
        pool = nn.functional.max_pool2d if cfg.dim == 2 else nn.functional.max_pool3d
        skips = []
        h = x
        for i, block in enumerate(self.down):
            h = block(h if i == 0 else pool(h, 2))
            skips.append(h)
        for i in reversed(range(cfg.depth)):
            h = self.merge[i](torch.cat([self.up[i](h), skips[i]], dim=1))
        y = self.out(h)
        return x + y if cfg.residual else y

    def pad_to_multiple(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad the spatial sizes of ``(B, C, *spatial)`` at the end up to ``2**depth``."""
        m = self.config.multiple
        pad: list[int] = []
        for n in reversed(x.shape[2:]):
            pad += [0, (m - n % m) % m]
        return nn.functional.pad(x, pad)

"""The SliceSet network: per-row features of every tilt's patch, pooled over tilts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.core.fields import MLP, MLPConfig, SetMLP, SetMLPConfig
from inversa.core.training import load_weights, save_weights

__all__ = [
    "FORMAT",
    "SliceSet",
    "SliceSetConfig",
    "load_model",
    "pooled_set_sum",
    "save_model",
]

FORMAT = "inversa-cryolithe-v1"
HEADS = ("pixel", "wavelet")


@dataclass(frozen=True, kw_only=True)
class SliceSetConfig:
    """Sizes of the SliceSet network (the paper's defaults are 21, 64, 128, 32).

    Attributes
    ----------
    patch_size
        ``P``: patches are ``P x P`` pixels (odd).
    row_features
        Width of the per-row linear map ``P -> row_features``.
    angle_frequencies
        Sinusoids ``sin(k theta), cos(k theta)``, ``k = 1..K``, encoding the tilt angle.
    set_features
        Width of the set layer (linear + ReLU) applied to every (row, tilt) element before
        the mean over tilts.
    row_out
        Features of each row after the pooled MLP; the rows are concatenated.
    head_hidden
        Hidden widths of the final MLP.
    head
        ``"pixel"`` (one voxel per point) or ``"wavelet"`` (8 Haar coefficients of the
        ``2 x 2 x 2`` block centred on the point).
    """

    patch_size: int = 9
    row_features: int = 16
    angle_frequencies: int = 8
    set_features: int = 32
    row_out: int = 8
    head_hidden: tuple[int, ...] = (128, 64)
    head: str = "pixel"

    def __post_init__(self) -> None:
        if self.patch_size < 1 or self.patch_size % 2 == 0:
            raise InputError(None, f"patch_size must be odd and positive, got {self.patch_size}")
        if self.head not in HEADS:
            raise InputError(None, f"head must be one of {HEADS}, got {self.head!r}")
        sizes = (self.row_features, self.angle_frequencies, self.set_features, self.row_out)
        if min(sizes) < 1:
            raise InputError(None, "network widths must be positive")

    @property
    def n_out(self) -> int:
        """Outputs per point: 1 (pixel) or 8 (wavelet)."""
        return 1 if self.head == "pixel" else 8

    @property
    def block(self) -> int:
        """Voxels per axis that one point stands for: 1 or 2."""
        return 1 if self.head == "pixel" else 2

    def to_dict(self) -> dict:
        """JSON-able form (for weight-file headers)."""
        d = asdict(self)
        d["head_hidden"] = list(self.head_hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SliceSetConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["head_hidden"] = tuple(d.get("head_hidden", ()))
        return cls(**d)


class SliceSet(nn.Module):
    """``(N, T, P, P)`` patches and ``(T,)`` angles -> ``(N, n_out)`` values.

    Each patch row goes through one linear map, is multiplied by a learned linear map of
    the angle's sinusoidal encoding, then through the set MLP; the mean over the kept
    tilts (any number, any order) goes through a small MLP, the rows are concatenated
    and the head gives one voxel or 8 wavelet coefficients.

    Parameters
    ----------
    config
        Sizes and head.
    generator
        Source of the initial weights.
    """

    def __init__(self, config: SliceSetConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        c = config
        self.row = nn.Linear(c.patch_size, c.row_features)
        self.angle = nn.Linear(2 * c.angle_frequencies, c.row_features)
        with torch.no_grad():
            for layer in (self.row, self.angle):
                bound = 1 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.zero_()
            self.angle.bias.fill_(1.0)  # start close to "no angle modulation"
        element = MLPConfig(
            in_features=c.row_features,
            out_features=c.set_features,
            hidden_features=(),
            output_activation="relu",
        )
        pooled = MLPConfig(
            in_features=c.set_features, out_features=c.row_out, hidden_features=(c.set_features,)
        )
        self.set = SetMLP(SetMLPConfig(element=element, head=pooled), generator=generator)
        self.head = MLP(
            MLPConfig(
                in_features=c.patch_size * c.row_out,
                out_features=c.n_out,
                hidden_features=c.head_hidden,
            ),
            generator=generator,
        )

    def encode_angles(self, angles: torch.Tensor) -> torch.Tensor:
        """``(T,)`` degrees -> ``(T, 2K)`` sinusoids."""
        k = torch.arange(1, self.config.angle_frequencies + 1, device=angles.device)
        theta = torch.deg2rad(angles.to(self.row.weight.dtype))[:, None] * k
        return torch.cat([torch.sin(theta), torch.cos(theta)], dim=-1)

    def forward(
        self, patches: torch.Tensor, angles: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Evaluate the network.

        Parameters
        ----------
        patches
            ``(N, T, P, P)`` from :func:`~inversa.cryolithe.extract_patches`.
        angles
            ``(T,)`` tilt angles in degrees.
        mask
            ``(T,)`` or ``(N, T)`` booleans, True for the tilts to use; ``None`` uses all.

        Returns
        -------
        torch.Tensor
            ``(N, n_out)``.
        """
        n, _, p, _ = patches.shape
        if p != self.config.patch_size:
            raise InputError(None, f"patches of {p} px for a model of {self.config.patch_size}")
        if mask is None and not torch.is_grad_enabled():
            w, b = self.fold_set_layer(angles)
            x = patches.to(w.dtype).transpose(0, 1)  # tilt-major (a view)
            return self.from_pooled(pooled_set_sum(x, w, b) / x.shape[0])
        rows = self.row(patches.to(self.row.weight.dtype))  # (N, T, P, F)
        rows = rows * self.angle(self.encode_angles(angles))[None, :, None, :]
        rows = rows.transpose(1, 2)  # (N, P rows, T, F): the set axis is T
        if mask is not None:
            mask = mask[:, None, :] if mask.ndim == 2 else mask
        pooled = self.set(rows, mask)  # (N, P, row_out)
        return self.head(pooled.reshape(n, -1))

    def fold_set_layer(self, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fold the row map, angle modulation and set layer into one ``P -> S`` map per tilt.

        ``M_t = W_s diag(a_t) W_r`` with bias ``W_s (a_t * b_r) + b_s``: the set layer's
        input for a patch row ``x`` of tilt ``t`` is ``x M_t + c_t`` (then ReLU), so the
        ``(N, T, P, F)`` intermediate of the training path is never made at inference.

        Parameters
        ----------
        angles
            ``(T,)`` degrees.

        Returns
        -------
        (weights, bias)
            ``(T, P, S)`` and ``(T, S)``, for :func:`pooled_set_sum`.
        """
        (layer,) = self.set.element.layers  # one linear layer, ReLU output (see __init__)
        a = self.angle(self.encode_angles(angles))  # (T, F)
        w = torch.einsum("sf,tf,fp->tps", layer.weight, a, self.row.weight)  # (T, P, S)
        b = (a * self.row.bias) @ layer.weight.T + layer.bias  # (T, S)
        return w, b

    def from_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(N, P, S)`` means over tilts of the set layer -> ``(N, n_out)`` outputs."""
        return self.head(self.set.head(pooled).reshape(pooled.shape[0], -1))


# Bytes of the (tilts, points x rows, S) product that one batched step may make.
GROUP_BYTES = 32 * 2**20


def pooled_set_sum(
    patches: torch.Tensor,
    weights: torch.Tensor,
    bias: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
    group_bytes: int = GROUP_BYTES,
) -> torch.Tensor:
    """Sum over tilts of the folded set layer, ``relu(x M_t + c_t)``, without autograd.

    Tilts go in groups, as many as fit in ``group_bytes`` (one batched product, one
    ReLU and one sum per group: few large operations, best on a GPU); ``group_bytes =
    0`` takes one tilt at a time, accumulating in place (the least memory traffic, best
    for one CPU thread).

    Parameters
    ----------
    patches
        ``(T, N, P, P)`` (tilt-major; any strides).
    weights, bias
        ``(T, P, S)`` and ``(T, S)`` from :meth:`SliceSet.fold_set_layer`.
    out
        ``(N, P, S)`` to add the sum to (``None``: a new tensor).
    group_bytes
        Size of one group's ``(G, N P, S)`` product.

    Returns
    -------
    torch.Tensor
        ``(N, P, S)`` (``out`` when given): divide by the number of tilts for the mean.
    """
    t, n, p, _ = patches.shape
    s = weights.shape[-1]
    group = max(1, min(t, group_bytes // max(1, n * p * s * weights.element_size())))
    acc = torch.zeros(n * p, s, dtype=weights.dtype, device=weights.device) if out is None else out
    acc = acc.view(n * p, s)
    for g0 in range(0, t, group):
        g1 = min(t, g0 + group)
        x = patches[g0:g1].reshape(g1 - g0, n * p, p).to(weights.dtype)
        if g1 - g0 == 1:
            acc.add_(torch.addmm(bias[g0], x[0], weights[g0]).relu_())
        else:
            acc.add_(torch.baddbmm(bias[g0:g1, None, :], x, weights[g0:g1]).relu_().sum(0))
    return acc.view(n, p, s)


def save_model(
    path: str | Path, model: SliceSet, *, info: dict | None = None, force: bool = False
) -> None:
    """Write a model as safetensors with its configuration (and ``info``) in the header."""
    meta = {"format": FORMAT, "config": model.config.to_dict(), "info": info or {}}
    save_weights(path, model.state_dict(), metadata=meta, force=force)


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[SliceSet, dict]:
    """Read a model written by :func:`save_model`.

    Returns
    -------
    (model, info)
        The network in eval mode and the ``info`` stored with it (training record).

    Raises
    ------
    InputError
        When the file is not a CryoLithe model.
    """
    tensors, meta = load_weights(path, device=device)
    if meta.get("format") != FORMAT:
        raise InputError(path, "not a CryoLithe model (no 'inversa-cryolithe-v1' header)")
    try:
        model = SliceSet(SliceSetConfig.from_dict(meta["config"]))
        model.load_state_dict(tensors)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise InputError(path, f"not a valid CryoLithe model ({exc})") from exc
    return model.to(device).eval(), dict(meta.get("info", {}))

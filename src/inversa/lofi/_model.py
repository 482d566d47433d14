"""The LoFi network: per query coordinate, a learned local neighbourhood read by small MLPs.

For an input image ``(B, 1, H, W)`` and query coordinates ``(B, Q, 2)`` in ``[0, 1]^2``:

1. a learnable Fourier-domain filter (`core.fields.FourierFilter`) stacks the real and
   imaginary parts of the filtered image with the input: 3 channels;
2. around each query a ring/spoke pattern of ``S x R`` points (`core.fields.RingSpokeSampler`,
   learned offsets and global scale, in pixels of the training resolution) is sampled
   bicubically (or bilinearly) from the 3 channels;
3. one MLP per spoke maps its ``R x 3`` samples to ``F`` features;
4. a mixer MLP maps the ``S x F`` features to the output at the query; with ``residual``
   the input's value at the query (bilinear) is added.

Memory and work grow with ``Q`` only (beyond the image and its filtered copy), so training
uses random query pixels and inference runs in chunks at any resolution (`predict`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.core.fields import (
    MLP,
    FourierFilter,
    FourierFilterConfig,
    MLPConfig,
    RingSpokeConfig,
    RingSpokeSampler,
    grid_coordinates,
    sample_points,
)
from inversa.core.training import load_weights, save_weights
from inversa.lofi._tasks import TASKS

__all__ = ["FORMAT", "LoFi", "LoFiConfig", "load_model", "predict", "save_model"]

FORMAT = "inversa-lofi-v1"


@dataclass(frozen=True, kw_only=True)
class LoFiConfig:
    """Sizes of the LoFi network (the paper: 9 x 9 points, 100 features, mixer 370 x 3).

    Attributes
    ----------
    reference_size
        Training resolution; pattern radii and filter frequencies are in its pixels.
    n_spokes, n_radii, max_radius
        The ring/spoke pattern (``max_radius`` in reference pixels).
    mode
        ``"bicubic"`` or ``"bilinear"`` sampling.
    filter_grid
        Control points per axis of the learned Fourier response.
    spoke_hidden, spoke_features
        Hidden width and output features ``F`` of each spoke's MLP.
    mixer_hidden
        Hidden widths of the mixer MLP.
    residual
        Add the input's value at the query to the output.
    """

    reference_size: int = 128
    n_spokes: int = 9
    n_radii: int = 9
    max_radius: float = 10.0
    mode: str = "bicubic"
    filter_grid: int = 17
    spoke_hidden: int = 64
    spoke_features: int = 32
    mixer_hidden: tuple[int, ...] = (128, 128)
    residual: bool = True

    def __post_init__(self) -> None:
        if min(self.spoke_hidden, self.spoke_features) < 1:
            raise InputError(None, "spoke_hidden and spoke_features must be >= 1")
        if self.mode not in ("bicubic", "bilinear"):
            raise InputError(None, f"mode must be 'bicubic' or 'bilinear', got {self.mode!r}")

    def sampler(self) -> RingSpokeConfig:
        """Return the `RingSpokeConfig` of the pattern."""
        return RingSpokeConfig(
            n_spokes=self.n_spokes,
            n_radii=self.n_radii,
            max_radius=self.max_radius,
            reference_size=self.reference_size,
            mode=self.mode,  # type: ignore[arg-type]
        )


class _SpokeMLPs(nn.Module):
    """``S`` independent two-layer MLPs, ``(..., S, D) -> (..., S, F)`` (one per spoke)."""

    def __init__(self, spokes: int, d_in: int, hidden: int, d_out: int) -> None:
        super().__init__()
        b1, b2 = math.sqrt(6 / d_in), 1 / math.sqrt(hidden)  # Kaiming (ReLU), then LeCun
        self.w1 = nn.Parameter(torch.empty(spokes, d_in, hidden).uniform_(-b1, b1))
        self.b1 = nn.Parameter(torch.zeros(spokes, hidden))
        self.w2 = nn.Parameter(torch.empty(spokes, hidden, d_out).uniform_(-b2, b2))
        self.b2 = nn.Parameter(torch.zeros(spokes, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(torch.einsum("...sd,sdh->...sh", x, self.w1) + self.b1)
        return torch.relu(torch.einsum("...sh,shf->...sf", h, self.w2) + self.b2)


class LoFi(nn.Module):
    """LoFi: ``(B, 1, H, W)`` image and ``(B, Q, 2)`` queries -> ``(B, Q)`` values.

    Parameters
    ----------
    config
        The architecture.
    seed
        Seed of the initial weights.
    """

    def __init__(self, config: LoFiConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.filter = FourierFilter(
                FourierFilterConfig(
                    channels=1, grid=config.filter_grid, reference_size=config.reference_size
                )
            )
            self.sampler = RingSpokeSampler(config.sampler())
            self.spokes = _SpokeMLPs(
                config.n_spokes, 3 * config.n_radii, config.spoke_hidden, config.spoke_features
            )
            self.mixer = MLP(
                MLPConfig(
                    in_features=config.n_spokes * config.spoke_features,
                    out_features=1,
                    hidden_features=tuple(config.mixer_hidden),
                    activation="relu",
                ),
                generator=torch.Generator().manual_seed(seed + 1),
            )

    def features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the input and its filtered channels, ``(B, 1, H, W)`` and ``(B, 2, H, W)``.

        Compute once per image; every query reads the 3 channels ``[x, Re y, Im y]``. They
        are kept apart so that the input (which needs no gradient) is not copied.
        """
        if image.ndim != 4 or image.shape[1] != 1:
            raise InputError(None, f"LoFi expects images (B, 1, H, W), got {tuple(image.shape)}")
        return image, self.filter.filtered(image)

    def query(
        self, features: tuple[torch.Tensor, torch.Tensor], coords: torch.Tensor
    ) -> torch.Tensor:
        """Return the values ``(B, Q)`` at ``(B, Q, 2)`` coordinates from `features`."""
        image, filtered = features
        samples = torch.cat(
            [self.sampler(image, coords), self.sampler(filtered, coords)], dim=-1
        )  # (B, Q, S, R, 3)
        b, q, s, r, c = samples.shape
        feats = self.spokes(samples.reshape(b, q, s, r * c))  # (B, Q, S, F)
        out = self.mixer(feats.reshape(b, q, -1))[..., 0]
        if self.config.residual:
            out = out + sample_points(image, coords)[..., 0]
        return out

    def forward(self, image: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Return the reconstruction's values ``(B, Q)`` at ``coords`` ``(B, Q, 2)``."""
        return self.query(self.features(image), coords)


def predict(
    model: LoFi,
    image: torch.Tensor,
    *,
    size: int | tuple[int, int] | None = None,
    chunk: int = 16384,
) -> torch.Tensor:
    """Reconstruct on a pixel grid, ``chunk`` queries at a time (no gradients).

    Parameters
    ----------
    model
        A trained network.
    image
        ``(H, W)`` or ``(B, H, W)`` input image at any resolution.
    size
        Output grid ``(h, w)`` (or ``n`` for ``n x n``); ``None`` keeps ``(H, W)``. The
        output may be finer or coarser than the input: the queries are continuous.
    chunk
        Queries per evaluation: memory beyond the image stays that of one chunk.

    Returns
    -------
    torch.Tensor
        ``(h, w)`` or ``(B, h, w)``, like ``image``.
    """
    single = image.ndim == 2
    x = image[None] if single else image
    if x.ndim != 3:
        raise InputError(None, f"predict expects (H, W) or (B, H, W), got {tuple(image.shape)}")
    if size is None:
        shape = (x.shape[-2], x.shape[-1])
    else:
        shape = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    ref = next(model.parameters())
    x = x.to(device=ref.device, dtype=ref.dtype)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        feats = model.features(x[:, None])
        coords = grid_coordinates(shape, device=ref.device, dtype=ref.dtype).reshape(-1, 2)
        out = torch.empty(x.shape[0], coords.shape[0], device=ref.device, dtype=ref.dtype)
        for start in range(0, coords.shape[0], chunk):
            c = coords[start : start + chunk]
            out[:, start : start + chunk] = model.query(feats, c.expand(x.shape[0], -1, -1))
    model.train(was_training)
    out = out.reshape(x.shape[0], *shape)
    return out[0] if single else out


def save_model(
    path: str | Path, model: LoFi, *, task: str, info: dict | None = None, force: bool = False
) -> Path:
    """Write the weights as safetensors, with the config, the task and ``info`` in the header."""
    meta = {"format": FORMAT, "task": task, "config": asdict(model.config), "info": info or {}}
    save_weights(path, model.state_dict(), metadata=meta, force=force)
    return Path(path)


def load_model(
    path: str | Path, *, task: str | None = None, device: str | torch.device = "cpu"
) -> tuple[LoFi, dict]:
    """Read a model written by `save_model`.

    Parameters
    ----------
    path
        The ``.safetensors`` file.
    task
        When given, refuse a model trained for another task.
    device
        Where to put the weights.

    Returns
    -------
    (model, metadata)
        ``metadata`` holds ``task``, ``config`` and ``info``.

    Raises
    ------
    InputError
        Not a LoFi model, another task's model, or weights that do not fit the config.
    """
    state, meta = load_weights(path, device=device)
    if meta.get("format") != FORMAT:
        raise InputError(path, f"not a LoFi model (format {meta.get('format')!r}, want {FORMAT})")
    if meta.get("task") not in TASKS:
        raise InputError(path, f"model has an unknown task {meta.get('task')!r}")
    if task is not None and meta["task"] != task:
        raise InputError(path, f"model was trained for task {meta['task']}, not {task}")
    cfg = dict(meta["config"])
    cfg["mixer_hidden"] = tuple(cfg.get("mixer_hidden", ()))
    try:
        model = LoFi(LoFiConfig(**cfg))
        model.load_state_dict(state)
    except (TypeError, RuntimeError) as exc:
        raise InputError(path, f"weights do not match the LoFi config ({exc})") from exc
    return model.to(device).eval(), meta

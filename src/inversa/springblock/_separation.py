"""Per-layer separation of class features, its log curve, the load and the curve's shape.

D = Tr(Sigma_W pinv(Sigma_B)) with Sigma_W the within-class and Sigma_B the between-class
covariance of the features (He & Su's data separation, as used by the spring-block paper).
Sigma_B = A A^T with A = [sqrt(n_c / n) (mu_c - mu)]_c of rank at most C - 1, so
pinv(Sigma_B) = (A^+)^T A^+ and D = ||Xc (A^+)^T||_F^2 / n with Xc the within-class
centred features: no (p, p) matrix is ever formed, which keeps wide CNN features cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from inversa.core.errors import InputError

__all__ = [
    "SeparationCurve",
    "curvature",
    "layer_features",
    "load_centroid",
    "load_spread",
    "separation",
    "separation_curve",
]

# Relative cut on the eigenvalues of Sigma_B: a (C - 1)-rank matrix has one eigenvalue at
# rounding level (~1e-16 relative), which numpy's default pinv cut (1e-15) does not reliably drop.
_RTOL_B = 1e-10

_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Hardtanh,
    nn.ReLU6,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.LogSigmoid,
    nn.Softsign,
    nn.Tanhshrink,
)


def _check_labels(labels: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (class index per sample, counts); InputError for one class or singletons."""
    if labels.ndim != 1 or labels.shape[0] != n:
        raise InputError(None, f"labels must have shape ({n},), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex():
        raise InputError(None, "labels must be integers (class indices)")
    classes, index, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    if classes.numel() < 2:
        raise InputError(None, "separation needs at least two classes; the labels have one")
    single = classes[counts < 2]
    if single.numel():
        raise InputError(
            None,
            f"classes {single.tolist()} have a single sample: their within-class covariance "
            "is undefined; drop them or add samples",
        )
    return index, counts


def separation(features: torch.Tensor, labels: torch.Tensor, *, name: str = "features") -> float:
    """Separation D = Tr(Sigma_W pinv(Sigma_B)) of labelled features (smaller = better separated).

    Parameters
    ----------
    features
        ``(n, ...)`` features of ``n`` samples; trailing dimensions are flattened. Computed in
        float64 on the features' device.
    labels
        ``(n,)`` integer class labels; at least two classes, each with two or more samples.
    name
        What the features are (a layer name), used in error messages.

    Returns
    -------
    float
        D, with both covariances normalised by ``n`` (the paper's convention; D is invariant
        to a common scale of the features).

    Raises
    ------
    InputError
        One class only, a class with a single sample, non-finite features, or a degenerate
        covariance (class means all equal, or features equal to their class means).
    """
    if features.ndim < 1 or features.shape[0] == 0:
        raise InputError(None, f"{name}: no samples")
    n = features.shape[0]
    x = features.reshape(n, -1).to(torch.float64)
    if not torch.isfinite(x).all():
        raise InputError(None, f"{name}: features contain NaN or infinity")
    index, counts = _check_labels(labels.to(x.device), n)
    c = counts.numel()
    sums = torch.zeros(c, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, index, x)
    means = sums / counts[:, None].to(x.dtype)
    mu = x.mean(dim=0)
    weights = (counts.to(x.dtype) / n).sqrt()
    a = ((means - mu) * weights[:, None]).T  # (p, C), Sigma_B = A A^T
    u, s, _ = torch.linalg.svd(a, full_matrices=False)
    scale = float((x - mu).abs().max())
    if s.numel() == 0 or float(s[0]) <= 1e-12 * max(scale, 1e-300):
        raise InputError(
            None,
            f"{name}: between-class covariance is zero (all class means are equal): "
            "the separation is infinite",
        )
    keep = s**2 > _RTOL_B * s[0] ** 2
    # rows of A^+ = V diag(1/s) U^T: project the centred features on U / s.
    proj = (x - means[index]) @ (u[:, keep] / s[keep])
    d = float(proj.pow(2).sum() / n)
    if d <= 0.0:
        raise InputError(
            None,
            f"{name}: within-class covariance is zero along the class-mean directions "
            "(features equal their class means): the log separation is -infinity",
        )
    return d


def curvature(log_d: torch.Tensor) -> torch.Tensor:
    """Signed bend of log-separation curves: mean gap to their chord over the total drop.

    Parameters
    ----------
    log_d
        ``(..., L + 1)`` curves log D_0 .. log D_L (or any decreasing profile).

    Returns
    -------
    torch.Tensor
        ``(...)``: mean over the interior points of (curve - chord) divided by
        (log D_0 - log D_L). Positive: the curve lies above its chord (concave: early layers
        separate little, the load sits on the deep layers); zero: straight; negative:
        convex (the load sits on the shallow layers). Scale invariant.

    Raises
    ------
    InputError
        Fewer than three points, or a curve with no total drop (its ends equal).
    """
    if log_d.shape[-1] < 3:
        raise InputError(None, "curvature needs at least three layers on the curve")
    n = log_d.shape[-1] - 1
    t = torch.arange(n + 1, dtype=log_d.dtype, device=log_d.device) / n
    first, last = log_d[..., :1], log_d[..., -1:]
    chord = first + (last - first) * t
    drop = (first - last)[..., 0]
    if (drop.abs() <= 1e-12 * log_d.abs().amax(dim=-1).clamp_min(1.0)).any():
        raise InputError(
            None, "a curve has equal first and last values: its curvature is undefined"
        )
    return (log_d - chord)[..., 1:-1].mean(dim=-1) / drop


def load_spread(load: torch.Tensor) -> torch.Tensor:
    """Spread of per-layer loads: their standard deviation over their mean (0 = equal loads).

    Parameters
    ----------
    load
        ``(..., L)`` loads (log D_{l-1} - log D_l).

    Returns
    -------
    torch.Tensor
        ``(...)`` coefficient of variation (population standard deviation); InputError when
        the mean load is zero.
    """
    mean = load.mean(dim=-1)
    if (mean.abs() <= 1e-300).any():
        raise InputError(None, "the mean load is zero: the load spread is undefined")
    return load.std(dim=-1, correction=0) / mean.abs()


def load_centroid(load: torch.Tensor) -> torch.Tensor:
    """Where the load sits: the |load|-weighted mean layer position in [0, 1] (1 = deepest).

    Parameters
    ----------
    load
        ``(..., L)`` loads.

    Returns
    -------
    torch.Tensor
        ``(...)``; 0.5 for equal loads. InputError when every load is zero.
    """
    w = load.abs()
    total = w.sum(dim=-1)
    if (total <= 0).any():
        raise InputError(None, "every load is zero: the load centroid is undefined")
    n = load.shape[-1]
    pos = torch.arange(n, dtype=load.dtype, device=load.device) / max(n - 1, 1)
    return (w * pos).sum(dim=-1) / total


@dataclass(frozen=True)
class SeparationCurve:
    """The separation of a model's features layer by layer.

    Attributes
    ----------
    layers
        Names of the points on the curve (``"input"`` first when the input is included).
    separation
        ``(L + 1,)`` float64 D_l.
    log_separation
        ``(L + 1,)`` log D_l.
    load
        ``(L,)`` log D_{l-1} - log D_l: how much layer l separates the classes.
    curvature
        See `curvature` (positive: load on the deep layers).
    spread
        See `load_spread`.
    centroid
        See `load_centroid`.
    """

    layers: tuple[str, ...]
    separation: torch.Tensor
    log_separation: torch.Tensor
    load: torch.Tensor
    curvature: float
    spread: float
    centroid: float

    @classmethod
    def from_separation(cls, layers: Sequence[str], d: torch.Tensor) -> SeparationCurve:
        """Build the curve and its shape measures from ``(L + 1,)`` separations ``d``."""
        log_d = d.log()
        load = log_d[:-1] - log_d[1:]
        return cls(
            layers=tuple(layers),
            separation=d,
            log_separation=log_d,
            load=load,
            curvature=float(curvature(log_d)),
            spread=float(load_spread(load)),
            centroid=float(load_centroid(load)),
        )


def _select(model: nn.Module, layers: Sequence[str | type[nn.Module]] | None) -> list[str]:
    """Names of the modules to hook, in registration order."""
    named = dict(model.named_modules())
    if layers is None:
        chosen = [k for k, m in named.items() if isinstance(m, _ACTIVATIONS)]
        if not chosen:
            raise InputError(
                None,
                f"{type(model).__name__} has no activation modules (functional activations "
                "cannot be hooked): pass the layers to measure by name or type",
            )
        return chosen
    if isinstance(layers, (str, type)):
        layers = [layers]
    chosen: list[str] = []
    for spec in layers:
        if isinstance(spec, str):
            if spec not in named or spec == "":
                raise InputError(
                    None,
                    f"no module named {spec!r} in {type(model).__name__}; "
                    f"available: {', '.join(k for k in named if k)[:300]}",
                )
            chosen.append(spec)
        elif isinstance(spec, type) and issubclass(spec, nn.Module):
            hits = [k for k, m in named.items() if isinstance(m, spec) and k]
            if not hits:
                raise InputError(None, f"no module of type {spec.__name__} in the model")
            chosen.extend(hits)
        else:
            raise InputError(None, f"a layer is a module name or an nn.Module type, not {spec!r}")
    return list(dict.fromkeys(chosen))


def _set_mode(model: nn.Module, training: bool) -> None:
    """Switch train/eval mode; torch.export modules refuse it (their mode is fixed at export)."""
    try:
        model.train(training)
    except NotImplementedError:
        pass


@torch.no_grad()
def layer_features(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    layers: Sequence[str | type[nn.Module]] | None = None,
    batch_size: int = 4096,
) -> dict[str, torch.Tensor]:
    """Collect the outputs of chosen modules of ``model`` on ``inputs`` with forward hooks.

    Parameters
    ----------
    model
        Any module; run in eval mode (restored afterwards; a torch.export module keeps the
        mode it was exported in) without gradients.
    inputs
        ``(n, ...)`` inputs, on the model's device.
    layers
        Module names (as in ``model.named_modules()``) or module types; ``None`` picks every
        activation module (ReLU, LeakyReLU, GELU, Tanh, ...).
    batch_size
        Samples per forward pass.

    Returns
    -------
    dict
        Layer name -> ``(n, p)`` flattened outputs, in the order the forward pass calls them.
        A module called k > 1 times per pass gives k entries ``name#0`` .. ``name#k-1``.

    Raises
    ------
    InputError
        No identifiable layer, an unknown name, or a chosen module the forward pass never calls.
    """
    names = _select(model, layers)
    modules = dict(model.named_modules())
    outs: dict[str, list[list[torch.Tensor]]] = {k: [] for k in names}
    order: list[tuple[str, int]] = []
    calls: dict[str, int] = {}

    def hook_for(name: str):
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            if not isinstance(out, torch.Tensor):
                raise InputError(None, f"layer {name!r} returns {type(out).__name__}, not a tensor")
            k = calls.get(name, 0)
            calls[name] = k + 1
            if len(outs[name]) <= k:
                outs[name].append([])
            outs[name][k].append(out.detach().reshape(out.shape[0], -1))
            if (name, k) not in order:
                order.append((name, k))

        return hook

    handles = [modules[k].register_forward_hook(hook_for(k)) for k in names]
    was_training = model.training
    _set_mode(model, False)
    try:
        for start in range(0, inputs.shape[0], batch_size):
            calls.clear()
            chunk = inputs[start : start + batch_size]
            try:
                model(chunk)
            except InputError:
                raise
            except Exception as exc:  # a user's model on data of the wrong shape or type
                raise InputError(
                    None, f"the model fails on inputs of shape {tuple(chunk.shape)}: {exc}"
                ) from exc
    finally:
        for h in handles:
            h.remove()
        _set_mode(model, was_training)
    missing = [k for k in names if not outs[k]]
    if missing:
        raise InputError(None, f"layers {missing} are never called by the model's forward pass")
    result: dict[str, torch.Tensor] = {}
    for k, j in order:
        parts = outs[k]
        result[k if len(parts) == 1 else f"{k}#{j}"] = torch.cat(parts[j])
    return result


def separation_curve(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    layers: Sequence[str | type[nn.Module]] | None = None,
    include_input: bool = True,
    batch_size: int = 4096,
    device: str | torch.device | None = None,
) -> SeparationCurve:
    """Measure the log-separation curve of ``model`` on labelled data, its load and shape.

    Parameters
    ----------
    model
        Any PyTorch module (evaluated in eval mode, without gradients).
    inputs
        ``(n, ...)`` inputs (normally the training set, as in the paper).
    labels
        ``(n,)`` integer class labels.
    layers
        Modules whose outputs are measured (names or types); default: every activation
        module, i.e. the post-activation features of each hidden layer.
    include_input
        Put the raw inputs first on the curve (D_0).
    batch_size
        Samples per forward pass.
    device
        Torch device to measure on: the model is moved there (in place, as
        `torch.nn.Module.to` does) and so are the data. ``None``: the data go to the
        model's device as they are, which they must then share.

    Returns
    -------
    SeparationCurve

    Raises
    ------
    InputError
        No identifiable layer, fewer than three points on the curve, single-sample classes, or a
        degenerate covariance in some layer (the message names the layer).
    """
    if device is not None:
        model.to(device)
        inputs, labels = inputs.to(device), labels.to(device)
    feats = layer_features(model, inputs, layers=layers, batch_size=batch_size)
    names = (["input"] if include_input else []) + list(feats)
    tensors = ([inputs] if include_input else []) + list(feats.values())
    if len(tensors) < 3:
        raise InputError(
            None, f"the curve has {len(tensors)} points; its shape needs at least three layers"
        )
    d = torch.tensor(
        [separation(t, labels, name=f"layer {k!r}") for k, t in zip(names, tensors, strict=True)],
        dtype=torch.float64,
    )
    return SeparationCurve.from_separation(names, d)

"""The level-set kernel network and its peers (DeepONet, compact FNO, cross-attention, ridge).

Every learned model maps input images ``(B, N, N)`` and a set of output indices ``(Yb,)``
to the outputs ``(B, Yb)``; the input pixels sit at the normalised coordinates of
:func:`pixel_coordinates` and output ``y`` at ``out_coords[y]`` (see ``Transform``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from inversa.core.errors import InputError
from inversa.core.fields import MLP, FourierFeatures, MLPConfig, PositionalFourierConfig
from inversa.fibration._data import pixel_coordinates

__all__ = [
    "MODELS",
    "AttentionConfig",
    "CrossAttentionNet",
    "DeepONet",
    "DeepONetConfig",
    "FNO2d",
    "FNOConfig",
    "LevelSetConfig",
    "LevelSetEnsemble",
    "LevelSetNet",
    "RidgeOperator",
    "build_model",
    "smooth_delta",
]

MODELS = ("levelset", "ridge", "deeponet", "fno", "attention")
"""Names of the models of the benchmark."""


def _encoder(dim: int, n_frequencies: int, max_frequency: float) -> FourierFeatures:
    return FourierFeatures(
        PositionalFourierConfig(
            dim=dim,
            n_frequencies=n_frequencies,
            min_frequency=0.25,
            max_frequency=max_frequency,
        )
    )


class _CoordinateNet(nn.Module):
    """Coordinates to features: ``L(x) + MLP([x, FF(x)])``, ``(..., d) -> (..., out)``.

    ``L`` is linear (with bias) in the raw coordinates; the MLP reads them and their
    Fourier features and its output starts ``residual_init`` times smaller, so that the
    features start close to affine functions of the coordinates.
    """

    def __init__(
        self,
        dim: int,
        out: int,
        *,
        hidden: tuple[int, ...],
        n_frequencies: int,
        max_frequency: float,
        generator: torch.Generator,
        residual_init: float = 1.0,
        quadratic: bool = False,
    ) -> None:
        super().__init__()
        self.encode = _encoder(dim, n_frequencies, max_frequency)
        # Optional second-order term Q [x_i x_j]_{i <= j}, zero at the start (the features
        # start affine) but one linear layer away from conics.
        self.quadratic = nn.Linear(dim * (dim + 1) // 2, out, bias=False) if quadratic else None
        if self.quadratic is not None:
            nn.init.zeros_(self.quadratic.weight)
        width = dim + self.encode.out_features
        self.mlp = MLP(
            MLPConfig(
                in_features=width, out_features=out, hidden_features=hidden, activation="gelu"
            ),
            generator=generator,
        )
        self.linear = nn.Linear(dim, out)
        with torch.no_grad():
            bound = math.sqrt(3.0 / dim)
            self.linear.weight.uniform_(-bound, bound, generator=generator)
            self.linear.bias.uniform_(-1.0, 1.0, generator=generator)
            self.mlp.layers[-1].weight.mul_(residual_init)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """``(..., d) -> (..., out)``."""
        out = self.linear(coords) + self.mlp(torch.cat([coords, self.encode(coords)], dim=-1))
        if self.quadratic is None:
            return out
        i, j = torch.triu_indices(coords.shape[-1], coords.shape[-1], device=coords.device)
        return out + self.quadratic(coords[..., i] * coords[..., j])


@dataclass(frozen=True, kw_only=True)
class LevelSetConfig:
    """The level-set kernel ``K(x, y) = a(x, y) prod_c delta_eps(phi_c(x, y))``.

    ``phi_c(x, y) = s_c <q_c(y), k_c(x)> / sqrt(m)`` with query and key features from two
    coordinate MLPs (Fourier features of the coordinates), the amplitude
    ``a(x, y) = g exp(<u(y), v(x)> / sqrt(r))`` factorised the same way (extra outputs of
    the same MLPs), and ``Tf(y) = sum_x (2 / N)^2 K(x, y) f(x)`` (midpoint quadrature).

    Parameters
    ----------
    feature_dim
        ``m``, query/key features per channel.
    channels
        Number of level-set functions: the kernel lives on a set of codimension up to
        ``channels`` (2 lets the codimension of a 2-D transform be read out).
    eps_px
        Width of the smooth delta in pixels: ``eps = eps_px * 2 / N`` in units of ``phi``,
        which starts with unit gradient (normalised coordinates) and learns its scale.
    delta
        ``"gaussian"`` (``exp(-t^2 / 2 eps^2) / (sqrt(2 pi) eps)``) or ``"hat"``
        (``max(0, 1 - |t| / eps) / eps``). A hat has no gradient off its support, so
        ``"hat"`` trains as the Gaussian of the same variance (``sigma = eps / sqrt(6)``)
        while the width anneals and then blends linearly into the hat until the
        ``hat_end`` fraction of the steps. A hat of half-width ``w(theta)`` across the
        lines is exactly Joseph's projector (``Radon2D``), see ``docs/fibration.md``. The
        hat acts on the first (cutting) channel; further channels keep its Gaussian (a
        hat's kink at 0 would modulate the kernel along a channel that does not cut).
    hidden
        Hidden widths of the two coordinate MLPs.
    n_frequencies, max_frequency
        Axis-aligned Fourier features of the coordinates (``0.25 .. max`` cycles per unit).
    amplitude_rank
        ``r`` of the amplitude.
    eps_start_px, anneal
        Training starts with deltas ``eps_start_px`` pixels wide and narrows them
        geometrically to ``eps_px`` over the first ``anneal`` fraction of the steps
        (:meth:`LevelSetNet.anneal`); for a hat, ``eps_start_px`` is the standard
        deviation of the starting Gaussian, which narrows to ``eps_px / sqrt(6)``.
    hat_end
        With ``delta="hat"``: the fraction of the steps at which the Gaussian-to-hat blend
        ends (it starts at ``anneal``); in ``[anneal, 1]``.
    anchor
        Weight of the anchoring penalty added to the training loss
        (:meth:`LevelSetNet.fit_terms`): the zero set of every level-set function must
        cross the pixel grid, ``min_x |phi_c(x, y)| <= sigma`` (the current delta's
        standard deviation), penalised as ``anchor * mean relu(min_x |phi_c| / sigma - 1)^2``.
        Every output of the three transforms integrates over a curve that crosses the
        image, so the truth pays nothing. Without it (``0``) a fit whose initial curves
        are misplaced can shift ``phi`` off the image: the kernel, the loss's gradient and
        the fit die (relative error exactly 1, the collapse of the 64^2 benchmark).
    quadratic
        Give the key features a second-order term in ``x`` (``x1^2, x1 x2, x2^2``),
        starting at zero: the level sets start as the same lines but are one linear layer
        away from conics (circles), which the Fourier-feature MLP reaches only slowly.
    """

    feature_dim: int = 16
    channels: int = 2
    eps_px: float = 1.0
    delta: str = "hat"
    hidden: tuple[int, ...] = (64, 64)
    n_frequencies: int = 4
    max_frequency: float = 2.0
    amplitude_rank: int = 4
    eps_start_px: float = 8.0
    anneal: float = 0.3
    hat_end: float = 0.4
    anchor: float = 0.0
    quadratic: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.eps_px <= self.eps_start_px or not 0 <= self.anneal <= 1:
            raise InputError(None, "need 0 < eps_px <= eps_start_px and anneal in [0, 1]")
        if not self.anneal <= self.hat_end <= 1:
            raise InputError(None, "need anneal <= hat_end <= 1")
        if self.feature_dim < 1 or self.channels < 1 or self.amplitude_rank < 1:
            raise InputError(None, "feature_dim, channels and amplitude_rank must be >= 1")
        if not self.anchor >= 0:
            raise InputError(None, f"anchor must be >= 0, got {self.anchor}")
        if self.delta not in ("gaussian", "hat"):
            raise InputError(None, f"delta must be 'gaussian' or 'hat', got {self.delta!r}")


def smooth_delta(t: torch.Tensor, eps: float, kind: str, *, blend: float = 1.0) -> torch.Tensor:
    """Apply the smooth delta of width ``eps`` (integral 1) elementwise.

    For ``kind="hat"``, ``blend < 1`` mixes in the Gaussian of the same variance:
    ``blend * hat + (1 - blend) * gauss(eps / sqrt(6))``.
    """
    if kind == "hat":
        hat = (1 - t.abs() / eps).clamp_min(0) / eps
        if blend >= 1.0:
            return hat
        sigma = eps / math.sqrt(6.0)
        gauss = torch.exp(-0.5 * (t / sigma).square()) / (math.sqrt(2 * math.pi) * sigma)
        return gauss if blend <= 0.0 else blend * hat + (1 - blend) * gauss
    return torch.exp(-0.5 * (t / eps).square()) / (math.sqrt(2 * math.pi) * eps)


class LevelSetNet(nn.Module):
    """The level-set kernel network (see :class:`LevelSetConfig`).

    Parameters
    ----------
    size
        ``N`` of the ``(N, N)`` inputs.
    out_coords
        ``(Y, d_y)`` output coordinates.
    config
        The architecture.
    generator
        Source of randomness for the initial weights.
    """

    def __init__(
        self,
        size: int,
        out_coords: torch.Tensor,
        config: LevelSetConfig = LevelSetConfig(),
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        g = generator or torch.Generator().manual_seed(0)
        self.config = config
        self.size = size
        c, m, r = config.channels, config.feature_dim, config.amplitude_rank
        self.register_buffer(
            "x_coords", pixel_coordinates(size, dtype=torch.float32).reshape(-1, 2)
        )
        self.register_buffer("y_coords", out_coords.to(torch.float32))
        common = {
            "hidden": config.hidden,
            "n_frequencies": config.n_frequencies,
            "max_frequency": config.max_frequency,
            "generator": g,
            "residual_init": 0.1,
        }
        self.key = _CoordinateNet(2, c * m + r, quadratic=config.quadratic, **common)
        self.query = _CoordinateNet(out_coords.shape[-1], c * m + r, **common)
        with torch.no_grad():  # the amplitude starts constant
            for net in (self.key, self.query):
                net.linear.weight[c * m :].zero_()
                net.linear.bias[c * m :].zero_()
        # Channel 0 starts with unit gradients; the others change by a fraction of the
        # final delta's standard deviation across the domain (they do not cut until the
        # data ask for it; Adam moves the log-scales at the learning rate whatever the
        # gradient's size).
        scales = torch.zeros(c)
        sigma_px = config.eps_px / math.sqrt(6.0) if config.delta == "hat" else config.eps_px
        scales[1:] = math.log(sigma_px / size / 8)
        self.log_scale = nn.Parameter(scales)
        self.log_gain = nn.Parameter(torch.zeros(()))
        self.eps_factor = 1.0  # > 1 while annealing: wider deltas early in training
        self.blend = 1.0  # < 1 while a hat is still (partly) its Gaussian

    def anneal(self, fraction: float) -> None:
        """Set the delta width (and hat blend) for training progress ``fraction`` in [0, 1].

        The width falls geometrically from ``eps_start`` to ``eps`` over the first
        ``anneal`` fraction of the steps and stays at ``eps`` after; a hat blends in from
        its Gaussian between ``anneal`` and ``hat_end``.
        """
        cfg = self.config
        fraction = max(0.0, fraction)
        t = min(1.0, fraction / cfg.anneal) if cfg.anneal > 0 else 1.0
        end = cfg.eps_px / math.sqrt(6.0) if cfg.delta == "hat" else cfg.eps_px
        self.eps_factor = (cfg.eps_start_px / end) ** (1.0 - t)
        span = cfg.hat_end - cfg.anneal
        if span > 0:
            self.blend = min(1.0, max(0.0, (fraction - cfg.anneal) / span))
        else:
            self.blend = 1.0 if fraction >= cfg.anneal else 0.0

    @property
    def eps(self) -> float:
        """Final delta width in units of ``phi`` (``eps_px * 2 / N``)."""
        return self.config.eps_px * 2.0 / self.size

    @property
    def sigma(self) -> float:
        """Standard deviation of the final delta in units of ``phi`` (hat: ``eps / sqrt(6)``)."""
        return self.eps / math.sqrt(6.0) if self.config.delta == "hat" else self.eps

    def features(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query/key and amplitude features: ``q (Yb, c, m)``, ``k (X, c, m)``, ``u, v``."""
        c, m = self.config.channels, self.config.feature_dim
        kx, qy = self.key(x), self.query(y)
        return (
            qy[..., : c * m].unflatten(-1, (c, m)),
            kx[..., : c * m].unflatten(-1, (c, m)),
            (qy[..., c * m :]),
            kx[..., c * m :],
        )

    def phi(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Level-set functions ``(c, Yb, X)`` at points ``x (X, 2)`` and outputs ``y (Yb, d)``."""
        q, k, _, _ = self.features(x, y)
        return self._phi(q, k)

    def _phi(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        m = self.config.feature_dim
        scale = (self.log_scale.exp() / math.sqrt(m))[:, None, None]
        return torch.bmm(q.transpose(0, 1) * scale, k.permute(1, 2, 0))  # (c, Yb, X)

    def kernel(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """Quadrature-weighted kernel ``(Yb, X)`` of the outputs ``index`` (all if ``None``)."""
        return self._kernel_phi(index)[0]

    def _kernel_phi(self, index: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Kernel ``(Yb, X)`` and level-set functions ``(c, Yb, X)``."""
        cfg = self.config
        y = self.y_coords if index is None else self.y_coords[index]
        q, k, u, v = self.features(self.x_coords, y)
        phi = self._phi(q, k)
        eps = self.eps * self.eps_factor
        logit = u @ v.T / math.sqrt(cfg.amplitude_rank) + self.log_gain
        weight = (2.0 / self.size) ** 2
        if cfg.delta == "gaussian":
            norm = weight / (math.sqrt(2 * math.pi) * eps) ** cfg.channels
            delta = torch.exp(-(0.5 / eps**2) * phi.square().sum(0)) * norm
        else:
            # The hat is applied to the first (cutting) channel only: a hat has a kink at
            # 0, so a further channel that does not cut would modulate the kernel along
            # its own zero set; those channels use the Gaussian of the same variance.
            delta = smooth_delta(phi[0], eps, cfg.delta, blend=self.blend) * weight
            if cfg.channels > 1:
                delta = delta * smooth_delta(phi[1:], eps, cfg.delta, blend=0.0).prod(dim=0)
        return torch.exp(logit) * delta, phi

    def anchor_gap(self, phi: torch.Tensor) -> torch.Tensor:
        """``min_x |phi_c(x, y)|`` in units of the current delta's standard deviation.

        ``phi (c, Yb, X)`` -> ``(c, Yb)``; above 1 the zero set of ``phi_c(., y)`` misses
        every pixel by more than the delta's width.
        """
        return phi.abs().amin(dim=-1) / (self.sigma * self.eps_factor)

    def fit_terms(
        self, f: torch.Tensor, index: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training forward pass: outputs ``(B, Yb)`` and the anchoring penalty (scalar).

        See ``LevelSetConfig.anchor``; the penalty is 0 when ``anchor`` is 0.
        """
        kernel, phi = self._kernel_phi(index)
        out = f.flatten(-2) @ kernel.T
        if self.config.anchor <= 0:
            return out, out.new_zeros(())
        gap = F.relu(self.anchor_gap(phi) - 1.0).square().mean()
        return out, self.config.anchor * gap

    def forward(self, f: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``f (B, N, N)``, ``index (Yb,)`` -> ``(B, Yb)``."""
        return f.flatten(-2) @ self.kernel(index).T


class LevelSetEnsemble(nn.Module):
    """The mean of several level-set networks fitted to the same pairs.

    With few pairs every fit finds curves that are right at coarse scales and wrong at
    fine ones, differently for every initialisation; their mean keeps the common part and
    averages the rest down (``docs/fibration.md``, "Ensembles").

    Parameters
    ----------
    members
        Networks of one transform and size (the same ``y_coords``).
    best
        Index of the member used for the geometry read-out (lowest training loss).
    """

    def __init__(self, members: list[LevelSetNet], *, best: int = 0) -> None:
        super().__init__()
        if not members or not 0 <= best < len(members):
            raise InputError(None, f"need members and 0 <= best < {len(members)}")
        self.members = nn.ModuleList(members)
        self.best_index = best
        self.register_buffer("y_coords", members[0].y_coords.clone())

    @property
    def best(self) -> LevelSetNet:
        """The member with the lowest training loss."""
        return self.members[self.best_index]

    def forward(self, f: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``f (B, N, N)``, ``index (Yb,)`` -> ``(B, Yb)``: the members' mean."""
        return torch.stack([m(f, index) for m in self.members]).mean(0)


@dataclass(frozen=True, kw_only=True)
class DeepONetConfig:
    """DeepONet: ``G(f)(y) = <branch(f), trunk(y)> / sqrt(p) + b0``.

    The branch MLP reads all ``N^2`` pixels; the trunk reads the output coordinates and
    their Fourier features.
    """

    basis: int = 64
    hidden: tuple[int, ...] = (128, 128)


class DeepONet(nn.Module):
    """DeepONet (Lu et al. 2021), unstacked, ``(B, N, N), (Yb,) -> (B, Yb)``."""

    def __init__(
        self,
        size: int,
        out_coords: torch.Tensor,
        config: DeepONetConfig = DeepONetConfig(),
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        g = generator or torch.Generator().manual_seed(0)
        self.config = config
        self.register_buffer("y_coords", out_coords.to(torch.float32))
        self.branch = MLP(
            MLPConfig(
                in_features=size * size,
                out_features=config.basis,
                hidden_features=config.hidden,
                activation="gelu",
            ),
            generator=g,
        )
        self.trunk = _CoordinateNet(
            out_coords.shape[-1],
            config.basis,
            hidden=config.hidden,
            n_frequencies=6,
            max_frequency=8.0,
            generator=g,
        )
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, f: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``f (B, N, N)``, ``index (Yb,)`` -> ``(B, Yb)``."""
        y = self.y_coords if index is None else self.y_coords[index]
        b = self.branch(f.flatten(-2))
        return b @ self.trunk(y).T / math.sqrt(self.config.basis) + self.bias


@dataclass(frozen=True, kw_only=True)
class FNOConfig:
    """Fourier neural operator: lift, ``layers`` spectral blocks, project.

    Parameters
    ----------
    width
        Channels of the hidden fields.
    modes
        Fourier modes kept per axis (low frequencies, both signs on the first axis).
    layers
        Spectral blocks ``gelu(W h + K h)``.
    """

    width: int = 20
    modes: int = 12
    layers: int = 4


class _SpectralConv(nn.Module):
    def __init__(self, width: int, modes: int, generator: torch.Generator) -> None:
        super().__init__()
        scale = 1.0 / (width * width)
        shape = (2, width, width, modes, modes, 2)
        self.weights = nn.Parameter(scale * torch.rand(shape, generator=generator))
        self.modes = modes

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, _, n1, n2 = h.shape
        m = min(self.modes, n1 // 2, n2 // 2 + 1)
        hf = torch.fft.rfft2(h)
        w = torch.view_as_complex(self.weights[:, :, :, :m, :m].contiguous())
        out = torch.zeros(b, w.shape[2], n1, n2 // 2 + 1, dtype=hf.dtype, device=h.device)
        out[..., :m, :m] = torch.einsum("bixy,ioxy->boxy", hf[..., :m, :m], w[0])
        out[..., -m:, :m] = torch.einsum("bixy,ioxy->boxy", hf[..., -m:, :m], w[1])
        return torch.fft.irfft2(out, s=(n1, n2))


class FNO2d(nn.Module):
    """A compact 2-D FNO (Li et al. 2021): ``(B, N, N), (Yb,) -> (B, Yb)``.

    From the ``(N, N)`` input grid to the ``(N, N)`` output grid (read in row-major order
    as the outputs), with the input coordinates as extra channels. ``neuraloperator`` is
    not installed; this is our own minimal version (lift, spectral blocks keeping
    ``modes`` low frequencies, pointwise projection).
    """

    def __init__(
        self,
        size: int,
        config: FNOConfig = FNOConfig(),
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        g = generator or torch.Generator().manual_seed(0)
        self.config = config
        grid = pixel_coordinates(size, dtype=torch.float32).permute(2, 0, 1)
        self.register_buffer("grid", grid)
        w = config.width
        self.lift = nn.Conv2d(3, w, 1)
        self.spectral = nn.ModuleList(
            _SpectralConv(w, config.modes, g) for _ in range(config.layers)
        )
        self.pointwise = nn.ModuleList(nn.Conv2d(w, w, 1) for _ in range(config.layers))
        self.project = nn.Sequential(nn.Conv2d(w, 64, 1), nn.GELU(), nn.Conv2d(64, 1, 1))
        with torch.no_grad():
            for mod in self.modules():
                if isinstance(mod, nn.Conv2d):
                    bound = 1 / math.sqrt(mod.in_channels)
                    mod.weight.uniform_(-bound, bound, generator=g)
                    mod.bias.zero_()

    def forward(self, f: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``f (B, N, N)``, ``index (Yb,)`` -> ``(B, Yb)``."""
        grid = self.grid.expand(f.shape[0], -1, -1, -1)
        h = self.lift(torch.cat([f[:, None], grid], dim=1))
        for i, (spec, point) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            h = spec(h) + point(h)
            if i < len(self.spectral) - 1:
                h = F.gelu(h)
        if index is None:
            return self.project(h)[:, 0].flatten(-2)
        # The projection is pointwise: apply it at the requested outputs only.
        picked = h.flatten(-2)[:, :, index, None]  # (B, width, Yb, 1)
        return self.project(picked)[:, 0, :, 0]


@dataclass(frozen=True, kw_only=True)
class AttentionConfig:
    """Plain cross-attention: ``G(f)(y) = sum_h c_h(y) sum_x softmax_x(<q_h(y), k_h(x)>) f(x)``.

    Queries from the output coordinates, keys from the input coordinates (Fourier features
    and MLPs as the level-set network), values the input itself, ``heads`` heads of
    ``dim`` features, scaled dot products; no level-set structure.
    """

    heads: int = 4
    dim: int = 16
    hidden: tuple[int, ...] = (64, 64)


class CrossAttentionNet(nn.Module):
    """Cross-attention operator (see :class:`AttentionConfig`), ``(B, N, N), (Yb,) -> (B, Yb)``."""

    def __init__(
        self,
        size: int,
        out_coords: torch.Tensor,
        config: AttentionConfig = AttentionConfig(),
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        g = generator or torch.Generator().manual_seed(0)
        self.config = config
        self.register_buffer(
            "x_coords", pixel_coordinates(size, dtype=torch.float32).reshape(-1, 2)
        )
        self.register_buffer("y_coords", out_coords.to(torch.float32))
        h, d = config.heads, config.dim
        common = {"hidden": config.hidden, "n_frequencies": 4, "max_frequency": 2.0, "generator": g}
        self.key = _CoordinateNet(2, h * d, **common)
        self.query = _CoordinateNet(out_coords.shape[-1], h * d + h, **common)

    def forward(self, f: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``f (B, N, N)``, ``index (Yb,)`` -> ``(B, Yb)``."""
        h, d = self.config.heads, self.config.dim
        y = self.y_coords if index is None else self.y_coords[index]
        qy = self.query(y)
        q = qy[:, : h * d].unflatten(-1, (h, d))
        mix = qy[:, h * d :]  # (Yb, h)
        k = self.key(self.x_coords).unflatten(-1, (h, d))
        attn = torch.softmax(torch.einsum("yhd,xhd->hyx", q, k) / math.sqrt(d), dim=-1)
        pooled = torch.einsum("hyx,bx->bhy", attn, f.flatten(-2))
        return (pooled * mix.T[None]).sum(1)


class RidgeOperator(nn.Module):
    """The least-squares dense linear map with a small ridge, fitted in closed form.

    ``W = Y^T (X X^T + lam I)^-1 X`` over the ``n`` training pairs (the minimum-norm
    solution as ``lam -> 0``), with ``lam = ridge * trace(X X^T) / n``; applied as
    ``G(f) = W f`` without forming ``W`` (``(B, N, N), (Yb,) -> (B, Yb)``).
    """

    def __init__(self, inputs: torch.Tensor, outputs: torch.Tensor, *, ridge: float = 1e-6):
        super().__init__()
        x = inputs.flatten(1).double()
        y = outputs.flatten(1).double()
        gram = x @ x.T
        lam = ridge * float(gram.diagonal().sum()) / x.shape[0]
        coef = torch.linalg.solve(gram + lam * torch.eye(x.shape[0], dtype=x.dtype), y)
        self.register_buffer("x_train", x.float())
        self.register_buffer("coef", coef.float())

    def forward(self, f: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``f (B, N, N)``, ``index (Yb,)`` -> ``(B, Yb)``."""
        w = f.flatten(-2) @ self.x_train.T  # (B, n)
        coef = self.coef if index is None else self.coef[:, index]
        return w @ coef


def build_model(
    kind: str,
    size: int,
    out_coords: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    levelset: LevelSetConfig | None = None,
) -> nn.Module:
    """Build a fresh model ``kind``: ``levelset``, ``deeponet``, ``fno`` or ``attention``."""
    if kind == "levelset":
        return LevelSetNet(size, out_coords, levelset or LevelSetConfig(), generator=generator)
    if kind == "deeponet":
        return DeepONet(size, out_coords, generator=generator)
    if kind == "fno":
        return FNO2d(size, FNOConfig(modes=min(12, size // 4)), generator=generator)
    if kind == "attention":
        return CrossAttentionNet(size, out_coords, generator=generator)
    raise InputError(None, f"unknown model {kind!r}; choose from {', '.join(MODELS)}")

"""ICE-TIDE: one neural field and per-tilt deformations fitted to a raw tilt series.

The volume is a hash-grid :class:`~inversa.core.fields.NeuralField`; each tilt has a
:class:`~inversa.icetide.TiltDeformation`. A step draws random raw pixels of random tilts,
maps them through the deformation to ideal detector positions, integrates the field
along those rays with jittered samples (:func:`~inversa.icetide.render_rays`) and takes
the L1 distance to the normalised data plus small L1 penalties on the shifts, rotations
and local control vectors. With a CTF (:class:`~inversa.tomography.TiltSeriesCTF`) the
step draws square detector patches instead, renders them with a margin, filters them
through their tilt's CTF and compares their inner pixels with the raw (not phase-flipped)
data, so the field is the scene itself, not its CTF-weighted image. Coarse to fine: only
the shifts (and the volume) move at first, the rotations join at ``rotation_start`` and
the local fields at ``local_start`` (fractions of the run). Training, checkpoints,
resume and the divergence check are :func:`inversa.core.training.train`'s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from inversa.core.errors import InputError
from inversa.core.fields import HashGridConfig, MLPConfig, NeuralField, NeuralFieldConfig
from inversa.core.training import TrainConfig, load_checkpoint, train
from inversa.icetide._deformation import TiltDeformation
from inversa.icetide._refine import polish_rigid
from inversa.icetide._render import (
    ctf_first_zero,
    ctf_padding,
    filter_patches,
    render_rays,
    restore_lowpass,
)
from inversa.tomography import (
    TiltGeometry,
    TiltSeriesCTF,
    TiltSeriesProjector,
    bspline_at,
    invert_xf,
    sirt,
    tilt_ctf_grid,
    warp_images,
    wbp,
)

__all__ = [
    "IceTideConfig",
    "IceTideModel",
    "IceTideResult",
    "check_stack",
    "corrected_stack",
    "fit_icetide",
    "level_weights",
    "normalise_stack",
    "phase_flip_tilts",
    "reconstruct_corrected",
]


@dataclass(frozen=True, kw_only=True)
class IceTideConfig:
    """How to fit ICE-TIDE.

    Attributes
    ----------
    steps
        Optimiser steps.
    rays_per_step
        Random raw pixels (over all tilts) per step.
    samples_per_ray
        Jittered samples along each ray (one per depth interval).
    local_grid
        Control points per axis of the local fields (0: rigid alignment only).
    thickness
        Depth ``D`` of the reconstructed box in voxels; ``None``: ``W // 2``.
    n_levels, n_features, log2_table_size, base_resolution
        Hash grid; its finest level has as many cells as the largest volume side.
    hidden
        Hidden widths of the MLP.
    lr_volume, lr_shift, lr_rotation, lr_local
        Adam learning rates (field; shifts in px; rotations in degrees; control in px).
    penalty_shift, penalty_rotation, penalty_local
        Weights of the L1 penalties (mean absolute value, in px or degrees).
    rotation_start, local_start
        Fractions of ``steps`` at which rotations and local fields start moving.
    level_anneal
        Fraction of ``steps`` over which the hash grid's levels are switched on, coarse
        to fine (two levels at step 0, every level from then on; 0: all from the start).
        Until then a tilt's fine detail cannot be fitted by the field at that tilt's
        current, wrong alignment, which would pull the alignment towards it. Off by
        default: in ``docs/icetide.md``'s benchmark it cost FSC resolution for no clear
        gain in rotation error.
    refine_start
        Fraction of ``steps`` from which only the rigid alignment (shifts, rotations)
        moves: the field and the local fields are frozen (1: no such stage). An
        experiment on the rotation error, off by default (``docs/icetide.md``).
    ctf_lowpass
        With a CTF only: fraction of ``steps`` of a coarse-to-fine first phase (0: none).
        In it a step compares single rendered rays, as without a CTF, with a copy of the
        data Wiener-restored for each tilt's CTF and low-passed
        (:func:`~inversa.icetide.restore_lowpass`) below a cutoff that widens linearly
        from ``ctf_lowpass_from`` to ``ctf_lowpass_to`` times the tilt's first CTF zero
        (:func:`~inversa.icetide.ctf_first_zero`); the CTF-filtered patches take over
        after it. Early on, the blurred, CTF-corrected data give the alignment a basin as
        wide as without a CTF, where the CTF's band-passed images have side minima a few
        pixels apart.
    ctf_lowpass_from, ctf_lowpass_to
        Cutoffs at the start and the end of that phase, in units of the first CTF zero
        (beyond 1 the restoration also corrects the CTF's sign; ``docs/icetide.md``
        measures 1.0 and 1.5).
    ctf_wiener
        Wiener constant of that restoration (relative to a unit CTF).
    init
        Start of the rigid alignment when none is given (``geometry.xf`` is ``None``):
        ``"zero"``, or ``"xcorr"``: :func:`~inversa.icetide.align_xcorr` of the stack
        (phase-flipped per tilt first under a CTF, as IMOD's ``ctfphaseflip``).
    polish
        After the fit, refine each tilt's rotation and shift against the fitted field's
        own projections (:func:`~inversa.icetide.polish_rigid`: Gauss-Newton on the
        misfit of the raw stack, through the CTF and the fitted local fields), the field
        and the local fields kept (the rotations only when ``rotation_start < 1``). The
        stochastic, ray-sampled steps leave the alignment short of the misfit's minimum
        for the learned volume; ``docs/icetide.md`` measures the gain (on by default;
        skipped when ``steps`` is 0).
    ctf_patch
        With a CTF only: side in pixels of the square detector patches compared with the
        data (each rendered with a margin of :func:`~inversa.icetide.ctf_padding` pixels
        and filtered through its tilt's CTF); a step draws ``rays_per_step / ctf_patch^2``
        patches (at least one), so as many pixels are compared as without a CTF.
    checkpoint_every
        Steps between checkpoints (when a checkpoint path is given).
    seed
        Seeds the initialisation and every step's random pixels and jitter.
    """

    steps: int = 1500
    rays_per_step: int = 2048
    samples_per_ray: int = 64
    local_grid: int = 10
    thickness: int | None = None
    n_levels: int = 8
    n_features: int = 2
    log2_table_size: int = 18
    base_resolution: int = 8
    hidden: tuple[int, ...] = (64, 64)
    lr_volume: float = 1e-2
    lr_shift: float = 5e-2
    lr_rotation: float = 5e-2
    lr_local: float = 1e-2
    penalty_shift: float = 1e-4
    penalty_rotation: float = 1e-4
    penalty_local: float = 1e-3
    rotation_start: float = 0.2
    local_start: float = 0.5
    level_anneal: float = 0.0
    refine_start: float = 1.0
    ctf_lowpass: float = 0.5
    ctf_lowpass_from: float = 0.5
    ctf_lowpass_to: float = 1.5
    ctf_wiener: float = 0.1
    init: str = "zero"
    polish: bool = True
    ctf_patch: int = 16
    checkpoint_every: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.rays_per_step < 1 or self.samples_per_ray < 2:
            raise InputError(None, "steps >= 0, rays_per_step >= 1, samples_per_ray >= 2 needed")
        if self.local_grid != 0 and self.local_grid < 4:
            raise InputError(None, f"local_grid must be 0 or >= 4, got {self.local_grid}")
        if not 0 <= self.rotation_start <= self.local_start <= 1:
            raise InputError(None, "need 0 <= rotation_start <= local_start <= 1")
        if not self.local_start <= self.refine_start <= 1:
            raise InputError(None, "need local_start <= refine_start <= 1")
        if not 0 <= self.level_anneal <= 1:
            raise InputError(None, f"level_anneal must be in [0, 1], got {self.level_anneal}")
        if not 0 <= self.ctf_lowpass <= 1:
            raise InputError(None, f"ctf_lowpass must be in [0, 1], got {self.ctf_lowpass}")
        if not 0 < self.ctf_lowpass_from <= self.ctf_lowpass_to:
            raise InputError(None, "need 0 < ctf_lowpass_from <= ctf_lowpass_to")
        if not self.ctf_wiener > 0:
            raise InputError(None, f"ctf_wiener must be positive, got {self.ctf_wiener}")
        if self.init not in ("zero", "xcorr"):
            raise InputError(None, f"init must be 'zero' or 'xcorr', got {self.init!r}")
        if self.ctf_patch < 1:
            raise InputError(None, f"ctf_patch must be positive, got {self.ctf_patch}")
        if self.thickness is not None and self.thickness < 1:
            raise InputError(None, f"thickness must be positive, got {self.thickness}")


@dataclass(frozen=True)
class IceTideResult:
    """What :func:`fit_icetide` found.

    Attributes
    ----------
    volume
        ``(D, H, W)`` field sampled at the voxel centres (units of the normalised data).
    xf
        ``(T, 2, 3)`` rigid alignment as IMOD transforms (raw -> aligned), float64.
    control
        ``(T, G, G, 2)`` local B-spline control vectors in pixels (``G = 0``: none).
    displacement
        ``(T, H, W, 2)`` local fields on the pixel grid, components ``(x, y)`` in pixels.
    history
        Logged training entries (step, loss).
    polish
        :func:`~inversa.icetide.polish_rigid`'s record of the final polish (empty when
        ``IceTideConfig.polish`` is off).
    fit_xf
        ``(T, 2, 3)`` the rigid alignment before the polish (``xf`` when there is none).
    seconds
        Wall-clock seconds of the fit.
    """

    volume: torch.Tensor
    xf: torch.Tensor
    control: torch.Tensor
    displacement: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    polish: dict[str, float] = field(default_factory=dict)
    fit_xf: torch.Tensor | None = None
    seconds: float = 0.0


def _schedule(config: IceTideConfig, *, ctf: bool) -> tuple[int, int, int, int, int, int]:
    """Total, first rotation, first local, last annealed, first frozen, first post-low-pass step.

    The CTF low-pass phase exists only with a CTF (``ctf``); without one its end is 0.
    """
    steps = config.steps
    return (
        steps,
        round(config.rotation_start * steps),
        round(config.local_start * steps),
        round(config.level_anneal * steps),
        round(config.refine_start * steps),
        round(config.ctf_lowpass * steps) if ctf else 0,
    )


def level_weights(step: int, anneal_steps: int, n_levels: int, n_features: int) -> torch.Tensor:
    """Weights ``(L * F,)`` of the hash-grid features at ``step`` (coarse to fine).

    Levels ``l < a`` count fully and level ``a`` by its fraction, with ``a`` growing
    linearly from 2 at step 0 to ``L`` at ``anneal_steps`` (BARF-style annealing).
    """
    start = min(2.0, float(n_levels))
    a = (
        float(n_levels)
        if step >= anneal_steps
        else start + (n_levels - start) * (step / anneal_steps)
    )
    w = (a - torch.arange(n_levels, dtype=torch.float32)).clamp(0, 1)
    return w.repeat_interleave(n_features)


def check_stack(stack: torch.Tensor, n_angles: int, *, path: Path | None = None) -> None:
    """Refuse what ICE-TIDE cannot fit: a non-square or odd-sized stack, NaNs, a bad count.

    Raises
    ------
    InputError
        Naming ``path`` and the problem.
    """
    if stack.ndim != 3:
        raise InputError(path, f"a tilt series must be (T, H, W), got {tuple(stack.shape)}")
    t, h, w = stack.shape
    if h != w or h % 2:
        raise InputError(path, f"tilt images must be square with an even size, got {h} x {w}")
    if t != n_angles:
        raise InputError(path, f"has {t} tilt images but the angles list {n_angles}")
    if not bool(torch.isfinite(stack).all()):
        raise InputError(path, "contains NaN or infinite values")


def normalise_stack(stack: torch.Tensor) -> torch.Tensor:
    """Per tilt ``(mean - x) / mean`` (density bright), scaled to unit overall std.

    Parameters
    ----------
    stack
        ``(T, H, W)`` raw counts.

    Returns
    -------
    torch.Tensor
        ``(T, H, W)`` float32 contrast.
    """
    x = stack.to(torch.float32)
    mean = x.mean(dim=(-2, -1), keepdim=True)
    y = (mean - x) / torch.where(mean.abs() > 0, mean, 1.0)
    std = y.std()
    return y / std if std > 0 else y


class IceTideModel(nn.Module):
    """The volume field and the per-tilt deformations, trained together.

    Parameters
    ----------
    volume_shape
        ``(D, H, W)`` of the reconstructed box.
    angles
        ``(T,)`` tilt angles in degrees (not refined).
    config
        Field sizes and the local grid.
    xf
        Optional ``(T, 2, 3)`` starting alignment.
    generator
        Initialisation randomness.
    ctf_patch
        Side of the CTF-filtered detector patches the data term renders, 0 for single
        pixels without a CTF (saved, so that a resume can refuse another data term).
    """

    def __init__(
        self,
        volume_shape: tuple[int, int, int],
        angles: torch.Tensor,
        *,
        config: IceTideConfig,
        xf: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        ctf_patch: int = 0,
    ) -> None:
        super().__init__()
        self.volume_shape = tuple(int(n) for n in volume_shape)
        finest = max(max(self.volume_shape), config.base_resolution)
        enc = HashGridConfig(
            dim=3,
            n_levels=config.n_levels,
            n_features=config.n_features,
            log2_table_size=config.log2_table_size,
            base_resolution=min(config.base_resolution, finest),
            max_resolution=finest,
        )
        mlp = MLPConfig(in_features=enc.out_features, out_features=1, hidden_features=config.hidden)
        self.field = NeuralField(NeuralFieldConfig(encoding=enc, mlp=mlp), generator=generator)
        _, h, w = self.volume_shape
        self.deformation = TiltDeformation(len(angles), (h, w), grid=config.local_grid, xf=xf)
        self.register_buffer("angles", angles.detach().to(torch.float32).clone())
        # Saved with the weights, so that a resume can refuse another schedule.
        self.register_buffer(
            "schedule", torch.tensor(_schedule(config, ctf=ctf_patch > 0), dtype=torch.int64)
        )
        self.register_buffer("data_term", torch.tensor([int(ctf_patch)], dtype=torch.int64))
        #: ``(L * F,)`` weights of the encoding's features (coarse to fine), ``None``: all 1.
        self.feature_weights: torch.Tensor | None = None

    def field_at(self, unit: torch.Tensor) -> torch.Tensor:
        """Evaluate the volume at ``(..., 3)`` points in ``[0, 1]^3`` with ``feature_weights``."""
        if self.feature_weights is None:
            return self.field(unit)
        features = self.field.encoding(unit) * self.feature_weights.to(unit)
        return self.field.mlp(features)

    def render(
        self,
        points: torch.Tensor,
        tilts: torch.Tensor,
        *,
        n_samples: int,
        jitter: torch.Tensor | None = None,
        rotate: bool = True,
        local: bool = True,
    ) -> torch.Tensor:
        """Predicted raw pixel values ``(R, N)`` at raw points ``(R, N, 2)`` of tilts ``(R,)``."""
        ideal = self.deformation(points, tilts, rotate=rotate, local=local)
        return render_rays(
            self.field_at,
            self.angles[tilts],
            ideal,
            volume_shape=self.volume_shape,
            n_samples=n_samples,
            jitter=jitter,
        )


def corrected_stack(
    stack: torch.Tensor, xf: torch.Tensor, control: torch.Tensor | None = None
) -> torch.Tensor:
    """Resample raw images into the ideal frame, undoing ``s = A r + d + D(r)``.

    The inverse map is taken to first order in the local field: raw position
    ``A^{-1}(s - d) - A^{-1} D(A^{-1}(s - d))`` for ideal position ``s``.

    Parameters
    ----------
    stack
        ``(T, H, W)`` raw images.
    xf
        ``(T, 2, 3)`` rigid transforms.
    control
        ``(T, G, G, 2)`` local control vectors, or ``None``.

    Returns
    -------
    torch.Tensor
        ``(T, H, W)`` aligned images, ready for an alignment-free reconstruction.
    """
    t, h, w = stack.shape
    inv = invert_xf(xf.to(torch.float64))
    if control is None or control.shape[1] == 0:
        return warp_images(stack, inv)
    y = torch.arange(h, dtype=torch.float64) - h // 2
    x = torch.arange(w, dtype=torch.float64) - w // 2
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    s = torch.stack([xx, yy], -1).reshape(1, h * w, 2)
    a_inv = inv[:, :, :2]
    r0 = s @ a_inv.mT + inv[:, None, :, 2]  # (T, HW, 2)
    local = bspline_at(control.to(torch.float64), r0, (h, w))
    displacement = -(local @ a_inv.mT)
    return warp_images(stack, inv, displacement=displacement.reshape(t, h, w, 2))


def _optimizer(model: IceTideModel, config: IceTideConfig) -> torch.optim.Optimizer:
    d = model.deformation
    return torch.optim.Adam(
        [
            {"params": list(model.field.parameters()), "lr": config.lr_volume},
            {"params": [d.shift], "lr": config.lr_shift},
            {"params": [d.rotation], "lr": config.lr_rotation},
            {"params": [d.control], "lr": config.lr_local},
        ],
        betas=(0.9, 0.99),
        eps=1e-15,
    )


def fit_icetide(
    stack: torch.Tensor,
    geometry: TiltGeometry,
    *,
    config: IceTideConfig,
    ctf: TiltSeriesCTF | None = None,
    pixel_size_A: float | None = None,
    device: str | torch.device = "cpu",
    checkpoint: Path | None = None,
    progress: bool = False,
) -> IceTideResult:
    """Fit the volume and the alignment of a raw tilt series.

    Parameters
    ----------
    stack
        ``(T, H, W)`` raw tilt series (counts, density dark), ``H == W`` even; with
        ``ctf``, as recorded (not phase-flipped).
    geometry
        Tilt angles (degrees) and optionally a starting ``.xf`` (``geometry.xf``).
    config
        Sizes, rates, penalties and the schedule.
    ctf
        The tilt series' CTF (per-tilt defocus at the tilt axis, in the raw image frame),
        or ``None``: plain line integrals. With it, square patches of ``config.ctf_patch``
        pixels are rendered and filtered through their tilt's CTF.
    pixel_size_A
        Pixel size in Angstrom; needed with ``ctf``.
    device
        Torch device of the fit.
    checkpoint
        ``.pt`` file for checkpoints; a run with an existing one resumes from it, under
        the same schedule only (``steps``, ``rotation_start``, ``local_start``,
        ``level_anneal``).
    progress
        Show a progress bar.

    Returns
    -------
    IceTideResult

    Raises
    ------
    InputError
        For a stack that :func:`check_stack` refuses, or a checkpoint of another schedule.
    inversa.core.training.TrainingDiverged
        When the loss stops being finite (the checkpoint keeps the last good step).
    """
    check_stack(stack, geometry.n_tilts)
    t0 = time.perf_counter()
    t, h, w = stack.shape
    if ctf is not None:
        if ctf.n_tilts != t:
            raise InputError(None, f"the CTF has {ctf.n_tilts} tilts but the stack {t}")
        if pixel_size_A is None or not pixel_size_A > 0:
            raise InputError(None, f"a CTF needs a positive pixel size, got {pixel_size_A}")
    shape = (config.thickness or w // 2, h, w)
    device = torch.device(device)
    data = normalise_stack(stack).to(device)
    gen = torch.Generator().manual_seed(config.seed)
    ctf_patch = min(config.ctf_patch, h) if ctf is not None else 0
    start = geometry.xf
    if start is None and config.init == "xcorr":
        start = _xcorr_start(stack, geometry.angles, ctf=ctf, pixel_size_A=pixel_size_A)
    model = IceTideModel(
        shape, geometry.angles, config=config, xf=start, generator=gen, ctf_patch=ctf_patch
    )
    model.to(device)
    optimizer = _optimizer(model, config)
    n, s = config.rays_per_step, config.samples_per_ray
    _steps, rot_step, local_step, anneal_step, refine_step, lowpass_step = _schedule(
        config, ctf=ctf is not None
    )
    if checkpoint is not None and Path(checkpoint).exists():
        _check_resume(Path(checkpoint), config, ctf_patch=ctf_patch)
    shift0 = model.deformation.shift.detach().clone()
    if ctf is not None:
        inner = ctf_patch
        pad = ctf_padding(ctf, float(pixel_size_A))
        size = inner + 2 * pad
        n_patches = max(1, round(n / inner**2))
        transfer = tilt_ctf_grid(ctf, (size, size), pixel_size_A=float(pixel_size_A))
        transfer = transfer.to(device=device, dtype=torch.float32)  # (T, P, P//2+1)
        first_zero = ctf_first_zero(ctf, float(pixel_size_A)).to(device)  # (T,) cycles/px

    def lowpass_target(step: int) -> torch.Tensor:
        """``(T, H, W)`` restored data, low-passed at this step's cutoff (coarse to fine)."""
        frac = step / max(1, lowpass_step - 1)
        scale = config.ctf_lowpass_from + (config.ctf_lowpass_to - config.ctf_lowpass_from) * frac
        return restore_lowpass(
            data,
            ctf,
            pixel_size_A=float(pixel_size_A),
            cutoff=first_zero * scale,
            wiener=config.ctf_wiener,
        )

    def draw(
        g: torch.Generator, pixels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tilts ``(R,)``, raw points ``(R, N, 2)``, jitter ``(R, N, S)``, data ``(R, M)``.

        ``pixels``: single rays against these ``(T, H, W)`` images; ``None``: the data
        (single rays without a CTF, CTF-filtered patches with one).
        """
        if ctf is None or pixels is not None:
            pixels = data if pixels is None else pixels
            tilts = torch.randint(0, t, (n,), generator=g)
            iy = torch.randint(0, h, (n,), generator=g)
            ix = torch.randint(0, w, (n,), generator=g)
            jitter = torch.rand(n, 1, s, generator=g)
            pts = torch.stack([ix - w // 2, iy - h // 2], -1).to(torch.float32)[:, None, :]
            target = pixels[tilts.to(device), iy.to(device), ix.to(device)][:, None]
            return tilts, pts, jitter, target
        # Patches: inner corner anywhere in the image, margin rendered beyond it.
        tilts = torch.randint(0, t, (n_patches,), generator=g)
        y0 = torch.randint(0, h - inner + 1, (n_patches,), generator=g)
        x0 = torch.randint(0, w - inner + 1, (n_patches,), generator=g)
        jitter = torch.rand(n_patches, size * size, s, generator=g)
        k = torch.arange(size) - pad
        iy = y0[:, None] + k  # (R, P)
        ix = x0[:, None] + k
        yy = iy[:, :, None].expand(-1, size, size)
        xx = ix[:, None, :].expand(-1, size, size)
        pts = torch.stack([xx - w // 2, yy - h // 2], -1).reshape(n_patches, -1, 2)
        ci = iy[:, pad : pad + inner].to(device)
        cj = ix[:, pad : pad + inner].to(device)
        target = data[tilts.to(device)[:, None, None], ci[:, :, None], cj[:, None, :]]
        return tilts, pts.to(torch.float32), jitter, target.reshape(n_patches, -1)

    def loss_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        # Randomness from the step alone: a resumed run draws what the uninterrupted one did.
        g = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        lowpass = step < lowpass_step
        tilts, pts, jitter, target = draw(g, lowpass_target(step) if lowpass else None)
        tilts, pts, jitter = tilts.to(device), pts.to(device), jitter.to(device)
        frozen = step >= refine_step  # only the rigid alignment moves
        for p in (*model.field.parameters(), model.deformation.control):
            p.requires_grad_(not frozen)
        model.feature_weights = None
        if step < anneal_step:
            model.feature_weights = level_weights(
                step, anneal_step, config.n_levels, config.n_features
            ).to(device)
        pred = model.render(
            pts,
            tilts,
            n_samples=s,
            jitter=jitter,
            rotate=step >= rot_step,
            local=step >= local_step,
        )
        if ctf is not None and not lowpass:
            pred = filter_patches(pred.reshape(-1, size, size), transfer[tilts])
            pred = pred[:, pad : pad + inner, pad : pad + inner].reshape(len(tilts), -1)
        fit = (pred - target).abs().mean()
        d = model.deformation
        penalty = (
            config.penalty_shift * (d.shift - shift0.to(device)).abs().mean()
            + config.penalty_rotation * d.rotation.abs().mean()
        )
        if d.grid > 0:
            penalty = penalty + config.penalty_local * d.local_control().abs().mean()
        return fit + penalty, {"data_l1": float(fit.detach())}

    result = train(
        model=model,
        optimizer=optimizer,
        loss_fn=loss_fn,
        config=TrainConfig(
            steps=config.steps,
            checkpoint=checkpoint,
            checkpoint_every=config.checkpoint_every,
            progress=progress,
            description="icetide",
            log_every=max(1, config.steps // 100),
        ),
    )
    model.eval()
    model.feature_weights = None
    for p in (*model.field.parameters(), model.deformation.control):
        p.requires_grad_(True)
    volume = model.field.sample_grid(shape)[..., 0].detach().cpu()
    d = model.deformation.cpu()
    xf, displacement, polish = d.xf(), d.displacement(), {}
    if config.polish and config.steps > 0:  # no polish against an untrained field
        xf, polish = polish_rigid(
            stack, volume, geometry, xf, displacement=displacement, ctf=ctf,
            pixel_size_A=pixel_size_A, rotation=config.rotation_start < 1,
        )  # fmt: skip
    return IceTideResult(
        volume=volume,
        xf=xf,
        control=d.local_control().detach().double().clone(),
        displacement=displacement,
        history=result.history,
        polish=polish,
        fit_xf=d.xf(),
        seconds=time.perf_counter() - t0,
    )


def _check_resume(path: Path, config: IceTideConfig, *, ctf_patch: int) -> None:
    """Refuse to resume a checkpoint written under another schedule or data term.

    The data term (pixels, or CTF-filtered patches of a size; checked first) decides
    what a step fits and the schedule (total steps, first rotation and local-field steps,
    the CTF low-pass phase) what it trains; continuing a run under another one would
    give neither run.
    """
    state = load_checkpoint(path).get("model", {})
    saved = state.get("schedule")
    if saved is None:
        raise InputError(path, "holds no ICE-TIDE schedule (another model?); use a new --out")
    term = state.get("data_term")
    had = int(term.reshape(-1)[0]) if term is not None else 0
    if had != ctf_patch:

        def name(patch: int) -> str:
            return f"a CTF model on {patch} px patches" if patch else "no CTF model"

        raise InputError(
            path,
            f"was written by a run with {name(had)} but this run has {name(ctf_patch)}: "
            "resume with the same --defocus and --ctf-patch, or use a new --out",
        )
    have, want = tuple(int(v) for v in saved.tolist()), _schedule(config, ctf=ctf_patch > 0)
    if have != want:
        steps, rot, local, anneal, refine, lowpass = (*have, 0, 0, 0, 0, 0, 0)[:6]
        raise InputError(
            path,
            f"was written by a run of {steps} steps (rotations from step {rot}, local fields "
            f"from step {local}, levels annealed until {anneal}, rigid-only from {refine}, "
            f"CTF low-pass until {lowpass}) but this run has {want[0]} steps (rotations from "
            f"{want[1]}, local fields from {want[2]}, levels until {want[3]}, rigid-only from "
            f"{want[4]}, CTF low-pass until {want[5]}): resume with its schedule "
            f"(--steps {steps}) or use a new --out",
        )


def phase_flip_tilts(
    stack: torch.Tensor, ctf: TiltSeriesCTF, *, pixel_size_A: float
) -> torch.Tensor:
    """Phase-flip each tilt for its own CTF, as IMOD's ``ctfphaseflip`` (one defocus a tilt).

    Parameters
    ----------
    stack
        ``(T, H, W)`` images in the raw frame.
    ctf
        Their CTF (per-tilt defocus and astigmatism).
    pixel_size_A
        Pixel size in Angstrom.

    Returns
    -------
    torch.Tensor
        ``(T, H, W)``, ``irfft2(rfft2(stack) * sign(CTF))``, in the dtype of ``stack``.
    """
    if ctf.n_tilts != stack.shape[0]:
        raise InputError(None, f"the CTF has {ctf.n_tilts} tilts but the stack {stack.shape[0]}")
    sign = torch.sign(tilt_ctf_grid(ctf, tuple(stack.shape[-2:]), pixel_size_A=pixel_size_A))
    return filter_patches(stack, sign.to(stack.device))


def reconstruct_corrected(
    stack: torch.Tensor,
    angles: torch.Tensor,
    xf: torch.Tensor,
    *,
    control: torch.Tensor | None = None,
    thickness: int | None = None,
    sirt_iterations: int = 0,
    ctf: TiltSeriesCTF | None = None,
    pixel_size_A: float | None = None,
) -> torch.Tensor:
    """WBP (or SIRT) ``(D, H, W)`` of a raw stack corrected with an alignment (rigid + local).

    The raw stack is normalised (:func:`normalise_stack`, density bright), phase-flipped
    when a ``ctf`` is given (:func:`phase_flip_tilts`, in the raw frame, where the CTF
    acts), resampled into the ideal frame (:func:`corrected_stack`) and reconstructed
    without alignment.

    Parameters
    ----------
    stack
        ``(T, H, W)`` raw tilt series.
    angles
        ``(T,)`` tilt angles in degrees.
    xf
        ``(T, 2, 3)`` rigid alignment (raw -> aligned).
    control
        ``(T, G, G, 2)`` local B-spline control vectors, or ``None``.
    thickness
        Depth ``D`` (``None``: ``W // 2``).
    sirt_iterations
        0: weighted back-projection; ``N > 0``: ``N`` SIRT iterations from zero instead.
    ctf, pixel_size_A
        The CTF to phase-flip for (``None``: no flip) and the pixel size in Angstrom.

    Returns
    -------
    torch.Tensor
        ``(D, H, W)`` float32 volume.
    """
    if sirt_iterations < 0:
        raise InputError(None, f"sirt_iterations must be >= 0, got {sirt_iterations}")
    _t, h, w = stack.shape
    normalised = normalise_stack(stack).double()
    if ctf is not None:
        if pixel_size_A is None:
            raise InputError(None, "phase flipping needs the pixel size")
        normalised = phase_flip_tilts(normalised, ctf, pixel_size_A=pixel_size_A)
    aligned = corrected_stack(normalised, xf, control)
    geom = TiltGeometry(angles=angles.to(torch.float64))
    projector = TiltSeriesProjector(volume_shape=(thickness or w // 2, h, w), geometry=geom)
    if sirt_iterations == 0:
        return wbp(aligned, projector).float()
    volume, _info = sirt(projector, aligned, n_iter=sirt_iterations, tol=0.0)
    return volume.float()


def _xcorr_start(
    stack: torch.Tensor,
    angles: torch.Tensor,
    *,
    ctf: TiltSeriesCTF | None,
    pixel_size_A: float | None,
) -> torch.Tensor:
    """``(T, 2, 3)`` :func:`~inversa.icetide.align_xcorr` start (phase-flipped under a CTF)."""
    from inversa.icetide._peers import align_xcorr  # _peers builds on this module

    images = stack.double()
    if ctf is not None:
        images = phase_flip_tilts(images, ctf, pixel_size_A=float(pixel_size_A))
    return align_xcorr(images, angles).float()

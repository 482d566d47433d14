"""Newton subtomogram alignment: SO(3) FFT search, frequency-marched Newton, FFT shifts.

For each particle ``P`` and the reference ``F`` (both masked in real space), the score of
a rotation is the wedge-normalised correlation of their Fourier transforms on shells

    S(R) = C(R) / sqrt(N(R) ||W P||^2),
    C(R) = Re sum_k W(k) conj(P(k)) F(R^T k),   N(R) = sum_k W(k) |F(R^T k)|^2,

with ``W`` the particle's missing-wedge mask in its own (tomogram) frame. Both ``C`` and
``N`` are rotational correlations of shell-wise spherical-harmonic expansions, so both are
trigonometric polynomials with closed-form derivatives (:mod:`inversa.alignment._so3`);
Newton runs on the ratio. By Cauchy-Schwarz ``S <= 1`` with equality at the true pose of a
noise-free particle, with or without a wedge: the normalisation removes the bias towards
poses that put the reference's strong directions into the measured region.

The search (per particle, batched):

1. Global mode. The translation is unknown, so the first search correlates Fourier
   amplitudes (minus their shell means), which do not depend on it: a coarse SO(3) FFT at
   band ``l0`` on ``(2 l0 grid_factor)^3`` Euler points gives ``n_candidates`` local
   maxima, refined by Newton over the band-limit schedule (candidates halved per level).
   The three best get an FFT translation search; the best correlation wins.
2. Up to ``n_alternations`` rounds of (Newton on the complex score over the schedule,
   starting from the current pose, with the current shift undone by a phase ramp; then
   :func:`~inversa.alignment.find_shift` on the rotated reference), stopping once the
   shifts no longer change (the score is then unchanged and Newton already at its optimum).
3. Local mode (``prior_rotations`` given and ``max_angle_deg`` not ``None``): skip step
   1, start from the prior, and refuse any Newton step that ends farther than
   ``max_angle_deg`` from it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from inversa.alignment._ctfweight import ParticleCTF
from inversa.alignment._exhaustive import _rotate_many
from inversa.alignment._harmonics import (
    ShellGrid,
    fourier_shell_samples,
    make_shell_grid,
    sh_analysis,
    wedge_on_sphere,
)
from inversa.alignment._result import AlignmentResult
from inversa.alignment._so3 import (
    correlation_kernels,
    evaluate_kernels,
    grid_candidates,
    newton_maximise,
    ratio_derivatives,
    so3_fft_grid,
)
from inversa.alignment._volumes import (
    shift_from_spectra,
    spherical_mask,
    wedge_mask,
)
from inversa.core.errors import InputError
from inversa.core.rotations import geodesic_distance

__all__ = ["NewtonConfig", "align_newton"]

# Newton candidates closer than this (degrees) have converged onto the same maximum.
_SAME_POSE_DEG = 2.0


@dataclass(frozen=True, kw_only=True)
class NewtonConfig:
    """Settings of :func:`align_newton`.

    Attributes
    ----------
    band_limits
        Spherical-harmonic band limits of the frequency-marching schedule (increasing).
    l0
        Band limit of the coarse SO(3) FFT search.
    grid_factor
        The coarse grid has ``2 * l0 * grid_factor`` points per Euler angle.
    n_candidates
        Local maxima of the coarse search refined by Newton.
    newton_steps
        Newton steps per band limit.
    n_alternations
        Largest number of rounds of (rotation refinement, translation search); the
        rounds stop early once no shift of the batch changes.
    max_shift
        Largest translation searched, voxels.
    upsample
        Sub-voxel refinement of the translation peak (1 / upsample voxel).
    wedge
        ``(tilt_min, tilt_max)`` degrees of the particles' missing wedge, or None.
    mask_radius
        Real-space spherical mask radius in voxels (default ``n // 2 - 3``, soft edge 3).
    frequency_band
        ``(low, high)`` cycles/voxel of the Fourier shells used (shell radii are whole
        Fourier pixels in between; at least 1).
    oversampling
        Quadrature band ``ceil(oversampling * max(band_limits))`` on each shell, to keep
        the aliasing of higher angular detail out of the coefficients.
    pad
        Zero-padding factor of the FFT that Fourier samples are interpolated from.
    max_angle_deg
        Local mode: when ``prior_rotations`` are given, largest distance (degrees) from
        each prior. ``None``: global search always (priors ignored).
    batch_size
        Particles processed together.
    device
        Where to compute (default: the device of the particles).
    """

    band_limits: tuple[int, ...] = (8, 16, 24)
    l0: int = 8
    grid_factor: int = 2
    n_candidates: int = 10
    newton_steps: int = 5
    n_alternations: int = 3
    max_shift: float = 4.0
    upsample: int = 8
    wedge: tuple[float, float] | None = None
    mask_radius: float | None = None
    frequency_band: tuple[float, float] = (0.0, 0.4)
    oversampling: float = 1.5
    pad: int = 2
    max_angle_deg: float | None = 10.0
    batch_size: int = 8
    device: str | None = None

    def __post_init__(self) -> None:
        bl = self.band_limits
        if not bl or any(b < 1 for b in bl) or list(bl) != sorted(bl):
            raise InputError(None, f"band_limits must be increasing positive ints; got {bl}")
        checks = [
            (self.l0 >= 1, "l0 must be >= 1"),
            (self.grid_factor >= 1, "grid_factor must be >= 1"),
            (self.n_candidates >= 1, "n_candidates must be >= 1"),
            (self.newton_steps >= 0, "newton_steps must be >= 0"),
            (self.n_alternations >= 1, "n_alternations must be >= 1"),
            (self.max_shift >= 0, "max_shift must be >= 0"),
            (self.upsample >= 1, "upsample must be >= 1"),
            (
                0 <= self.frequency_band[0] < self.frequency_band[1] <= 0.5,
                "frequency_band must satisfy 0 <= low < high <= 0.5",
            ),
            (self.oversampling >= 1, "oversampling must be >= 1"),
            (self.pad >= 1, "pad must be >= 1"),
            (
                self.max_angle_deg is None or 0 < self.max_angle_deg <= 180,
                "max_angle_deg must be in (0, 180] or None",
            ),
            (self.batch_size >= 1, "batch_size must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(None, message)
        if self.wedge is not None and not -90 <= self.wedge[0] <= self.wedge[1] <= 90:
            raise InputError(None, f"wedge must be (min, max) within [-90, 90]; got {self.wedge}")


@dataclass(frozen=True)
class _Reference:
    """Everything about the reference that every particle batch reuses."""

    volume: torch.Tensor  # masked, (n, n, n)
    grid: ShellGrid
    mask: torch.Tensor
    coef: torch.Tensor  # (S, L+1, M) complex128: F on shells
    amp_coef: torch.Tensor  # (S, L+1, M): |F| minus its shell mean
    sigma_n: torch.Tensor | None  # (L+1, M, M) for N(R) with the complex function
    sigma_n_amp: torch.Tensor | None
    kernels_n: torch.Tensor | None  # (10, L+1, M, M) correlation_kernels(sigma_n)
    kernels_n_amp: torch.Tensor | None
    wedge_dir: torch.Tensor  # (T, P) wedge indicator on the quadrature directions
    wedge_fft: torch.Tensor | None  # (n, n, n) fftn-layout wedge for find_shift
    power_coef: torch.Tensor | None  # (S, L+1, M): |F|^2 per shell (per-particle CTF N)
    amp_power_coef: torch.Tensor | None  # (S, L+1, M): (|F| - mean)^2 per shell


def _sphere_mean(samples: torch.Tensor, grid: ShellGrid, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean of ``(..., T, P)`` samples over the sphere."""
    w = grid.weights[:, None] * weight
    return (samples * w).sum((-2, -1), keepdim=True) / w.sum().clamp_min(1e-30)


def _sigma(b: torch.Tensor, a: torch.Tensor, shell_w: torch.Tensor) -> torch.Tensor:
    """``sigma^l_{mm'} = sum_s w_s conj(b_slm) a_slm'`` -> ``(..., L+1, M, M)``."""
    return torch.einsum("s,...slm,sln->...lmn", shell_w.to(a.dtype), b.conj(), a)


def _truncate(sigma: torch.Tensor, band: int) -> torch.Tensor:
    l_max = sigma.shape[-3] - 1
    w = slice(l_max - band, l_max + band + 1)
    return sigma[..., : band + 1, w, w]


def _energy(b: torch.Tensor, shell_w: torch.Tensor, band: int) -> torch.Tensor:
    l_max = b.shape[-2] - 1
    part = b[..., : band + 1, l_max - band : l_max + band + 1]
    return torch.einsum("s,...slm->...", shell_w, part.abs() ** 2)


def _prepare_reference(
    reference: torch.Tensor, config: NewtonConfig, *, per_particle: bool = False
) -> _Reference:
    n = reference.shape[-1]
    dev, dt = reference.device, reference.dtype
    l_max = max(config.band_limits)
    low, high = config.frequency_band
    radii = torch.arange(max(1, math.ceil(low * n)), math.floor(high * n) + 1, dtype=torch.float64)
    if radii.numel() == 0:
        raise InputError(None, f"frequency_band {config.frequency_band} holds no shell at n={n}")
    grid = make_shell_grid(
        n, l_quad=math.ceil(config.oversampling * l_max), radii=radii, device=dev
    )
    mask = spherical_mask((n, n, n), radius=config.mask_radius, device=dev, dtype=dt)
    vol = reference * mask
    samples = fourier_shell_samples(vol, grid, pad=config.pad).to(torch.complex128)
    if config.wedge is None or per_particle:
        wedge_dir = torch.ones(grid.directions.shape[:2], dtype=torch.float64, device=dev)
        wedge_fft = None
    else:
        wedge_dir = wedge_on_sphere(grid.directions, *config.wedge)
        wedge_fft = wedge_mask(
            (n, n, n), tilt_min=config.wedge[0], tilt_max=config.wedge[1], device=dev, dtype=dt
        )
    amp = samples.abs()
    amp = amp - _sphere_mean(amp, grid, torch.ones_like(wedge_dir))
    coef = sh_analysis(samples, grid, l_max)
    amp_coef = sh_analysis(amp, grid, l_max)
    sigma_n = sigma_n_amp = power_coef = amp_power_coef = None
    if per_particle:
        # N(R) of a per-particle 3-D weight needs |F|^2 shell by shell (see _ctf_terms).
        power_coef = sh_analysis(samples.abs() ** 2, grid, l_max)
        amp_power_coef = sh_analysis(amp**2, grid, l_max)
    elif config.wedge is not None:
        # N(R) = sum_s w_s int W(u) |f_s(R^T u)|^2 du: a rank-one correlation per degree.
        w_coef = sh_analysis(wedge_dir, grid, l_max)
        for name, fn in (("c", samples.abs() ** 2), ("a", amp**2)):
            e = torch.einsum(
                "s,slm->lm", grid.shell_weights.to(torch.complex128), sh_analysis(fn, grid, l_max)
            )
            s = w_coef.conj()[:, :, None] * e[:, None, :]
            if name == "c":
                sigma_n = s
            else:
                sigma_n_amp = s
    # Kernels of degrees <= band are those of the full band truncated (they are built
    # degree by degree), so the reference's are built once for every band and batch.
    kn = None if sigma_n is None else correlation_kernels(sigma_n)
    kn_amp = None if sigma_n_amp is None else correlation_kernels(sigma_n_amp)
    return _Reference(
        vol,
        grid,
        mask,
        coef,
        amp_coef,
        sigma_n,
        sigma_n_amp,
        kn,
        kn_amp,
        wedge_dir,
        wedge_fft,
        power_coef,
        amp_power_coef,
    )


def _sigma_n(weight: torch.Tensor, power_coef: torch.Tensor, grid: ShellGrid, l_max: int):
    """``sigma_n`` ``(B, L+1, M, M)`` of ``N(R) = sum_s w_s int M_s(u)^2 h_s(R^T u) du``.

    ``weight`` is ``(B, S, T, P)`` (the per-particle 3-D weight on the shells) and
    ``power_coef`` ``(S, L+1, M)`` the coefficients of ``h_s``; per shell the correlation
    is rank one (``conj(g_slm) h_slm'``), summed over shells with the radial weights.
    """
    g = sh_analysis(weight**2, grid, l_max)  # (B, S, L+1, M)
    w = grid.shell_weights.to(torch.complex128)
    return torch.einsum("s,bslm,sln->blmn", w, g.conj(), power_coef)


def _score_fn(kernels_c, kernels_n, coef_p, ref: _Reference, amp: bool, band: int):
    """Closure: rotations ``(B, c, 3, 3)`` -> value, gradient, Hessian of the score.

    ``coef_p`` holds the coefficients whose band-limited energy normalises the score.
    """
    w = ref.grid.shell_weights
    kc = _truncate(kernels_c, band)
    energy = _energy(coef_p, w, band)  # (B,)
    kn = None
    if kernels_n is None:  # no wedge: N is the constant reference energy
        energy = energy * _energy(ref.amp_coef if amp else ref.coef, w, band)
    elif kernels_n.ndim == kc.ndim:  # one N per particle (3-D CTF weights)
        kn = _truncate(kernels_n, band)
    else:
        kn = _truncate(kernels_n, band)[None].expand_as(kc)

    def score(rot):
        c = evaluate_kernels(kc, rot)
        n = None if kn is None else evaluate_kernels(kn, rot)
        return ratio_derivatives(c, n, energy[:, None])

    return score


def _march(sigma_c, kernels_n, coef_p, ref, amp, rot, config, *, prune, prior=None):
    """Newton over the band-limit schedule; returns ``(B, c, 3, 3)`` and values."""
    values = None
    kernels_c = correlation_kernels(sigma_c)  # every band truncates these
    for level, band in enumerate(config.band_limits):
        score = _score_fn(kernels_c, kernels_n, coef_p, ref, amp, band)
        rot, values = newton_maximise(
            score,
            rot,
            steps=config.newton_steps,
            max_step=math.pi / band,
            prior=prior,
            max_angle_deg=None if prior is None else config.max_angle_deg,
        )
        if prune and level + 1 < len(config.band_limits):
            keep = max(1, rot.shape[1] // 2)
            order = torch.argsort(values, dim=1, descending=True)[:, :keep]
            rot = torch.gather(rot, 1, order[..., None, None].expand(-1, -1, 3, 3))
            values = torch.gather(values, 1, order)
    return rot, values


class _ShiftSearch:
    """FFT translation searches of one particle batch; its spectra are computed once."""

    def __init__(
        self,
        ref: _Reference,
        particles: torch.Tensor,
        config: NewtonConfig,
        weight: torch.Tensor | None = None,
    ):
        self.ref, self.config = ref, config
        one = torch.ones((), device=particles.device, dtype=particles.dtype)
        self.spectra = torch.fft.fftn(particles, dim=(-3, -2, -1))
        power = self.spectra.abs() ** 2
        if weight is None:  # binary wedge (or none): W^2 = W
            self.weight = one if ref.wedge_fft is None else ref.wedge_fft
            self.energy_weight = None
            self.energy = (self.weight * power).sum(dim=(-3, -2, -1))
        else:  # per-particle 3-D CTF weights M: score sum M conj(R) P / sqrt(sum M^2 |R|^2 ..)
            self.weight = weight.to(particles.dtype)
            self.energy_weight = self.weight**2
            support = (self.weight != 0).to(particles.dtype)
            self.energy = (support * power).sum(dim=(-3, -2, -1))

    def __call__(
        self, rot: torch.Tensor, which: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shifts ``(B', 3)`` and scores ``(B',)`` of the reference rotated by ``(B', 3, 3)``.

        ``which`` (indices into the batch) selects the particles searched; default all.
        """
        ref = self.ref
        rotated = _rotate_many(ref.volume, rot.to(ref.volume.dtype)) * ref.mask
        spectra = self.spectra if which is None else self.spectra[which]
        energy = self.energy if which is None else self.energy[which]
        weight, energy_weight = self.weight, self.energy_weight
        if energy_weight is not None and which is not None:
            weight, energy_weight = weight[which], energy_weight[which]
        return shift_from_spectra(
            torch.fft.fftn(rotated, dim=(-3, -2, -1)),
            spectra,
            energy,
            weight=weight,
            max_shift=self.config.max_shift,
            upsample=self.config.upsample,
            energy_weight=energy_weight,
        )


def _ctf_terms(ref: _Reference, ctf: ParticleCTF, samples: torch.Tensor, l_max: int):
    """Per-batch pieces of the 3-D CTF score: shell weights, supports, N(R) kernels."""
    grid = ref.grid
    weight = ctf.weights(grid.points().to(samples.device))  # (B, S, T, P)
    support = (weight != 0).to(torch.float64)
    sigma_n = _sigma_n(weight, ref.power_coef, grid, l_max)
    sigma_n_amp = _sigma_n(weight, ref.amp_power_coef, grid, l_max)
    return weight, support, sigma_n, sigma_n_amp


def _align_batch(ref: _Reference, particles, prior, config, ctf: ParticleCTF | None = None):
    grid = ref.grid
    l_max = max(config.band_limits)
    w = grid.shell_weights
    masked = particles * ref.mask
    raw = fourier_shell_samples(masked, grid, pad=config.pad).to(torch.complex128)
    n = particles.shape[-1]
    if ctf is None:
        weight = support = ref.wedge_dir  # binary: W = W^2 = support
        sigma_n, sigma_n_amp = ref.sigma_n, ref.sigma_n_amp
        kernels_n, kernels_n_amp = ref.kernels_n, ref.kernels_n_amp
        shift_search = _ShiftSearch(ref, masked, config)
    else:
        weight, support, sigma_n, sigma_n_amp = _ctf_terms(ref, ctf, raw, l_max)
        kernels_n = correlation_kernels(sigma_n)
        kernels_n_amp = None if prior is not None else correlation_kernels(sigma_n_amp)
        grid_weight = ctf.on_grid((n, n, n), device=particles.device)
        shift_search = _ShiftSearch(ref, masked, config, grid_weight)
    # The matched filter correlates M P with the reference; W P for a binary wedge.
    samples = raw * weight
    b = samples.shape[0]
    coef_energy = None if ctf is None else sh_analysis(raw * support, grid, l_max)
    if prior is None:
        mag = raw.abs()
        absw = weight.abs()
        # Shell mean of |P| fitted as a multiple of |M| (the plain mean for a binary wedge).
        quad = grid.weights[:, None]
        mu = (absw * mag * quad).sum((-2, -1), keepdim=True) / (absw**2 * quad).sum(
            (-2, -1), keepdim=True
        ).clamp_min(1e-30)
        centred = mag - absw * mu
        coef_amp = sh_analysis(centred * absw, grid, l_max)
        coef_amp_energy = coef_amp if ctf is None else sh_analysis(centred * support, grid, l_max)
        sigma_amp = _sigma(coef_amp, ref.amp_coef, w)
        n_grid = 2 * config.l0 * config.grid_factor
        values = so3_fft_grid(_truncate(sigma_amp, config.l0), n_grid)
        e_p = _energy(coef_amp_energy, w, config.l0)[:, None, None, None]
        if sigma_n_amp is None:
            norm = e_p * _energy(ref.amp_coef, w, config.l0)
        else:
            s_n = _truncate(sigma_n_amp, config.l0)
            norm = e_p * so3_fft_grid(s_n if s_n.ndim == 4 else s_n[None], n_grid)
        values = values / norm.clamp_min(1e-30).sqrt()
        rot, _ = grid_candidates(values, config.n_candidates)
        rot, scores = _march(
            sigma_amp,
            kernels_n_amp,
            coef_amp_energy,
            ref,
            True,
            rot,
            config,
            prune=True,
        )
        # The best few amplitude poses each get a translation search; the best wins.
        top = min(3, rot.shape[1])
        shifts = torch.zeros(b, 3, dtype=particles.dtype, device=particles.device)
        best = torch.full((b,), -math.inf, dtype=torch.float64, device=particles.device)
        chosen = rot[:, 0].clone()
        for i in range(top):
            # Candidates that converged onto a better one's pose need no search of their own.
            near = torch.zeros(b, dtype=torch.bool, device=rot.device)
            for j in range(i):
                near |= geodesic_distance(rot[:, i], rot[:, j]) < _SAME_POSE_DEG
            which = torch.nonzero(~near).flatten()
            if which.numel() == 0:
                continue
            s, cc = shift_search(rot[which, i], which)
            cc = cc.to(torch.float64)
            better = cc > best[which]
            best[which] = torch.where(better, cc, best[which])
            shifts[which] = torch.where(better[:, None], s, shifts[which])
            chosen[which] = torch.where(better[:, None, None], rot[which, i], chosen[which])
        rot = chosen
    else:
        rot = prior.to(torch.float64)
        shifts, _ = shift_search(rot)
    k = grid.points().to(torch.float64)  # (S, T, P, 3)
    for _ in range(config.n_alternations):
        # Undo the particle's shift: P(k) exp(+2 pi i k . t).
        phase = torch.exp(
            2j * math.pi * (k * shifts.to(torch.float64)[:, None, None, None]).sum(-1)
        )
        coef = sh_analysis(samples * phase, grid, l_max)
        sigma_c = _sigma(coef, ref.coef, w)
        rot, _ = _march(
            sigma_c,
            kernels_n,
            coef if coef_energy is None else coef_energy,
            ref,
            False,
            rot[:, None],
            config,
            prune=False,
            prior=prior,
        )
        rot = rot[:, 0]
        previous = shifts
        shifts, scores = shift_search(rot)
        # An unchanged shift leaves the score unchanged, and Newton has already
        # converged on it: another round would only restart from its own optimum.
        if torch.equal(shifts, previous):
            break
    return rot, shifts, scores


def align_newton(
    reference: torch.Tensor,
    volumes: torch.Tensor,
    *,
    config: NewtonConfig,
    prior_rotations: torch.Tensor | None = None,
    ctf: ParticleCTF | None = None,
    progress: bool = False,
) -> AlignmentResult:
    """Align particles to a reference by frequency-marched Newton (see the module notes).

    Parameters
    ----------
    reference
        ``(n, n, n)`` real, cubic.
    volumes
        ``(N, n, n, n)`` particles, each approximately the reference rotated by ``R``
        (``particle(r) = reference(R^T r)``) and then shifted.
    config
        Search settings.
    prior_rotations
        ``(N, 3, 3)``: local mode, search within ``config.max_angle_deg`` of these
        (ignored when that is ``None``); ``None`` for a global search.
    ctf
        Per-particle 3-D CTF x exposure weights (:class:`ParticleCTF`, one entry per
        particle): they replace the binary wedge (``config.wedge`` is then not used) in
        the score, the Newton march and the translation search.
    progress
        Print a line per batch to stderr.

    Returns
    -------
    AlignmentResult
        Rotations ``(N, 3, 3)`` and shifts ``(N, 3)`` (x, y, z voxels) on the particles'
        device and dtype, scores ``(N,)`` (wedge-weighted normalised cross-correlation at
        the pose) and the wall-clock seconds.
    """
    t0 = time.perf_counter()
    if reference.ndim != 3 or len(set(reference.shape)) != 1:
        raise InputError(
            None, f"reference must be a cubic (n, n, n) volume; got {tuple(reference.shape)}"
        )
    if volumes.ndim != 4 or volumes.shape[1:] != reference.shape:
        raise InputError(
            None,
            f"volumes must be (N, {reference.shape[0]}, ...) like the reference; got "
            f"{tuple(volumes.shape)}",
        )
    if not (torch.isfinite(reference).all() and torch.isfinite(volumes).all()):
        raise InputError(None, "reference or volumes hold non-finite values")
    if config.max_angle_deg is None:
        prior_rotations = None
    if prior_rotations is not None and prior_rotations.shape != (volumes.shape[0], 3, 3):
        raise InputError(None, f"prior_rotations must be ({volumes.shape[0]}, 3, 3)")
    if ctf is not None and len(ctf) != volumes.shape[0]:
        raise InputError(None, f"ctf holds {len(ctf)} particles for {volumes.shape[0]} volumes")
    out_device, out_dtype = volumes.device, volumes.dtype
    dev = torch.device(config.device) if config.device is not None else volumes.device
    dt = volumes.dtype if volumes.is_floating_point() else torch.float32
    ref = _prepare_reference(reference.to(dev, dt), config, per_particle=ctf is not None)
    rots, shifts, scores = [], [], []
    starts = range(0, volumes.shape[0], config.batch_size)
    if progress:
        from rich.progress import track

        starts = track(starts, description="aligning", transient=True)
    for start in starts:
        stop = min(start + config.batch_size, volumes.shape[0])
        prior = (
            None if prior_rotations is None else prior_rotations[start:stop].to(dev, torch.float64)
        )
        part_ctf = None if ctf is None else ctf.subset(slice(start, stop))
        r, s, c = _align_batch(ref, volumes[start:stop].to(dev, dt), prior, config, part_ctf)
        rots.append(r)
        shifts.append(s)
        scores.append(c)
    return AlignmentResult(
        rotations=torch.cat(rots).to(out_device, out_dtype),
        shifts=torch.cat(shifts).to(out_device, out_dtype),
        scores=torch.cat(scores).to(out_device, out_dtype),
        seconds=time.perf_counter() - t0,
    )

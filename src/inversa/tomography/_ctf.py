"""The contrast transfer function (CTF) of the transmission electron microscope.

The CTF values come from ``torch_ctf.calculate_ctf_2d`` (torch-ctf), which this module
wraps: we use its phase-contrast formula with zero astigmatism, its relativistic
electron wavelength and its frequency grids (unshifted, rfft or full layout). We add
the B-factor envelope, per-tilt defocus handling and the Fourier-space application.

Sign convention (torch-ctf's, kept here): with spatial frequency ``k`` in 1/Angstrom,
wavelength ``lambda``, defocus ``df`` (positive = underfocus), spherical aberration
``Cs``, amplitude contrast ``A`` and extra phase shift ``phi``,

``CTF(k) = sin(pi lambda df k^2 - pi/2 Cs lambda^3 k^4 + phi + arcsin(A)) exp(-B k^2 / 4)``

so ``CTF(0) = A`` (``+0.07`` by default) and, in underfocus, low frequencies are
transferred with positive sign: a density that is positive stays positive at low
resolution (RELION and torch-ctf both use this sign; some texts write ``-A``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch_ctf

from inversa.core import io
from inversa.core.errors import InputError
from inversa.core.fourier import frequency_grid
from inversa.core.operators import LinearOperator

__all__ = [
    "CTFOperator",
    "CTFParams",
    "TiltSeriesCTF",
    "apply_ctf",
    "ctf3d_weight",
    "ctf_2d",
    "ctf_at",
    "dose_symmetric_exposure",
    "electron_wavelength_A",
    "exposure_filter",
    "phase_flip",
    "read_relion5_tilt_series",
    "tilt_ctf_grid",
    "tilt_series_from_table",
    "write_relion5_tilt_series",
]


@dataclass(frozen=True, kw_only=True, eq=False)
class CTFParams:
    """Microscope and per-image parameters of the CTF.

    Parameters
    ----------
    voltage_kv
        Acceleration voltage in kV.
    spherical_aberration_mm
        Spherical aberration Cs in mm.
    amplitude_contrast
        Fraction of amplitude contrast, in [0, 1).
    pixel_size_A
        Pixel size in Angstrom.
    defocus_um
        Defocus in micrometres, positive = underfocus: a float (one image or a whole
        stack with one defocus) or a ``(T,)`` tensor (one value per tilt).
    phase_shift_deg
        Additional phase shift (phase plate) in degrees.
    b_factor
        B-factor of the envelope ``exp(-B k^2 / 4)`` in Angstrom^2, ``>= 0``.
    """

    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    pixel_size_A: float
    defocus_um: float | torch.Tensor
    phase_shift_deg: float = 0.0
    b_factor: float = 0.0

    def __post_init__(self) -> None:
        checks = [
            (self.voltage_kv > 0, f"voltage_kv must be positive, got {self.voltage_kv}"),
            (
                self.spherical_aberration_mm >= 0,
                f"spherical_aberration_mm must be >= 0, got {self.spherical_aberration_mm}",
            ),
            (
                0 <= self.amplitude_contrast < 1,
                f"amplitude_contrast must be in [0, 1), got {self.amplitude_contrast}",
            ),
            (self.pixel_size_A > 0, f"pixel_size_A must be positive, got {self.pixel_size_A}"),
            (math.isfinite(self.phase_shift_deg), "phase_shift_deg must be finite"),
            (self.b_factor >= 0, f"b_factor must be >= 0, got {self.b_factor}"),
        ]
        for ok, problem in checks:
            if not ok:
                raise InputError(None, problem)
        if isinstance(self.defocus_um, torch.Tensor):
            if self.defocus_um.ndim != 1 or self.defocus_um.numel() == 0:
                raise InputError(
                    None,
                    "defocus_um must be a float or a (T,) tensor, got shape "
                    f"{tuple(self.defocus_um.shape)}",
                )
            if not bool(torch.isfinite(self.defocus_um).all()):
                raise InputError(None, "defocus_um must be finite")
        elif not math.isfinite(self.defocus_um):
            raise InputError(None, f"defocus_um must be finite, got {self.defocus_um}")

    @property
    def n_tilts(self) -> int | None:
        """Number of per-tilt defocus values, or ``None`` for a single defocus."""
        return self.defocus_um.shape[0] if isinstance(self.defocus_um, torch.Tensor) else None


def ctf_2d(
    params: CTFParams,
    shape: tuple[int, int],
    *,
    rfft: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Evaluate the real CTF on the unshifted FFT grid of an image.

    Parameters
    ----------
    params
        The CTF parameters.
    shape
        Real-space image shape ``(H, W)``.
    rfft
        Return the half plane matching ``torch.fft.rfft2`` (``(H, W // 2 + 1)``);
        otherwise the full plane matching ``torch.fft.fft2`` (``(H, W)``). No fftshift.
    device
        Where to compute; defaults to the device of ``params.defocus_um`` (CPU for a
        float).

    Returns
    -------
    torch.Tensor
        ``(H, W // 2 + 1)`` (or ``(H, W)``) for a scalar defocus, ``(T, H, W // 2 + 1)``
        for a ``(T,)`` defocus; float32 (torch-ctf computes in single precision).
    """
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise InputError(None, f"image shape must be positive, got {tuple(shape)}")
    defocus = params.defocus_um
    if device is None:
        device = defocus.device if isinstance(defocus, torch.Tensor) else torch.device("cpu")
    # torch-ctf puts its grids on the device of the defocus tensor.
    defocus = torch.as_tensor(defocus, dtype=torch.float32, device=device)
    ctf = torch_ctf.calculate_ctf_2d(
        defocus=defocus,
        astigmatism=0.0,
        astigmatism_angle=0.0,
        voltage=params.voltage_kv,
        spherical_aberration=params.spherical_aberration_mm,
        amplitude_contrast=params.amplitude_contrast,
        phase_shift=params.phase_shift_deg,
        pixel_size=params.pixel_size_A,
        image_shape=(h, w),
        rfft=rfft,
        fftshift=False,
    )
    if params.b_factor > 0:
        k = frequency_grid(
            (h, w), rfft=rfft, fftshift=False, spacing=params.pixel_size_A, device=device
        )
        k2 = k[..., 1] ** 2 + k[..., 0] ** 2
        ctf = ctf * torch.exp(-params.b_factor / 4.0 * k2)
    return ctf


def _filter_images(images: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
    """Multiply ``rfft2(images)`` by a real ``(..., H, W//2+1)`` transfer function."""
    h, w = images.shape[-2:]
    spectrum = torch.fft.rfft2(images) * transfer.to(device=images.device, dtype=images.dtype)
    return torch.fft.irfft2(spectrum, s=(h, w))


def _image_ctf(images: torch.Tensor, params: CTFParams) -> torch.Tensor:
    if not images.is_floating_point():
        raise InputError(None, f"images must be floating point, got {images.dtype}")
    n_tilts = params.n_tilts
    if images.ndim < (2 if n_tilts is None else 3):
        raise InputError(None, f"images of shape {tuple(images.shape)} have too few dims")
    if n_tilts is not None and images.shape[-3] != n_tilts:
        raise InputError(
            None,
            f"images of shape {tuple(images.shape)} do not have {n_tilts} tilts "
            "(one per defocus value) in dim -3",
        )
    return ctf_2d(params, tuple(images.shape[-2:]), rfft=True, device=images.device)


def apply_ctf(images: torch.Tensor, params: CTFParams) -> torch.Tensor:
    """Convolve images with the CTF (multiplication in Fourier space).

    Linear and self-adjoint: the CTF is real and even in frequency.

    Parameters
    ----------
    images
        ``(..., H, W)`` for a scalar defocus, ``(..., T, H, W)`` for a ``(T,)`` defocus.
    params
        The CTF parameters.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``images``.
    """
    return _filter_images(images, _image_ctf(images, params))


def phase_flip(images: torch.Tensor, params: CTFParams) -> torch.Tensor:
    """Multiply the Fourier transform of images by the sign of the CTF.

    Parameters
    ----------
    images, params
        As in :func:`apply_ctf`.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``images``.
    """
    return _filter_images(images, torch.sign(_image_ctf(images, params)))


@dataclass(frozen=True, kw_only=True, eq=False)
class CTFOperator(LinearOperator):
    """The CTF as a linear operator on images (self-adjoint).

    Parameters
    ----------
    params
        The CTF parameters; a ``(T,)`` defocus makes the operator act on ``(T, H, W)``
        stacks, one defocus per tilt.
    image_shape
        ``(H, W)``.

    Notes
    -----
    ``forward`` and ``adjoint``: ``(..., H, W) -> (..., H, W)`` for a scalar defocus,
    ``(..., T, H, W) -> (..., T, H, W)`` for a ``(T,)`` defocus.
    """

    params: CTFParams
    image_shape: tuple[int, int]

    @property
    def domain_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(H, W)`` or ``(T, H, W)``."""
        n_tilts = self.params.n_tilts
        shape = tuple(int(s) for s in self.image_shape)
        return shape if n_tilts is None else (n_tilts, *shape)

    @property
    def range_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """Equal to ``domain_shape``."""
        return self.domain_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the CTF: ``(..., *domain_shape) -> (..., *domain_shape)``."""
        return apply_ctf(x, self.params)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the CTF again (it is self-adjoint)."""
        return apply_ctf(y, self.params)


# --- Per-tilt CTF metadata, the exposure filter and the per-particle 3-D CTF weight ------

# Grant & Grigorieff (2015, eLife 4:e06980): critical exposure N_e(k) = a k^b + c
# (electrons per square Angstrom, k in 1/Angstrom) measured at 300 kV.
_CRITICAL_A, _CRITICAL_B, _CRITICAL_C = 0.245, -1.665, 2.81


def electron_wavelength_A(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Angstrom (torch-ctf's formula)."""
    return float(torch_ctf.calculate_relativistic_electron_wavelength(voltage_kv * 1e3)) * 1e10


def exposure_filter(
    frequency: torch.Tensor, exposure: torch.Tensor | float, *, voltage_kv: float = 300.0
) -> torch.Tensor:
    """Grant & Grigorieff's exposure filter ``exp(-exposure / (2 N_e(k)))``.

    ``N_e(k) = 0.245 k^-1.665 + 2.81`` electrons/Angstrom^2 is the critical exposure at
    300 kV; at 200 kV it is multiplied by 0.8 (their recommendation), linearly in between
    and clamped outside. The filter is 1 at ``k = 0``.

    Parameters
    ----------
    frequency
        ``(...)`` spatial frequency magnitudes in 1/Angstrom.
    exposure
        Accumulated exposure (electrons/Angstrom^2) before the image, broadcasting
        against ``frequency``.
    voltage_kv
        Acceleration voltage.

    Returns
    -------
    torch.Tensor
        ``(...)`` in (0, 1], float64.
    """
    k = torch.as_tensor(frequency, dtype=torch.float64).abs()
    scale = min(1.0, max(0.8, 0.8 + 0.2 * (voltage_kv - 200.0) / 100.0))
    safe = k.clamp_min(1e-12)
    critical = scale * (_CRITICAL_A * safe**_CRITICAL_B + _CRITICAL_C)
    dose = torch.as_tensor(exposure, dtype=torch.float64, device=k.device)
    return torch.where(k > 0, torch.exp(-dose / (2.0 * critical)), torch.ones_like(k))


def ctf_at(
    frequencies: torch.Tensor,
    *,
    defocus_u_um: torch.Tensor | float,
    defocus_v_um: torch.Tensor | float,
    astigmatism_deg: torch.Tensor | float = 0.0,
    voltage_kv: float = 300.0,
    spherical_aberration_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    phase_shift_deg: float = 0.0,
) -> torch.Tensor:
    """Evaluate an astigmatic CTF at arbitrary 2-D frequencies (RELION/ctffind convention).

    ``defocus(phi) = (U + V) / 2 + (U - V) / 2 cos(2 (phi - astigmatism))`` with ``phi``
    the azimuth of the frequency from the image x axis; otherwise the formula (and sign)
    of :func:`ctf_2d`, so with ``U = V`` the two agree.

    Parameters
    ----------
    frequencies
        ``(..., 2)`` frequencies ``(k_x, k_y)`` in 1/Angstrom.
    defocus_u_um, defocus_v_um, astigmatism_deg
        Defoci (positive = underfocus) and the azimuth of ``U``; each broadcasting against
        ``frequencies[..., 0]``.
    voltage_kv, spherical_aberration_mm, amplitude_contrast, phase_shift_deg
        As in :class:`CTFParams`.

    Returns
    -------
    torch.Tensor
        ``(...)`` float64.
    """
    k = frequencies.to(torch.float64)
    kx, ky = k[..., 0], k[..., 1]
    k2 = kx * kx + ky * ky
    dev = k.device
    u = torch.as_tensor(defocus_u_um, dtype=torch.float64, device=dev) * 1e4
    v = torch.as_tensor(defocus_v_um, dtype=torch.float64, device=dev) * 1e4
    ang = torch.deg2rad(torch.as_tensor(astigmatism_deg, dtype=torch.float64, device=dev))
    phi = torch.atan2(ky, kx)
    defocus = 0.5 * (u + v) + 0.5 * (u - v) * torch.cos(2.0 * (phi - ang))
    lam = electron_wavelength_A(voltage_kv)
    cs = spherical_aberration_mm * 1e7
    phase = (
        math.pi * lam * defocus * k2
        - 0.5 * math.pi * cs * lam**3 * k2 * k2
        + math.radians(phase_shift_deg)
        + math.asin(amplitude_contrast)
    )
    return torch.sin(phase)


def _as_tilt_vector(value, n: int, name: str) -> torch.Tensor:
    out = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    if out.numel() == 1:
        out = out.expand(n).clone()
    if out.shape != (n,) or not bool(torch.isfinite(out).all()):
        raise InputError(None, f"{name} must be finite, one value or one per tilt ({n})")
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class TiltSeriesCTF:
    """Per-tilt CTF and exposure of one tilt series (RELION 5's tilt-series STAR content).

    Parameters
    ----------
    angles
        ``(T,)`` tilt angles in degrees about y (the convention of
        :class:`TiltGeometry`: ``u = x cos t + z sin t``).
    defocus_u_um, defocus_v_um
        ``(T,)`` defocus at the tomogram centre, micrometres, positive = underfocus
        (a float repeats one value); ``defocus_v_um`` defaults to ``defocus_u_um``.
    astigmatism_deg
        ``(T,)`` azimuth of ``U`` from the image x axis (``rlnDefocusAngle``).
    pre_exposure
        ``(T,)`` electrons/Angstrom^2 received before each tilt
        (``rlnMicrographPreExposure``); zeros switch the exposure filter off.
    voltage_kv, spherical_aberration_mm, amplitude_contrast, phase_shift_deg
        Microscope settings shared by the tilts.
    handedness
        ``rlnTomoHand`` (+1 or -1): sign of the defocus change with depth.
    """

    angles: torch.Tensor
    defocus_u_um: torch.Tensor | float
    defocus_v_um: torch.Tensor | float | None = None
    astigmatism_deg: torch.Tensor | float = 0.0
    pre_exposure: torch.Tensor | float = 0.0
    voltage_kv: float = 300.0
    spherical_aberration_mm: float = 2.7
    amplitude_contrast: float = 0.07
    phase_shift_deg: float = 0.0
    handedness: float = 1.0

    def __post_init__(self) -> None:
        angles = torch.as_tensor(self.angles, dtype=torch.float64).reshape(-1)
        if angles.numel() == 0 or not bool(torch.isfinite(angles).all()):
            raise InputError(None, "angles must be a non-empty finite (T,) tensor")
        if bool((angles.abs() > 90).any()):
            raise InputError(None, "tilt angles must lie in [-90, 90] degrees")
        n = angles.numel()
        u = _as_tilt_vector(self.defocus_u_um, n, "defocus_u_um")
        v = u if self.defocus_v_um is None else self.defocus_v_um
        fields = {
            "angles": angles,
            "defocus_u_um": u,
            "defocus_v_um": _as_tilt_vector(v, n, "defocus_v_um"),
            "astigmatism_deg": _as_tilt_vector(self.astigmatism_deg, n, "astigmatism_deg"),
            "pre_exposure": _as_tilt_vector(self.pre_exposure, n, "pre_exposure"),
        }
        if bool((fields["pre_exposure"] < 0).any()):
            raise InputError(None, "pre_exposure must be >= 0")
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        if self.handedness not in (1.0, -1.0, 1, -1):
            raise InputError(None, f"handedness must be +1 or -1, got {self.handedness}")
        CTFParams(  # the shared microscope checks
            voltage_kv=self.voltage_kv,
            spherical_aberration_mm=self.spherical_aberration_mm,
            amplitude_contrast=self.amplitude_contrast,
            pixel_size_A=1.0,
            defocus_um=0.0,
            phase_shift_deg=self.phase_shift_deg,
        )

    @property
    def n_tilts(self) -> int:
        """Number of tilts."""
        return self.angles.numel()

    def depth_offsets_A(self, position_A: torch.Tensor) -> torch.Tensor:
        """``(T,)`` depth (Angstrom) of a point in each tilted view, relative to the centre.

        The point ``(x, y, z)`` (Angstrom about the tomogram centre) sits at depth
        ``-x sin t + z cos t`` along the beam of tilt ``t`` (the axis orthogonal to the
        detector coordinate ``u = x cos t + z sin t``), RELION 5's ``getDepthOffset``.
        """
        p = torch.as_tensor(position_A, dtype=torch.float64).reshape(3)
        t = torch.deg2rad(self.angles)
        return -p[0] * torch.sin(t) + p[2] * torch.cos(t)

    def at_position(self, position_A: torch.Tensor | None) -> TiltSeriesCTF:
        """Return the CTF seen by a particle at ``position_A`` (defoci shifted by its depth).

        ``defocus_t(p) = defocus_t + handedness * depth_t(p)`` (as RELION 5 adds
        ``rlnTomoHand * depth`` to both defoci); ``None`` returns ``self``.
        """
        if position_A is None:
            return self
        dz = self.handedness * self.depth_offsets_A(position_A) * 1e-4  # micrometres
        return dataclasses.replace(
            self, defocus_u_um=self.defocus_u_um + dz, defocus_v_um=self.defocus_v_um + dz
        )

    def tilt_ctf(self, frequencies: torch.Tensor, tilt: torch.Tensor) -> torch.Tensor:
        """CTF of tilt indices ``tilt (...)`` at 2-D frequencies ``(..., 2)`` (1/Angstrom)."""
        return ctf_at(
            frequencies,
            defocus_u_um=self.defocus_u_um.to(frequencies.device)[tilt],
            defocus_v_um=self.defocus_v_um.to(frequencies.device)[tilt],
            astigmatism_deg=self.astigmatism_deg.to(frequencies.device)[tilt],
            voltage_kv=self.voltage_kv,
            spherical_aberration_mm=self.spherical_aberration_mm,
            amplitude_contrast=self.amplitude_contrast,
            phase_shift_deg=self.phase_shift_deg,
        )


def tilt_ctf_grid(
    ctf: TiltSeriesCTF,
    shape: tuple[int, int],
    *,
    pixel_size_A: float,
    tilts: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Per-tilt CTF on the ``rfft2`` grid of an image or detector patch of ``shape``.

    The transfer function that filters a ``(H, W)`` image (or patch: its own, coarser
    frequency grid) of each tilt: multiply ``torch.fft.rfft2`` of it by the result.
    Astigmatism is taken in the image frame (:meth:`TiltSeriesCTF.tilt_ctf`).

    Parameters
    ----------
    ctf
        The tilt series' CTF.
    shape
        ``(H, W)`` of the image or patch in pixels.
    pixel_size_A
        Pixel size in Angstrom.
    tilts
        ``(R,)`` tilt indices (repeats allowed); ``None``: every tilt in order.
    device
        Where to compute (default CPU).

    Returns
    -------
    torch.Tensor
        ``(R, H, W // 2 + 1)`` float64 (``R = T`` for ``tilts=None``).
    """
    h, w = (int(n) for n in shape)
    if h < 1 or w < 1 or not pixel_size_A > 0:
        raise InputError(None, f"need a positive shape and pixel size, got {shape}, {pixel_size_A}")
    if tilts is None:
        tilts = torch.arange(ctf.n_tilts)
    tilts = torch.as_tensor(tilts, dtype=torch.long, device=device).reshape(-1)
    if tilts.numel() and (int(tilts.min()) < 0 or int(tilts.max()) >= ctf.n_tilts):
        raise InputError(None, f"tilt indices must lie in [0, {ctf.n_tilts})")
    k = frequency_grid(
        (h, w), rfft=True, fftshift=False, spacing=pixel_size_A, device=device, dtype=torch.float64
    )  # (H, W//2+1, 2) as (k_x, k_y), the order of ctf_at
    return ctf.tilt_ctf(k[None], tilts[:, None, None])


def dose_symmetric_exposure(angles: torch.Tensor, dose_per_tilt: float) -> torch.Tensor:
    """``(T,)`` pre-exposure of a dose-symmetric acquisition (Hagen et al. 2017, groups of 1).

    Tilts are recorded by increasing ``|angle|`` (the positive one first on ties), each
    receiving ``dose_per_tilt`` electrons/Angstrom^2; a tilt's pre-exposure is the dose of
    the tilts recorded before it.
    """
    a = torch.as_tensor(angles, dtype=torch.float64).reshape(-1)
    key = a.abs() * 2 - (a > 0).to(torch.float64) * 1e-9
    rank = torch.empty_like(a)
    rank[torch.argsort(key)] = torch.arange(a.numel(), dtype=torch.float64)
    return rank * dose_per_tilt


def ctf3d_weight(
    frequencies: torch.Tensor,
    ctf: TiltSeriesCTF,
    *,
    position_A: torch.Tensor | None = None,
    phase_flipped: bool = False,
    dose_weighted: bool = True,
    ctf_weighted: bool = True,
) -> torch.Tensor:
    """Evaluate the 3-D CTF x exposure weight of a particle at arbitrary 3-D frequencies.

    Each tilt ``t`` measures the central slice spanned by ``k_y`` and
    ``(cos t, 0, sin t)`` (the projector's convention), with its 2-D transfer
    ``CTF_t(k_u, k_y) * E(|k|, pre_exposure_t)`` (astigmatic CTF at the particle's
    depth-corrected defocus, Grant & Grigorieff exposure filter). The slices are inserted
    in the 3-D weight by linear interpolation in the wedge angle
    ``phi = atan(k_z / k_x)`` between neighbouring tilts (a frequency between the slices
    of tilts ``a < b`` gets ``(1 - f) w_a + f w_b`` with the in-plane frequency
    ``(sign(k_x) |k_xz|, k_y)`` rotated into each plane); outside ``[min, max]`` tilt the
    weight is 0. With ``ctf_weighted=False`` and ``dose_weighted=False`` every slice
    weighs 1 and the weight is exactly the binary missing wedge of
    :func:`inversa.alignment.wedge_mask`. On the ``k_y`` axis (every slice) it is the
    mean of the tilts' values.

    Parameters
    ----------
    frequencies
        ``(..., 3)`` frequencies ``(k_x, k_y, k_z)`` in 1/Angstrom.
    ctf
        The tilt series' per-tilt CTF and exposure.
    position_A
        ``(3,)`` particle position (Angstrom about the tomogram centre) for the depth
        offset of the defocus; ``None``: the tomogram centre.
    phase_flipped
        Use ``|CTF|`` (a tomogram reconstructed from phase-flipped images).
    dose_weighted, ctf_weighted
        Include the exposure filter / the CTF.

    Returns
    -------
    torch.Tensor
        ``(...)`` float64 (signed unless ``phase_flipped``).
    """
    k = frequencies.to(torch.float64)
    dev = k.device
    local = ctf.at_position(position_A)
    angles, order = torch.sort(local.angles.to(dev))
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    on_axis = (kx == 0) & (kz == 0)
    phi = torch.where(
        kx == 0, torch.where(kz >= 0, 90.0, -90.0), torch.rad2deg(torch.atan(kz / kx))
    )
    phi = torch.where(on_axis, angles[0], phi)
    eps = 1e-9
    inside = (phi >= angles[0] - eps) & (phi <= angles[-1] + eps)
    n = angles.numel()
    upper = torch.searchsorted(angles, phi.clamp(angles[0], angles[-1]).contiguous()).clamp(
        1, max(n - 1, 1)
    )
    lower = (upper - 1).clamp_min(0)
    if n == 1:
        upper = lower
    gap = (angles[upper] - angles[lower]).clamp_min(1e-12)
    frac = ((phi - angles[lower]) / gap).clamp(0.0, 1.0)
    frac = torch.where(upper == lower, torch.zeros_like(frac), frac)
    # Shared by both neighbouring slices: the in-plane frequency (sign(k_x) |k_xz|, k_y)
    # has the same magnitude and azimuth in every slice, so the astigmatic defocus needs
    # only cos/sin of twice its azimuth, and the exposure filter only N_e(|k|).
    kxz2 = kx * kx + kz * kz
    k2 = kxz2 + ky * ky
    safe = torch.where(k2 > 0, k2, torch.ones_like(k2))
    ku = torch.where(kx < 0, -torch.sqrt(kxz2), torch.sqrt(kxz2))
    cos2 = torch.where(k2 > 0, (ku * ku - ky * ky) / safe, torch.ones_like(k2))
    sin2 = torch.where(k2 > 0, 2 * ku * ky / safe, torch.zeros_like(k2))
    scale = min(1.0, max(0.8, 0.8 + 0.2 * (local.voltage_kv - 200.0) / 100.0))
    critical = scale * (_CRITICAL_A * safe.sqrt() ** _CRITICAL_B + _CRITICAL_C)
    lam = electron_wavelength_A(local.voltage_kv)
    cs = local.spherical_aberration_mm * 1e7
    const = (
        -0.5 * math.pi * cs * lam**3 * k2 * k2
        + math.radians(local.phase_shift_deg)
        + math.asin(local.amplitude_contrast)
    )
    per_tilt = {
        "mean": 0.5e4 * (local.defocus_u_um + local.defocus_v_um).to(dev),
        "half": 0.5e4 * (local.defocus_u_um - local.defocus_v_um).to(dev),
        "cos": torch.cos(2 * torch.deg2rad(local.astigmatism_deg)).to(dev),
        "sin": torch.sin(2 * torch.deg2rad(local.astigmatism_deg)).to(dev),
        "dose": local.pre_exposure.to(dev),
    }

    def slice_value(idx: torch.Tensor, sel=(...,)) -> torch.Tensor:
        tilt = order[idx]
        value = torch.ones_like(k2[sel])
        if ctf_weighted:
            defocus = per_tilt["mean"][tilt] + per_tilt["half"][tilt] * (
                cos2[sel] * per_tilt["cos"][tilt] + sin2[sel] * per_tilt["sin"][tilt]
            )
            value = torch.sin(math.pi * lam * defocus * k2[sel] + const[sel])
            if phase_flipped:
                value = value.abs()
        if dose_weighted:
            dose = per_tilt["dose"][tilt]
            value = value * torch.where(
                k2[sel] > 0, torch.exp(-dose / (2.0 * critical[sel])), torch.ones_like(value)
            )
        return value

    weight = (1.0 - frac) * slice_value(lower) + frac * slice_value(upper)
    if bool(on_axis.any()):
        # Every slice contains the k_y axis: there the weight is the mean over tilts.
        idx = torch.nonzero(on_axis, as_tuple=True)
        sel = (*idx, None)  # (A, 1) against (A, n) tilts
        every = torch.arange(n, device=dev)[None, :]
        value = slice_value(every.expand(idx[0].numel(), n), sel)
        weight = weight.index_put(idx, value.mean(-1))
    return torch.where(inside | on_axis, weight, torch.zeros_like(weight))


# --- RELION 5 tilt-series STAR files -------------------------------------------------------

_GLOBAL_COLUMNS = {
    "voltage_kv": "rlnVoltage",
    "spherical_aberration_mm": "rlnSphericalAberration",
    "amplitude_contrast": "rlnAmplitudeContrast",
    "handedness": "rlnTomoHand",
}


def _resolve(name: str, star_path: Path) -> Path:
    """Resolve a file named in a STAR file: beside it, else in the current folder."""
    p = Path(name)
    if p.is_absolute():
        return p
    beside = star_path.parent / p
    return beside if beside.exists() else p


def tilt_series_from_table(
    table: dict[str, torch.Tensor],
    *,
    angles: torch.Tensor | None = None,
    pre_exposure: torch.Tensor | float = 0.0,
    voltage_kv: float = 300.0,
    spherical_aberration_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    handedness: float = 1.0,
) -> TiltSeriesCTF:
    """Build a :class:`TiltSeriesCTF` from a ctffind or IMOD defocus table.

    Parameters
    ----------
    table
        ``defocus_u_um``, ``defocus_v_um``, ``astigmatism_deg`` and, for IMOD files,
        ``tilt_deg`` (used unless ``angles`` is given).
    angles
        ``(T,)`` tilt angles (degrees), e.g. from the ``.tlt`` file; required for a
        ctffind table.
    pre_exposure, voltage_kv, spherical_aberration_mm, amplitude_contrast, handedness
        As in :class:`TiltSeriesCTF`.

    Returns
    -------
    TiltSeriesCTF
    """
    if angles is None:
        if "tilt_deg" not in table:
            raise InputError(None, "a ctffind table has no tilt angles: pass angles (.tlt)")
        angles = table["tilt_deg"]
    angles = torch.as_tensor(angles, dtype=torch.float64)
    if angles.numel() != table["defocus_u_um"].numel():
        raise InputError(
            None,
            f"{angles.numel()} tilt angles for {table['defocus_u_um'].numel()} defocus values",
        )
    return TiltSeriesCTF(
        angles=angles,
        defocus_u_um=table["defocus_u_um"],
        defocus_v_um=table["defocus_v_um"],
        astigmatism_deg=table["astigmatism_deg"],
        pre_exposure=pre_exposure,
        voltage_kv=voltage_kv,
        spherical_aberration_mm=spherical_aberration_mm,
        amplitude_contrast=amplitude_contrast,
        handedness=handedness,
    )


def read_relion5_tilt_series(path: str | os.PathLike[str]) -> dict[str, TiltSeriesCTF]:
    """Read every tilt series' per-tilt CTF and exposure from a RELION 5 ``tomograms.star``.

    The global table (block ``global``) gives per tomogram ``rlnTomoName``,
    ``rlnTomoTiltSeriesStarFile`` (relative to the STAR file's folder, else the current
    folder), and optionally ``rlnVoltage``, ``rlnSphericalAberration``,
    ``rlnAmplitudeContrast``, ``rlnTomoHand``. Each tilt-series STAR file holds one row
    per tilt with ``rlnDefocusU``/``rlnDefocusV`` (Angstrom), ``rlnDefocusAngle``,
    ``rlnMicrographPreExposure`` (e/A^2) and the tilt angle ``rlnTomoYTilt`` (else
    ``rlnTomoNominalStageTiltAngle``).

    Returns
    -------
    dict[str, TiltSeriesCTF]
        ``rlnTomoName`` -> its tilt series.

    Raises
    ------
    InputError
        A missing table, column or file.
    """
    path = Path(path)
    blocks = io.read_star(path)
    table = blocks.get("global")
    if table is None:
        table = next((t for t in blocks.values() if "rlnTomoName" in t.columns), None)
    needed = {"rlnTomoName", "rlnTomoTiltSeriesStarFile"}
    if table is None or not needed <= set(table.columns):
        raise InputError(path, "not a RELION 5 tomogram set: needs " + ", ".join(sorted(needed)))
    out = {}
    for _, row in table.iterrows():
        name = str(row["rlnTomoName"])
        settings = {
            key: float(row[col])
            for key, col in _GLOBAL_COLUMNS.items()
            if col in table.columns and math.isfinite(float(row[col]))
        }
        if "handedness" in settings:
            settings["handedness"] = 1.0 if settings["handedness"] >= 0 else -1.0
        ts_path = _resolve(str(row["rlnTomoTiltSeriesStarFile"]), path)
        ts_blocks = io.read_star(ts_path)
        ts = ts_blocks.get(name)
        if ts is None:
            ts = next(iter(ts_blocks.values()))
        angle_col = next(
            (c for c in ("rlnTomoYTilt", "rlnTomoNominalStageTiltAngle") if c in ts.columns), None
        )
        if angle_col is None or "rlnDefocusU" not in ts.columns:
            raise InputError(
                ts_path, "tilt-series table needs rlnDefocusU and rlnTomoYTilt (or nominal)"
            )

        def col(c, default=None, frame=ts):
            if c in frame.columns:
                return torch.tensor(frame[c].to_numpy(dtype=float, copy=True), dtype=torch.float64)
            return default

        u = col("rlnDefocusU") * 1e-4
        out[name] = TiltSeriesCTF(
            angles=col(angle_col),
            defocus_u_um=u,
            defocus_v_um=col("rlnDefocusV", u * 1e4) * 1e-4,
            astigmatism_deg=col("rlnDefocusAngle", 0.0),
            pre_exposure=col("rlnMicrographPreExposure", 0.0),
            **settings,
        )
    return out


def write_relion5_tilt_series(
    path: str | os.PathLike[str],
    series: dict[str, TiltSeriesCTF],
    *,
    pixel_size_A: float,
    tomograms: dict[str, str] | None = None,
    binning: float = 1.0,
    force: bool = False,
) -> list[Path]:
    """Write a RELION 5 ``tomograms.star`` and one tilt-series STAR file per tomogram.

    What RELION 5's subtomogram jobs read from them: per tomogram the microscope
    (``rlnVoltage``, ``rlnSphericalAberration``, ``rlnAmplitudeContrast``),
    ``rlnTomoHand``, ``rlnTomoTiltSeriesPixelSize``, the binning and reconstructed
    tomogram (when given) and ``rlnTomoTiltSeriesStarFile``; per tilt the angle
    (``rlnTomoNominalStageTiltAngle`` and ``rlnTomoYTilt``), ``rlnDefocusU/V``,
    ``rlnDefocusAngle`` and ``rlnMicrographPreExposure``. The tilt-series files go to
    ``tilt_series/<name>.star`` beside ``path`` (names relative to ``path``'s folder).

    Returns
    -------
    list[pathlib.Path]
        The files written (tilt-series files first, then ``path``).
    """
    import pandas as pd

    path = Path(path)
    folder = path.parent / "tilt_series"
    rows, written = [], []
    targets = [folder / f"{name}.star" for name in series] + [path]
    io.check_outputs(targets, folders=[folder], force=force)
    folder.mkdir(parents=True, exist_ok=True)
    for name, ts in series.items():
        ts_path = folder / f"{name}.star"
        tilt_table = pd.DataFrame(
            {
                "rlnTomoNominalStageTiltAngle": ts.angles.numpy(),
                "rlnTomoYTilt": ts.angles.numpy(),
                "rlnDefocusU": (ts.defocus_u_um * 1e4).numpy(),
                "rlnDefocusV": (ts.defocus_v_um * 1e4).numpy(),
                "rlnDefocusAngle": ts.astigmatism_deg.numpy(),
                "rlnMicrographPreExposure": ts.pre_exposure.numpy(),
            }
        )
        io.write_star(ts_path, {name: tilt_table}, force=force)
        written.append(ts_path)
        row = {
            "rlnTomoName": name,
            "rlnVoltage": ts.voltage_kv,
            "rlnSphericalAberration": ts.spherical_aberration_mm,
            "rlnAmplitudeContrast": ts.amplitude_contrast,
            "rlnTomoHand": float(ts.handedness),
            "rlnTomoTiltSeriesPixelSize": pixel_size_A,
            "rlnTomoTomogramBinning": binning,
            "rlnTomoTiltSeriesStarFile": f"tilt_series/{name}.star",
        }
        if tomograms is not None and name in tomograms:
            row["rlnTomoReconstructedTomogram"] = tomograms[name]
        rows.append(row)
    io.write_star(path, {"global": pd.DataFrame(rows)}, force=force)
    written.append(path)
    return written

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

import math
from dataclasses import dataclass

import torch
import torch_ctf

from inversa.core.errors import InputError
from inversa.core.fourier import frequency_grid
from inversa.core.operators import LinearOperator

__all__ = ["CTFOperator", "CTFParams", "apply_ctf", "ctf_2d", "phase_flip"]


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

"""Centred FFT helpers, frequency grids, radial shells, ramp filters, FSC and low-pass.

Conventions: the centre of an axis of length ``n`` is index ``n // 2``; centred spectra
put the zero frequency at that index (``fftshift`` layout). Frequencies are in cycles
per pixel, in ``[-1/2, 1/2)``. Frequency vectors are ordered ``(x, y, z)``, i.e. the
first component belongs to the last tensor dimension. All functions work on the device
and dtype of their input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from inversa.core.errors import InputError

__all__ = [
    "RAMP_FILTER_NAMES",
    "apply_ramp_filter",
    "fftn_centered",
    "fourier_shell_correlation",
    "frequency_grid",
    "fsc_resolution",
    "ifftn_centered",
    "lowpass",
    "radial_frequency",
    "ramp_filter",
    "shell_index",
    "spatial_ndim",
]

RAMP_FILTER_NAMES: tuple[str, ...] = ("ramp", "shepp-logan", "cosine", "hann")


def _real_dtype(x: torch.Tensor) -> torch.dtype:
    if x.is_complex():
        return x.real.dtype
    return x.dtype if x.is_floating_point() else torch.get_default_dtype()


def spatial_ndim(x: torch.Tensor, ndim: int | None) -> int:
    """Return the number of spatial dims of ``x``: 2 (images ``(..., h, w)``) or 3 (volumes).

    Parameters
    ----------
    x
        Images or volumes, with leading batch dims when ``ndim`` is given.
    ndim
        2, 3, or ``None`` to infer it from an unbatched ``x`` of dimension 2 or 3.

    Raises
    ------
    ValueError
        ``ndim`` is None for a tensor of another dimension, or is not 2 or 3, or is
        larger than ``x.dim()``.
    """
    if ndim is None:
        if x.dim() not in (2, 3):
            raise ValueError(
                f"cannot tell images from volumes for a tensor of shape {tuple(x.shape)}; "
                "pass ndim=2 or ndim=3"
            )
        return x.dim()
    if ndim not in (2, 3) or x.dim() < ndim:
        raise ValueError(f"ndim must be 2 or 3 and at most x.dim(); got {ndim} for {x.dim()}")
    return ndim


def fftn_centered(
    x: torch.Tensor,
    *,
    dim: Sequence[int] = (-3, -2, -1),
    norm: str = "backward",
) -> torch.Tensor:
    """Centred n-dimensional FFT: ``fftshift(fftn(ifftshift(x)))``.

    The origin of the input is the centre index ``n // 2`` of each axis, and the zero
    frequency of the output sits at index ``n // 2`` too; so a delta at the centre has a
    constant real spectrum.

    Parameters
    ----------
    x
        Real or complex tensor ``(..., *sizes)``.
    dim
        The dimensions to transform (default the last three).
    norm
        ``"backward"`` (no scaling forward), ``"ortho"`` or ``"forward"``, as ``torch.fft``.

    Returns
    -------
    torch.Tensor
        Complex tensor of the same shape as ``x``.
    """
    dim = tuple(dim)
    y = torch.fft.fftn(torch.fft.ifftshift(x, dim=dim), dim=dim, norm=norm)
    return torch.fft.fftshift(y, dim=dim)


def ifftn_centered(
    x: torch.Tensor,
    *,
    dim: Sequence[int] = (-3, -2, -1),
    norm: str = "backward",
) -> torch.Tensor:
    """Inverse of :func:`fftn_centered`: ``fftshift(ifftn(ifftshift(x)))``.

    Parameters
    ----------
    x
        Centred spectrum ``(..., *sizes)``.
    dim
        The dimensions to transform (default the last three).
    norm
        The same ``norm`` as was given to :func:`fftn_centered`.

    Returns
    -------
    torch.Tensor
        Complex tensor of the same shape as ``x``, origin at index ``n // 2``.
    """
    dim = tuple(dim)
    y = torch.fft.ifftn(torch.fft.ifftshift(x, dim=dim), dim=dim, norm=norm)
    return torch.fft.fftshift(y, dim=dim)


def _axis_frequencies(
    n: int,
    *,
    half: bool,
    shifted: bool,
    spacing: float,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> torch.Tensor:
    if half:
        return torch.fft.rfftfreq(n, d=spacing, device=device, dtype=dtype)
    f = torch.fft.fftfreq(n, d=spacing, device=device, dtype=dtype)
    return torch.fft.fftshift(f) if shifted else f


def frequency_grid(
    shape: Sequence[int],
    *,
    rfft: bool = False,
    fftshift: bool | None = None,
    norm: bool = False,
    spacing: float | Sequence[float] = 1.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Frequency vectors of every Fourier sample: the one frequency grid of the package.

    Each axis holds ``torch.fft.fftfreq(n, d=spacing)`` (``rfftfreq`` for the last axis
    of a half spectrum), so values are cycles per pixel for ``spacing=1``, cycles per
    Angstrom for a pixel size in Angstrom, and integer offsets ``0, 1, ..., -1`` for
    ``spacing=[1 / n for n in shape]``.

    Parameters
    ----------
    shape
        Real-space shape ``(h, w)`` or ``(d, h, w)`` (any number of dimensions).
    rfft
        The half spectrum of ``torch.fft.rfftn``: the last axis has ``w // 2 + 1``
        non-negative frequencies (never shifted).
    fftshift
        Zero frequency at index ``n // 2`` of each full axis (the :func:`fftn_centered`
        layout) instead of index 0 (``torch.fft.fftn``). ``None`` (default) keeps the
        historical layouts: shifted for a full spectrum, unshifted for ``rfft``.
    norm
        Return the magnitude ``|k|`` (the spectrum shape) instead of the vectors.
    spacing
        Sample spacing, one value or one per axis of ``shape``.
    device, dtype
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        ``(*spectrum_shape, len(shape))``; component 0 is the frequency along the last
        dimension (x), component 1 along the one before (y), and so on. With ``norm``,
        ``spectrum_shape``.
    """
    shape = tuple(int(s) for s in shape)
    if fftshift is None:
        fftshift = not rfft
    if isinstance(spacing, (int, float)):
        spacings = (float(spacing),) * len(shape)
    else:
        spacings = tuple(float(d) for d in spacing)
        if len(spacings) != len(shape):
            raise InputError(None, f"{len(spacings)} spacings for a {len(shape)}-D shape")
    last = len(shape) - 1
    axes = [
        _axis_frequencies(
            n,
            half=rfft and i == last,
            shifted=fftshift,
            spacing=d,
            device=device,
            dtype=dtype,
        )
        for i, (n, d) in enumerate(zip(shape, spacings, strict=True))
    ]
    grids = torch.meshgrid(*axes, indexing="ij")
    k = torch.stack(grids[::-1], dim=-1)
    return torch.linalg.vector_norm(k, dim=-1) if norm else k


def radial_frequency(
    shape: Sequence[int],
    *,
    rfft: bool = False,
    fftshift: bool | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Magnitude of the frequency of every Fourier sample, in cycles per pixel.

    Parameters
    ----------
    shape
        Real-space shape, e.g. ``(d, h, w)``.
    rfft, fftshift, device, dtype
        As in :func:`frequency_grid`.

    Returns
    -------
    torch.Tensor
        The spectrum shape: ``shape`` itself, or with the last size ``w // 2 + 1`` if
        ``rfft``.
    """
    return frequency_grid(
        shape, rfft=rfft, fftshift=fftshift, norm=True, device=device, dtype=dtype
    )


def shell_index(
    shape: Sequence[int],
    *,
    rfft: bool = False,
    fftshift: bool | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Integer radial shell ``round(|k| * n)`` of every Fourier sample, ``n = max(shape)``.

    Shells are one Fourier pixel of the longest axis wide, so rectangular boxes (thin
    tomograms) get shells in the same units as cubic ones; the shorter axes simply
    sample their shells more coarsely.

    Parameters
    ----------
    shape
        Real-space shape ``(h, w)`` or ``(d, h, w)``.
    rfft, fftshift, device
        Layout and device, as in :func:`frequency_grid` (a full spectrum is centred by
        default; ``fftshift=False`` gives ``torch.fft.fftn``'s layout).

    Returns
    -------
    torch.Tensor
        int64 tensor of the spectrum shape; shell 0 is the zero frequency and shell
        ``n // 2`` is Nyquist along an axis.
    """
    shape = tuple(int(s) for s in shape)
    n = max(shape)
    r = radial_frequency(shape, rfft=rfft, fftshift=fftshift, device=device, dtype=torch.float64)
    return torch.round(r * n).to(torch.int64)


def _window(name: str, f: torch.Tensor, f_cut: float) -> torch.Tensor:
    """Apodisation window of frequency ``f`` (cycles/pixel) for cutoff ``f_cut``."""
    u = f / f_cut  # 1 at the cutoff
    if name == "ramp":
        return torch.ones_like(f)
    if name == "shepp-logan":
        # sinc(f / (2 f_cut)): 2/pi at the cutoff, as in Shepp & Logan and scikit-image.
        return torch.sinc(u / 2)
    if name == "cosine":
        return torch.cos(0.5 * math.pi * u)
    return 0.5 * (1.0 + torch.cos(math.pi * u))  # hann


def ramp_filter(
    n: int,
    *,
    name: str = "ramp",
    cutoff: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Real ramp filter for an ``rfft`` of length ``n``, from the spatially discretised ramp.

    The filter is the DFT of the band-limited ramp kernel sampled at unit spacing
    (Kak & Slaney, eq. 3.61): ``h(0) = 1/4``, ``h(k) = 0`` for even ``k``,
    ``h(k) = -1/(pi k)^2`` for odd ``k``, wrapped circularly on ``n`` samples. Its
    response is close to ``|f|`` (cycles/pixel, ``1/2`` at Nyquist) but keeps the small
    positive zero-frequency value that avoids the DC bias of a sampled ``|f|``.

    Values are per detector pixel: for a detector spacing ``s`` the caller multiplies by
    ``1 / s``. With this scaling, filtered back-projection
    ``f(x) = (pi / n_angles) * sum_theta q_theta(x . theta)`` of a Radon transform over
    ``[0, pi)`` recovers the amplitude of the object.

    Parameters
    ----------
    n
        Transform length (the zero-padded length), ``n >= 2``.
    name
        Apodisation window: ``"ramp"`` (none), ``"shepp-logan"`` (sinc), ``"cosine"`` or
        ``"hann"``.
    cutoff
        Fraction of Nyquist in ``(0, 1]``; the filter is zero above it and the window
        reaches its end value at it.
    dtype, device
        Of the returned tensor (computed in float64).

    Returns
    -------
    torch.Tensor
        ``(n // 2 + 1,)`` real filter in ``torch.fft.rfft`` order.
    """
    if name not in RAMP_FILTER_NAMES:
        raise ValueError(f"unknown filter {name!r}; valid names: {', '.join(RAMP_FILTER_NAMES)}")
    if not 0.0 < cutoff <= 1.0:
        raise ValueError(f"cutoff must be in (0, 1], got {cutoff}")
    if n < 2:
        raise ValueError(f"filter length must be at least 2, got {n}")
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)  # circular offsets 0, 1, ..., -1
    h = torch.zeros(n, dtype=torch.float64)
    odd = torch.remainder(k, 2) == 1
    h[odd] = -1.0 / (math.pi * k[odd]) ** 2
    h[0] = 0.25
    # h is even, so its spectrum is real.
    response = torch.fft.rfft(h).real
    f = torch.fft.rfftfreq(n, dtype=torch.float64)
    f_cut = 0.5 * cutoff
    response = response * _window(name, f, f_cut)
    response = torch.where(f <= f_cut * (1 + 1e-12), response, torch.zeros_like(response))
    return response.to(dtype=dtype, device=device)


def apply_ramp_filter(
    x: torch.Tensor,
    *,
    dim: int = -1,
    name: str = "ramp",
    cutoff: float = 1.0,
    pad: bool = True,
) -> torch.Tensor:
    """Ramp-filter projections along one dimension (the detector axis).

    Parameters
    ----------
    x
        Real projections ``(..., n, ...)`` with the detector axis at ``dim``.
    dim
        The detector dimension.
    name, cutoff
        Window and cutoff, as in :func:`ramp_filter`.
    pad
        Zero-pad to the next power of two ``>= 2 n`` before filtering, which removes
        the circular wrap-around of the kernel (strongly recommended).

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``: ``h * x`` with ``h`` per detector pixel (see
        :func:`ramp_filter` for the scaling; divide by the detector spacing for
        physical units).
    """
    dim = dim % x.dim()
    n = x.shape[dim]
    n_fft = 1 << max(1, (2 * n - 1).bit_length()) if pad else n
    dtype = _real_dtype(x)
    filt = ramp_filter(n_fft, name=name, cutoff=cutoff, dtype=dtype, device=x.device)
    view = [1] * x.dim()
    view[dim] = filt.shape[0]
    spectrum = torch.fft.rfft(x.to(dtype), n=n_fft, dim=dim) * filt.view(view)
    return torch.fft.irfft(spectrum, n=n_fft, dim=dim).narrow(dim, 0, n)


def fourier_shell_correlation(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    n_shells: int | None = None,
    ndim: int | None = None,
) -> torch.Tensor:
    """Fourier shell (ring) correlation of two images or volumes.

    ``FSC(s) = Re sum A B^* / sqrt(sum |A|^2 sum |B|^2)`` over the Fourier samples whose
    shell ``round(|k| n)`` is ``s`` (shells one Fourier pixel wide). Computed from the
    half spectrum with the Hermitian partners counted, so it equals the full-spectrum
    sum exactly.

    Parameters
    ----------
    a, b
        Real tensors ``(..., h, w)`` or ``(..., d, h, w)`` (broadcastable leading
        batch dimensions); shells follow :func:`shell_index` (``n = max`` of the sizes).
    n_shells
        Number of shells returned, from 0; default ``n // 2 + 1`` (zero to Nyquist).
        Samples beyond the last shell (the corners) are ignored.
    ndim
        2 (images) or 3 (volumes); inferred only for unbatched inputs of dimension 2
        or 3.

    Returns
    -------
    torch.Tensor
        ``(..., n_shells)`` real correlations; 0 in a shell where either input has no
        power.
    """
    a, b = torch.broadcast_tensors(a, b)
    ndim = spatial_ndim(a, ndim)
    shape = tuple(a.shape[-ndim:])
    n = max(shape)
    if n_shells is None:
        n_shells = n // 2 + 1
    dims = tuple(range(-ndim, 0))
    dtype = _real_dtype(a)
    fa = torch.fft.rfftn(a.to(dtype), dim=dims)
    fb = torch.fft.rfftn(b.to(dtype), dim=dims)
    shells = shell_index(shape, rfft=True, device=a.device)
    # Interior samples of the half axis stand for themselves and their Hermitian partner.
    weight = torch.full((shape[-1] // 2 + 1,), 2.0, dtype=dtype, device=a.device)
    weight[0] = 1.0
    if shape[-1] % 2 == 0:
        weight[-1] = 1.0
    weight = weight.expand(shells.shape)
    keep = (shells < n_shells).flatten()
    idx = shells.flatten()[keep]
    w = weight.flatten()[keep]
    batch = fa.shape[:-ndim]

    def shell_sum(v: torch.Tensor) -> torch.Tensor:
        v = v.reshape(*batch, -1)[..., keep] * w
        out = torch.zeros(*batch, n_shells, dtype=dtype, device=a.device)
        return out.index_add_(-1, idx, v)

    cross = shell_sum((fa * fb.conj()).real)
    pa = shell_sum(fa.real.square() + fa.imag.square())
    pb = shell_sum(fb.real.square() + fb.imag.square())
    denom = torch.sqrt(pa * pb)
    safe = denom > 0
    return torch.where(safe, cross / torch.where(safe, denom, 1.0), 0.0)


def fsc_resolution(
    fsc: torch.Tensor,
    *,
    threshold: float = 0.143,
    pixel_size: float = 1.0,
    box_size: int | None = None,
) -> float:
    """Resolution at which an FSC curve first falls below a threshold.

    Parameters
    ----------
    fsc
        ``(n_shells,)`` curve; shell ``s`` is the frequency ``s / box_size``.
    threshold
        0.143 for half-map gold-standard FSC, 0.5 against a known reference.
    pixel_size
        Pixel size; the result is in the same unit.
    box_size
        Box size ``n``; default ``2 * (n_shells - 1)`` (even box, last shell at Nyquist).

    Returns
    -------
    float
        ``pixel_size / f`` with ``f`` linearly interpolated between the last shell at or
        above the threshold and the first below it; ``2 * pixel_size`` (Nyquist) if the
        curve never crosses, ``inf`` if it starts below the threshold.
    """
    values = [float(v) for v in fsc.detach().cpu().reshape(-1)]
    if box_size is None:
        box_size = 2 * (len(values) - 1)
    for s, v in enumerate(values):
        if v < threshold:
            if s == 0:
                return math.inf
            prev = values[s - 1]
            frac = (prev - threshold) / (prev - v)
            return pixel_size * box_size / (s - 1 + frac)
    return 2.0 * pixel_size


def lowpass(
    x: torch.Tensor,
    *,
    resolution: float,
    pixel_size: float = 1.0,
    soft_width: float = 0.02,
    ndim: int | None = None,
) -> torch.Tensor:
    """Low-pass filter an image or volume with a raised-cosine edge.

    The transfer function is 1 below ``f_c - soft_width / 2``, 0 above
    ``f_c + soft_width / 2`` and a half cosine between, with ``f_c = pixel_size /
    resolution`` cycles per pixel.

    Parameters
    ----------
    x
        Real tensor ``(..., h, w)`` or ``(..., d, h, w)``.
    resolution
        Cutoff resolution, in the unit of ``pixel_size`` (e.g. Å).
    pixel_size
        Pixel size.
    soft_width
        Width of the cosine edge in cycles per pixel (0 gives a hard edge).
    ndim
        2 or 3; inferred only for unbatched inputs.

    Returns
    -------
    torch.Tensor
        Filtered tensor, same shape and dtype as ``x``.
    """
    if resolution <= 0 or pixel_size <= 0 or soft_width < 0:
        raise ValueError("resolution and pixel_size must be positive and soft_width >= 0")
    ndim = spatial_ndim(x, ndim)
    shape = tuple(x.shape[-ndim:])
    dims = tuple(range(-ndim, 0))
    dtype = _real_dtype(x)
    f = radial_frequency(shape, rfft=True, device=x.device, dtype=dtype)
    f_c = pixel_size / resolution
    if soft_width > 0:
        t = ((f - (f_c - soft_width / 2)) / soft_width).clamp(0.0, 1.0)
        transfer = 0.5 * (1.0 + torch.cos(math.pi * t))
    else:
        transfer = (f <= f_c).to(dtype)
    spectrum = torch.fft.rfftn(x.to(dtype), dim=dims) * transfer
    return torch.fft.irfftn(spectrum, s=shape, dim=dims)

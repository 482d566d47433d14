"""Image-quality and pose metrics: PSNR, SSIM, correlation, FSC, angular error.

Metrics reduce over the trailing ``ndim`` dimensions of their inputs (all of them when
``ndim`` is ``None``) and return one value per leading batch index.
"""

from __future__ import annotations

import torch

from inversa.core.fourier import fourier_shell_correlation, fsc_resolution, spatial_ndim
from inversa.core.rotations import geodesic_distance

__all__ = [
    "angular_error",
    "angular_error_stats",
    "fit_affine",
    "fourier_shell_correlation",
    "fsc_resolution",
    "pearson_correlation",
    "psnr",
    "ssim",
]


def _dims(x: torch.Tensor, ndim: int | None) -> tuple[int, ...]:
    if ndim is None:
        return tuple(range(x.dim()))
    if not 0 < ndim <= x.dim():
        raise ValueError(f"ndim must be in [1, {x.dim()}], got {ndim}")
    return tuple(range(-ndim, 0))


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _range_of(ref: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return ref.amax(dim=dims) - ref.amin(dim=dims)


def psnr(
    x: torch.Tensor,
    ref: torch.Tensor,
    *,
    data_range: float | torch.Tensor | None = None,
    ndim: int | None = None,
) -> torch.Tensor:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB.

    Parameters
    ----------
    x
        Estimate ``(..., *spatial)``.
    ref
        Reference, same shape as ``x``.
    data_range
        Peak-to-peak range of the signal; default ``ref.max() - ref.min()`` over the
        reduced dimensions (note: scikit-image's default for floats is 2 instead).
    ndim
        Number of trailing dimensions to reduce over; ``None`` reduces over all.

    Returns
    -------
    torch.Tensor
        ``(...)`` PSNR per batch index (a 0-d tensor when ``ndim`` is ``None``).
    """
    x, ref = _as_float(x), _as_float(ref)
    dims = _dims(x, ndim)
    mse = (x - ref).square().mean(dim=dims)
    peak = _range_of(ref, dims) if data_range is None else torch.as_tensor(data_range).to(mse)
    return 10 * torch.log10(peak.square() / mse)


def _box_mean(x: torch.Tensor, size: int, dims: tuple[int, ...]) -> torch.Tensor:
    """Mean over every full ``size``-wide window (valid part only) along ``dims``."""
    for d in dims:
        c = torch.cumsum(x, dim=d)
        zero = torch.zeros_like(c.narrow(d, 0, 1))
        c = torch.cat([zero, c], dim=d)
        n = x.shape[d]
        x = (c.narrow(d, size, n - size + 1) - c.narrow(d, 0, n - size + 1)) / size
    return x


def ssim(
    x: torch.Tensor,
    ref: torch.Tensor,
    *,
    data_range: float | torch.Tensor | None = None,
    win_size: int = 7,
    ndim: int | None = None,
) -> torch.Tensor:
    """Structural similarity of images or volumes, as ``skimage.metrics.structural_similarity``.

    Uniform ``win_size``-wide windows, ``K1 = 0.01``, ``K2 = 0.03``, sample covariances,
    and the mean of the SSIM map over the pixels at least ``(win_size - 1) / 2`` from
    the border (scikit-image's defaults; those border pixels are excluded there too).
    Computed in float64.

    Parameters
    ----------
    x
        Estimate ``(..., h, w)`` or ``(..., d, h, w)``.
    ref
        Reference, same shape as ``x``.
    data_range
        Peak-to-peak range; default ``ref.max() - ref.min()`` per batch index.
    win_size
        Odd window width, at most the smallest spatial size.
    ndim
        2 (images) or 3 (volumes), or ``None`` for an unbatched input (see
        :func:`~inversa.core.fourier.spatial_ndim`).

    Returns
    -------
    torch.Tensor
        ``(...)`` mean SSIM per batch index, in the dtype of ``x`` (float64 for
        integer input).
    """
    ndim = spatial_ndim(x, ndim)
    if win_size % 2 != 1 or win_size > min(x.shape[-ndim:]):
        raise ValueError(
            f"win_size must be odd and at most the smallest image size; got {win_size} "
            f"for spatial shape {tuple(x.shape[-ndim:])}"
        )
    out_dtype = x.dtype if x.is_floating_point() else torch.float64
    xd = x.to(torch.float64)
    rd = ref.to(torch.float64)
    dims = tuple(range(-ndim, 0))
    peak = (
        _range_of(rd, dims)
        if data_range is None
        else torch.as_tensor(data_range, dtype=torch.float64, device=x.device)
    )
    peak = peak.reshape(peak.shape + (1,) * ndim)
    c1 = (0.01 * peak).square()
    c2 = (0.03 * peak).square()
    n_window = win_size**ndim
    cov_norm = n_window / (n_window - 1)
    ux = _box_mean(xd, win_size, dims)
    uy = _box_mean(rd, win_size, dims)
    vx = cov_norm * (_box_mean(xd * xd, win_size, dims) - ux * ux)
    vy = cov_norm * (_box_mean(rd * rd, win_size, dims) - uy * uy)
    vxy = cov_norm * (_box_mean(xd * rd, win_size, dims) - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=dims).to(out_dtype)


def pearson_correlation(
    x: torch.Tensor, ref: torch.Tensor, *, ndim: int | None = None
) -> torch.Tensor:
    """Pearson correlation coefficient of ``x`` and ``ref``.

    Parameters
    ----------
    x, ref
        Tensors of the same shape ``(..., *spatial)``.
    ndim
        Number of trailing dimensions to correlate over; ``None`` uses all.

    Returns
    -------
    torch.Tensor
        ``(...)`` correlations in ``[-1, 1]``; 0 where either input is constant.
    """
    x, ref = _as_float(x), _as_float(ref)
    dims = _dims(x, ndim)
    xc = x - x.mean(dim=dims, keepdim=True)
    rc = ref - ref.mean(dim=dims, keepdim=True)
    num = (xc * rc).sum(dim=dims)
    den = torch.sqrt(xc.square().sum(dim=dims) * rc.square().sum(dim=dims))
    safe = den > 0
    return torch.where(safe, num / torch.where(safe, den, 1.0), 0.0)


def fit_affine(x: torch.Tensor, ref: torch.Tensor, *, ndim: int | None = None) -> torch.Tensor:
    """Least-squares affine fit ``a * x + b`` of ``x`` to ``ref``.

    Used to compare reconstructions whose units are arbitrary: compute a metric on
    ``fit_affine(x, ref)`` against ``ref``.

    Parameters
    ----------
    x, ref
        Tensors of the same shape ``(..., *spatial)``.
    ndim
        Number of trailing dimensions sharing one ``(a, b)``; ``None`` uses all.

    Returns
    -------
    torch.Tensor
        ``a * x + b``, same shape as ``x``; the mean of ``ref`` where ``x`` is constant.
    """
    x, ref = _as_float(x), _as_float(ref)
    dims = _dims(x, ndim)
    x_mean = x.mean(dim=dims, keepdim=True)
    r_mean = ref.mean(dim=dims, keepdim=True)
    xc = x - x_mean
    var = xc.square().sum(dim=dims, keepdim=True)
    cov = (xc * (ref - r_mean)).sum(dim=dims, keepdim=True)
    a = torch.where(var > 0, cov / torch.where(var > 0, var, 1.0), 0.0)
    return a * xc + r_mean


def angular_error(r_est: torch.Tensor, r_true: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between estimated and true rotations.

    Parameters
    ----------
    r_est, r_true
        ``(..., 3, 3)`` rotation matrices (broadcastable).

    Returns
    -------
    torch.Tensor
        ``(...)`` geodesic distances in ``[0, 180]`` degrees.
    """
    return geodesic_distance(r_est, r_true)


def angular_error_stats(r_est: torch.Tensor, r_true: torch.Tensor) -> dict[str, float]:
    """Summary of the angular errors of a set of rotation estimates.

    Parameters
    ----------
    r_est, r_true
        ``(..., 3, 3)`` rotation matrices (broadcastable, at least one rotation).

    Returns
    -------
    dict[str, float]
        ``mean``, ``median`` and ``p90`` (90th percentile, linear interpolation) of the
        errors in degrees.
    """
    err = angular_error(r_est, r_true).reshape(-1).to(torch.float64)
    q = torch.quantile(err, torch.tensor([0.5, 0.9], dtype=torch.float64, device=err.device))
    return {"mean": float(err.mean()), "median": float(q[0]), "p90": float(q[1])}

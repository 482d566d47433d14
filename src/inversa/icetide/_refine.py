"""Per-tilt Gauss-Newton refinement of rotations and shifts against reference projections."""

from __future__ import annotations

import torch

from inversa.core.errors import InputError
from inversa.icetide._deformation import xf_to_rigid
from inversa.tomography import (
    CTFParams,
    TiltGeometry,
    TiltSeriesCTF,
    TiltSeriesProjector,
    apply_ctf,
    tilt_ctf_grid,
    warp_images,
)

__all__ = ["polish_rigid", "refine_rigid"]


def _rigid_xf(params: torch.Tensor) -> torch.Tensor:
    """``(T, 3)`` (rotation in degrees, shift x, shift y) as ``(T, 2, 3)`` transforms.

    The convention of :func:`inversa.tomography.random_xf`.
    """
    rad = torch.deg2rad(params[:, 0])
    c, s = torch.cos(rad), torch.sin(rad)
    row0 = torch.stack([c, -s, params[:, 1]], dim=1)
    row1 = torch.stack([s, c, params[:, 2]], dim=1)
    return torch.stack([row0, row1], dim=1)


def refine_rigid(
    data: torch.Tensor,
    ideal: torch.Tensor,
    start: torch.Tensor,
    *,
    ctf: CTFParams | torch.Tensor | None = None,
    displacement: torch.Tensor | None = None,
    iterations: int = 30,
    fd_step: tuple[float, float] = (1e-3, 1e-3),
    polish_steps: tuple[float, ...] = (0.02, 0.005, 0.00125),
    scan_step_deg: float = 0.0025,
    scan_half_steps: int = 10,
    rotation: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Refine each tilt's rotation and shift of ``data`` against reference projections.

    Given a volume's aligned projections ``ideal`` (the true volume's for the bench's
    oracle floor, a learned volume's for a polish), the CTF and the local fields, it fits
    each tilt's in-plane rotation
    and shift, with an affine intensity ``a + b * model`` (counts vs density), by
    Gauss-Newton on the least-squares misfit of the simulator's own forward model
    ``apply_ctf(warp_images(ideal, xf, displacement=displacement))``; Jacobian by
    central differences, steps ``fd_step`` (degrees, px); a step is halved (up to 10
    times) until the tilt's misfit decreases, so the misfit never rises. Then a
    coordinate pattern search polishes each tilt (steps ``polish_steps``, in degrees and
    px alike, until no step of the finest lowers the misfit).

    Parameters
    ----------
    data
        ``(T, H, W)`` raw (misaligned, noisy) images.
    ideal
        ``(T, H, W)`` aligned noise-free projections of the true volume (no CTF).
    start
        ``(T, 2, 3)`` starting transforms (the bench starts at the truth: the floor is the
        misfit's minimum nearest to it).
    ctf
        :class:`inversa.tomography.CTFParams` applied after the warp, a per-tilt
        ``(T, H, W // 2 + 1)`` transfer on the ``rfft2`` grid (e.g.
        :func:`inversa.tomography.tilt_ctf_grid`), or ``None``.
    displacement
        ``(T, H, W, 2)`` known local fields, or ``None``.
    iterations
        Gauss-Newton iterations.
    fd_step
        Central-difference steps for the rotation (degrees) and the shifts (px).
    polish_steps
        The pattern search's steps, coarse to fine (degrees for the rotation, px).
    scan_step_deg, scan_half_steps
        The check: each tilt's misfit is scanned over rotations ``found + k *
        scan_step_deg``, ``|k| <= scan_half_steps`` (shifts held); the largest per-tilt
        ``|argmin offset|`` is reported (zero: the fit sits at the scan's minimum).
    rotation
        Whether the rotations are refined (``False``: the shifts only).

    Returns
    -------
    tuple
        ``(T, 2, 3)`` fitted transforms (float64), and ``{"last_step_rot_deg_max",
        "last_step_shift_px_max", "polish_rot_deg_max", "polish_shift_px_max",
        "scan_offset_deg_max"}``: the largest per-tilt update of the last Gauss-Newton
        iteration (zero also where no step lowered the misfit), the largest move of the
        polish, and the scan's largest argmin offset.
    """
    if data.ndim != 3 or data.shape != ideal.shape or start.shape != (data.shape[0], 2, 3):
        raise InputError(
            None,
            "data and ideal must be (T, H, W) of one shape and start (T, 2, 3), got "
            f"{tuple(data.shape)}, {tuple(ideal.shape)}, {tuple(start.shape)}",
        )
    y = data.double().reshape(data.shape[0], -1)
    ideal = ideal.double()
    disp = None if displacement is None else displacement.double()
    rot, shift = xf_to_rigid(start.double())
    p = torch.cat([rot[:, None], shift], dim=1)  # (T, 3)

    def model(q: torch.Tensor) -> torch.Tensor:
        out = warp_images(ideal, _rigid_xf(q), displacement=disp)
        if isinstance(ctf, CTFParams):
            out = apply_ctf(out, ctf)
        elif ctf is not None:
            spectrum = torch.fft.rfft2(out) * ctf.to(out)
            out = torch.fft.irfft2(spectrum, s=tuple(out.shape[-2:]))
        return out.reshape(out.shape[0], -1)

    def misfit(m: torch.Tensor) -> torch.Tensor:  # (T,) after the best a + b m
        mc = m - m.mean(1, keepdim=True)
        yc = y - y.mean(1, keepdim=True)
        b = (mc * yc).sum(1) / (mc * mc).sum(1)
        return (yc - b[:, None] * mc).square().sum(1)

    steps = torch.tensor([fd_step[0], fd_step[1], fd_step[1]], dtype=torch.float64)
    last = torch.zeros_like(p)
    for _ in range(iterations):
        m = model(p)
        cols = []
        for k in range(3):
            e = torch.zeros(3, dtype=torch.float64)
            e[k] = steps[k]
            cols.append((model(p + e) - model(p - e)) / (2 * steps[k]))
        # unknowns per tilt: (drot, dx, dy, a, b) of  y ~ a + b (m + J dp)
        mc = m - m.mean(1, keepdim=True)
        yc = y - y.mean(1, keepdim=True)
        b = (mc * yc).sum(1) / (mc * mc).sum(1)
        moving = cols if rotation else cols[1:]
        jac = torch.stack([b[:, None] * c for c in moving] + [torch.ones_like(m), m], dim=2)
        resid = (
            y - (y.mean(1, keepdim=True) - b[:, None] * m.mean(1, keepdim=True)) - b[:, None] * m
        )
        sol = torch.linalg.lstsq(jac, resid[:, :, None]).solution[:, : len(moving), 0]
        if not rotation:
            sol = torch.cat([torch.zeros_like(sol[:, :1]), sol], dim=1)  # (T, 3)
        base = misfit(m)
        scale = torch.ones(len(p), dtype=torch.float64)
        accepted = torch.zeros(len(p), dtype=torch.bool)
        for _ in range(10):
            trial = p + scale[:, None] * sol
            better = (misfit(model(trial)) <= base) & ~accepted
            p = torch.where(better[:, None], trial, p)
            last = torch.where(better[:, None], (scale[:, None] * sol).abs(), last)
            accepted |= better
            if bool(accepted.all()):
                break
            scale = torch.where(accepted, scale, scale / 2)
        last = torch.where(accepted[:, None], last, torch.zeros_like(last))
    # Polish: a coordinate pattern search with shrinking steps (Gauss-Newton can stall
    # at the bilinear interpolation's kinks, where its step does not lower the misfit).
    after_gn = p.clone()
    current = misfit(model(p))
    for step in polish_steps:
        for _ in range(50):
            moved = False
            for k in range(0 if rotation else 1, 3):
                for sign in (1.0, -1.0):
                    e = torch.zeros(3, dtype=torch.float64)
                    e[k] = sign * step
                    value = misfit(model(p + e))
                    better = value < current
                    p = torch.where(better[:, None], p + e, p)
                    current = torch.where(better, value, current)
                    moved = moved or bool(better.any())
            if not moved:
                break
    offsets = scan_step_deg * torch.arange(
        -scan_half_steps, scan_half_steps + 1, dtype=torch.float64
    )
    scan = torch.stack(
        [
            misfit(model(p + torch.tensor([float(o), 0.0, 0.0], dtype=torch.float64)))
            for o in offsets
        ]
    )  # (K, T)
    info = {
        "last_step_rot_deg_max": float(last[:, 0].max()),
        "last_step_shift_px_max": float(last[:, 1:].max()),
        "polish_rot_deg_max": float((p - after_gn)[:, 0].abs().max()),
        "polish_shift_px_max": float((p - after_gn)[:, 1:].abs().max()),
        "scan_offset_deg_max": float(offsets[scan.argmin(dim=0)].abs().max()),
    }
    return _rigid_xf(p), info


def polish_rigid(
    stack: torch.Tensor,
    volume: torch.Tensor,
    geometry: TiltGeometry,
    xf: torch.Tensor,
    *,
    displacement: torch.Tensor | None = None,
    ctf: TiltSeriesCTF | None = None,
    pixel_size_A: float | None = None,
    iterations: int = 10,
    max_move: tuple[float, float] = (2.0, 2.0),
    rotation: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Polish a fit's rotations and shifts against its own volume's projections.

    Projects ``volume`` (e.g. :attr:`IceTideResult.volume`) on the detector grid of
    ``geometry`` (aligned frame, no transforms), then :func:`refine_rigid` fits each tilt
    of the raw ``stack`` through its CTF and its current local field, from ``xf``. A
    tilt whose rotation or shift would move by more than ``max_move`` keeps ``xf``: a
    polish is a local refinement, and against a poor volume (a fit of a few steps) the
    misfit's descent can wander far (measured: 15 degrees, 7 px after 6 steps; at most
    0.6 degree and 0.55 px after the benchmark's 400).

    Parameters
    ----------
    stack
        ``(T, H, W)`` raw tilt series.
    volume
        ``(D, H, W)`` reconstruction in the frame ``xf`` aligns the stack to.
    geometry
        Tilt angles (its ``xf`` and detector shape are ignored).
    xf
        ``(T, 2, 3)`` current transforms.
    displacement
        ``(T, H, W, 2)`` current local fields, or ``None``.
    ctf
        The tilt series' CTF (defocus at the tilt axis), or ``None``.
    pixel_size_A
        Pixel size in Angstrom; needed with ``ctf``.
    iterations
        Gauss-Newton iterations of :func:`refine_rigid`.
    max_move
        Largest accepted move per tilt: rotation in degrees, shift (norm) in pixels.
    rotation
        Whether the rotations are refined (``False``: the shifts only).

    Returns
    -------
    tuple
        ``(T, 2, 3)`` polished transforms (float64) and :func:`refine_rigid`'s info with
        ``"reverted"``, the number of tilts kept at ``xf``.
    """
    if volume.ndim != 3 or stack.ndim != 3 or stack.shape[-2:] != volume.shape[-2:]:
        raise InputError(
            None,
            f"stack (T, H, W) and volume (D, H, W) must share H, W, got {tuple(stack.shape)}, "
            f"{tuple(volume.shape)}",
        )
    if ctf is not None and pixel_size_A is None:
        raise InputError(None, "a CTF needs pixel_size_A")
    vol = volume.detach().double().cpu()
    plain = geometry.replace(xf=None, detector_shape=None).to(dtype=torch.float64)
    reference = TiltSeriesProjector(volume_shape=tuple(vol.shape), geometry=plain).forward(vol)
    transfer = None
    if ctf is not None:
        transfer = tilt_ctf_grid(ctf, tuple(stack.shape[-2:]), pixel_size_A=float(pixel_size_A))
    disp = None if displacement is None else displacement.detach().double().cpu()
    start = xf.detach().double().cpu()
    found, info = refine_rigid(
        stack.detach().double().cpu(),
        reference,
        start,
        ctf=transfer,
        displacement=disp,
        iterations=iterations,
        rotation=rotation,
    )
    rot0, shift0 = xf_to_rigid(start)
    rot, shift = xf_to_rigid(found)
    far = ((rot - rot0).abs() > max_move[0]) | ((shift - shift0).norm(dim=1) > max_move[1])
    found = torch.where(far[:, None, None], start, found)
    return found, {**info, "reverted": float(far.sum())}

"""Rotations in 3-D: matrices, quaternions, rotation vectors, RELION Euler angles, grids.

Conventions (fixed for the whole project):

- Matrices act on column vectors of coordinates ordered ``(x, y, z)``.
- Euler angles are RELION's ZYZ triple ``(rot, tilt, psi)`` in degrees, and
  :func:`euler_to_matrix` returns RELION's matrix ``A``, which equals SciPy's
  ``Rotation.from_euler("ZYZ", [rot, tilt, psi], degrees=True).inv().as_matrix()``.
  A particle is the reference actively rotated by ``A``:
  ``particle(r) = reference(A^T r)``, ``r`` the coordinates about the box centre.
- Quaternions are ``(w, x, y, z)``, unit, with ``w >= 0``; :func:`quaternion_to_matrix`
  gives the matrix that rotates vectors as ``v -> q v q^*``.
- Rotation vectors (axis times angle, radians) are the exponential coordinates.

All functions are batched over leading dimensions and keep the input's device and dtype.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "axis_angle_to_matrix",
    "euler_to_matrix",
    "geodesic_distance",
    "local_so3_grid",
    "matrix_to_axis_angle",
    "matrix_to_euler",
    "matrix_to_quaternion",
    "quaternion_to_matrix",
    "random_rotations",
    "so3_grid",
]

# Super-Fibonacci constants (Alexa 2022): sqrt(2) and the real root of psi^4 = psi + 4.
_SF_PHI = math.sqrt(2.0)
_SF_PSI = 1.533751168755204288118041
# Grid size factor: n = _SO3_GRID_DENSITY * 8 pi^2 / step^3 gives a covering radius just
# under ``step`` (measured: 0.95-0.97 step for steps of 10-30 degrees).
_SO3_GRID_DENSITY = 0.75


def _wrap_degrees(a: torch.Tensor) -> torch.Tensor:
    """Map angles from ``[-180, 180]`` to ``(-180, 180]``."""
    return torch.where(a <= -180.0, a + 360.0, a)


def euler_to_matrix(angles: torch.Tensor) -> torch.Tensor:
    """RELION rotation matrix ``A`` of ZYZ Euler angles ``(rot, tilt, psi)`` in degrees.

    Parameters
    ----------
    angles
        ``(..., 3)`` floating tensor of ``(rot, tilt, psi)`` in degrees.

    Returns
    -------
    torch.Tensor
        ``(..., 3, 3)`` rotation matrices, equal to
        ``Rotation.from_euler("ZYZ", angles, degrees=True).inv().as_matrix()``.
    """
    rad = torch.deg2rad(angles)
    ca, cb, cg = torch.cos(rad).unbind(-1)
    sa, sb, sg = torch.sin(rad).unbind(-1)
    rows = [
        [cg * cb * ca - sg * sa, cg * cb * sa + sg * ca, -cg * sb],
        [-sg * cb * ca - cg * sa, -sg * cb * sa + cg * ca, sg * sb],
        [sb * ca, sb * sa, cb],
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def matrix_to_euler(matrix: torch.Tensor) -> torch.Tensor:
    """RELION ZYZ Euler angles ``(rot, tilt, psi)`` in degrees of rotation matrices.

    The inverse of :func:`euler_to_matrix`, with ``tilt`` in ``[0, 180]`` and ``rot``,
    ``psi`` in ``(-180, 180]``. At gimbal lock (``tilt`` 0 or 180) the whole in-plane
    rotation goes into ``rot`` and ``psi = 0``.

    Parameters
    ----------
    matrix
        ``(..., 3, 3)`` rotation matrices.

    Returns
    -------
    torch.Tensor
        ``(..., 3)`` angles in degrees.
    """
    a = matrix
    abs_sb = torch.hypot(a[..., 0, 2], a[..., 1, 2])
    cb = a[..., 2, 2]
    gimbal = abs_sb <= 16 * torch.finfo(a.dtype).eps
    tilt = torch.atan2(abs_sb, cb)
    tilt = torch.where(gimbal, (cb <= 0).to(a.dtype) * math.pi, tilt)
    psi = torch.where(gimbal, 0.0, torch.atan2(a[..., 1, 2], -a[..., 0, 2]))
    # rot from rot + psi (well conditioned for tilt < 90) or rot - psi (tilt > 90) rather
    # than from the last row alone, so that rot and psi stay consistent near gimbal lock.
    rot_plus_psi = torch.atan2(a[..., 0, 1] - a[..., 1, 0], a[..., 0, 0] + a[..., 1, 1])
    rot_minus_psi = torch.atan2(-(a[..., 0, 1] + a[..., 1, 0]), a[..., 1, 1] - a[..., 0, 0])
    rot = torch.where(cb >= 0, rot_plus_psi - psi, rot_minus_psi + psi)
    rot = torch.atan2(torch.sin(rot), torch.cos(rot))
    angles = torch.rad2deg(torch.stack([rot, tilt, psi], dim=-1))
    return torch.cat(
        [_wrap_degrees(angles[..., :1]), angles[..., 1:2], _wrap_degrees(angles[..., 2:])], dim=-1
    )


def quaternion_to_matrix(quaternion: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of quaternions ``(w, x, y, z)`` (normalised first).

    Parameters
    ----------
    quaternion
        ``(..., 4)`` non-zero quaternions; ``q`` and ``-q`` give the same matrix.

    Returns
    -------
    torch.Tensor
        ``(..., 3, 3)`` matrices rotating vectors as ``v -> q v q^*``.
    """
    q = quaternion / torch.linalg.vector_norm(quaternion, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Convert rotation matrices to unit quaternions ``(w, x, y, z)`` with ``w >= 0``.

    Uses Shepperd's method: of the four algebraically equal formulas, each sample takes
    the one whose divisor (``1 + trace`` or ``1 + 2 R_ii - trace``) is largest.

    Parameters
    ----------
    matrix
        ``(..., 3, 3)`` rotation matrices.

    Returns
    -------
    torch.Tensor
        ``(..., 4)`` unit quaternions, canonical ``w >= 0``.
    """
    r = matrix
    r00, r11, r22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    d21, d02, d10 = (
        r[..., 2, 1] - r[..., 1, 2],
        r[..., 0, 2] - r[..., 2, 0],
        r[..., 1, 0] - r[..., 0, 1],
    )
    s01, s02, s12 = (
        r[..., 0, 1] + r[..., 1, 0],
        r[..., 0, 2] + r[..., 2, 0],
        r[..., 1, 2] + r[..., 2, 1],
    )
    t = torch.stack(
        [1 + r00 + r11 + r22, 1 + r00 - r11 - r22, 1 - r00 + r11 - r22, 1 - r00 - r11 + r22],
        dim=-1,
    )
    # Each candidate is 4 q_i q (i the candidate index), so dividing by 2 sqrt(t_i) gives q.
    candidates = torch.stack(
        [
            torch.stack([t[..., 0], d21, d02, d10], dim=-1),
            torch.stack([d21, t[..., 1], s01, s02], dim=-1),
            torch.stack([d02, s01, t[..., 2], s12], dim=-1),
            torch.stack([d10, s02, s12, t[..., 3]], dim=-1),
        ],
        dim=-2,
    )
    best = t.argmax(dim=-1, keepdim=True)
    q = torch.take_along_dim(candidates, best[..., None], dim=-2).squeeze(-2)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of rotation vectors (the exponential map of so(3)).

    Parameters
    ----------
    rotvec
        ``(..., 3)`` rotation vectors: unit axis times angle in radians.

    Returns
    -------
    torch.Tensor
        ``(..., 3, 3)`` rotation matrices.
    """
    angle = torch.linalg.vector_norm(rotvec, dim=-1, keepdim=True)
    # sin(angle / 2) / angle, written with sinc so that it is exact at angle = 0.
    scale = 0.5 * torch.sinc(angle / (2 * math.pi))
    q = torch.cat([torch.cos(angle / 2), scale * rotvec], dim=-1)
    return quaternion_to_matrix(q)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Rotation vectors of rotation matrices (the logarithm map), angle in ``[0, pi]``.

    Parameters
    ----------
    matrix
        ``(..., 3, 3)`` rotation matrices.

    Returns
    -------
    torch.Tensor
        ``(..., 3)`` rotation vectors (radians). At an angle of exactly ``pi`` either of
        the two equivalent vectors ``+-pi n`` may be returned.
    """
    q = matrix_to_quaternion(matrix)
    w, xyz = q[..., :1], q[..., 1:]
    s = torch.linalg.vector_norm(xyz, dim=-1, keepdim=True)
    angle = 2 * torch.atan2(s, w)
    # angle / s -> 2 / w as s -> 0 (w is then close to 1).
    small = s < 1e-6
    factor = torch.where(small, 2 / w, angle / torch.where(small, 1.0, s))
    return factor * xyz


def random_rotations(
    n: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Rotations drawn from the uniform (Haar) distribution on SO(3).

    Normalised 4-D Gaussian vectors are uniform on the unit quaternion sphere, which
    maps to the Haar measure.

    Parameters
    ----------
    n
        Number of rotations.
    generator
        Random generator; the samples are drawn in float64 on its device (CPU if none),
        so a seed gives the same rotations on every device.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        ``(n, 3, 3)`` rotation matrices.
    """
    draw_device = generator.device if generator is not None else torch.device("cpu")
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64, device=draw_device)
    return quaternion_to_matrix(q).to(dtype=dtype, device=device)


def geodesic_distance(r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """Angle in degrees of the rotation ``R1^T R2`` (the geodesic distance on SO(3)).

    Computed as ``atan2(|axial part|, trace - 1)`` of ``R1^T R2``, which is accurate
    near both 0 and 180 degrees (unlike ``arccos``).

    Parameters
    ----------
    r1, r2
        ``(..., 3, 3)`` rotation matrices (broadcastable).

    Returns
    -------
    torch.Tensor
        ``(...)`` distances in ``[0, 180]`` degrees.
    """
    rel = r1.mT @ r2
    axial = torch.stack(
        [
            rel[..., 2, 1] - rel[..., 1, 2],
            rel[..., 0, 2] - rel[..., 2, 0],
            rel[..., 1, 0] - rel[..., 0, 1],
        ],
        dim=-1,
    )
    trace = rel.diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.rad2deg(torch.atan2(torch.linalg.vector_norm(axial, dim=-1), trace - 1))


def so3_grid(
    step_deg: float,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Deterministic near-uniform grid on SO(3) with covering radius about ``step_deg``.

    The grid is a super-Fibonacci spiral (Alexa, "Super-Fibonacci spirals: fast,
    low-discrepancy sampling of SO(3)", CVPR 2022) of ``n = ceil(0.75 * 8 pi^2 / step^3)``
    quaternions (``step`` in radians; ``8 pi^2`` is the volume of SO(3)). Measured: every
    rotation lies within about ``0.97 step`` of the grid and grid points are at least
    about ``0.5 step`` apart.

    Parameters
    ----------
    step_deg
        Target angular spacing in degrees, in ``(0, 180]``.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        ``(n, 3, 3)`` rotation matrices.
    """
    if not 0.0 < step_deg <= 180.0:
        raise ValueError(f"step_deg must be in (0, 180], got {step_deg}")
    step = math.radians(step_deg)
    n = math.ceil(_SO3_GRID_DENSITY * 8 * math.pi**2 / step**3)
    s = torch.arange(n, dtype=torch.float64) + 0.5
    r = torch.sqrt(s / n)
    big_r = torch.sqrt(1 - s / n)
    alpha = 2 * math.pi * s / _SF_PHI
    beta = 2 * math.pi * s / _SF_PSI
    q = torch.stack(
        [
            r * torch.sin(alpha),
            r * torch.cos(alpha),
            big_r * torch.sin(beta),
            big_r * torch.cos(beta),
        ],
        dim=-1,
    )
    return quaternion_to_matrix(q).to(dtype=dtype, device=device)


def local_so3_grid(
    center: torch.Tensor,
    *,
    max_angle_deg: float,
    step_deg: float,
) -> torch.Tensor:
    """Rotations within ``max_angle_deg`` of ``center`` on a regular local grid.

    The grid is ``center @ exp(v)`` for rotation vectors ``v`` on a cubic lattice of
    spacing ``step_deg`` (through 0) inside the ball of radius ``max_angle_deg``; its
    covering radius is about ``0.87 step_deg`` and the first rotation is ``center``.

    Parameters
    ----------
    center
        ``(3, 3)`` rotation matrix.
    max_angle_deg
        Radius of the neighbourhood in degrees (``>= 0``, at most 180).
    step_deg
        Lattice spacing in degrees (``> 0``).

    Returns
    -------
    torch.Tensor
        ``(n, 3, 3)`` rotations, on the device and dtype of ``center``.
    """
    if step_deg <= 0 or not 0 <= max_angle_deg <= 180:
        raise ValueError("step_deg must be positive and max_angle_deg in [0, 180]")
    m = math.floor(max_angle_deg / step_deg + 1e-9)
    ticks = torch.arange(-m, m + 1, dtype=torch.float64) * step_deg
    v = torch.stack(torch.meshgrid(ticks, ticks, ticks, indexing="ij"), dim=-1).reshape(-1, 3)
    norm = torch.linalg.vector_norm(v, dim=-1)
    v = v[norm <= max_angle_deg * (1 + 1e-9)]
    # Put the centre (v = 0) first.
    v = v[torch.argsort(torch.linalg.vector_norm(v, dim=-1), stable=True)]
    local = axis_angle_to_matrix(torch.deg2rad(v)).to(dtype=center.dtype, device=center.device)
    return center @ local

"""Per-tilt defocus files: ctffind's output table and IMOD ctfplotter's ``.defocus``.

Both return plain tensors (micrometres, degrees) so that any layer can build its own
objects from them (``inversa.tomography.TiltSeriesCTF``).

- ctffind (4 and 5) writes one row per image after ``#`` comment lines: image number,
  defocus 1 and 2 (Angstrom), azimuth of astigmatism (degrees), additional phase shift
  (radians), cross-correlation, fit resolution (Angstrom), and more columns we ignore.
- IMOD's ctfplotter ``.defocus`` (versions 2 and 3): rows ``start_view end_view
  start_tilt end_tilt defocus_nm`` (version 2; its first row ends with the version number
  ``2``), or, in version 3, a header row of six numbers whose last is a flags field,
  followed by rows with ``defocus1_nm defocus2_nm astigmatism_deg`` (and optionally a
  phase shift); views are numbered from 1.
"""

from __future__ import annotations

import os

import torch

from inversa.core.errors import InputError
from inversa.core.io._read import read_input_bytes

__all__ = ["read_ctffind", "read_imod_defocus"]


def _rows(path: str | os.PathLike[str]) -> list[tuple[int, list[float]]]:
    text = read_input_bytes(path).decode("utf-8", errors="replace")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            rows.append((number, [float(v) for v in stripped.split()]))
        except ValueError:
            raise InputError(path, f"line {number}: not a row of numbers: {stripped!r}") from None
    if not rows:
        raise InputError(path, "no data rows")
    return rows


def read_ctffind(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a ctffind output table (one row per image, e.g. per tilt).

    Parameters
    ----------
    path
        ctffind's ``.txt`` output.

    Returns
    -------
    dict[str, torch.Tensor]
        ``(T,)`` float64 tensors: ``defocus_u_um``, ``defocus_v_um``,
        ``astigmatism_deg``, ``phase_shift_deg`` (and ``fit_resolution_A`` when present).

    Raises
    ------
    InputError
        Missing file, a non-numeric row, fewer than 5 columns, or rows of different length.
    """
    rows = _rows(path)
    width = len(rows[0][1])
    for number, values in rows:
        if len(values) != width:
            raise InputError(path, f"line {number}: {len(values)} values, expected {width}")
    if width < 5:
        raise InputError(path, f"a ctffind table has at least 5 columns, got {width}")
    table = torch.tensor([v for _, v in rows], dtype=torch.float64)
    out = {
        "defocus_u_um": table[:, 1] * 1e-4,
        "defocus_v_um": table[:, 2] * 1e-4,
        "astigmatism_deg": table[:, 3],
        "phase_shift_deg": torch.rad2deg(table[:, 4]),
    }
    if width >= 7:
        out["fit_resolution_A"] = table[:, 6]
    if not all(bool(torch.isfinite(v).all()) for v in out.values()):
        raise InputError(path, "non-finite defocus values")
    return out


def read_imod_defocus(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read an IMOD ctfplotter ``.defocus`` file (version 2 or 3).

    A row covering several views (``start_view < end_view``) gives its defocus to each of
    them; the tilt angle of a view is the row's mean tilt.

    Parameters
    ----------
    path
        The ``.defocus`` file.

    Returns
    -------
    dict[str, torch.Tensor]
        ``(T,)`` float64 per view (views ``1 .. T`` in order): ``view`` (1-based),
        ``tilt_deg``, ``defocus_u_um``, ``defocus_v_um``, ``astigmatism_deg``.

    Raises
    ------
    InputError
        Missing file, malformed rows, or views that are missing or listed twice.
    """
    rows = _rows(path)
    first_number, first = rows[0]
    version = 2
    if len(first) == 6 and first[0] == 1 and first[1] == 0 and first[4] == 0:
        version = 3  # header: 1 0 0. 0. 0 flags
        rows = rows[1:]
    elif len(first) == 6:
        first = first[:5]  # version 2: the first row ends with the version number
        rows = [(first_number, first), *rows[1:]]
    views: dict[int, tuple[float, float, float, float]] = {}
    for number, values in rows:
        if version == 2 and len(values) != 5:
            raise InputError(path, f"line {number}: version 2 rows have 5 values")
        if version == 3 and len(values) not in (5, 7, 8):
            raise InputError(path, f"line {number}: version 3 rows have 5, 7 or 8 values")
        start, end = int(values[0]), int(values[1])
        if start < 1 or end < start:
            raise InputError(path, f"line {number}: bad view range {start}..{end}")
        tilt = 0.5 * (values[2] + values[3])
        d1 = values[4] * 1e-3
        d2 = values[5] * 1e-3 if len(values) >= 7 else d1
        astig = values[6] if len(values) >= 7 else 0.0
        for view in range(start, end + 1):
            if view in views:
                raise InputError(path, f"line {number}: view {view} listed twice")
            views[view] = (tilt, d1, d2, astig)
    order = sorted(views)
    if order != list(range(1, len(order) + 1)):
        raise InputError(path, "views must cover 1..T without gaps")
    table = torch.tensor([views[v] for v in order], dtype=torch.float64)
    return {
        "view": torch.tensor(order, dtype=torch.float64),
        "tilt_deg": table[:, 0],
        "defocus_u_um": table[:, 1],
        "defocus_v_um": table[:, 2],
        "astigmatism_deg": table[:, 3],
    }

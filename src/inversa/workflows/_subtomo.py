"""Subtomogram jobs on RELION 5 files: extract, align (resumable, on Dask), average, refine.

Particles come either as subtomogram MRCs (``rlnImageName``) or as coordinates in
tomograms (``rlnTomoName`` + ``rlnCenteredCoordinate*Angst``, with the tomogram files
given). Every output is written atomically, after the inputs have been checked.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from inversa.alignment._average import AverageResult, average_particles
from inversa.alignment._exhaustive import ExhaustiveConfig
from inversa.alignment._extract import extract_subtomograms
from inversa.alignment._refine import RefineConfig, RefineResult, align_particles, refine
from inversa.alignment._star import (
    COORDINATE_COLUMNS,
    SUBTOMOGRAM_ANGLE_COLUMNS,
    image_paths,
    pixel_size_of,
    poses_from_table,
    poses_to_table,
    positions_in_tomogram,
    random_subsets,
)
from inversa.core.errors import InputError, OutputExistsError
from inversa.core.io import atomic_write, read_mrc, read_particles, write_mrc, write_particles
from inversa.core.parallel import map_items

__all__ = [
    "AlignJobConfig",
    "AlignJobResult",
    "ExtractJobResult",
    "align_particles_file",
    "average_particles_file",
    "extract_particles_file",
    "refine_particles_file",
]

# Relative tolerance on voxel sizes that must agree (headers store float32).
_VOXEL_TOLERANCE = 1e-3


def _same_size(a: float, b: float) -> bool:
    return abs(a - b) <= _VOXEL_TOLERANCE * max(a, b)


def _match_tomograms(
    names: Sequence[str], tomograms: Sequence[str | Path], star_path: Path
) -> dict[str, Path]:
    """Map each ``rlnTomoName`` to a tomogram file by file stem (one of each: no choice)."""
    paths = [Path(t) for t in tomograms]
    unique = sorted(set(names))
    if len(unique) == 1 and len(paths) == 1:
        return {unique[0]: paths[0]}
    by_stem = {p.stem: p for p in paths}
    mapping, missing = {}, []
    for name in unique:
        hit = by_stem.get(name) or next(
            (p for p in paths if p.stem.startswith(name + "_") or p.stem.startswith(name + ".")),
            None,
        )
        if hit is None:
            missing.append(name)
        else:
            mapping[name] = hit
    if missing:
        raise InputError(
            star_path,
            f"no tomogram given for rlnTomoName {', '.join(missing)} (tomogram files are matched "
            f"by name: {', '.join(p.name for p in paths)})",
        )
    return mapping


def _check_no_subtomogram_angles(particles: pd.DataFrame, star_path: Path) -> None:
    present = [c for c in SUBTOMOGRAM_ANGLE_COLUMNS if c in particles.columns]
    if present and np.abs(particles[present].to_numpy(dtype=np.float64)).max() > 1e-6:
        raise InputError(
            star_path,
            "non-zero rlnTomoSubtomogram angles: boxes cut here are in tomogram axes; "
            "set them to zero (compose them into rlnAngle*) first",
        )


@dataclass(frozen=True)
class _Source:
    """Where a particle's voxels come from and where its box centre lies."""

    star: Path
    particles: pd.DataFrame
    optics: pd.DataFrame
    pixel_size: float
    images: list[Path] | None  # subtomogram files, or None for tomogram coordinates
    tomograms: dict[str, Path] = field(default_factory=dict)
    box: int = 0


def _load_source(
    star: str | Path, *, tomograms: Sequence[str | Path] | None, box: int | None
) -> _Source:
    star = Path(star)
    particles, optics = read_particles(star, required=())
    if len(particles) == 0:
        raise InputError(star, "no particles in the table")
    pixel_size = pixel_size_of(particles, optics, path=star)
    if tomograms:
        missing = [c for c in ("rlnTomoName", *COORDINATE_COLUMNS) if c not in particles.columns]
        if missing:
            raise InputError(star, f"particle table lacks column(s): {', '.join(missing)}")
        _check_no_subtomogram_angles(particles, star)
        mapping = _match_tomograms(particles["rlnTomoName"].astype(str).tolist(), tomograms, star)
        if box is None:
            raise InputError(star, "a box size is needed to cut particles from tomograms")
        return _Source(star, particles, optics, pixel_size, None, mapping, box)
    if "rlnImageName" not in particles.columns:
        raise InputError(
            star,
            "particle table lacks column rlnImageName (subtomograms); for coordinates in "
            "tomograms pass the tomogram files",
        )
    return _Source(star, particles, optics, pixel_size, image_paths(particles, star_path=star))


def _tomogram_positions(source: _Source, rows: np.ndarray, tomogram: torch.Tensor) -> torch.Tensor:
    return positions_in_tomogram(
        source.particles.iloc[rows],
        pixel_size=source.pixel_size,
        shape=tuple(tomogram.shape),
        path=source.star,
    )


def _read_tomogram(path: Path, pixel_size: float) -> torch.Tensor:
    volume, voxel = read_mrc(path, ndim=3, mmap=True)
    if not _same_size(voxel, pixel_size):
        raise InputError(
            path, f"voxel size {voxel:g} Å differs from the particles' {pixel_size:g} Å"
        )
    return volume


def _load_particles(
    source: _Source, indices: Sequence[int], clipped: list[int] | None = None
) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor], dict[int, str]]:
    """Volumes and box offsets (voxels, box centre - coordinate) of some particles.

    Particles that cannot be read are returned in the third dict with the reason; rows
    whose box reaches past the tomogram are appended to ``clipped``.
    """
    volumes: dict[int, torch.Tensor] = {}
    offsets: dict[int, torch.Tensor] = {}
    failed: dict[int, str] = {}
    if source.images is not None:
        for i in indices:
            try:
                vol, _ = read_mrc(source.images[i], ndim=3)
            except InputError as err:
                failed[i] = str(err)
                continue
            volumes[i] = vol.to(torch.float32)
            offsets[i] = torch.zeros(3, dtype=torch.float64)
        return volumes, offsets, failed
    names = source.particles["rlnTomoName"].astype(str).to_numpy()
    index_array = np.asarray(list(indices))
    for name in sorted(set(names[index_array].tolist())):
        rows = index_array[names[index_array] == name]
        tomo_path = source.tomograms[name]
        tomogram = _read_tomogram(tomo_path, source.pixel_size)
        positions = _tomogram_positions(source, rows, tomogram)
        cut = extract_subtomograms(tomogram, positions, box=source.box)
        coords = torch.from_numpy(
            source.particles.iloc[rows][list(COORDINATE_COLUMNS)].to_numpy(dtype=np.float64)
        )
        centre = torch.tensor([s // 2 for s in tomogram.shape[::-1]], dtype=torch.float64)
        for k, i in enumerate(rows.tolist()):
            if not bool(cut.inside[k]):
                failed[i] = f"{tomo_path}: particle {i} lies outside the tomogram"
                continue
            volumes[i] = cut.volumes[k]
            if clipped is not None and bool(cut.clipped[k]):
                clipped.append(i)
            box_centre = cut.centres[k].to(torch.float64) - centre
            offsets[i] = box_centre - coords[k] / source.pixel_size
    return volumes, offsets, failed


def _outside_report(source: _Source) -> None:
    """Raise naming the tomogram when particles lie outside it (before anything is written)."""
    names = source.particles["rlnTomoName"].astype(str).to_numpy()
    for name, path in source.tomograms.items():
        rows = np.flatnonzero(names == name)
        tomogram = _read_tomogram(path, source.pixel_size)
        pos = _tomogram_positions(source, rows, tomogram)
        size = torch.tensor(tomogram.shape[::-1], dtype=torch.float64)
        outside = ~((pos >= -0.5) & (pos <= size - 0.5)).all(dim=1)
        if bool(outside.any()):
            bad = rows[outside.numpy()].tolist()
            shown = ", ".join(str(b) for b in bad[:10]) + (" ..." if len(bad) > 10 else "")
            raise InputError(
                path,
                f"{len(bad)} particle(s) of {source.star.name} lie outside this "
                f"{tuple(tomogram.shape)} tomogram (rows {shown})",
            )


@dataclass(frozen=True)
class ExtractJobResult:
    """Files written by :func:`extract_particles_file`.

    Attributes
    ----------
    star
        The particle STAR file naming the subtomograms.
    volumes
        One MRC per particle.
    clipped
        Rows whose box reached past the tomogram edge (padded with the box mean).
    """

    star: Path
    volumes: list[Path]
    clipped: list[int]


def extract_particles_file(
    tomograms: Sequence[str | Path],
    particles_star: str | Path,
    *,
    box: int,
    out_dir: str | Path,
    force: bool = False,
) -> ExtractJobResult:
    """Cut subtomograms around the particles of a RELION 5 STAR file.

    Each particle's box is centred on the tomogram voxel nearest to its position
    ``coordinate - origin``; the output STAR gives that voxel as the coordinate and the
    sub-voxel remainder ``d`` as ``rlnOrigin = -d * pixel_size``, so ``coordinate - origin``
    is unchanged. ``rlnImageName`` names the MRCs relative to ``out_dir``.

    Parameters
    ----------
    tomograms
        Tomogram MRCs, matched to ``rlnTomoName`` by file stem (a single tomogram serves a
        single name whatever its file name).
    particles_star
        RELION 5 particle STAR file with tomogram names and centred coordinates.
    box
        Box edge in voxels.
    out_dir
        Output folder: ``particles.star`` and ``subtomograms/``.
    force
        Overwrite existing outputs.

    Returns
    -------
    ExtractJobResult

    Raises
    ------
    InputError
        Missing columns, voxel sizes that disagree, or particles outside a tomogram
        (checked before anything is written).
    """
    source = _load_source(particles_star, tomograms=tomograms, box=box)
    out = Path(out_dir)
    star_out = out / "particles.star"
    if star_out.exists() and not force:
        raise OutputExistsError(star_out)
    _outside_report(source)
    n = len(source.particles)
    clipped: list[int] = []
    volumes, offsets, failed = _load_particles(source, range(n), clipped)
    if failed:
        raise InputError(source.star, "; ".join(failed.values()))
    (out / "subtomograms").mkdir(parents=True, exist_ok=True)
    names = source.particles["rlnTomoName"].astype(str).tolist()
    files, image_names = [], []
    for i in range(n):
        rel = Path("subtomograms") / f"{names[i]}_{i + 1:06d}.mrc"
        write_mrc(out / rel, volumes[i], voxel_size=source.pixel_size, force=force)
        files.append(out / rel)
        image_names.append(rel.as_posix())
    table = source.particles.copy()
    offset = torch.stack([offsets[i] for i in range(n)])
    old_origin = -poses_from_table(table, pixel_size=source.pixel_size)[1]  # voxels
    coords = torch.from_numpy(table[list(COORDINATE_COLUMNS)].to_numpy(dtype=np.float64))
    new_coords = coords / source.pixel_size + offset
    # Keep coordinate - origin: the new origin absorbs the move of the coordinate.
    new_origin = old_origin + offset
    for j, name in enumerate(COORDINATE_COLUMNS):
        table[name] = (new_coords[:, j] * source.pixel_size).numpy()
    for j, axis in enumerate("XYZ"):
        table[f"rlnOrigin{axis}Angst"] = (new_origin[:, j] * source.pixel_size).numpy()
    for column in SUBTOMOGRAM_ANGLE_COLUMNS:
        table[column] = 0.0
    table["rlnImageName"] = image_names
    optics = source.optics.copy()
    optics["rlnImagePixelSize"] = source.pixel_size
    optics["rlnImageSize"] = box
    optics["rlnImageDimensionality"] = 3
    write_particles(star_out, table, optics, force=force)
    return ExtractJobResult(star=star_out, volumes=files, clipped=sorted(clipped))


@dataclass(frozen=True, kw_only=True)
class AlignJobConfig:
    """Settings of :func:`align_particles_file`.

    Attributes
    ----------
    method
        ``"exhaustive"`` or ``"newton"``.
    local_angle
        Search within this many degrees of the STAR file's angles; ``None``: global.
    wedge
        ``(tilt_min, tilt_max)`` degrees of the particles' missing wedge, or ``None``.
    max_shift
        Largest shift searched, in voxels.
    chunk_size
        Particles per Dask task and per checkpoint.
    exhaustive
        Grid settings of the exhaustive aligner.
    """

    method: str = "exhaustive"
    local_angle: float | None = None
    wedge: tuple[float, float] | None = None
    max_shift: float = 4.0
    chunk_size: int = 8
    exhaustive: ExhaustiveConfig = field(default_factory=ExhaustiveConfig)

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise InputError(None, f"chunk_size must be >= 1, got {self.chunk_size}")
        self.refine_config()  # validates method and angles

    def refine_config(self) -> RefineConfig:
        """Return the aligner settings as a :class:`RefineConfig`."""
        return RefineConfig(
            method=self.method,
            exhaustive=self.exhaustive,
            wedge=self.wedge,
            local_angle=self.local_angle,
            max_shift=self.max_shift,
        )


@dataclass(frozen=True)
class AlignJobResult:
    """Outcome of :func:`align_particles_file`.

    Attributes
    ----------
    star
        The output STAR file (aligned particles only).
    n_aligned
        Particles written.
    failed
        ``(row, reason)`` of particles reported and skipped.
    mean_score
        Mean normalised correlation of the aligned particles.
    resumed_chunks
        Chunks taken from the checkpoint of an earlier, interrupted run.
    """

    star: Path
    n_aligned: int
    failed: list[tuple[int, str]]
    mean_score: float
    resumed_chunks: int


@dataclass(frozen=True)
class _Chunk:
    index: int
    rows: tuple[int, ...]
    checkpoint: Path

    def __repr__(self) -> str:  # the label map_items shows in failure reports
        return f"chunk {self.index} (rows {self.rows[0]}-{self.rows[-1]})"


def _align_chunk(
    chunk: _Chunk,
    *,
    source: _Source,
    reference_path: Path,
    config: AlignJobConfig,
) -> dict:
    """Align one chunk and checkpoint it (runs on a Dask worker)."""
    reference, _ = read_mrc(reference_path, ndim=3)
    volumes, offsets, failed = _load_particles(source, chunk.rows)
    good = [i for i in chunk.rows if i in volumes]
    for i in good:
        if volumes[i].shape != reference.shape:
            failed[i] = f"box {tuple(volumes[i].shape)} differs from the reference's"
    good = [i for i in good if i not in failed]
    record: dict = {"rows": [], "rotations": [], "shifts": [], "scores": [], "offsets": []}
    if good:
        stack = torch.stack([volumes[i] for i in good])
        priors = None
        if config.local_angle is not None:
            table = source.particles.iloc[good]
            priors = poses_from_table(table, pixel_size=source.pixel_size)[0].to(torch.float32)
        result = align_particles(
            reference, stack, config=config.refine_config(), prior_rotations=priors
        )
        record = {
            "rows": good,
            "rotations": result.rotations.double().tolist(),
            "shifts": result.shifts.double().tolist(),
            "scores": result.scores.double().tolist(),
            "offsets": [offsets[i].tolist() for i in good],
        }
    record["failed"] = {str(i): reason for i, reason in failed.items()}
    with atomic_write(chunk.checkpoint, force=True) as tmp:
        Path(tmp).write_text(json.dumps(record))
    return record


def _fingerprint(star: Path, reference: Path, config: AlignJobConfig, tomograms) -> str:
    digest = hashlib.sha256()
    for path in (star, reference, *sorted(Path(t) for t in tomograms or ())):
        digest.update(str(path.resolve()).encode())
        digest.update(path.read_bytes() if path.suffix == ".star" else str(path.stat()).encode())
    digest.update(json.dumps(asdict(config), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _checked_reference(reference: Path, source: _Source) -> torch.Tensor:
    volume, voxel = read_mrc(reference, ndim=3)
    if not _same_size(voxel, source.pixel_size):
        raise InputError(
            reference,
            f"voxel size {voxel:g} Å differs from the particles' {source.pixel_size:g} Å "
            f"({source.star.name})",
        )
    if source.images is not None:
        import mrcfile

        first = source.images[0]
        try:
            with mrcfile.open(first, header_only=True) as mrc:
                h = mrc.header
                shape = (int(h.nz), int(h.ny), int(h.nx))
        except (OSError, ValueError) as err:
            raise InputError(first, f"cannot read the subtomogram header ({err})") from err
        if shape != tuple(volume.shape):
            raise InputError(
                reference,
                f"box {tuple(volume.shape)} differs from the particles' {shape} ({first.name})",
            )
    return volume


def align_particles_file(
    particles_star: str | Path,
    reference: str | Path,
    out_star: str | Path,
    *,
    config: AlignJobConfig,
    tomograms: Sequence[str | Path] | None = None,
    scheduler: str | None = None,
    force: bool = False,
    progress: bool = False,
) -> AlignJobResult:
    """Align the particles of a RELION 5 STAR file to a reference; write a STAR file.

    Particles are split into chunks aligned in parallel by
    :func:`inversa.core.parallel.map_items` (local threads, or a Dask scheduler). Each
    finished chunk is checkpointed in ``OUT.partial/``; a rerun of the same job (same
    inputs and settings) skips the checkpointed chunks, so a killed run resumes. The
    folder is removed once ``OUT`` is written. Unreadable particles (missing file,
    non-finite voxels, wrong box, outside their tomogram) are reported and skipped.

    Parameters
    ----------
    particles_star
        RELION 5 particle STAR file (``rlnImageName`` subtomograms, or tomogram
        coordinates when ``tomograms`` is given).
    reference
        Reference MRC, same box and voxel size as the particles.
    out_star
        Output STAR file: the input rows with new ``rlnAngle*`` and ``rlnOrigin*Angst``.
    config
        Aligner and chunking.
    tomograms
        Tomogram MRCs to cut the particles from (box of the reference).
    scheduler
        Dask scheduler address, ``"processes"``, or ``None`` for local threads.
    force
        Overwrite ``out_star`` and discard a checkpoint of different settings.
    progress
        Progress bar over chunks.

    Returns
    -------
    AlignJobResult

    Raises
    ------
    InputError
        Bad inputs (checked before any work), a checkpoint of another job without
        ``force``, or every particle failed.
    """
    out = Path(out_star)
    if out.exists() and not force:
        raise OutputExistsError(out)
    if not out.parent.is_dir():
        raise InputError(out, f"parent directory {out.parent} does not exist")
    reference = Path(reference)
    source_box = None
    if tomograms:
        ref_volume, _ = read_mrc(reference, ndim=3)
        source_box = ref_volume.shape[-1]
    source = _load_source(particles_star, tomograms=tomograms, box=source_box)
    ref_volume = _checked_reference(reference, source)
    if len(set(ref_volume.shape)) != 1:
        raise InputError(reference, f"the reference must be a cube, got {tuple(ref_volume.shape)}")
    if tomograms:
        _outside_report(source)
    partial = out.with_name(out.name + ".partial")
    fingerprint = _fingerprint(source.star, reference, config, tomograms)
    stamp = partial / "job.json"
    if partial.exists():
        same = stamp.exists() and json.loads(stamp.read_text()).get("fingerprint") == fingerprint
        if not same:
            if not force:
                raise InputError(
                    partial,
                    "checkpoint of a different job (other inputs or settings); "
                    "pass --force to discard it",
                )
            shutil.rmtree(partial)
    partial.mkdir(exist_ok=True)
    if not stamp.exists():
        with atomic_write(stamp, force=True) as tmp:
            Path(tmp).write_text(json.dumps({"fingerprint": fingerprint}))
    n = len(source.particles)
    chunks = [
        _Chunk(k, tuple(range(s, min(s + config.chunk_size, n))), partial / f"chunk-{k:06d}.json")
        for k, s in enumerate(range(0, n, config.chunk_size))
    ]
    done = {c.index: json.loads(c.checkpoint.read_text()) for c in chunks if c.checkpoint.exists()}
    todo = [c for c in chunks if c.index not in done]
    fn = functools.partial(_align_chunk, source=source, reference_path=reference, config=config)
    results = map_items(fn, todo, scheduler=scheduler, description="aligning", progress=progress)
    errors = [r for r in results if not r.ok]
    if errors:
        lines = "; ".join(f"{r.label}: {r.error}" for r in errors)
        raise RuntimeError(
            f"{len(errors)} chunk(s) failed (finished chunks are kept in {partial}; "
            f"rerun to resume): {lines}"
        )
    records = dict(done)
    records.update({c.index: r.value for c, r in zip(todo, results, strict=True)})
    rows, rotations, shifts, scores, offsets, failed = [], [], [], [], [], []
    for k in sorted(records):
        rec = records[k]
        rows += rec["rows"]
        rotations += rec["rotations"]
        shifts += rec["shifts"]
        scores += rec["scores"]
        offsets += rec["offsets"]
        failed += [(int(i), reason) for i, reason in rec["failed"].items()]
    if not rows:
        raise InputError(
            source.star, "no particle could be aligned: " + "; ".join(r for _, r in failed[:5])
        )
    table = poses_to_table(
        source.particles.iloc[rows],
        torch.tensor(rotations, dtype=torch.float64),
        torch.tensor(shifts, dtype=torch.float64),
        pixel_size=source.pixel_size,
        box_offsets=torch.tensor(offsets, dtype=torch.float64),
    )
    write_particles(out, table, source.optics, force=force)
    shutil.rmtree(partial)
    return AlignJobResult(
        star=out,
        n_aligned=len(rows),
        failed=sorted(failed),
        mean_score=float(np.mean(scores)),
        resumed_chunks=len(done),
    )


def _all_particles(source: _Source):
    volumes, offsets, failed = _load_particles(source, range(len(source.particles)))
    if failed:
        raise InputError(source.star, "; ".join(list(failed.values())[:5]))
    n = len(source.particles)
    return torch.stack([volumes[i] for i in range(n)]), torch.stack([offsets[i] for i in range(n)])


def _write_fsc(path: Path, average: AverageResult, *, pixel_size: float, force: bool) -> None:
    n = 2 * (len(average.fsc) - 1)
    payload = {
        "resolution_A": average.resolution,
        "pixel_size_A": pixel_size,
        "frequency_per_A": [s / (n * pixel_size) for s in range(len(average.fsc))],
        "fsc": [float(v) for v in average.fsc],
    }
    with atomic_write(path, force=force) as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=1, allow_nan=True) + "\n")


def _map_paths(out_map: Path) -> dict[str, Path]:
    stem = out_map.with_suffix("")
    return {
        "map": out_map,
        "half1": Path(f"{stem}_half1.mrc"),
        "half2": Path(f"{stem}_half2.mrc"),
        "fsc": Path(f"{stem}_fsc.json"),
    }


def average_particles_file(
    particles_star: str | Path,
    out_map: str | Path,
    *,
    wedge: tuple[float, float] | None = None,
    tomograms: Sequence[str | Path] | None = None,
    box: int | None = None,
    force: bool = False,
) -> AverageResult:
    """Average the particles of a STAR file at their poses; write map, half maps, FSC.

    Writes ``OUT.mrc``, ``OUT_half1.mrc``, ``OUT_half2.mrc`` (half sets from
    ``rlnRandomSubset``, else a seeded split) and ``OUT_fsc.json``.

    Parameters
    ----------
    particles_star
        RELION 5 particle STAR file with angles and origins.
    out_map
        Output MRC.
    wedge
        ``(tilt_min, tilt_max)`` degrees for wedge-weighted averaging, or ``None``.
    tomograms, box
        Cut particles from these tomograms with this box instead of reading
        ``rlnImageName``.
    force
        Overwrite outputs.

    Returns
    -------
    AverageResult
    """
    paths = _map_paths(Path(out_map))
    for path in paths.values():
        if path.exists() and not force:
            raise OutputExistsError(path)
    source = _load_source(particles_star, tomograms=tomograms, box=box)
    if tomograms:
        _outside_report(source)
    volumes, offsets = _all_particles(source)
    rotations, shifts = poses_from_table(
        source.particles, pixel_size=source.pixel_size, box_offsets=offsets, path=source.star
    )
    average = average_particles(
        volumes,
        rotations.to(torch.float32),
        shifts.to(torch.float32),
        wedge=wedge,
        subsets=random_subsets(source.particles),
        pixel_size=source.pixel_size,
    )
    for role in ("map", "half1", "half2"):
        write_mrc(paths[role], getattr(average, role), voxel_size=source.pixel_size, force=force)
    _write_fsc(paths["fsc"], average, pixel_size=source.pixel_size, force=force)
    return average


def refine_particles_file(
    particles_star: str | Path,
    out_dir: str | Path,
    *,
    config: RefineConfig,
    reference: str | Path | None = None,
    n_iterations: int = 3,
    tomograms: Sequence[str | Path] | None = None,
    box: int | None = None,
    use_priors: bool = False,
    force: bool = False,
) -> RefineResult:
    """Refine the particles of a STAR file: poses, average, half maps, FSC per iteration.

    Writes in ``out_dir``: ``run_data.star`` (refined poses), ``run_class001.mrc`` with
    ``_half1``/``_half2`` maps and ``run_class001_fsc.json``, and ``run_model.json``
    (resolution and FSC of every iteration). All particles are held in memory.

    Parameters
    ----------
    particles_star
        RELION 5 particle STAR file.
    out_dir
        Output folder (created).
    config
        Aligner, wedge, local range, initial low-pass.
    reference
        Starting reference MRC (box and voxel size of the particles), or ``None`` to
        start from scratch.
    n_iterations
        Refinement iterations.
    tomograms, box
        Cut particles from tomograms instead of reading ``rlnImageName``.
    use_priors
        Start from the STAR file's angles (local search from the first iteration).
    force
        Overwrite outputs.

    Returns
    -------
    RefineResult
    """
    out = Path(out_dir)
    names = ("run_data.star", "run_class001.mrc", "run_model.json")
    for name in names:
        if (out / name).exists() and not force:
            raise OutputExistsError(out / name)
    ref_volume = None
    if reference is not None and tomograms and box is None:
        box = read_mrc(reference, ndim=3)[0].shape[-1]
    source = _load_source(particles_star, tomograms=tomograms, box=box)
    if reference is not None:
        ref_volume = _checked_reference(Path(reference), source)
    if tomograms:
        _outside_report(source)
    volumes, offsets = _all_particles(source)
    if ref_volume is not None and ref_volume.shape != volumes.shape[1:]:
        raise InputError(
            reference,
            f"box {tuple(ref_volume.shape)} differs from the particles' {tuple(volumes.shape[1:])}",
        )
    priors = None
    if use_priors:
        priors = poses_from_table(source.particles, pixel_size=source.pixel_size)[0].float()
    result = refine(
        volumes,
        reference=ref_volume,
        config=config,
        n_iterations=n_iterations,
        subsets=random_subsets(source.particles),
        prior_rotations=priors,
        pixel_size=source.pixel_size,
    )
    out.mkdir(parents=True, exist_ok=True)
    table = poses_to_table(
        source.particles,
        result.alignment.rotations,
        result.alignment.shifts,
        pixel_size=source.pixel_size,
        box_offsets=offsets,
    )
    if "rlnRandomSubset" not in table.columns:
        table["rlnRandomSubset"] = random_subsets(source.particles).numpy()
    write_particles(out / "run_data.star", table, source.optics, force=force)
    paths = _map_paths(out / "run_class001.mrc")
    for role in ("map", "half1", "half2"):
        data = getattr(result.average, role)
        write_mrc(paths[role], data, voxel_size=source.pixel_size, force=force)
    _write_fsc(paths["fsc"], result.average, pixel_size=source.pixel_size, force=force)
    model = {
        "config": json.loads(json.dumps(asdict(replace(config, newton=None)), default=str)),
        "iterations": [
            {
                "iteration": it.iteration,
                "resolution_A": it.resolution if math.isfinite(it.resolution) else None,
                "mean_score": it.mean_score,
                "local": it.local,
                "seconds": it.seconds,
                "fsc": [float(v) for v in it.fsc],
            }
            for it in result.iterations
        ],
    }
    with atomic_write(out / "run_model.json", force=force) as tmp:
        Path(tmp).write_text(json.dumps(model, indent=1) + "\n")
    return result

"""``inversa align``: align the particles of a STAR file in checkpointed chunks (resumable).

Each chunk's checkpoint records what its inputs were (size, mtime and inode of its
subtomograms or tomograms); the job's stamp covers the STAR file, the reference, the
tomograms and every setting. A rerun resumes only chunks whose inputs are unchanged.
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
import torch

from inversa.alignment import (
    AlignerConfig,
    AlignmentDiagnostics,
    AlignmentResult,
    ExhaustiveConfig,
    align_particles,
    aligner_config,
    diagnose_alignment,
    poses_from_table,
    poses_to_table,
    to_subtomogram_frame,
)
from inversa.core.errors import InputError
from inversa.core.io import check_outputs, output_lock, read_mrc, write_json
from inversa.core.parallel import map_items
from inversa.workflows._outputs import diagnostics_payload, write_particle_star
from inversa.workflows._particles import (
    ParticleSource,
    checked_reference,
    input_stamps,
    load_particles,
    load_source,
    outside_report,
    particle_ctf,
)

__all__ = ["AlignJobConfig", "AlignJobResult", "align_particles_file", "diagnostics_path"]

# Version of the checkpoint layout: a checkpoint of another layout is never resumed.
_CHECKPOINT_VERSION = 2

# Particles the trust diagnostics score (spread over the set): enough for the fraction of
# unseparated particles, while the job itself never holds all particles in memory.
_DIAGNOSTIC_SAMPLE = 64


@dataclass(frozen=True, kw_only=True)
class AlignJobConfig:
    """Settings of :func:`align_particles_file`.

    Attributes
    ----------
    method
        ``"newton"`` (default) or ``"exhaustive"``.
    max_angle_deg
        Search within this many degrees of the STAR file's angles; ``None``: global.
    wedge
        ``(tilt_min, tilt_max)`` degrees of the particles' missing wedge, or ``None``.
    max_shift
        Largest shift searched, in voxels.
    chunk_size
        Particles per Dask task and per checkpoint.
    exhaustive
        Grid settings of the exhaustive aligner.
    tilt_series
        A RELION 5 ``tomograms.star`` naming each tomogram's tilt-series STAR file: the
        aligner scores with each particle's 3-D CTF x exposure weight (replacing
        ``wedge``); ``None``: the wedge.
    phase_flipped
        With ``tilt_series``: the tomograms were reconstructed from phase-flipped tilts.
    """

    method: str = "newton"
    max_angle_deg: float | None = None
    wedge: tuple[float, float] | None = None
    max_shift: float = 4.0
    chunk_size: int = 8
    exhaustive: ExhaustiveConfig = field(default_factory=ExhaustiveConfig)
    tilt_series: Path | None = None
    phase_flipped: bool = False

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise InputError(None, f"chunk_size must be >= 1, got {self.chunk_size}")
        self.aligner_config()  # validates method and angles

    def aligner_config(self) -> AlignerConfig:
        """Return the settings of the aligner ``method`` names."""
        shared = {
            "wedge": self.wedge,
            "max_shift": self.max_shift,
            "max_angle_deg": self.max_angle_deg,
        }
        if self.method == "exhaustive":
            return replace(self.exhaustive, **shared)
        return aligner_config(self.method, **shared)


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
    redone_chunks
        Checkpointed chunks redone because their inputs changed or their file was
        unreadable.
    restarted
        Why the checkpoint folder was discarded (an unreadable ``job.json``), or ``""``.
    diagnostics
        Whether the poses can be trusted (:func:`inversa.alignment.diagnose_alignment` on
        up to 64 particles spread over the set), or ``None`` when not diagnosed.
    diagnostics_file
        ``OUT_diagnostics.json`` beside the STAR file, or ``None``.
    """

    star: Path
    n_aligned: int
    failed: list[tuple[int, str]]
    mean_score: float
    resumed_chunks: int
    redone_chunks: int = 0
    restarted: str = ""
    diagnostics: AlignmentDiagnostics | None = None
    diagnostics_file: Path | None = None


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
    source: ParticleSource,
    reference_path: Path,
    config: AlignJobConfig,
    device: str,
) -> dict:
    """Align one chunk and checkpoint it (runs on a Dask worker)."""
    # Stamp the inputs before reading them: a file rewritten meanwhile is then redone.
    stamps = input_stamps(source, chunk.rows)
    reference, _ = read_mrc(reference_path, ndim=3, voxel_size=source.voxel_size)
    volumes, offsets, failed = load_particles(source, chunk.rows)
    good = [i for i in chunk.rows if i in volumes]
    for i in good:
        if volumes[i].shape != reference.shape:
            failed[i] = f"box {tuple(volumes[i].shape)} differs from the reference's"
    good = [i for i in good if i not in failed]
    record: dict = {"rows": [], "rotations": [], "shifts": [], "scores": [], "offsets": []}
    if good:
        stack = torch.stack([volumes[i] for i in good]).to(device)
        priors = None
        if config.max_angle_deg is not None:
            table = source.particles.iloc[good]
            priors = poses_from_table(table, pixel_size=source.pixel_size)[0]
            priors = priors.to(device=device, dtype=torch.float32)
        ctf = None
        if config.tilt_series is not None:
            ctf = particle_ctf(source, config.tilt_series, phase_flipped=config.phase_flipped)
            ctf = ctf.subset(torch.tensor(good, dtype=torch.long))
        result = align_particles(
            reference.to(device),
            stack,
            config=config.aligner_config(),
            prior_rotations=priors,
            ctf=ctf,
        )
        record = {
            "rows": good,
            "rotations": result.rotations.cpu().double().tolist(),
            "shifts": result.shifts.cpu().double().tolist(),
            "scores": result.scores.cpu().double().tolist(),
            "offsets": [offsets[i].tolist() for i in good],
        }
    record["failed"] = {str(i): reason for i, reason in failed.items()}
    record["inputs"] = stamps
    write_json(chunk.checkpoint, record, force=True, indent=None)
    return record


def _file_stamp(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino]


def _fingerprint(
    source: ParticleSource,
    reference: Path,
    config: AlignJobConfig,
    tomograms: Sequence[str | Path] | None,
    device: str,
) -> str:
    """Hash what the job depends on besides the particles' own files (stamped per chunk)."""
    digest = hashlib.sha256()
    digest.update(f"v{_CHECKPOINT_VERSION}".encode())
    for star in (source.star, *(Path(t) for t in tomograms or () if Path(t).suffix == ".star")):
        digest.update(str(star.resolve()).encode())
        digest.update(star.read_bytes())
    digest.update(reference.read_bytes())
    stamps = [_file_stamp(reference), *(_file_stamp(p) for p in sorted(source.tomograms.values()))]
    fields = asdict(config)
    if config.tilt_series is None:  # older checkpoints (no CTF) keep their hash
        del fields["tilt_series"], fields["phase_flipped"]
    else:
        digest.update(Path(config.tilt_series).read_bytes())
    settings = {"config": fields, "device": device, "box": source.box}
    if source.voxel_size is not None:  # only when given: older checkpoints keep their hash
        settings["voxel_size"] = source.voxel_size
    digest.update(json.dumps([stamps, settings], sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


_RECORD_KEYS = ("rows", "rotations", "shifts", "scores", "offsets", "failed", "inputs")


def _resumable(chunk: _Chunk, source: ParticleSource) -> dict | None:
    """Return the chunk's checkpoint if it is readable and its inputs are unchanged."""
    record = _read_json(chunk.checkpoint)
    if record is None or any(k not in record for k in _RECORD_KEYS):
        return None
    # JSON turns tuples into lists: compare in that form.
    if record["inputs"] != json.loads(json.dumps(input_stamps(source, chunk.rows))):
        return None
    return record


def _open_checkpoint(partial: Path, fingerprint: str, *, force: bool) -> str:
    """Create or reuse ``OUT.partial/``; return why an old one was discarded, or ``""``."""
    stamp = partial / "job.json"
    restarted = ""
    if partial.exists():
        job = _read_json(stamp)
        if job is None:
            # Nothing in the folder can be trusted without its stamp: start again.
            restarted = f"{stamp} was unreadable; the checkpoint was discarded"
            shutil.rmtree(partial)
        elif job.get("fingerprint") != fingerprint:
            if not force:
                raise InputError(
                    partial,
                    "checkpoint of a different job (other inputs or settings); "
                    "pass --force to discard it",
                )
            shutil.rmtree(partial)
    partial.mkdir(exist_ok=True)
    if _read_json(stamp) is None:
        write_json(stamp, {"fingerprint": fingerprint}, force=True, indent=None)
    return restarted


def diagnostics_path(out_star: str | Path) -> Path:
    """Return where :func:`align_particles_file` writes its trust diagnostics."""
    out = Path(out_star)
    return out.with_name(f"{out.stem}_diagnostics.json")


def _diagnose(
    source: ParticleSource,
    reference: Path,
    config: AlignJobConfig,
    poses: dict[int, tuple[list, list, float]],
    device: str,
) -> AlignmentDiagnostics:
    """Trust diagnostics on a spread sample of the aligned particles."""
    rows = sorted(poses)
    step = max(1, math.ceil(len(rows) / _DIAGNOSTIC_SAMPLE))
    sample = rows[::step]
    volumes, _, _ = load_particles(source, sample)
    sample = [i for i in sample if i in volumes]
    ref, _ = read_mrc(reference, ndim=3, voxel_size=source.voxel_size)

    def column(k: int) -> torch.Tensor:
        return torch.tensor([poses[i][k] for i in sample], dtype=torch.float32, device=device)

    poses_found = AlignmentResult(rotations=column(0), shifts=column(1), scores=column(2))
    stack = torch.stack([volumes[i] for i in sample]).to(device)
    return diagnose_alignment(ref.to(device), stack, poses_found, config=config.aligner_config())


def align_particles_file(
    particles_star: str | Path,
    reference: str | Path,
    out_star: str | Path,
    *,
    config: AlignJobConfig,
    tomograms: Sequence[str | Path] | None = None,
    scheduler: str | None = None,
    device: str = "cpu",
    allow_outside: Sequence[str | Path] = (),
    voxel_size: float | None = None,
    diagnose: bool = True,
    force: bool = False,
    progress: bool = False,
) -> AlignJobResult:
    """Align the particles of a RELION STAR file to a reference; write a STAR file.

    Particles are split into chunks aligned in parallel by
    :func:`inversa.core.parallel.map_items` (local threads, or a Dask scheduler). Each
    finished chunk is checkpointed in ``OUT.partial/`` with the stamps (size, mtime,
    inode) of its input files; a rerun of the same job (same STAR file, reference,
    tomograms and settings) resumes the chunks whose inputs are unchanged and redoes the
    others. An unreadable ``job.json`` discards the checkpoint (a clean restart, reported
    in the result); a checkpoint of another job is refused without ``force``. The folder
    is removed once ``OUT`` is written. ``OUT.lock`` is held while the job runs: a second
    run on the same output is refused. Unreadable particles (missing file, non-finite
    voxels, wrong box, outside their tomogram) are reported and skipped.

    Parameters
    ----------
    particles_star
        RELION particle STAR file (``rlnImageName`` subtomograms, or tomogram coordinates
        when ``tomograms`` is given).
    reference
        Reference MRC, same box and voxel size as the particles.
    out_star
        Output STAR file: the input rows with new ``rlnAngle*`` and ``rlnOrigin*Angst``
        (``rlnImageName`` rewritten relative to its folder).
    config
        Aligner and chunking.
    tomograms
        Tomogram MRCs or ``tomograms.star`` to cut the particles from (box of the
        reference).
    scheduler
        Dask scheduler address, ``"processes"``, or ``None`` for local threads.
    device
        Torch device the alignment runs on.
    allow_outside
        Folders outside the STAR file's and the current folder that names may point into.
    voxel_size
        Angstrom per voxel of the input MRCs, replacing their headers' (no warning for
        an unset header); it must agree with the STAR file's ``rlnImagePixelSize`` where
        that is given. ``None`` reads the headers.
    diagnose
        Judge whether the poses can be trusted and write ``OUT_diagnostics.json``.
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
        Bad inputs or outputs (checked before any work), another run on ``out_star``, a
        checkpoint of another job without ``force``, or every particle failed.
    """
    out = Path(out_star)
    partial = out.with_name(out.name + ".partial")
    outputs = [out, diagnostics_path(out)] if diagnose else [out]
    check_outputs(outputs, force=force)
    reference = Path(reference)
    source_box = None
    if tomograms:
        source_box = read_mrc(reference, ndim=3, voxel_size=voxel_size)[0].shape[-1]
    source = load_source(
        particles_star,
        tomograms=tomograms,
        box=source_box,
        allow_outside=allow_outside,
        voxel_size=voxel_size,
    )
    checked_reference(reference, source)
    if tomograms:
        outside_report(source)
    with output_lock(out):
        check_outputs(outputs, force=force)  # again: a run that held the lock may have written it
        fingerprint = _fingerprint(source, reference, config, tomograms, device)
        restarted = _open_checkpoint(partial, fingerprint, force=force)
        n = len(source.particles)
        size = config.chunk_size
        chunks = [
            _Chunk(k, tuple(range(s, min(s + size, n))), partial / f"chunk-{k:06d}.json")
            for k, s in enumerate(range(0, n, size))
        ]
        existing = [c for c in chunks if c.checkpoint.exists()]
        done = {c.index: r for c in existing if (r := _resumable(c, source)) is not None}
        todo = [c for c in chunks if c.index not in done]
        fn = functools.partial(
            _align_chunk, source=source, reference_path=reference, config=config, device=device
        )
        results = map_items(
            fn, todo, scheduler=scheduler, description="aligning", progress=progress
        )
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
            shutil.rmtree(partial)
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
        if source.images is None:
            # Back into each particle's subtomogram frame, as RELION 5 keeps them.
            table = to_subtomogram_frame(table, source.original.iloc[rows])
        diagnostics = None
        if diagnose:
            poses = {
                i: (r, s, c) for i, r, s, c in zip(rows, rotations, shifts, scores, strict=True)
            }
            diagnostics = _diagnose(source, reference, config, poses, device)
            write_json(diagnostics_path(out), diagnostics_payload(diagnostics), force=force)
        write_particle_star(out, table, source.optics, source=source, rows=rows, force=force)
        shutil.rmtree(partial)
    return AlignJobResult(
        star=out,
        n_aligned=len(rows),
        failed=sorted(failed),
        mean_score=float(np.mean(scores)),
        resumed_chunks=len(done),
        redone_chunks=len(existing) - len(done),
        restarted=restarted,
        diagnostics=diagnostics,
        diagnostics_file=diagnostics_path(out) if diagnose else None,
    )

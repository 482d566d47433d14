"""The shared benchmark harness: timing, peak memory, peers side by side, JSON out."""

from __future__ import annotations

import multiprocessing
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from inversa.core.io import atomic_write, write_json

__all__ = [
    "Astra2D",
    "BenchReport",
    "PeakMemory",
    "SpawnedProbe",
    "best_time",
    "has_astra",
    "measure_fresh",
    "pyplot",
    "save_figure",
]


def best_time(fn: Callable[[], object], *, repeat: int = 3, warmup: int = 1) -> float:
    """Best wall-clock seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs.

    The minimum is the least noisy estimate of what the code costs on an idle machine.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


class PeakMemory:
    """Context manager sampling the process's resident memory to report its peak increase.

    Torch's CPU allocations are invisible to ``tracemalloc``, so the resident set size is
    sampled (every 5 ms) instead; ``peak_mib`` is the peak minus the size on entry.
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak_mib = 0.0
        self._stop = threading.Event()

    def _rss(self) -> int:
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss

    def _watch(self) -> None:
        peak = self._base
        while not self._stop.is_set():
            peak = max(peak, self._rss())
            time.sleep(self.interval_s)
        self.peak_mib = (max(peak, self._rss()) - self._base) / 2**20

    def __enter__(self) -> PeakMemory:
        self._base = self._rss()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _fresh_peak_start() -> int | None:
    """Return the resident size after handing freed heap back and resetting the peak.

    The probe process runs one point after another, so its heap holds the free chunks of
    the earlier points: allocations that reuse them would not grow the resident set.
    ``malloc_trim`` returns them to the system first, and writing 5 to ``clear_refs`` resets
    ``VmHWM`` to the current size (Linux >= 4.0). ``None`` when either is unavailable.
    """
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
        return _status("VmRSS:")
    except (OSError, AttributeError, KeyError):
        return None


def measure_fresh(fn) -> tuple[object, float, float]:
    """Run ``fn()``; return ``(result, peak MiB above the start, seconds)``.

    Meant for a :class:`SpawnedProbe` child: the heap is trimmed and the kernel's peak
    reset first (:func:`_fresh_peak_start`), so the peak is this call's own growth.
    """
    base = _fresh_peak_start()
    if base is None:  # no /proc or glibc: sample the resident size instead
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            out = fn()
            sec = time.perf_counter() - t0
        return out, mem.peak_mib, sec
    t0 = time.perf_counter()
    out = fn()
    sec = time.perf_counter() - t0
    return out, (_status("VmHWM:") - base) / 2**20, sec


def _fix_mmap_threshold(nbytes: int | None) -> None:
    """Fix glibc's mmap threshold in this process (``mallopt(M_MMAP_THRESHOLD, nbytes)``)."""
    if nbytes is None:
        return
    import ctypes

    try:
        if ctypes.CDLL("libc.so.6").mallopt(-3, int(nbytes)) != 1:  # -3: M_MMAP_THRESHOLD
            raise RuntimeError(f"mallopt refused an mmap threshold of {nbytes} bytes")
    except OSError:  # not glibc: its allocator keeps its own policy
        pass


class SpawnedProbe:
    """One fresh (spawned) process that runs the memory probes, one after the other.

    A forked child of a process whose OpenMP / torch threads are running can deadlock on a
    lock held by a thread that does not exist in the child, so the probes run in a spawned
    process instead: its heap holds only the imports, and :func:`measure_fresh` hands freed memory
    back and resets the peak before each probe. Functions and arguments are pickled, so
    only module-level functions and picklable values (configs, modules, tensors) go in.

    ``mmap_threshold`` (bytes) fixes glibc's threshold above which an allocation gets its
    own mapping, handed back to the system when freed. By default glibc raises it to the
    largest block freed so far, after which blocks of that size come from the heap and
    what they leave behind stays resident: the peak then depends on what ran before in
    the process, not only on the call measured. ``None`` keeps glibc's default.
    """

    def __init__(self, *, mmap_threshold: int | None = None) -> None:
        self.mmap_threshold = mmap_threshold

    def __enter__(self) -> SpawnedProbe:
        from concurrent.futures import ProcessPoolExecutor

        spawn = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=spawn,
            initializer=_fix_mmap_threshold,
            initargs=(self.mmap_threshold,),
        )
        return self

    def __call__(self, fn, *args):
        try:
            out = self._pool.submit(fn, *args).result()
        except Exception as exc:  # a probe that fails names itself, the bench stops
            raise RuntimeError(f"measurement in a child process failed: {exc!r}") from exc
        return tuple(torch.from_numpy(o) if isinstance(o, np.ndarray) else o for o in out)

    def __exit__(self, *exc) -> None:
        self._pool.shutdown()


@dataclass
class BenchReport:
    """Flat results of one benchmark run, printed as a table and written as JSON.

    Attributes
    ----------
    name
        Benchmark name (``inversa bench NAME``).
    quick
        Whether the quick (laptop, under a minute) sizes were used.
    values
        The flat JSON keys the benchmark's issue names.
    rows
        Human-readable table rows ``(what, ours, peer, ratio)``.
    """

    name: str
    quick: bool
    values: dict[str, object] = field(default_factory=dict)
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def compare(
        self,
        what: str,
        ours: float,
        peer: float | None,
        *,
        unit: str = "s",
        higher_is_better: bool = False,
    ) -> None:
        """Add a row ours vs peer with the ratio (> 1 means ours is better)."""
        if peer is None or ours == 0:
            ratio = "n/a"
        else:
            ratio = f"{(ours / peer) if higher_is_better else (peer / ours):.2f}x"
        peer_text = "n/a" if peer is None else f"{peer:.4g} {unit}"
        self.rows.append((what, f"{ours:.4g} {unit}", peer_text, ratio))

    def environment(self) -> dict[str, object]:
        """Machine facts recorded beside the numbers."""
        return {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
        }

    def print(self) -> None:
        """Print the comparison table (rich) and the other values."""
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"inversa bench {self.name}{' --quick' if self.quick else ''}")
        for col in ("measure", "inversa", "peer", "ratio (>1: inversa better)"):
            table.add_column(col)
        for row in self.rows:
            table.add_row(*row)
        console = Console()
        console.print(table)
        for key, value in self.values.items():
            if not isinstance(value, (list, dict)):
                console.print(f"{key} = {value}")

    def write_json(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the flat values (plus the environment) atomically."""
        payload = {**self.values, "quick": self.quick, "environment": self.environment()}
        write_json(path, payload, force=force)
        return Path(path)


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, *, force: bool, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG through :func:`atomic_write` and close it.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    """
    with atomic_write(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    pyplot().close(fig)
    return path


def has_astra() -> bool:
    """Whether ASTRA, the peer of the tomography benchmarks (the bench extra), imports."""
    try:
        import astra  # noqa: F401
    except ImportError:
        return False
    return True


class Astra2D:
    """ASTRA's CPU 2-D parallel-beam 'linear' (Joseph) projector on numpy arrays.

    FP, BP and FBP in one call each, SIRT and CGLS for ``n_iter`` iterations; ASTRA is
    imported on construction (check :func:`has_astra` first).
    """

    def __init__(self, n: int, angles_deg: np.ndarray, n_det: int) -> None:
        import astra

        self.astra = astra
        self.vol_geom = astra.create_vol_geom(n, n)
        self.proj_geom = astra.create_proj_geom("parallel", 1.0, n_det, np.deg2rad(angles_deg))
        self.proj = astra.create_projector("linear", self.proj_geom, self.vol_geom)

    def run(
        self,
        kind: str,
        *,
        vol: np.ndarray | None = None,
        sino: np.ndarray | None = None,
        n_iter: int = 1,
    ) -> np.ndarray:
        """Run ASTRA algorithm ``kind`` (``"FP"``: from ``vol``; others: from ``sino``)."""
        a = self.astra
        vol_id = a.data2d.create("-vol", self.vol_geom, 0 if vol is None else vol)
        sino_id = a.data2d.create("-sino", self.proj_geom, 0 if sino is None else sino)
        cfg = a.astra_dict(kind)
        cfg["ProjectorId"] = self.proj
        cfg["ProjectionDataId"] = sino_id
        cfg["VolumeDataId" if kind == "FP" else "ReconstructionDataId"] = vol_id
        if kind == "FBP":
            cfg["FilterType"] = "ram-lak"
        alg = a.algorithm.create(cfg)
        try:
            a.algorithm.run(alg, n_iter)
            return a.data2d.get(sino_id if kind == "FP" else vol_id)
        finally:
            a.algorithm.delete(alg)
            a.data2d.delete([vol_id, sino_id])

    def forward(self, image: np.ndarray) -> np.ndarray:
        """Project ``(n, n) -> (A, n_det)``."""
        return self.run("FP", vol=image)

    def backproject(self, sino: np.ndarray) -> np.ndarray:
        """Back-project ``(A, n_det) -> (n, n)``."""
        return self.run("BP", sino=sino)

    def fbp(self, sino: np.ndarray) -> np.ndarray:
        """Reconstruct ``(A, n_det) -> (n, n)`` by filtered back-projection (Ram-Lak)."""
        return self.run("FBP", sino=sino)

    def close(self) -> None:
        """Free the projector."""
        self.astra.projector.delete(self.proj)

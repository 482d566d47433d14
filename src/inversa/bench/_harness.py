"""The shared benchmark harness: timing, peak memory, peers side by side, JSON out."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from inversa.core.io import write_json

__all__ = ["BenchReport", "PeakMemory", "best_time"]


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

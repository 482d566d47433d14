"""Benchmarks behind ``inversa bench NAME``.

Each reproduces its method's headline experiment at laptop scale, measures inversa beside
the named peer in the same run and returns a :class:`BenchReport` with the JSON keys its
issue names. A benchmark is a public module ``inversa.bench.NAME`` with a function
``run(*, quick: bool) -> BenchReport``.
"""

import importlib
import pkgutil

from inversa.bench._harness import BenchReport, PeakMemory, best_time

__all__ = ["BenchReport", "PeakMemory", "available_benchmarks", "best_time", "run_benchmark"]


def available_benchmarks() -> list[str]:
    """Names of the benchmarks (the public modules of this package)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def run_benchmark(name: str, *, quick: bool = False) -> BenchReport:
    """Run the benchmark ``name`` (one of :func:`available_benchmarks`)."""
    from inversa.core.errors import InputError

    names = available_benchmarks()
    if name not in names:
        raise InputError(None, f"unknown benchmark {name!r}; available: {', '.join(names)}")
    return importlib.import_module(f"inversa.bench.{name}").run(quick=quick)

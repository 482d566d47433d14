"""Benchmarks behind ``inversa bench NAME``.

Each reproduces its method's headline experiment at laptop scale, measures inversa beside
the named peer in the same run and returns a :class:`BenchReport` with the JSON keys its
issue names.
"""

from collections.abc import Callable

from inversa.bench._harness import BenchReport, PeakMemory, best_time

__all__ = ["BENCHMARKS", "BenchReport", "PeakMemory", "best_time", "run_benchmark"]


def _tomography(*, quick: bool) -> BenchReport:
    from inversa.bench.tomography import run

    return run(quick=quick)


BENCHMARKS: dict[str, Callable[..., BenchReport]] = {"tomography": _tomography}


def run_benchmark(name: str, *, quick: bool = False) -> BenchReport:
    """Run the benchmark ``name`` (one of :data:`BENCHMARKS`)."""
    from inversa.core.errors import InputError

    if name not in BENCHMARKS:
        raise InputError(None, f"unknown benchmark {name!r}; available: {sorted(BENCHMARKS)}")
    return BENCHMARKS[name](quick=quick)

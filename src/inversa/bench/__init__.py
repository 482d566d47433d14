"""Benchmarks behind ``inversa bench NAME``.

Each reproduces its method's headline experiment at laptop scale, measures inversa beside
the named peer in the same run and returns a :class:`BenchReport` with the JSON keys its
issue names. A benchmark is a public module ``inversa.bench.NAME`` with a function
``run(*, quick: bool) -> BenchReport`` and, if it draws figures,
``figures(values: dict, out_dir: Path, *, force: bool) -> list[Path]``, which works from
the JSON values alone so that a saved run can be redrawn without rerunning it. A long
benchmark may also take ``resume: Path | None`` (see :func:`run_benchmark`).
"""

import importlib
import inspect
import pkgutil
from pathlib import Path

from inversa.bench._harness import BenchReport, PeakMemory, best_time

__all__ = [
    "BenchReport",
    "PeakMemory",
    "available_benchmarks",
    "benchmark_figures",
    "best_time",
    "run_benchmark",
]


def available_benchmarks() -> list[str]:
    """Names of the benchmarks (the public modules of this package)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _module(name: str):
    from inversa.core.errors import InputError

    names = available_benchmarks()
    if name not in names:
        raise InputError(None, f"unknown benchmark {name!r}; available: {', '.join(names)}")
    return importlib.import_module(f"inversa.bench.{name}")


def run_benchmark(name: str, *, quick: bool = False, resume: Path | None = None) -> BenchReport:
    """Run the benchmark ``name`` (one of :func:`available_benchmarks`).

    ``resume``: a file where a long benchmark saves its finished parts and from which a
    rerun continues; only benchmarks whose ``run`` takes ``resume`` accept it.
    """
    from inversa.core.errors import InputError

    module = _module(name)
    if resume is None:
        return module.run(quick=quick)
    if "resume" not in inspect.signature(module.run).parameters:
        raise InputError(resume, f"benchmark {name!r} cannot resume (it runs in one piece)")
    return module.run(quick=quick, resume=resume)


def benchmark_figures(name: str, values: dict, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Draw the figures of benchmark ``name`` from its JSON ``values`` into ``out_dir``.

    Raises
    ------
    InputError
        When the benchmark draws no figures or ``values`` lack the keys it needs.
    """
    from inversa.core.errors import InputError

    draw = getattr(_module(name), "figures", None)
    if draw is None:
        raise InputError(None, f"benchmark {name!r} draws no figures")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return draw(values, out_dir, force=force)
    except KeyError as exc:
        raise InputError(None, f"benchmark {name!r} results lack the key {exc}") from exc

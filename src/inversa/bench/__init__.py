"""Benchmarks behind ``inversa bench NAME``.

Each reproduces its method's headline experiment at laptop scale, measures inversa beside
the named peer in the same run and returns a :class:`BenchReport` with the JSON keys its
issue names. A benchmark is a public module ``inversa.bench.NAME`` with a function
``run(*, quick: bool) -> BenchReport`` and, if it draws figures,
``figures(values: dict, out_dir: Path, *, force: bool) -> list[Path]``, which works from
the JSON values alone so that a saved run can be redrawn without rerunning it. A long
benchmark may also take ``resume: Path | None``, and one that can run off the CPU takes
``device: str`` (see :func:`run_benchmark`).
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


def run_benchmark(
    name: str, *, quick: bool = False, resume: Path | None = None, device: str = "cpu"
) -> BenchReport:
    """Run the benchmark ``name`` (one of :func:`available_benchmarks`).

    Parameters
    ----------
    name
        The benchmark.
    quick
        Laptop sizes.
    resume
        A file where a long benchmark saves its finished parts and from which a rerun
        continues; only benchmarks whose ``run`` takes ``resume`` accept it.
    device
        Torch device (``cpu``, ``cuda``, ``cuda:1``, ...); passed to benchmarks whose
        ``run`` takes ``device``. The others run on the CPU and refuse any other device
        before starting, rather than silently measuring the CPU.

    Raises
    ------
    InputError
        An unknown benchmark, or an option it does not take.
    """
    from inversa.core.errors import InputError

    module = _module(name)
    takes = inspect.signature(module.run).parameters
    options: dict[str, object] = {"quick": quick}
    if resume is not None:
        if "resume" not in takes:
            raise InputError(resume, f"benchmark {name!r} cannot resume (it runs in one piece)")
        options["resume"] = resume
    if "device" in takes:
        options["device"] = device
    elif str(device).split(":")[0] != "cpu":
        raise InputError(None, f"benchmark {name!r} runs on the CPU only; drop --device {device}")
    return module.run(**options)


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

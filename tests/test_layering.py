"""The package's seams: imports cross package boundaries only through public names.

``docs/architecture.md`` says the layers above ``core`` call only public functions. A private
module ``inversa.a.b._m`` may be imported only from inside ``inversa.a.b`` (its own package or
a subpackage); every other importer goes through ``inversa.a.b``'s ``__init__``. Layering: a
package may import only the packages listed as below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "inversa"

# What each top-level package may import (besides itself); everything else is a layering break.
_BELOW = {
    "core": set(),
    "tomography": {"core"},
    "alignment": {"core", "tomography"},
    "poisson": {"core", "tomography"},
    "jdr": {"core"},
    "neurde": {"core"},
    "springblock": {"core"},
    "seislm": {"core"},
    "cryolithe": {"core", "tomography"},
    "icetide": {"core", "tomography"},
    "lofi": {"core", "tomography", "poisson"},
    "fibration": {"core", "tomography"},
}
# The top layers, lowest first: each may import the method packages and the top layers
# before it in this order, never one after it (benchmarks depend on the library, not the reverse).
_TOP_ORDER = ("workflows", "bench", "cli")
_TOP = set(_TOP_ORDER)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imported_modules(path: Path, text: str) -> list[tuple[int, str]]:
    """Absolute names of the modules (and ``from X import name`` targets) a file imports."""
    tree = ast.parse(text, filename=str(path))
    package = _package_of(path)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from inversa.a import _m` imports the private module inversa.a._m
            found += [(node.lineno, f"{module}.{a.name}") for a in node.names if a.name != "*"]
    return [(line, m) for line, m in found if m == "inversa" or m.startswith("inversa.")]


def _private_parent(module: str) -> str | None:
    """The package that owns the first private component of ``module``, if any."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def _sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.rglob("*.py"))]


def private_import_violations(sources: list[tuple[Path, str]] | None = None) -> list[str]:
    """Every import of a private module from outside the package that owns it."""
    bad = []
    for path, text in sources or _sources():
        importer = _package_of(path)
        for line, module in _imported_modules(path, text):
            owner = _private_parent(module)
            if owner is None:
                continue
            if importer == owner or importer.startswith(owner + "."):
                continue
            bad.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    return bad


def layering_violations() -> list[str]:
    """Every import of a top-level package that is not below the importer."""
    bad = []
    for path, text in _sources():
        parts = _module_name(path).split(".")
        if len(parts) < 2:
            continue
        top = parts[1]
        allowed = _BELOW.get(top)
        for line, module in _imported_modules(path, text):
            target = module.split(".")
            if len(target) < 2 or target[1] == top:
                continue
            if top in _TOP:
                later = _TOP_ORDER[_TOP_ORDER.index(top) + 1 :]
                if target[1] in later:
                    bad.append(f"{path.relative_to(SRC)}:{line} imports {module}")
                continue
            if target[1] in _TOP or (allowed is not None and target[1] not in allowed):
                bad.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    return bad


def test_no_cross_package_private_imports():
    assert private_import_violations() == []


def test_layers_import_only_what_is_below_them():
    assert layering_violations() == []


def test_every_method_package_has_a_rule():
    tops = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert tops <= set(_BELOW) | _TOP


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from inversa.alignment._refine import RefineConfig\n", True),
        ("from inversa.alignment import _refine\n", True),
        ("import inversa.core._solve\n", True),
        ("from inversa.alignment import RefineConfig\n", False),
        ("from inversa.cli._options import parse_floats\n", False),  # own package
    ],
)
def test_the_checker_sees_private_imports(source, expected):
    # A module placed inside inversa/cli: private imports of other packages must be caught.
    fake = PACKAGE / "cli" / "_layering_probe.py"
    assert bool(private_import_violations([(fake, source)])) is expected


# Peers and plotting that the benchmarks use: never imported just by importing the package
# or a benchmark module (the CLI lists and runs benchmarks without paying for them).
_HEAVY = ("astra", "matplotlib", "skimage", "obspy", "seisbench", "torch_geometric", "sklearn")


def test_benchmarks_import_their_peers_lazily():
    # Each benchmark module may import what its method package imports; beyond that no peer
    # or plotting library is loaded until the benchmark runs.
    import subprocess
    import sys

    code = (
        "import sys, importlib\n"
        "import inversa.cli._app\n"
        f"heavy = {_HEAVY!r}\n"
        "print('cli', sorted(m for m in heavy if m in sys.modules))\n"
        "from inversa.bench import available_benchmarks\n"
        "for name in available_benchmarks():\n"
        "    importlib.import_module(f'inversa.{name}')\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(f'inversa.bench.{name}')\n"
        "    new = set(sys.modules) - before\n"
        "    print(name, sorted(m for m in heavy if m in new))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) >= 2
    assert [line for line in lines if not line.endswith(" []")] == []

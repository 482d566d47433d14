"""Compare two runs of the same benchmark: keys, non-timing values, timing ratios.

A refactoring must leave every accuracy figure of a benchmark unchanged; timings only move
within the machine's noise. Run the same ``inversa bench NAME --quick --json`` before and
after (e.g. in a ``git worktree`` of the old commit with ``PYTHONPATH=WORKTREE/src``) and:

    python benchmarks/compare_runs.py OLD.json NEW.json [OLD2.json NEW2.json ...]

Exit code 1 if keys differ or a non-timing value changed.
"""

from __future__ import annotations

import json
import math
import re
import sys

# Keys whose values are measured times, rates or sizes (they vary run to run).
TIMING = re.compile(r"(_s$|_s_|seconds|per_s|speedup|ratio|gflops|_mib|_gb|throughput|_ms$|_ms_)")


def _values(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return data.get("values", data)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(1, abs(a))
    return a == b


def compare(old_path: str, new_path: str) -> bool:
    old, new = _values(old_path), _values(new_path)
    ok = set(old) == set(new)
    print(f"{new_path}: {len(new)} keys, same keys: {ok}", sorted(set(old) ^ set(new)))
    changed, ratios = [], []
    for key in sorted(set(old) & set(new)):
        a, b = old[key], new[key]
        if TIMING.search(key):
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a:
                ratios.append((key, b / a))
        elif not _same(a, b):
            changed.append((key, a, b))
    print(f"  non-timing values changed: {len(changed)}")
    for key, a, b in changed:
        print(f"    {key}: {a} -> {b}")
    for key, r in ratios:
        print(f"  timing {key}: new/old = {r:.2f}")
    return ok and not changed


def main(argv: list[str]) -> int:
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__)
        return 2
    results = [compare(argv[i], argv[i + 1]) for i in range(0, len(argv), 2)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

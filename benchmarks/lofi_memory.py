"""LoFi vs U-Net training memory and seconds per step: the memory part of ``inversa bench lofi``.

The full LoFi benchmark trains eight networks first (about 45 minutes on one thread); this
script measures only its memory-vs-resolution points, each in a spawned process, and can
merge them into a saved benchmark JSON (``--merge``) with a note saying so.

    OMP_NUM_THREADS=1 python benchmarks/lofi_memory.py --merge benchmarks/results/lofi.json
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path

from inversa.bench.lofi import SIZES, training_memory
from inversa.core.io import read_json, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merge", type=Path, help="saved `inversa bench lofi` JSON to update")
    args = parser.parse_args()
    values = training_memory()
    print(
        f"{'size':>6} {'LoFi MiB':>9} {'U-Net MiB':>10} {'ratio':>6} {'LoFi s':>7} {'U-Net s':>8}"
    )
    for s in SIZES:
        lo, un = values[f"peak_mib_lofi_{s}"], values[f"peak_mib_unet_{s}"]
        sl, su = values[f"seconds_per_step_lofi_{s}"], values[f"seconds_per_step_unet_{s}"]
        print(f"{s:>9} {lo:>9.1f} {un:>9.1f} {un / lo:>9.1f} {sl:>9.3f} {su:>9.3f}")
    growth = values[f"peak_mib_lofi_{SIZES[-1]}"] / values[f"peak_mib_lofi_{SIZES[0]}"]
    print(f"LoFi growth {SIZES[0]}^2 -> {SIZES[-1]}^2: {growth:.2f}x")
    if args.merge is not None:
        saved = read_json(args.merge)
        saved.update(values)
        saved["memory_probe_note"] = (
            "peak_mib_* and seconds_per_step_* from benchmarks/lofi_memory.py "
            f"({datetime.date.today()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, "
            f"load average {os.getloadavg()[0]:.1f}); the other keys from the full run"
        )
        write_json(args.merge, saved, force=True)
        print(f"updated {args.merge}")


if __name__ == "__main__":
    main()

r"""CryoLithe models on the demo's scene: ``inversa demo``'s CryoLithe row, one model at a time.

The demo reconstructs its scene with the shipped wavelet model; this script runs the same
demo (``run_demo`` on ``DEMO_SCENE``) with ``inversa.cryolithe.default_model_path`` pointed at
each given model and writes the CryoLithe scores side by side, e.g. the model shipped before
a retraining against the one shipped now:

    git show cf97a57:src/inversa/cryolithe/data/cryolithe_wavelet.safetensors > old.safetensors
    python benchmarks/cryolithe_demo_models.py wavelet_600=old.safetensors \
        --json benchmarks/results/cryolithe_demo_models.json

Without ``NAME=PATH`` arguments the two shipped models (pixel and wavelet) run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import inversa.cryolithe as cryolithe
from inversa.core.io import read_json, write_json
from inversa.workflows import run_demo


def main() -> None:
    """Run the demo once per model and print / write the CryoLithe rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="NAME=PATH of a CryoLithe model")
    parser.add_argument("--json", type=Path, help="write the rows here (overwrites)")
    args = parser.parse_args()
    shipped = cryolithe.default_model_path
    models = dict(m.split("=", 1) for m in args.models)
    models |= {"pixel_shipped": shipped("pixel"), "wavelet_shipped": shipped("wavelet")}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in models.items():
            # run_demo imports default_model_path from the package at call time
            cryolithe.default_model_path = lambda head="wavelet", p=Path(path): p
            try:
                run_demo(Path(tmp) / name, force=True, cryolithe=True)
            finally:
                cryolithe.default_model_path = shipped
            metrics = read_json(Path(tmp) / name / "metrics.json")["methods"]
            rows[name] = {"model": str(path), **metrics["cryolithe"]}
            rows.setdefault("wbp", metrics["wbp"])
            rows.setdefault("sirt", metrics["sirt"])
            print(name, {k: v for k, v in rows[name].items() if k != "model"}, flush=True)
    if args.json:
        write_json(args.json, rows, force=True)


if __name__ == "__main__":
    main()

r"""CryoLithe models side by side on the benchmark's validation and held-out tomograms.

``inversa bench cryolithe`` scores the two shipped models (and trains the U-Net peer);
this script scores any number of model files on the same data, without the peers, to
choose between training runs: the validation tomogram (the scene that picks SIRT's
iterations, +-60 in 3 degrees) and the 8 held-out tomograms (2 scenes of 1AKE x 4 tilt
schemes), with the benchmark's own scenes, seeds, acquisition and scoring. WBP is scored
beside them. One torch thread per process; e.g.

    python benchmarks/cryolithe_models_heldout.py \
        pixel=src/inversa/cryolithe/data/cryolithe_pixel.safetensors \
        pixel_12k=runs/p12k/cryolithe_pixel.safetensors --json scores.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from inversa.bench.cryolithe import _acquire, _flipped, _held_out, _schemes, _scores
from inversa.core.io import write_json
from inversa.cryolithe import load_model, reconstruct, wbp_normalized

SHAPE, N_PARTICLES = (48, 96, 96), 24  # the full benchmark's held-out size


def main() -> None:
    """Score each NAME=PATH model; print a line per tomogram and the means."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="NAME=PATH of a CryoLithe model")
    parser.add_argument("--json", type=Path, help="write the scores here (overwrites)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    paths = dict(m.split("=", 1) for m in args.models)
    models = {name: load_model(path)[0] for name, path in paths.items()}
    # The benchmark's cases: (scene seed, scheme, series seed); 999 / 998 is validation.
    cases = [(999, "validation_60_3", 60.0, 3.0, 998)]
    for t in range(2):
        for s_i, (name, (tmax, step)) in enumerate(_schemes(False).items()):
            cases.append((100 + t, name, tmax, step, 1000 * t + s_i))
    rows: dict[str, list[dict]] = {m: [] for m in ["wbp", *models]}
    for seed, name, tmax, step, series_seed in cases:
        scene = _held_out(seed, SHAPE, N_PARTICLES)
        data, geo = _acquire(scene, tmax, step, series_seed)
        vols = {"wbp": wbp_normalized(_flipped(data, scene.voxel_size), geo, SHAPE)}
        for m, model in models.items():
            vols[m] = reconstruct(data, geo, model=model, shape=SHAPE)
        line = []
        for m, vol in vols.items():
            sc = _scores(vol, scene.target, voxel=scene.voxel_size, tilt_max=tmax)
            row = {"scene": seed, "scheme": name, "psnr_db": sc["psnr"], "ssim": sc["ssim"]}
            rows[m].append(row)
            line.append(f"{m} {sc['psnr']:.2f}/{sc['ssim']:.3f}")
        print(seed, name, " | ".join(line), flush=True)
    summary = {}
    for m, r in rows.items():
        held = r[1:]
        summary[m] = {
            "model": paths.get(m, "WBP of the phase-flipped tilts"),
            "validation_psnr_db": r[0]["psnr_db"],
            "validation_ssim": r[0]["ssim"],
            "held_out_psnr_db": sum(x["psnr_db"] for x in held) / len(held),
            "held_out_ssim": sum(x["ssim"] for x in held) / len(held),
            "per_tomogram": r,
        }
        print(m, {k: round(v, 3) for k, v in summary[m].items() if isinstance(v, float)})
    if args.json:
        write_json(args.json, summary, force=True)


if __name__ == "__main__":
    main()

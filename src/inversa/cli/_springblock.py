"""``inversa springblock curve | phase-diagram | simulate``."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, check_outputs, float_list, output_folder

sb_app = typer.Typer(
    help="Spring-block theory of feature learning: load curves, phase diagram, model.",
    no_args_is_help=True,
)
app.add_typer(sb_app, name="springblock")


def _write_json(path: Path, payload: dict, *, force: bool) -> None:
    from inversa.core.io import write_json

    write_json(path, payload, force=force)


@sb_app.command("curve")
def curve(
    model: Path = typer.Option(
        ..., "--model", help="make_mlp .safetensors, or torch.save(model) with --trust."
    ),
    data: str = typer.Option("digits", "--data", help="digits, gmm, or a .npz with x, y."),
    layers: str = typer.Option(
        None, "--layers", help="Comma-separated module names (default: activation modules)."
    ),
    trust: bool = typer.Option(
        False, "--trust", help="Allow a pickled whole module (runs code from the file)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write the curve as JSON."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Log-separation curve and per-layer load of a saved model on labelled data."""
    from inversa.springblock import load_dataset, load_model, separation_curve

    if out is not None:
        check_outputs([out], force=force)
    net = load_model(model, trust=trust)
    ds = load_dataset(data)
    names = None if layers is None else [v.strip() for v in layers.split(",") if v.strip()]
    c = separation_curve(net, ds.x_train, ds.y_train, layers=names, device=device)
    for k, (name, ld) in enumerate(zip(c.layers, c.log_separation.tolist(), strict=True)):
        load = "" if k == 0 else f"  load {float(c.load[k - 1]):+.3f}"
        typer.echo(f"{name:>24}  log D {ld:+.3f}{load}")
    typer.echo(f"curvature {c.curvature:+.4f}  spread {c.spread:.3f}  centroid {c.centroid:.3f}")
    if out is not None:
        payload = {
            "layers": list(c.layers),
            "log_separation": c.log_separation.tolist(),
            "load": c.load.tolist(),
            "curvature": c.curvature,
            "spread": c.spread,
            "centroid": c.centroid,
        }
        _write_json(out, payload, force=force)
        typer.echo(f"wrote {out}")


@sb_app.command("phase-diagram")
def phase(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (PNG + JSON)."),
    quick: bool = typer.Option(False, "--quick", help="3 x 3 grid, 2 seeds, 40 epochs."),
    data: str = typer.Option("digits", "--data", help="digits, gmm, or a .npz with x, y."),
    alphas: str = typer.Option(
        None,
        "--alphas",
        callback=float_list("--alphas", minimum=0.0, maximum=1.0),
        help="LeakyReLU slopes in [0, 1] (default 0,0.2,..,1).",
    ),
    noises: str = typer.Option(
        None,
        "--noises",
        callback=float_list("--noises", minimum=0.0),
        help="Noise levels (default 0,0.1,..,0.8).",
    ),
    seeds: int = typer.Option(None, "--seeds", min=1, help="Seeds per cell (default 10)."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Epochs per network (default 100)."),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Train the (noise x non-linearity) grid, fit the spring-block model, write PNG + JSON."""
    import dataclasses

    from inversa.springblock import (
        PhaseDiagramGrid,
        load_dataset,
        phase_diagram,
        plot_phase_diagram,
    )

    png, js = out / "springblock_phase_diagram.png", out / "springblock_phase_diagram.json"
    check_outputs([png, js], folders=[out], force=force)
    grid = PhaseDiagramGrid.quick() if quick else PhaseDiagramGrid()
    chosen = {"alphas": alphas, "noises": noises, "epochs": epochs}
    chosen["seeds"] = None if seeds is None else tuple(range(seeds))
    grid = dataclasses.replace(grid, **{k: v for k, v in chosen.items() if v is not None})
    dataset = load_dataset(data)
    with output_folder(out):
        result = phase_diagram(
            dataset,
            alphas=grid.alphas,
            noises=grid.noises,
            seeds=grid.seeds,
            epochs=grid.epochs,
            device=device,
        )
        plot_phase_diagram(result, png, force=force)
        _write_json(js, result.to_json(), force=force)
    typer.echo(
        f"{len(result.trained.settings)} networks in {result.seconds:.1f} s; sign agreement "
        f"{result.model.sign_agreement:.0%}; Spearman(linearity, accuracy) "
        f"{result.linearity_accuracy_spearman:+.3f} (p = {result.linearity_accuracy_pvalue:.2g})"
        f" -> {png}, {js}"
    )


@sb_app.command("refit")
def refit_cmd(
    from_json: Path = typer.Option(
        ..., "--from-json", help="A saved phase-diagram or `bench springblock` JSON."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Write the refitted values as JSON."),
    force: bool = Force,
) -> None:
    """Refit the spring-block model to a saved run's loads (no retraining); print agreements."""
    from inversa.core.io import read_json
    from inversa.springblock import refit_phase_diagram

    if out is not None:
        check_outputs([out], force=force, inputs=[from_json])
    values = read_json(from_json)
    new = refit_phase_diagram(values)
    pct = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
    typer.echo(
        f"sign agreement {pct(new['sign_agreement'])} in-sample, "
        f"{pct(new['sign_agreement_heldout_cells'])} held out by cell, "
        f"{pct(new['sign_agreement_heldout_seeds'])} held out by seed; "
        f"friction {new['model_friction_scale']:g}, backward excess "
        f"{new['model_backward_excess']:g}, noise {new['model_noise_scale']:g} "
        f"(floor {new['model_noise_floor']:g}), fit loss {new['model_fit_loss']:g}"
    )
    if out is not None:
        _write_json(out, new, force=force)
        typer.echo(f"wrote {out}")


@sb_app.command("simulate")
def simulate_cmd(
    friction: str = typer.Option(
        "0,0.05,0.1",
        "--friction",
        callback=float_list("--friction", minimum=0.0),
        help="Static friction values.",
    ),
    noise: str = typer.Option(
        "0",
        "--noise",
        callback=float_list("--noise", minimum=0.0),
        help="Noise values (all pairs are simulated).",
    ),
    backward_excess: float = typer.Option(
        0.0,
        "--backward-excess",
        min=0.0,
        help="Extra friction against backward motion (ratchet).",
    ),
    blocks: int = typer.Option(7, "--blocks", min=2, help="Number of blocks (layers)."),
    order: int = typer.Option(1, "--order", min=1, max=2, help="1: overdamped, 2: Langevin."),
    steps: int = typer.Option(600, "--steps", min=1, help="Simulation steps."),
    noise_decay: float = typer.Option(None, "--noise-decay", help="Order 2: noise decay time."),
    seed: int = typer.Option(0, "--seed", help="Noise seed."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the curves as JSON."),
    force: bool = Force,
) -> None:
    """Spring-block model curves (elongations = per-layer loads) for friction x noise."""
    import torch

    from inversa.springblock import SpringBlockConfig, curvature, simulate

    if out is not None:
        check_outputs([out], force=force)
    pairs = [(m, s) for m in friction for s in noise]  # tuples parsed by the callbacks
    cfg = SpringBlockConfig(blocks=blocks, order=order, steps=steps, noise_decay=noise_decay)
    fwd = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    x = simulate(
        fwd,
        torch.tensor([p[1] for p in pairs], dtype=torch.float64),
        backward_friction=fwd + backward_excess,
        config=cfg,
        seed=seed,
    )
    elong = torch.diff(x, dim=-1)
    moved = elong.sum(-1) > 0
    curv = [float(curvature(-x[i : i + 1])) if moved[i] else None for i in range(len(pairs))]
    for (m, s), e, k in zip(pairs, elong.tolist(), curv, strict=True):
        shape = "stuck (friction >= pull)" if k is None else f"curvature {k:+.4f}"
        typer.echo(
            f"friction {m:g} noise {s:g}: {shape}; elongations " + " ".join(f"{v:.3f}" for v in e)
        )
    if out is not None:
        payload = {
            "friction": [p[0] for p in pairs],
            "noise": [p[1] for p in pairs],
            "positions": x.tolist(),
            "curvature": curv,
            "backward_excess": backward_excess,
            "config": cfg.__dict__,
        }
        _write_json(out, payload, force=force)
        typer.echo(f"wrote {out}")

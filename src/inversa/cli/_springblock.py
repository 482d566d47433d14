"""``inversa springblock curve | phase-diagram | simulate``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Force

sb_app = typer.Typer(
    help="Spring-block theory of feature learning: load curves, phase diagram, model.",
    no_args_is_help=True,
)
app.add_typer(sb_app, name="springblock")


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter("expected comma-separated numbers", param_hint=name) from None


def _write_json(path: Path, payload: dict, *, force: bool) -> None:
    from inversa.core.io import atomic_write

    with atomic_write(path, force=force) as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=2) + "\n")


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
    force: bool = Force,
) -> None:
    """Log-separation curve and per-layer load of a saved model on labelled data."""
    from inversa.core.errors import OutputExistsError
    from inversa.springblock import load_dataset, separation_curve
    from inversa.springblock._io import load_model

    if out is not None and out.exists() and not force:
        raise OutputExistsError(out)
    net = load_model(model, trust=trust)
    ds = load_dataset(data)
    names = None if layers is None else [v.strip() for v in layers.split(",") if v.strip()]
    c = separation_curve(net, ds.x_train, ds.y_train, layers=names)
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
    alphas: str = typer.Option(None, "--alphas", help="LeakyReLU slopes (default 0,0.2,..,1)."),
    noises: str = typer.Option(None, "--noises", help="Noise levels (default 0,0.1,..,0.8)."),
    seeds: int = typer.Option(None, "--seeds", help="Seeds per cell (default 10)."),
    epochs: int = typer.Option(None, "--epochs", help="Epochs per network (default 100)."),
    force: bool = Force,
) -> None:
    """Train the (noise x non-linearity) grid, fit the spring-block model, write PNG + JSON."""
    from inversa.core.errors import InputError, OutputExistsError
    from inversa.springblock import load_dataset, phase_diagram, plot_phase_diagram

    png, js = out / "springblock_phase_diagram.png", out / "springblock_phase_diagram.json"
    if not out.is_dir():
        raise InputError(out, "output folder does not exist")
    for f in (png, js):
        if f.exists() and not force:
            raise OutputExistsError(f)
    q = dict(alphas=(0.0, 0.5, 1.0), noises=(0.0, 0.3, 0.6), seeds=tuple(range(2)), epochs=40)
    kw = q if quick else {}
    if alphas is not None:
        kw["alphas"] = tuple(_floats(alphas, "--alphas"))
    if noises is not None:
        kw["noises"] = tuple(_floats(noises, "--noises"))
    if seeds is not None:
        kw["seeds"] = tuple(range(seeds))
    if epochs is not None:
        kw["epochs"] = epochs
    result = phase_diagram(load_dataset(data), **kw)
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
    from inversa.core.errors import InputError, OutputExistsError
    from inversa.springblock import refit_phase_diagram

    if out is not None and out.exists() and not force:
        raise OutputExistsError(out)
    try:
        values = json.loads(from_json.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(from_json, f"not a readable JSON file ({exc})") from None
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
    friction: str = typer.Option("0,0.05,0.1", "--friction", help="Static friction values."),
    noise: str = typer.Option("0", "--noise", help="Noise values (all pairs are simulated)."),
    backward_excess: float = typer.Option(
        0.0, "--backward-excess", help="Extra friction against backward motion (ratchet)."
    ),
    blocks: int = typer.Option(7, "--blocks", help="Number of blocks (layers)."),
    order: int = typer.Option(1, "--order", help="1: overdamped, 2: Langevin."),
    steps: int = typer.Option(600, "--steps", help="Simulation steps."),
    noise_decay: float = typer.Option(None, "--noise-decay", help="Order 2: noise decay time."),
    seed: int = typer.Option(0, "--seed", help="Noise seed."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the curves as JSON."),
    force: bool = Force,
) -> None:
    """Spring-block model curves (elongations = per-layer loads) for friction x noise."""
    import torch

    from inversa.core.errors import InputError, OutputExistsError
    from inversa.springblock import SpringBlockConfig, curvature, simulate

    if out is not None and out.exists() and not force:
        raise OutputExistsError(out)
    mus, sigmas = _floats(friction, "--friction"), _floats(noise, "--noise")
    pairs = [(m, s) for m in mus for s in sigmas]
    cfg = SpringBlockConfig(blocks=blocks, order=order, steps=steps, noise_decay=noise_decay)
    if backward_excess < 0:
        raise InputError(None, "--backward-excess must be >= 0")
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

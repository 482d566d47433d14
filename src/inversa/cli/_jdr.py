"""``inversa jdr rewire``: joint denoising and rewiring of a graph file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from inversa.cli._app import app
from inversa.cli._options import Device, Force, check_outputs

jdr_app = typer.Typer(help="JDR: joint denoising and rewiring of graphs.", no_args_is_help=True)
app.add_typer(jdr_app, name="jdr")


@jdr_app.command("rewire")
def rewire(
    graph: Path = typer.Argument(..., help="PyG .pt Data file, or an edge list 'i j [w]'."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .pt, or edge list (+ .x.npy)."),
    features: Path = typer.Option(None, help="Features (.npy or text) for an edge list."),
    iterations: int = typer.Option(10, "--iterations", "-K", min=0, help="JDR iterations K."),
    l_a: int = typer.Option(10, min=0, help="Eigenvectors of A rewired (L_A)."),
    l_x: int = typer.Option(10, min=0, help="Singular vectors of X denoised (L_X)."),
    eta_a: float = typer.Option(0.2, min=0.0, max=1.0, help="Interpolation rate for A (eta_A)."),
    eta_x: float = typer.Option(0.2, min=0.0, max=1.0, help="Interpolation rate for X (eta_X)."),
    eta_x2: float = typer.Option(0.5, min=0.0, max=1.0, help="Final feature blend (eta_X2)."),
    top_k: int = typer.Option(64, min=1, help="Edges kept per node."),
    abs_ordering: bool = typer.Option(
        False, "--abs-ordering", help="Rank eigenvalues by magnitude (heterophilic graphs)."
    ),
    offset: int = typer.Option(
        0, min=0, help="Leading eigenvectors of A skipped (1: the Perron one)."
    ),
    denoise: Literal["both", "graph", "features", "graph+features"] = typer.Option(
        "both",
        help="What the output replaces: both (= graph+features), graph or features.",
    ),
    method: Literal["auto", "dense", "sparse"] = typer.Option(
        "auto", help="auto, dense or sparse."
    ),
    device: str = Device,
    force: bool = Force,
) -> None:
    """Rewire GRAPH and denoise its features; write the result to OUT."""
    from inversa.core.errors import InputError
    from inversa.jdr import DENOISE_CHOICES, JDR, JDRConfig, read_graph, write_graph

    sides = DENOISE_CHOICES.get("graph+features" if denoise == "both" else denoise)
    if sides is None:
        choices = ", ".join(["both", *DENOISE_CHOICES])
        raise InputError(None, f"--denoise must be one of {choices}, got {denoise!r}")
    inputs = [graph] if features is None else [graph, features]
    check_outputs([out], force=force, inputs=inputs)  # fail before the (long) rewiring
    config = JDRConfig(
        iterations=iterations,
        l_a=l_a,
        l_x=l_x,
        eta_a=eta_a,
        eta_x=eta_x,
        eta_x2=eta_x2,
        top_k=top_k,
        abs_ordering=abs_ordering,
        offset=offset,
        denoise_a=sides[0],
        denoise_x=sides[1],
        method=method,
    )
    data = read_graph(graph, features=features)
    rewired = JDR(config=config)(data.to(device))
    written = write_graph(rewired.cpu(), out, force=force)
    typer.echo(
        f"{data.num_nodes} nodes: {data.edge_index.shape[1]} -> "
        f"{rewired.edge_index.shape[1]} directed edges -> {', '.join(map(str, written))}"
    )

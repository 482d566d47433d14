"""``inversa jdr rewire``: joint denoising and rewiring of a graph file."""

from __future__ import annotations

from pathlib import Path

import typer

from inversa.cli._app import app
from inversa.cli._options import Force

jdr_app = typer.Typer(help="JDR: joint denoising and rewiring of graphs.", no_args_is_help=True)
app.add_typer(jdr_app, name="jdr")


@jdr_app.command("rewire")
def rewire(
    graph: Path = typer.Argument(..., help="PyG .pt Data file, or an edge list 'i j [w]'."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .pt, or edge list (+ .x.npy)."),
    features: Path = typer.Option(None, help="Features (.npy or text) for an edge list."),
    iterations: int = typer.Option(10, "--iterations", "-K", help="JDR iterations K."),
    l_a: int = typer.Option(10, help="Eigenvectors of A rewired (L_A)."),
    l_x: int = typer.Option(10, help="Singular vectors of X denoised (L_X)."),
    eta_a: float = typer.Option(0.2, help="Interpolation rate for A (eta_A)."),
    eta_x: float = typer.Option(0.2, help="Interpolation rate for X (eta_X)."),
    eta_x2: float = typer.Option(0.5, help="Final feature blend (eta_X2)."),
    top_k: int = typer.Option(64, help="Edges kept per node."),
    abs_ordering: bool = typer.Option(
        False, "--abs-ordering", help="Rank eigenvalues by magnitude (heterophilic graphs)."
    ),
    offset: int = typer.Option(0, help="Leading eigenvectors of A skipped (1: the Perron one)."),
    denoise: str = typer.Option(
        "both",
        help="What the output replaces: both (= graph+features), graph or features.",
    ),
    method: str = typer.Option("auto", help="auto, dense or sparse."),
    force: bool = Force,
) -> None:
    """Rewire GRAPH and denoise its features; write the result to OUT."""
    from inversa.core.errors import InputError, OutputExistsError
    from inversa.jdr import JDR, JDRConfig, read_graph, write_graph
    from inversa.jdr._algorithm import DENOISE_CHOICES

    sides = DENOISE_CHOICES.get("graph+features" if denoise == "both" else denoise)
    if sides is None:
        choices = ", ".join(["both", *DENOISE_CHOICES])
        raise InputError(None, f"--denoise must be one of {choices}, got {denoise!r}")
    if out.exists() and not force:  # fail before the (possibly long) rewiring
        raise OutputExistsError(out)
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
    rewired = JDR(config=config)(data)
    written = write_graph(rewired, out, force=force)
    typer.echo(
        f"{data.num_nodes} nodes: {data.edge_index.shape[1]} -> "
        f"{rewired.edge_index.shape[1]} directed edges -> {', '.join(map(str, written))}"
    )

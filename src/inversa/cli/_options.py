"""Options shared by several commands."""

from __future__ import annotations

import typer

Force = typer.Option(False, "--force", help="Overwrite existing outputs.")
Device = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:1, ...")
Scheduler = typer.Option(
    None, "--scheduler", help="Dask scheduler address (tcp://host:port); local when omitted."
)


def parse_floats(text: str, *, count: int, name: str) -> tuple[float, ...]:
    """Parse ``"a,b"`` into floats, with a usage error naming the option."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            f"expected {count} comma-separated numbers", param_hint=name
        ) from None
    if len(values) != count:
        raise typer.BadParameter(f"expected {count} comma-separated numbers", param_hint=name)
    return values

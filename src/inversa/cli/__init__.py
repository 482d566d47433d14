"""The ``inversa`` command line: thin typer commands over the library's public functions."""

from inversa.cli._app import app, main

__all__ = ["app", "main"]

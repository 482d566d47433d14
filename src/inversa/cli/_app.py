"""The root typer app and the one place where errors become exit codes."""

from __future__ import annotations

import sys

import typer

from inversa.core.errors import InputError

app = typer.Typer(
    name="inversa",
    help="Learning and inverse problems: cryo-ET, CT and scientific ML on one core.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module registers its commands on `app` when imported.
from inversa.cli import (  # noqa: E402, F401
    _alignment,
    _bench,
    _demo,
    _jdr,
    _neurde,
    _poisson,
    _seislm,
    _springblock,
    _tomography,
)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input prints one line naming the file and exits with code 2."""
    try:
        rv = app(args=argv, prog_name="inversa", standalone_mode=False)
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except (typer.Exit, SystemExit) as exc:
        code = exc.exit_code if isinstance(exc, typer.Exit) else exc.code
        return int(code or 0)
    except Exception as exc:  # click usage errors carry their own exit code (2)
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return rv if isinstance(rv, int) else 0


def _entry() -> None:  # pragma: no cover - console-script shim
    sys.exit(main())

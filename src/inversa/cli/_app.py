"""The root typer app and the one place where errors become exit codes."""

from __future__ import annotations

import errno
import sys

import click
import typer

try:  # typer >= 0.24 vendors click; older versions raise click's own exceptions
    from typer._click.exceptions import ClickException as TyperClickException
    from typer._click.exceptions import NoArgsIsHelpError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException as TyperClickException
    from click.exceptions import NoArgsIsHelpError

from inversa.core.errors import InputError
from inversa.core.optional import missing_dependency

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
    _cryolithe,
    _demo,
    _fibration,
    _icetide,
    _jdr,
    _lofi,
    _neurde,
    _poisson,
    _seislm,
    _springblock,
    _tomography,
)

# The installed typer vendors its own click (typer._click); plain click is caught too so
# that a command or a library raising click's exceptions still ends in one line.
_CLICK_ERRORS: tuple[type[BaseException], ...] = (TyperClickException, click.ClickException)
_ABORTS: tuple[type[BaseException], ...] = (typer.Abort, click.exceptions.Abort)
# Writing failed for a reason the user can fix (disk full, read-only, no permission).
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM})


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _usage_line(exc: BaseException) -> str:
    message = _one_line(exc.format_message())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        return f"error: {message} (try '{ctx.command_path} --help')"
    return f"error: {message}"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every user error prints one line on stderr and exits with code 2.

    Usage errors (unknown option, missing or invalid value), `InputError` (bad files or
    values found by the library), a missing optional dependency and an output that cannot
    be written (disk full, read-only, no permission) all end in one line and code 2.
    Any other exception is a bug and keeps its traceback.
    """
    try:
        rv = app(args=argv, prog_name="inversa", standalone_mode=False)
    except InputError as exc:
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        return 2
    except _CLICK_ERRORS as exc:
        if isinstance(exc, (NoArgsIsHelpError, click.exceptions.NoArgsIsHelpError)):
            exc.show()  # a bare command group: its help is the answer
            return 2
        typer.echo(_usage_line(exc), err=True)
        return 2
    except _ABORTS:
        typer.echo("aborted", err=True)
        return 130
    except (typer.Exit, click.exceptions.Exit, SystemExit) as exc:
        code = exc.code if isinstance(exc, SystemExit) else exc.exit_code
        return int(code or 0)
    except ModuleNotFoundError as exc:
        missing = missing_dependency(exc)
        if missing is None:  # not an optional dependency: a broken install or a bug
            raise
        typer.echo(f"error: {missing}", err=True)
        return 2
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS:
            raise
        where = exc.filename or "output"
        typer.echo(f"error: {where}: {exc.strerror or exc}", err=True)
        return 2
    return rv if isinstance(rv, int) else 0


def _entry() -> None:  # pragma: no cover - console-script shim
    sys.exit(main())

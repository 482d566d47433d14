"""Options and checks shared by every command.

Everything here runs while the command line is parsed or before any work starts, so a
bad value or an unwritable output is refused with one line and exit code 2 and nothing
is written. Commands use:

- `Force`, `Device`, `Scheduler`, `VoxelSize`: shared options (device and scheduler are
  validated when parsed: a CUDA device on a CPU-only torch, an unreachable scheduler).
- `parse_floats` / `float_list`: the one parser of comma-separated numbers.
- `check_outputs`, `output_folder` (from `inversa.core.io`, shared with the workflows):
  refuse unwritable or existing outputs (without ``--force``) before the work starts;
  create an output folder and remove what a failed run created in it.
"""

from __future__ import annotations

import itertools
import math
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import typer

from inversa.core.io import check_outputs, output_folder

__all__ = [
    "Device",
    "Force",
    "Scheduler",
    "VoxelSize",
    "check_device",
    "check_outputs",
    "check_scheduler",
    "float_list",
    "fraction",
    "output_folder",
    "parse_floats",
    "parse_wedge",
    "positive",
]

# Seconds to wait for a scheduler's TCP port before refusing the address.
SCHEDULER_CONNECT_TIMEOUT = 3.0


def check_device(text: str) -> str:
    """Validate a torch device name (``cpu``, ``cuda``, ``cuda:1``, ``mps``).

    Raises `typer.BadParameter` for an unknown name or a device this machine lacks.
    """
    if text == "cpu":  # the default: no need to import torch
        return text
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise typer.BadParameter(
            f"{text!r} is not a torch device (cpu, cuda, cuda:1, mps)"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise typer.BadParameter(f"{text!r}: CUDA is not available (torch sees no GPU)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise typer.BadParameter(
                f"{text!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise typer.BadParameter(f"{text!r}: MPS is not available on this machine")
    elif device.type != "cpu":
        raise typer.BadParameter(f"{text!r}: use cpu, cuda, cuda:N or mps")
    return text


def check_scheduler(text: str | None) -> str | None:
    """Validate a Dask scheduler address and check that it accepts connections.

    ``None`` (local threads) and ``"processes"`` (local processes) pass unchanged; any
    other value must be ``tcp://HOST:PORT`` (or ``HOST:PORT``) of a reachable scheduler.
    The connection attempt waits at most `SCHEDULER_CONNECT_TIMEOUT` seconds.
    """
    if text is None or text == "processes":
        return text
    parts = urlsplit(text if "://" in text else f"tcp://{text}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None:
        raise typer.BadParameter(f"{text!r} is not a scheduler address like tcp://host:8786")
    try:
        with socket.create_connection((parts.hostname, port), SCHEDULER_CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise typer.BadParameter(f"cannot reach a Dask scheduler at {text} ({reason})") from None
    return text


def _callback(check: Callable[[str], object]) -> Callable[[str | None], object]:
    # typer calls option callbacks with the default too: leave an unset option alone.
    def callback(value: str | None) -> object:
        return None if value is None else check(value)

    return callback


Force = typer.Option(False, "--force", help="Overwrite existing outputs.")
Device = typer.Option(
    "cpu",
    "--device",
    callback=check_device,
    help="Torch device: cpu, cuda, cuda:1, mps (checked before any work).",
)
Scheduler = typer.Option(
    None,
    "--scheduler",
    callback=check_scheduler,
    help="Dask scheduler address (tcp://host:port) or 'processes'; local threads when omitted.",
)


def positive(value: float | None) -> float | None:
    """Option callback: a finite number above zero (``None`` passes)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a number above 0, got {value:g}")
    return value


def fraction(value: float | None) -> float | None:
    """Option callback: a number in ``(0, 1]`` (``None`` passes)."""
    if value is not None and not (0 < value <= 1):
        raise typer.BadParameter(f"must be in (0, 1], got {value:g}")
    return value


def _positive_voxel(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"must be a positive number of Angstrom, got {value:g}")
    return value


VoxelSize = typer.Option(
    None,
    "--voxel-size",
    callback=_positive_voxel,
    help="Angstrom per voxel of the input MRC(s), overriding their header.",
)


def parse_floats(
    text: str,
    *,
    name: str,
    count: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> tuple[float, ...]:
    """Parse ``"a,b,..."`` into finite floats, with a usage error naming the option.

    Parameters
    ----------
    text
        Comma-separated numbers; blanks around commas are allowed, empty items are not.
    name
        The option, e.g. ``"--wedge"``, named in the error.
    count
        Required number of values; any positive number when ``None``.
    minimum, maximum
        Inclusive bounds every value must respect.

    Raises
    ------
    typer.BadParameter
        The text is not such a list.
    """
    want = "comma-separated numbers" if count is None else f"{count} comma-separated numbers"
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"expected {want}, got {text!r}", param_hint=name) from None
    if not values or (count is not None and len(values) != count):
        raise typer.BadParameter(f"expected {want}, got {text!r}", param_hint=name)
    for v in values:
        if not math.isfinite(v):
            raise typer.BadParameter(f"{v} is not a finite number", param_hint=name)
        if minimum is not None and v < minimum:
            raise typer.BadParameter(f"{v:g} is below {minimum:g}", param_hint=name)
        if maximum is not None and v > maximum:
            raise typer.BadParameter(f"{v:g} is above {maximum:g}", param_hint=name)
    return values


def float_list(
    name: str,
    *,
    count: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    increasing: bool = False,
    integers: bool = False,
) -> Callable[[str | None], tuple[float, ...] | None]:
    """Make an option callback that parses ``"a,b,..."`` when the command line is read.

    The command receives a tuple (or ``None`` when the option was not given), e.g.
    ``shape: str = typer.Option("48,128,128", callback=float_list("--shape", count=3,
    integers=True, minimum=1))``. ``increasing`` requires strictly increasing values;
    ``integers`` requires whole numbers and returns ints.
    """

    def check(text: str) -> tuple[float, ...]:
        values = parse_floats(text, name=name, count=count, minimum=minimum, maximum=maximum)
        if increasing and any(b <= a for a, b in itertools.pairwise(values)):
            raise typer.BadParameter(f"values must increase, got {text!r}", param_hint=name)
        if integers:
            if any(v != int(v) for v in values):
                raise typer.BadParameter(f"expected whole numbers, got {text!r}", param_hint=name)
            return tuple(int(v) for v in values)
        return values

    return _callback(check)  # type: ignore[return-value]


def parse_wedge(text: str | None, *, name: str = "--wedge") -> tuple[float, float] | None:
    """Parse a ``MIN,MAX`` tilt range in degrees (``-90 <= MIN < MAX <= 90``)."""
    if text is None:
        return None
    lo, hi = parse_floats(text, name=name, count=2, minimum=-90.0, maximum=90.0)
    if lo >= hi:
        raise typer.BadParameter(f"MIN must be below MAX, got {text!r}", param_hint=name)
    return lo, hi

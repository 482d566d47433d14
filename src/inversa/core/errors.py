"""Errors that name the file and the problem; the CLI turns them into exit code 2."""

from __future__ import annotations

import os

__all__ = ["InputError", "OutputExistsError"]


class InputError(Exception):
    """Bad user input: a missing, unreadable or inconsistent file, or an invalid value.

    Parameters
    ----------
    path
        The file (or option) at fault; ``None`` when no single file is to blame.
    problem
        What is wrong, in words a user can act on.
    """

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")


class OutputExistsError(InputError):
    """An output file exists already and ``force`` was not given."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, "output exists already; pass --force to overwrite it")

"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path


class IrtuneError(Exception):
    """An error caused by the user's input or environment, not by a bug in irtune."""


class DataError(IrtuneError):
    """A problem in an input file, located by file and (when known) line."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


class LeakageError(IrtuneError):
    """Training queries overlap the queries that will be evaluated."""

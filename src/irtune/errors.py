"""User-facing errors: the CLI prints them as one line and exits with code 2.

Errors about an argument name it by its parameter (`batch_size must be at least 1`), as the
Python API spells it; the CLI shows the flag the user typed instead (`--batch-size`), from
`ParameterError.naming`, so the library never speaks in flags.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from string import Formatter


class IrtuneError(Exception):
    """An error caused by the user's input or environment, not by a bug in irtune."""


class ParameterError(IrtuneError):
    """A bad argument. `template` names parameters as `{name}` fields and the other values
    it shows as keyword arguments (`"{top_k} must be at least {minimum}", minimum=1`), so
    that every interface can name the parameters in its own words."""

    def __init__(self, template: str, /, **values: object) -> None:
        self.template, self.values = template, values
        fields = (name for _, name, _, _ in Formatter().parse(template) if name)
        self.parameters = tuple(dict.fromkeys(name for name in fields if name not in values))
        super().__init__(self.naming(str))

    @property
    def parameter(self) -> str:
        """The parameter the message is about (its first)."""
        return self.parameters[0]

    def naming(self, name: Callable[[str], str]) -> str:
        """The message with each parameter called `name(parameter)`."""
        return self.template.format(**{p: name(p) for p in self.parameters}, **self.values)


class InvalidValueError(ParameterError, ValueError):
    """An argument of the right type with a value that cannot be used."""


class InvalidTypeError(ParameterError, TypeError):
    """An argument of a type the parameter does not take."""


def invalid(parameter: str, problem: str, /, **values: object) -> InvalidValueError:
    """`parameter` followed by `problem` (a template of `values`), e.g.
    `invalid("top_k", "must be at least {minimum}", minimum=1)`."""
    return InvalidValueError("{" + parameter + "} " + problem, **values)


class DataError(IrtuneError, ValueError):
    """A problem in an input file, located by file and (when known) line."""

    def __init__(self, path: Path | str, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")


class LeakageError(ParameterError, ValueError):
    """Training queries overlap the queries that will be evaluated (the remedy names the
    parameter that allows it)."""

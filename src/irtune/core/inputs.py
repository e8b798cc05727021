"""The arguments of the Python API, checked and normalised where they come in.

Rules (the same for every public function):
- a path is a `str` or an `os.PathLike` (`pathlib.Path`), never empty (`""` would mean the
  current folder);
- where a list is expected, one item (a name, a path, a number) is a list of that one item,
  as `evaluate("minilm", "scifact")` reads; anything else must be a list or tuple whose items
  have the right type (a set has no order, a dict is not a list of names);
- a required list is not empty, a name is not blank;
- a mapping (`columns`, `qrels`, settings) is a `Mapping`, never a list of its keys;
- a switch (`strict`, `force`, `ignore_identical_ids`, ...) is a `bool`, never `"no"` or `0`.

A wrong type raises `InvalidTypeError` (a `TypeError`), a wrong value `InvalidValueError` (a
`ValueError`); both name the parameter.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from irtune.errors import InvalidTypeError, InvalidValueError, ParameterError

PathArg = str | os.PathLike[str]
T = TypeVar("T")
E = TypeVar("E", bound=ParameterError)
NOWHERE = object()  # `at` of a whole argument (else: the list index or mapping key of a part)


def _error(kind: type[E], parameter: str, at: object, problem: str, **values: object) -> E:
    """`parameter` (or its item `at`: `datasets[1]`) followed by `problem`, a template of `values`."""
    subject = "{" + parameter + "}" + ("" if at is NOWHERE else "[{at!r}]")
    return kind(f"{subject} {problem}", at=at, **values)


def wrong_type(parameter: str, expected: str, value: object, at: object = NOWHERE) -> InvalidTypeError:
    got = type(value).__name__
    return _error(
        InvalidTypeError, parameter, at, "must be {expected}, not {got}", expected=expected, got=got
    )


def path(parameter: str, value: object, at: object = NOWHERE) -> Path:
    """A path given as text or a path-like object, not empty."""
    if not isinstance(value, str | os.PathLike) or not isinstance(os.fspath(value), str):
        raise wrong_type(parameter, "a path (str or pathlib.Path)", value, at)
    if not os.fspath(value).strip():
        raise _error(InvalidValueError, parameter, at, "is empty; give a path")
    return Path(value)


def optional_path(parameter: str, value: object) -> Path | None:
    return None if value is None else path(parameter, value)


def text(parameter: str, value: object, at: object = NOWHERE) -> str:
    """A name or an id: text that is not blank."""
    if not isinstance(value, str):
        raise wrong_type(parameter, "text (str)", value, at)
    if not value.strip():
        raise _error(InvalidValueError, parameter, at, "is empty")
    return value


def optional_text(parameter: str, value: object) -> str | None:
    return None if value is None else text(parameter, value)


def flag(parameter: str, value: object) -> bool:
    """A yes/no switch: `True` or `False` only. A string is truthy whatever it says (`"false"`,
    `"no"`): a run decided by it would record one thing and do another."""
    if not isinstance(value, bool):
        raise wrong_type(parameter, "True or False (bool)", value)
    return value


def whole_number(parameter: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(parameter, "a whole number (int)", value)
    return value


def items(
    parameter: str,
    value: object,
    single: type | tuple[type, ...],
    item: Callable[[str, object, object], T],
    *,
    required: bool = True,
) -> list[T]:
    """A list of items checked by `item`; a lone value of type `single` is a list of one."""
    if isinstance(value, single) and not isinstance(value, bool):
        values: Sequence[object] = [value]
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        values = value
    else:
        raise wrong_type(parameter, "a list", value)
    if required and not values:
        raise _error(InvalidValueError, parameter, NOWHERE, "is empty; give at least one")
    return [item(parameter, v, i) for i, v in enumerate(values)]


def paths(parameter: str, value: object, *, required: bool = False) -> list[Path]:
    """One path or a list of paths."""
    return items(parameter, value, (str, os.PathLike), path, required=required)


def names(parameter: str, value: object, *, required: bool = True) -> list[str]:
    """One name or a list of names."""
    return items(parameter, value, str, text, required=required)


def datasets(parameter: str, value: object) -> list[str]:
    """Datasets by name or folder: one, or a list of them (paths kept as text)."""
    return items(parameter, value, (str, os.PathLike), dataset)


def dataset(parameter: str, value: object, at: object = NOWHERE) -> str:
    """A dataset by name or folder (as text: a name is looked up in the data folder)."""
    return text(parameter, value, at) if isinstance(value, str) else os.fspath(path(parameter, value, at))


def mapping(
    parameter: str, value: object, item: Callable[[str, object, object], T] | None = None
) -> dict[str, Any]:
    """A mapping with text keys (None: empty); `item` checks each value."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise wrong_type(parameter, "a mapping (dict)", value)
    checked: dict[str, Any] = {}
    for key, entry in value.items():
        name = text(parameter, key, key)
        checked[name] = item(parameter, entry, name) if item else entry
    return checked


def instance(parameter: str, value: object, module: str, cls: str, expected: str) -> None:
    """`value` is a `module.cls` (looked up only if the module was imported: an object of a
    class whose module was never imported cannot be one, and importing it may cost seconds)."""
    loaded = sys.modules.get(module)
    if loaded is None or not isinstance(value, getattr(loaded, cls)):
        raise wrong_type(parameter, expected, value)

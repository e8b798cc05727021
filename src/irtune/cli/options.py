"""Options shared by several commands, and those generated from a pydantic config, so that
flags never re-list it.

Every field of the model becomes `--field-name` (booleans `--name/--no-name`, lists a
comma-separated value), with the field's description as help. A flag left out is not
sent, so a TOML config file or the model's default applies; pydantic validates the
merged values, and a bad value is one line naming the option.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="IRTUNE_DATA_DIR", help="Folder holding BEIR datasets by name."),
]
CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", envvar="IRTUNE_CACHE_DIR", help="Embedding/mining cache folder."),
]
MlflowUri = Annotated[
    str | None,
    typer.Option(
        "--mlflow",
        help="MLflow tracking URI or folder: log this command's metrics there (experiment irtune).",
    ),
]
Baseline = Annotated[
    Path | None,
    typer.Option(
        help="Baseline results (default: the sweep's baseline for the settings of one frontier sweep, "
        "else the first given)."
    ),
]


def _scalar(annotation: Any) -> tuple[type, bool]:
    """(the flag's type, whether it is a list) for a field's annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _scalar(args[0]) if len(args) == 1 else (str, False)
    if origin is list:
        return str, True
    if origin is typing.Literal:
        return str, False
    if annotation in (bool, int, float, str):
        return annotation, False
    return str, False


def _help(name: str, field: FieldInfo) -> str:
    default = field.get_default(call_default_factory=True)
    shown = ",".join(map(str, default)) if isinstance(default, list) else default
    return f"{field.description or name.replace('_', ' ')} (default: {shown})."


def config_parameters(model: type[BaseModel]) -> list[inspect.Parameter]:
    """Keyword-only parameters (for a Typer command's signature), one per field."""
    parameters = []
    for name, field in model.model_fields.items():
        kind, _ = _scalar(field.annotation)
        flag = "--" + name.replace("_", "-")
        declaration = f"{flag}/--no-{name.replace('_', '-')}" if kind is bool else flag
        option = typer.Option(declaration, help=_help(name, field), show_default=False)
        parameters.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind | None, option]
            )
        )
    return parameters


def config_overrides(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """The flags that were given, as config values (lists split on commas)."""
    overrides: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        value = values.get(name)
        if value is None:
            continue
        _, is_list = _scalar(field.annotation)
        overrides[name] = [v.strip() for v in str(value).split(",") if v.strip()] if is_list else value
    return overrides


def with_config_flags(command: Any, config: type[BaseModel]) -> Any:
    """The command with one flag per config field added to its signature (Typer reads it)."""
    signature = inspect.signature(command, eval_str=True)
    fixed = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    command.__signature__ = signature.replace(parameters=[*fixed, *config_parameters(config)])
    return command

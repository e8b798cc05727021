"""Read TOML configs and turn pydantic validation errors into one-line messages naming
the offending file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from irtune.errors import IrtuneError

M = TypeVar("M", bound=BaseModel)


def validated(model_cls: type[M], data: dict[str, Any], source: str) -> M:
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        message = message.removeprefix("Value error, ")  # a validator's own message
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise IrtuneError(f"{source}: {key + ': ' if key else ''}{message}{more}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable, binary or malformed file is one line. A
    UTF-8 byte order mark (which Windows editors write) is skipped: TOML itself forbids it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise IrtuneError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise IrtuneError(f"{path}: is a folder, not a TOML file") from None
    except PermissionError:
        raise IrtuneError(f"{path}: cannot read (permission denied)") from None
    except UnicodeDecodeError as exc:
        raise IrtuneError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise IrtuneError(f"{path}: invalid TOML ({exc})") from None

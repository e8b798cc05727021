"""Turn pydantic validation errors into one-line messages naming the offending key."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from irtune.errors import IrtuneError

M = TypeVar("M", bound=BaseModel)


def validated(model_cls: type[M], data: dict[str, Any], source: str) -> M:
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise IrtuneError(f"{source}: {key}: {message}{more}") from None

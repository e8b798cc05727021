"""Flag values written as text (`KEY=VALUE`, `[SPLIT=]VALUE`, `384,256`) turned into the API's
values; a malformed one is a one-line error naming the flag."""

from __future__ import annotations

from irtune.errors import IrtuneError


def split_items(items: list[str], option: str, default: str | None) -> dict[str, str]:
    """[SPLIT=]VALUE items -> {split: value}; without a split: `default`, else the value's
    last '/' part (an ir_datasets id such as beir/scifact/test)."""
    found: dict[str, str] = {}
    for item in items:
        split, sep, value = item.partition("=")
        if not sep:
            value = item
            split = default or item.rstrip("/").rsplit("/", 1)[-1]
        split, value = split.strip(), value.strip()
        if not split or not value:
            raise IrtuneError(f"{option} {item!r}: expected [SPLIT=]VALUE")
        if split in found:
            raise IrtuneError(f"{option}: split {split!r} is given twice")
        found[split] = value
    return found


def whole_numbers(text: str, option: str) -> list[int]:
    """'384,256,128' -> [384, 256, 128]."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise IrtuneError(f"{option} must be whole numbers separated by commas, not {text!r}") from None


def key_numbers(items: list[str], option: str) -> dict[str, int]:
    """KEY=N items -> {key: N}."""
    params: dict[str, int] = {}
    for key, value in key_values(items, option).items():
        try:
            params[key] = int(value)
        except ValueError:
            raise IrtuneError(f"{option} {key}={value}: must be a whole number") from None
    return params


def key_values(items: list[str], option: str) -> dict[str, str]:
    """KEY=VALUE items -> {key: value}; a missing `=`, an empty key or a repeated key is an error."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise IrtuneError(f"{option} {item!r}: expected KEY=VALUE")
        if key in found:
            raise IrtuneError(f"{option}: {key!r} is given twice")
        found[key] = value.strip()
    return found

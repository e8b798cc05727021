"""Checks of user input made before any work starts.

A bad flag must fail in a second with one line, not after an hour of encoding, and must
leave nothing behind: these checks read the file system but never write to it, and import
torch only to ask whether a named accelerator exists. Every command runs them (through
the settings objects in `irtune.settings`, the study config, or the CLI) before loading a
model or a corpus.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from irtune.errors import IrtuneError

_DEVICE = re.compile(r"^(cpu|mps|cuda|xpu|npu|hpu)(:\d+)?$")
# accelerators torch itself can be asked about (npu/hpu need their vendors' plugins: left to torch)
_PROBED = ("cuda", "mps", "xpu")


def at_least(option: str, value: int | float | None, minimum: int | float) -> None:
    if value is not None and value < minimum:
        raise IrtuneError(f"{option} must be at least {minimum}, not {value}")


def fraction(option: str, value: float) -> None:
    """A share strictly between 0 and 1 (0 or 1 would leave one side of a split empty)."""
    if not 0.0 < value < 1.0:
        raise IrtuneError(f"{option} must be between 0 and 1 (exclusive), not {value}")


def device(option: str, value: str | None) -> None:
    """A torch device name that exists on this machine (cpu, cuda, cuda:N, mps, ...)."""
    if value is None:
        return
    if not _DEVICE.match(value):
        raise IrtuneError(f"{option} {value!r}: not a device (cpu, cuda, cuda:N, mps)")
    kind, _, number = value.partition(":")
    if kind not in _PROBED:
        return
    import torch

    backend: Any = getattr(torch, kind, None) if kind != "mps" else torch.backends.mps
    if backend is None or not backend.is_available():
        raise IrtuneError(f"{option} {value}: no {kind} device on this machine (use cpu)")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if number and int(number) >= count:
        raise IrtuneError(f"{option} {value}: this machine has {count} {kind} device(s)")


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _writable(option: str, path: Path, folder: Path) -> None:
    """`folder`, or its first existing ancestor, must be a folder this process can write in."""
    anchor = _nearest_existing(folder)
    if not anchor.is_dir():
        raise IrtuneError(f"{option} {path}: {anchor} is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise IrtuneError(f"{option} {path}: cannot write in {anchor} (permission denied)")


def output_folder(option: str, path: Path | None) -> None:
    """A folder that exists or can be created, and can be written in."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise IrtuneError(f"{option} {path}: is a file, not a folder")
    _writable(option, path, path)


def output_file(option: str, path: Path | None) -> None:
    """A file that can be written (replaced atomically: its folder must be writable)."""
    if path is None:
        return
    if path.is_dir():
        raise IrtuneError(f"{option} {path}: is a folder, not a file")
    _writable(option, path, path.parent)


def dataset_name(name: str, *, nested: bool = True) -> None:
    """A name under the data folder: relative and without `..` (which would reach outside
    it); with `nested=False` (a name irtune creates) a single folder name."""
    parts = Path(name).parts
    plain = nested or (len(parts) == 1 and "\\" not in name)
    if not plain or not name.strip() or Path(name).is_absolute() or ".." in parts or name[:1] in "~.":
        rule = "a folder name" if not nested else 'a name inside the data folder (no "..")'
        raise IrtuneError(f'dataset name "{name}": must be {rule}')

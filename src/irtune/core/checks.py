"""Checks of user input made before any work starts.

A bad flag must fail in a second with one line, not after an hour of encoding, and must
leave nothing behind: these checks read the file system but never write to it, and import
torch only to ask whether a named accelerator exists. Every command runs them (through
the settings objects in `irtune.retrieval.settings`, the study config, or the CLI) before loading a
model or a corpus.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from irtune.errors import IrtuneError, invalid

_DEVICE = re.compile(r"^(cpu|mps|cuda|xpu|npu|hpu)(:\d+)?$")
_SPLIT = re.compile(r"[A-Za-z0-9._-]+")
# accelerators torch itself can be asked about (npu/hpu need their vendors' plugins: left to torch)
_PROBED = ("cuda", "mps", "xpu")
NAME_MAX = 255  # bytes in one part of a path: the limit of ext4, XFS, btrfs, tmpfs and ZFS


def at_least(option: str, value: int | float | None, minimum: int | float) -> None:
    if value is not None and value < minimum:
        raise invalid(option, "must be at least {minimum}, not {value}", minimum=minimum, value=value)


def fraction(option: str, value: float) -> None:
    """A share strictly between 0 and 1 (0 or 1 would leave one side of a split empty)."""
    if not 0.0 < value < 1.0:
        raise invalid(option, "must be between 0 and 1 (exclusive), not {value}", value=value)


def device(option: str, value: str | None) -> None:
    """A torch device name that exists on this machine (cpu, cuda, cuda:N, mps, ...)."""
    if value is None:
        return
    if not _DEVICE.match(value):
        raise invalid(option, "{value!r}: not a device (cpu, cuda, cuda:N, mps)", value=value)
    kind, _, number = value.partition(":")
    if kind not in _PROBED:
        return
    import torch

    backend: Any = getattr(torch, kind, None) if kind != "mps" else torch.backends.mps
    if backend is None or not backend.is_available():
        raise invalid(option, "{value}: no {kind} device on this machine (use cpu)", value=value, kind=kind)
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if number and int(number) >= count:
        raise invalid(
            option, "{value}: this machine has {count} {kind} device(s)", value=value, count=count, kind=kind
        )


def path_fits(option: str, path: Path | str) -> None:
    """Every part of `path` within NAME_MAX bytes: past it, every look at the path (even
    asking whether it exists) fails with 'File name too long'."""
    longest = max((len(os.fsencode(part)) for part in Path(path).parts), default=0)
    if longest > NAME_MAX:
        problem = "{path}: name too long (a part of it is {longest} bytes; the limit is {limit})"
        raise invalid(option, problem, path=path, longest=longest, limit=NAME_MAX)


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _writable(option: str, path: Path, folder: Path) -> None:
    """`folder`, or its first existing ancestor, must be a folder this process can write in."""
    anchor = _nearest_existing(folder)
    if not anchor.is_dir():
        raise invalid(option, "{path}: {anchor} is a file, not a folder", path=path, anchor=anchor)
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise invalid(
            option, "{path}: cannot write in {anchor} (permission denied)", path=path, anchor=anchor
        )


def output_folder(option: str, path: Path | None) -> None:
    """A folder that exists or can be created, and can be written in."""
    if path is None:
        return
    path_fits(option, path)
    if path.exists() and not path.is_dir():
        raise invalid(option, "{path}: is a file, not a folder", path=path)
    _writable(option, path, path)


def output_file(option: str, path: Path | None) -> None:
    """A file that can be written (replaced atomically: its folder must be writable)."""
    if path is None:
        return
    path_fits(option, path)
    if path.is_dir():
        raise invalid(option, "{path}: is a folder, not a file", path=path)
    if path.exists() and not path.is_file():  # a device or a pipe (/dev/null): never replaced
        raise invalid(option, "{path}: is not a regular file", path=path)
    _writable(option, path, path.parent)


def replaceable_file(
    option: str, path: Path, written_here: Callable[[Path], bool], what: str, *, force: bool
) -> None:
    """An output file irtune may replace: absent, `what` (irtune's own output of the same
    setup, as `written_here` recognises it), or with `force` any regular file."""
    output_file(option, path)
    if path.exists() and not force and not written_here(path):
        raise invalid(
            option,
            "{path}: exists and is not {what}; write elsewhere, or force replacing it",
            path=path,
            what=what,
        )


def dataset_name(name: str, *, nested: bool = True) -> None:
    """A name under the data folder: relative and without `..` (which would reach outside
    it); with `nested=False` (a name irtune creates) a single folder name."""
    parts = Path(name).parts
    plain = nested or (len(parts) == 1 and "\\" not in name)
    if not plain or not name.strip() or Path(name).is_absolute() or ".." in parts or name[:1] in "~.":
        rule = "a folder name" if not nested else 'a name inside the data folder (no "..")'
        raise IrtuneError(f'dataset name "{name}": must be {rule}')
    path_fits("dataset name", name)


def split_name(option: str, name: str) -> None:
    """A split is a file name (`qrels/NAME.tsv`, `runs/DATASET.NAME.trec`): a plain name, so that
    `../../x` neither reads qrels from outside the dataset nor writes a run outside `--out`."""
    if not _SPLIT.fullmatch(name) or ".." in name:
        raise invalid(
            option,
            "{name!r}: must be a plain name (letters, digits, '.', '_', '-'; no '/' or '..')",
            name=name,
        )

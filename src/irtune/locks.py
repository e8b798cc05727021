"""Folder locks: two irtune processes never write one run folder or cache entry at once.

The lock is `flock` on the folder itself (no lock file to go stale: the kernel releases it
when the holder exits, even on kill -9). A run folder is refused to a second process with
one line; a cache entry makes the second process wait, then reuse what the first wrote.
Re-entrant within a process. POSIX only, like the rest of irtune's process handling.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from irtune.errors import IrtuneError

log = logging.getLogger(__name__)

_held: set[Path] = set()


@contextmanager
def folder_lock(folder: Path, *, what: str, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (created if missing) for the block. `what` says
    what the folder is for, in the message a second process gets."""
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _held:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise IrtuneError(
                    f"{folder}: another irtune process is writing this {what}; wait for it to "
                    "finish (re-run then to resume), or choose another folder"
                ) from None
            log.info("%s: waiting for another irtune process writing this %s", folder, what)
            fcntl.flock(fd, fcntl.LOCK_EX)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
    finally:
        os.close(fd)

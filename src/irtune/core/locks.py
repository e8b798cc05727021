"""Folder locks: two irtune processes never write one run folder or cache entry at once.

The lock is `flock` on the folder itself (no lock file to go stale: the kernel releases it
when the holder exits, even on kill -9). A run folder is refused to a second process with
one line; a cache entry makes the second process wait, then reuse what the first wrote.
If the block fails, the empty folders it created are removed while the lock is still held
(a waiting process then finds its folder gone and locks the one it recreates). Re-entrant
within a process. A file system without `flock` (some NFS, Lustre, FUSE mounts) runs
unlocked, with a warning.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from irtune.core.files import create_folder, remove_created_folders
from irtune.errors import IrtuneError

log = logging.getLogger(__name__)

_held: set[Path] = set()
# flock unsupported here: NFS (EBADF on a read-only descriptor), Lustre without -o flock
# (ENOSYS), some FUSE/CIFS mounts (ENOLCK, EOPNOTSUPP)
_NO_LOCKS = frozenset({errno.EBADF, errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})


@contextmanager
def folder_lock(folder: Path, *, what: str, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (created if missing) for the block. `what` says
    what the folder is for, in the message a second process gets."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    create_folder(folder, what)
    key = folder.resolve()
    if key in _held:
        yield
        return
    fd = _acquire(folder, what, wait)
    existing = {Path(d) for d, _, _ in os.walk(folder)}
    _held.add(key)
    try:
        yield
    except BaseException:
        remove_created_folders(folder, existing, created)
        raise
    finally:
        _held.discard(key)
        if fd is not None:
            os.close(fd)


def _acquire(folder: Path, what: str, wait: bool) -> int | None:
    """A descriptor of `folder` holding its lock (None where the file system has no locks)."""
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                os.close(fd)
                raise IrtuneError(
                    f"{folder}: another irtune process is writing this {what}; wait for it to "
                    "finish (re-run then to resume), or choose another folder"
                ) from None
            log.info("%s: waiting for another irtune process writing this %s", folder, what)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in _NO_LOCKS:
                raise
            log.warning(
                "%s: this file system has no locks; a second irtune process would not be held off", folder
            )
            return None
        if _same_folder(fd, folder):
            return fd
        os.close(fd)  # the holder failed and removed it: lock the folder that is there now


def _same_folder(fd: int, folder: Path) -> bool:
    try:
        now = os.stat(folder)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)

"""Atomic writes and hashing: nothing irtune writes is ever left half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from irtune.errors import IrtuneError


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it over `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as exc:
            if exc.filename is None:  # a failed write (disk full) says which file it was writing
                raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
            raise
        give_usual_mode(tmp_path)  # mkstemp creates 0600
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def give_usual_mode(path: Path) -> None:
    """The mode a file created by `open` gets (0666 less the umask), for files that their
    writer created private (mkstemp, safetensors) and that users read."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def create_folder(folder: Path, what: str) -> None:
    """`folder` with its missing parents, or one line saying why the file system refused (a
    pseudo file system such as /proc, a read-only mount, a full disk)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IrtuneError(f"{folder}: cannot create this {what} ({exc.strerror})") from None


def write_text_atomic(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path | str, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# file -> (size, mtime_ns, sha256) of the files hashed by this process (cache chunks, exports)
hashed_files: dict[Path, tuple[int, int, str]] = {}


def sha256_file_once(path: Path) -> str:
    """A large file's sha256, hashed once per process while its size and mtime stay the same
    (embedding chunks and model exports are checked on every use)."""
    stat = path.stat()
    seen = hashed_files.get(path)
    if seen is not None and seen[:2] == (stat.st_size, stat.st_mtime_ns):
        return seen[2]
    digest = sha256_file(path)
    hashed_files[path] = (stat.st_size, stat.st_mtime_ns, digest)
    return digest


def sha256_text(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


@contextmanager
def tidy_on_failure(folder: Path | None) -> Iterator[None]:
    """If the block fails, remove `folder` and the parents it created when they are empty: a
    command that fails leaves no empty folder behind. Nothing under a folder that existed is
    touched (another process may be working there); `irtune.core.locks.folder_lock` also removes
    the empty folders created inside the folder it holds."""
    created = [] if folder is None else [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for path in created:  # deepest first; a folder that holds anything stays
            with contextlib.suppress(OSError):
                os.rmdir(path)
        raise


def remove_created_folders(root: Path, existing: set[Path], created: list[Path]) -> None:
    """Empty folders under `root` that are not in `existing`, then the empty ones of `created`
    (deepest first). Files are never removed, nor the folders holding them."""
    for current, _, _ in os.walk(root, topdown=False):
        if Path(current) not in existing:
            with contextlib.suppress(OSError):  # not empty: kept
                os.rmdir(current)
    for path in created:
        with contextlib.suppress(OSError):
            os.rmdir(path)

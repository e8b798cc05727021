"""Download an official BEIR zip, verify its checksum and extract it safely and atomically."""

from __future__ import annotations

import hashlib
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from irtune.core import checks
from irtune.core.files import tidy_on_failure
from irtune.data.registry import BEIR_BASE_URL, KNOWN_DATASETS
from irtune.errors import IrtuneError, ParameterError, invalid


def source_for(name: str, mirror: str | None) -> str:
    """URL (or local file path) of `<name>.zip`, from the official host or a mirror."""
    if mirror is None:
        return f"{BEIR_BASE_URL}/{name}.zip"
    if Path(mirror).is_dir():
        local = Path(mirror) / f"{name}.zip"
        if not local.is_file():  # else urllib reports "unknown url type" for the path
            raise IrtuneError(f"{local}: not found in the mirror folder {mirror}")
        return str(local)
    if "://" not in mirror:
        raise invalid(
            "mirror", "{value!r}: neither a folder nor a URL (http://, https://, file://)", value=mirror
        )
    return f"{mirror.rstrip('/')}/{name}.zip"


def _copy_with_hashes(source: str, target: Path, show_progress: bool) -> tuple[str, str]:
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    stream: BinaryIO
    total: int | None
    try:
        if Path(source).is_file():
            stream, total = open(source, "rb"), Path(source).stat().st_size  # noqa: SIM115
        else:
            response = urllib.request.urlopen(source, timeout=60)
            stream, total = response, int(response.headers.get("Content-Length") or 0) or None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise IrtuneError(f"cannot download {source}: {exc}") from None
    with (
        stream,
        open(target, "wb") as out,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            disable=not show_progress,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task(f"download {Path(source).name}", total=total)
        try:
            while block := stream.read(1 << 20):
                md5.update(block)
                sha256.update(block)
                out.write(block)
                progress.advance(task, len(block))
        except (urllib.error.URLError, OSError) as exc:
            raise IrtuneError(f"download of {source} broke off: {exc}") from None
    return md5.hexdigest(), sha256.hexdigest()


def _check_member(info: zipfile.ZipInfo, archive: str) -> None:
    """Refuse absolute paths, `..` components and symbolic links inside the zip."""
    name = PurePosixPath(info.filename.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or (name.parts and ":" in name.parts[0]):
        raise IrtuneError(f"{archive}: refusing unsafe member path {info.filename!r}")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise IrtuneError(f"{archive}: refusing symbolic link member {info.filename!r}")


def extract_zip_safely(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member(info, archive.name)
            for info in members:
                zf.extract(info, into)
    except zipfile.BadZipFile as exc:
        raise IrtuneError(f"{archive.name}: not a valid zip file ({exc})") from None


def fetch_dataset(
    name: str,
    data_dir: Path,
    mirror: str | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    show_progress: bool = True,
) -> Path:
    """Download `<name>.zip`, verify it and extract to `data_dir/name`; returns that folder.

    Nothing appears at `data_dir/name` unless the checksum matched and the whole
    archive extracted: work happens in a temporary sibling folder renamed at the end.
    """
    checks.dataset_name(name, nested=False)
    checks.output_folder("data_dir", data_dir)
    target = data_dir / name
    if target.exists() and not force:
        return target
    if md5 is None and sha256 is None:
        known = KNOWN_DATASETS.get(name)
        if known is None:
            raise ParameterError('no checksum known for "{name}": pass {md5} or {sha256}', name=name)
        md5 = known.md5
    with tidy_on_failure(data_dir):
        data_dir.mkdir(parents=True, exist_ok=True)
        source = source_for(name, mirror)
        with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=data_dir) as work:
            archive = Path(work) / f"{name}.zip"
            got_md5, got_sha256 = _copy_with_hashes(source, archive, show_progress)
            if md5 is not None and got_md5 != md5.lower():
                raise IrtuneError(f"{source}: md5 mismatch (expected {md5}, got {got_md5})")
            if sha256 is not None and got_sha256 != sha256.lower():
                raise IrtuneError(f"{source}: sha256 mismatch (expected {sha256}, got {got_sha256})")
            extracted = Path(work) / "extracted"
            extract_zip_safely(archive, extracted)
            entries = list(extracted.iterdir())
            root = entries[0] if len(entries) == 1 and entries[0].is_dir() else extracted
            if not (root / "qrels").is_dir():
                raise IrtuneError(f"{source}: archive has no qrels/ folder, not a BEIR dataset")
            if target.exists():
                shutil.rmtree(target)
            root.rename(target)
    return target

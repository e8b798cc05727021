"""Import a user's own files into a validated BEIR folder with an import manifest.

Sources: a corpus, queries, qrels and *pairs* files (`irtune.data.import_readers`), an
`ir_datasets` dataset or files of a Hub dataset repo (`irtune.data.import_sources`).

Every problem is a one-line error naming file and line (or row), checked before
anything is written; the files are built beside the target, then moved in. The manifest says
which files went in (sha256), which column played which role, what was dropped and why, and
which files the import wrote: the only ones a forced re-import replaces (the user's own files,
a generated split of the same corpus and the generation journals stay). The dataset is held
like `generate` holds it, so one import or generation runs at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

from irtune.core import checks
from irtune.core.files import sha256_file, write_json_atomic
from irtune.core.locks import folder_lock
from irtune.data.beir import (
    GENERATION_JOURNALS,
    IMPORT_MANIFEST,
    SYNTHETIC_DIR,
    SYNTHETIC_MANIFEST,
    SYNTHETIC_QUERIES,
    SYNTHETIC_SPLIT,
    Qrels,
)
from irtune.data.beir_writer import beir_files, write_files
from irtune.data.import_manifest import (
    SPLIT_NAME,
    WRITTEN_FILE,
    ImportManifest,
    judged_relevant_to_own_id,
    qrels_summary,
    written_files,
)
from irtune.data.import_readers import (
    Imported,
    check_column_roles,
    read_corpus,
    read_pairs,
    read_qrels,
    read_queries,
)
from irtune.data.import_sources import local_source, read_ir_datasets
from irtune.errors import DataError, IrtuneError, ParameterError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportRequest:
    name: str
    _: KW_ONLY
    corpus: Path | None = None
    queries: Path | None = None
    qrels: Mapping[str, Path] = field(default_factory=dict)  # split -> file
    pairs: Mapping[str, Path] = field(default_factory=dict)  # split -> file
    columns: Mapping[str, str] = field(default_factory=dict)  # role -> column name
    ir_datasets: Mapping[str, str] = field(default_factory=dict)  # split -> ir_datasets id
    # judgements of documents absent from the corpus: kept (as trec_eval and BEIR) or dropped
    drop_unknown_judgements: bool = False


def check_split_name(split: str) -> None:
    if split == SYNTHETIC_SPLIT:
        raise IrtuneError(f"split name {split!r} is reserved for generated queries (`irtune generate`)")
    if not SPLIT_NAME.fullmatch(split):
        raise IrtuneError(f"split name {split!r}: use letters, digits, '_', '.', '-' (e.g. train, dev, test)")


def assemble(request: ImportRequest) -> Imported:
    """Read and validate every source (files from the Hub fetched first); nothing is written."""
    check_column_roles(request.columns)
    for split in (*request.qrels, *request.pairs, *request.ir_datasets):
        check_split_name(split)
    if request.corpus is None and not request.pairs and not request.ir_datasets:
        raise ParameterError("nothing to import: give {corpus} FILE, {pairs} FILE or {ir_datasets} ID")
    if request.qrels and request.queries is None:
        raise ParameterError("qrels need {queries} FILE (the query texts their ids name)")
    into = Imported()

    def read(source: Path | None, reader: Any, *args: Any, **options: Any) -> None:
        local, origin = local_source(source)
        if local is not None:
            reader(local, *args, request.columns, into, **options)
            into.reports[-1].origin = origin

    drop_unknown = request.drop_unknown_judgements
    for split, dataset_id in request.ir_datasets.items():
        read_ir_datasets(dataset_id, split, into, drop_unknown=drop_unknown)
    read(request.corpus, read_corpus)
    read(request.queries, read_queries)
    for split, path in request.qrels.items():
        read(path, read_qrels, split, drop_unknown=drop_unknown)
    for split, path in request.pairs.items():
        if split in into.qrels:
            raise IrtuneError(f"split {split!r} is given twice (as qrels and as pairs)")
        read(path, read_pairs, split)
    splits = list(into.qrels)
    for index, split in enumerate(splits):
        judged = into.qrels[split]
        if not any(g > 0 for docs in judged.values() for g in docs.values()):
            raise IrtuneError(f"split {split!r}: no query has a relevant document (grade > 0)")
        for other in splits[index + 1 :]:
            if shared := sorted(set(judged) & set(into.qrels[other])):
                raise IrtuneError(
                    f"splits {split!r} and {other!r} both judge {len(shared)} queries (e.g. {shared[0]!r}): "
                    "one query in two splits leaks"
                )
    _warn_of_own_id_judgements(into.qrels)
    return into


def _warn_of_own_id_judgements(qrels: Mapping[str, Qrels]) -> None:
    for split, judged in qrels.items():
        if own := judged_relevant_to_own_id(judged):
            log.warning(
                "split %r: %d %s judged relevant to the document of its own id (e.g. %r); evaluation "
                "ignores a retrieved document whose id is the query's (as BEIR does), so such a judgement "
                "is never met",
                split,
                len(own),
                "query is" if len(own) == 1 else "queries are",
                own[0],
            )


def import_dataset(request: ImportRequest, target: Path, *, force: bool = False) -> ImportManifest:
    """Validate every source, then write the BEIR folder and its manifest. The dataset is held
    from start to end as `generate` holds it: a second import or a generation is refused."""
    checks.dataset_name(request.name, nested=False)
    checks.output_folder("out", target)
    if target.is_symlink():  # its manifest would name the link, its files be another dataset's
        real = target.resolve()
        raise IrtuneError(f"{target} is a symbolic link to {real}: import into {real} itself")
    target = target.resolve()
    previous_import(target, force=force)  # refused before any work
    with _dataset_lock(target):
        previous = previous_import(target, force=force)
        _remove_unfinished_imports(target)
        return write_beir_folder(target, assemble(request), name=request.name, previous=previous)


@contextmanager
def _dataset_lock(target: Path) -> Iterator[None]:
    """The lock `generate` takes (on its journals' folder), removed after if made for this."""
    folder = target / GENERATION_JOURNALS
    made = not folder.exists()
    with folder_lock(folder, what="dataset (an import or a query generation)"):
        yield
        if made:
            with contextlib.suppress(OSError):  # not empty: a journal is kept
                folder.rmdir()


def previous_import(target: Path, *, force: bool) -> ImportManifest | None:
    """The manifest of the import `target` holds (None when there is nothing to replace);
    refused when irtune did not import it, or when `force` is off and the import finished (an
    interrupted one left no dataset to keep: re-running the import replaces it)."""
    if not target.is_dir() or all(_empty_lock_folder(p) for p in target.iterdir()):
        return None
    path = target / IMPORT_MANIFEST
    if not path.is_file():
        raise IrtuneError(f"{target} exists and is not a dataset irtune imported: refusing to replace it")
    try:
        manifest = ImportManifest.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise DataError(path, f"unreadable import manifest ({' '.join(str(exc).split())[:200]})") from None
    if not force and manifest.complete:
        raise ParameterError("{target} already exists (pass {force} to replace it)", target=target)
    if stray := next((p for p in written_files(manifest) if not WRITTEN_FILE.fullmatch(p)), None):
        raise DataError(path, f"lists {stray!r}, which no import writes: refusing to replace anything")
    return manifest


def _empty_lock_folder(path: Path) -> bool:
    return path.name == GENERATION_JOURNALS.name and path.is_dir() and not any(path.iterdir())


def _remove_unfinished_imports(target: Path) -> None:
    """Remove the temporary folders of imports of `target` that were killed (kill -9, power
    loss) before they finished: the caller holds the dataset, so no import of it is running."""
    unfinished = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}{re.escape(BUILDING)}")
    for path in target.parent.iterdir():
        if unfinished.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
            log.info("%s: removing the temporary folder of an import that did not finish", path)
            shutil.rmtree(path, ignore_errors=True)


BUILDING = ".importing"


def write_beir_folder(
    target: Path, data: Imported, *, name: str, previous: ImportManifest | None
) -> ImportManifest:
    """Write `data` as the BEIR files of `target`, replacing only the files the `previous`
    import wrote; files built beside it first, then moved in. Call with the dataset held."""
    from irtune import __version__

    manifest = ImportManifest(
        dataset=name,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        irtune_version=__version__,
        sources=[r.to_manifest() for r in data.reports],
        corpus=len(data.corpus),
        queries=len(data.queries),
        qrels=qrels_summary(data.qrels),
    )
    try:
        building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=BUILDING, dir=target.parent))
    except OSError as exc:
        raise IrtuneError(f"{target}: cannot create the dataset folder ({exc.strerror or exc})") from None
    try:
        manifest.files = _write_files(building, data, target)
        _check_nothing_lost(target, previous, manifest.files)
        _move_in(building, target, manifest, previous)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return manifest


def _write_files(building: Path, data: Imported, target: Path) -> dict[str, str]:
    """Write the BEIR files under `building` (a failed write names the file in `target` it was
    to become); path -> sha256."""
    files = beir_files(data.corpus, data.queries, data.qrels)
    write_files(building, files, destination=target)
    return {relative: sha256_file(building / relative) for relative in files}


def _check_nothing_lost(target: Path, previous: ImportManifest | None, files: Mapping[str, str]) -> None:
    """Refuse to replace a file no import wrote, or to leave a generated split judging
    documents of a corpus that changed."""
    ours = written_files(previous) if previous else set()
    for relative in files:
        if relative not in ours and os.path.lexists(target / relative):
            raise IrtuneError(
                f"{target / relative}: exists and was not written by an import of this dataset; "
                "move it away to import"
            )
    generated = target / SYNTHETIC_DIR
    if os.path.lexists(generated) and _generated_from(target) != files["corpus.jsonl"]:
        raise IrtuneError(
            f"{generated}: {_count_lines(target / SYNTHETIC_QUERIES)} generated queries were made from "
            "another corpus than the one imported now and would judge documents that changed; delete "
            f"{generated} yourself to import anyway (the generation journals are kept)"
        )


def _generated_from(target: Path) -> str | None:
    """sha256 of the corpus the generated split was made from (None if unreadable)."""
    try:
        recorded = json.loads((target / SYNTHETIC_MANIFEST).read_text(encoding="utf-8"))["corpus_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return recorded if isinstance(recorded, str) else None


def _count_lines(path: Path) -> int | str:
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return "the"


def _move_in(building: Path, target: Path, manifest: ImportManifest, previous: ImportManifest | None) -> None:
    """Move the new files in, then remove the previous import's files that have no successor.
    Until the move is done the manifest in the folder is marked incomplete (loading the dataset
    is refused: it may mix both imports' files) and lists every file of both imports, so a kill
    on the way leaves no file of an import unlisted (the next forced import replaces it)."""
    new = manifest.files or {}
    old = written_files(previous) - set(new) if previous else set()
    both = {**{p: sha256_file(target / p) for p in old if (target / p).is_file()}, **new}
    moving = manifest.model_copy(update={"files": both, "complete": False})
    write_json_atomic(target / IMPORT_MANIFEST, moving.model_dump())
    for relative in new:
        (target / relative).parent.mkdir(exist_ok=True)
        os.replace(building / relative, target / relative)
    for relative in old:
        (target / relative).unlink(missing_ok=True)
    write_json_atomic(target / IMPORT_MANIFEST, manifest.model_dump())

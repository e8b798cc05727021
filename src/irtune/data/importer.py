"""Import a user's own files into a validated BEIR folder with an import manifest.

Sources: a corpus, queries and qrels in any table format (`irtune.data.tables`), qrels also
as BEIR TSV or 4-column TREC files, and a *pairs* file (query text, positive text[, negative
text][, grade]) without ids. Pairs get stable ids from their normalised text, so the same
text is the same document or query however often it appears (or if it is also in the
corpus file), and a query with several positives becomes one query with several judgements.

Every problem is a one-line `DataError` naming file and line (or row), checked before
anything is written; the files are built beside the target, then moved in. The manifest says
which files went in (sha256), which column played which role, what was dropped and why, and
which files the import wrote: the only ones a forced re-import replaces (the user's own files,
a generated split of the same corpus and the generation journals stay). The dataset is held
like `generate` holds it, so one import or generation runs at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from irtune.core import checks
from irtune.core.files import sha256_file, sha256_text, write_json_atomic
from irtune.core.locks import folder_lock
from irtune.data.beir import (
    GENERATION_JOURNALS,
    IMPORT_MANIFEST,
    SYNTHETIC_DIR,
    SYNTHETIC_MANIFEST,
    SYNTHETIC_QUERIES,
    SYNTHETIC_SPLIT,
    Document,
    Qrels,
    grade_problem,
    id_problem,
    iter_qrels,
    shown,
)
from irtune.data.tables import Table, Where, open_table
from irtune.errors import DataError, IrtuneError

log = logging.getLogger(__name__)

IMPORT_FORMAT = "irtune-import-v1"

# role -> column names tried in order when the user names none
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("_id", "id", "doc_id", "docid", "corpus_id", "corpus-id", "pid"),
    "text": ("text", "body", "content", "contents", "passage", "document"),
    "title": ("title",),
    "query_id": ("query_id", "query-id", "qid", "_id", "id"),
    "query": ("query", "question", "text", "anchor"),
    "doc_id": ("corpus_id", "corpus-id", "doc_id", "docid", "pid"),
    "score": ("score", "relevance", "grade", "label"),
    "positive": ("positive", "pos", "answer", "document", "passage"),
    "negative": ("negative", "neg", "hard_negative"),
}
OPTIONAL_ROLES = frozenset({"title", "score", "negative"})
QRELS_TEXT_SUFFIXES = (".tsv", ".txt", ".qrels", ".trec")


SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def identity(text: str) -> str:
    """What makes two texts the same document or query in a pairs file: Unicode-compatible,
    case-folded, whitespace-collapsed. Punctuation counts ("C++" is not "C"), unlike the
    looser fingerprint the leakage checks use to catch near-copies."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_id(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha256(identity(text).encode('utf-8')).hexdigest()[:16]}"


def check_split_name(split: str) -> None:
    if split == SYNTHETIC_SPLIT:
        raise IrtuneError(f"split name {split!r} is reserved for generated queries (`irtune generate`)")
    if not SPLIT_NAME.fullmatch(split):
        raise IrtuneError(f"split name {split!r}: use letters, digits, '_', '.', '-' (e.g. train, dev, test)")


def check_column_roles(columns: Mapping[str, str]) -> None:
    unknown = sorted(set(columns) - set(DEFAULT_COLUMNS))
    if unknown:
        roles = ", ".join(DEFAULT_COLUMNS)
        raise IrtuneError(f"unknown column role {unknown[0]!r} (roles: {roles})")


def pick_columns(table: Table, roles: Sequence[str], explicit: Mapping[str, str]) -> dict[str, str]:
    """role -> column of `table`: the user's choice (which must exist), else the first default
    present; a required role with no column is an error naming what was looked for."""
    chosen: dict[str, str] = {}
    for role in roles:
        if role in explicit:
            if explicit[role] not in table.columns:
                raise DataError(
                    table.path, f'no column "{explicit[role]}" (columns: {", ".join(table.columns)})'
                )
            chosen[role] = explicit[role]
            continue
        found = next(
            (c for c in DEFAULT_COLUMNS[role] if c in table.columns and c not in chosen.values()), None
        )
        if found is not None:
            chosen[role] = found
        elif role not in OPTIONAL_ROLES:
            raise DataError(
                table.path,
                f"no {role} column (looked for {', '.join(DEFAULT_COLUMNS[role])}; columns: "
                f"{', '.join(table.columns) or 'none'}): name it with --col {role}=NAME",
            )
    return chosen


def _encodable(value: str, where: Where, path: Path, column: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise where.error(path, f'"{column}" holds an unpaired surrogate (not valid Unicode)') from None
    return value


def _id(value: Any, where: Where, path: Path, column: str) -> str:
    if value is None:
        raise where.error(path, f'"{column}" is empty')
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        if problem := id_problem(value, column):
            raise where.error(path, problem)
        return _encodable(value, where, path, column)
    raise where.error(path, f'"{column}" must be a non-empty string or integer, not {shown(value)}')


def _text(value: Any, where: Where, path: Path, column: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise where.error(path, f'"{column}" must be text, not {type(value).__name__} {shown(value)}')
    return _encodable(value, where, path, column)


def _grade(value: Any, where: Where, path: Path, column: str, report: SourceReport) -> int:
    """An integer grade; a negative one (TREC's junk marks) is judged not relevant: 0, counted."""
    if value is None or value == "":
        raise where.error(path, f'"{column}" is empty; give an integer relevance grade')
    number: float
    if isinstance(value, int) and not isinstance(value, bool):
        number = value  # exact, however large: float() would round it or overflow
    else:
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
    if problem := grade_problem(number):
        raise where.error(path, f'"{column}" {shown(value)}: the relevance grade {problem}')
    return _not_negative(int(number), report)


def _not_negative(grade: int, report: SourceReport) -> int:
    if grade < 0:
        report.changed["negative grade stored as 0"] += 1
        return 0
    return grade


@dataclass
class SourceReport:
    """What one input file contributed (recorded in the manifest)."""

    role: str
    path: Path
    format: str
    columns: dict[str, str]
    rows: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    merged: Counter[str] = field(default_factory=Counter)
    changed: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    origin: str | None = None  # hf:OWNER/NAME/FILE@commit, ir_datasets:ID
    digest: str | None = None  # of the rows read, for a source that is no file (ir_datasets)

    def to_manifest(self) -> ImportedFile:
        return ImportedFile(
            role=self.role,
            path=str(self.path.resolve()),
            origin=self.origin,
            sha256=self.digest or _content_hash(self.path),
            format=self.format,
            columns=self.columns,
            rows=self.rows,
            dropped=dict(self.dropped),
            merged=dict(self.merged),
            changed=dict(self.changed),
            kept=dict(self.kept),
        )


def _content_hash(path: Path) -> str:
    if path.is_file():
        return sha256_file(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return sha256_text(*(f"{p.relative_to(path)}:{sha256_file(p)}" for p in files))


class ImportedFile(BaseModel):
    role: str
    path: str
    origin: str | None = Field(None, description="hf:OWNER/NAME/FILE@commit when it came from the Hub")
    sha256: str = Field(description="of the file (of its files' hashes for a saved dataset folder)")
    format: str
    columns: dict[str, str] = Field(description="role -> column name")
    rows: int
    dropped: dict[str, int] = Field(description="reason -> rows left out")
    merged: dict[str, int] = Field(default_factory=dict, description="what -> rows merged into another")
    changed: dict[str, int] = Field(default_factory=dict, description="what -> values changed on import")
    kept: dict[str, int] = Field(default_factory=dict, description="what -> rows kept though unusual")


class ImportManifest(BaseModel):
    format: str = IMPORT_FORMAT
    dataset: str
    created: str
    irtune_version: str
    sources: list[ImportedFile]
    complete: bool = Field(
        True, description="false while the import moves its files in: the folder then mixes two imports"
    )
    corpus: int
    queries: int
    qrels: dict[str, dict[str, int]] = Field(
        description="split -> queries, judgements, relevant, relevant_with_own_id (judgements never met)"
    )
    files: dict[str, str] | None = Field(
        None,
        description="path -> sha256 of each file the import wrote in the dataset folder (manifests "
        "written before this field: the corpus, the queries and the qrels of `qrels`' splits)",
    )


@dataclass
class Imported:
    """The data being assembled, with the id each normalised text already has."""

    corpus: dict[str, Document] = field(default_factory=dict)
    queries: dict[str, str] = field(default_factory=dict)
    qrels: dict[str, Qrels] = field(default_factory=dict)
    doc_by_text: dict[str, str] = field(default_factory=dict)
    query_by_text: dict[str, str] = field(default_factory=dict)
    reports: list[SourceReport] = field(default_factory=list)
    dropped_docs: set[str] = field(default_factory=set)
    dropped_queries: set[str] = field(default_factory=set)


def read_corpus(path: Path, columns: Mapping[str, str], into: Imported) -> None:
    table = open_table(path)
    chosen = pick_columns(table, ("id", "text", "title"), columns)
    report = SourceReport("corpus", path, table.format, chosen)
    first: dict[str, Where] = {}
    for where, row in table.rows():
        report.rows += 1
        doc_id = _new_id(row.get(chosen["id"]), where, path, chosen["id"], first, into.corpus)
        text = _text(row.get(chosen["text"]), where, path, chosen["text"])
        title = _text(row.get(chosen["title"]), where, path, chosen["title"]) if "title" in chosen else ""
        document = Document(title=title, text=text)
        if not document.full_text():
            report.dropped["empty title and text"] += 1
            into.dropped_docs.add(doc_id)
            continue
        into.corpus[doc_id] = document
        # a pairs file's positive may be the full text or just the body of a titled document
        into.doc_by_text.setdefault(identity(document.full_text()), doc_id)
        if title:
            into.doc_by_text.setdefault(identity(text), doc_id)
    if not report.rows:
        raise DataError(path, "no rows")
    if not into.corpus:
        raise DataError(path, "every document is empty")
    into.reports.append(report)


def read_queries(path: Path, columns: Mapping[str, str], into: Imported) -> None:
    table = open_table(path)
    chosen = pick_columns(table, ("query_id", "query"), columns)
    report = SourceReport("queries", path, table.format, chosen)
    first: dict[str, Where] = {}
    for where, row in table.rows():
        report.rows += 1
        qid = _new_id(row.get(chosen["query_id"]), where, path, chosen["query_id"], first, into.queries)
        text = _text(row.get(chosen["query"]), where, path, chosen["query"])
        if not text.strip():
            report.dropped["empty text"] += 1
            into.dropped_queries.add(qid)
            continue
        into.queries[qid] = text
        into.query_by_text.setdefault(identity(text), qid)
    if not report.rows:
        raise DataError(path, "no rows")
    into.reports.append(report)


def _describe(where: Where) -> str:
    return f"line {where.line}" if where.line is not None else f"row {where.row}"


def _new_id(
    value: Any, where: Where, path: Path, column: str, first: dict[str, Where], known: Mapping[str, object]
) -> str:
    """An id not seen before in this file (`first`, filled here) nor from an earlier source."""
    new = _id(value, where, path, column)
    if new in first:
        raise where.error(path, f'duplicate id "{new}" (first at {_describe(first[new])})')
    if new in known:
        raise where.error(path, f'id "{new}" also comes from an --ir-datasets source')
    first[new] = where
    return new


ABSENT_DOCUMENT = "names a document not in the corpus"


def read_qrels(
    path: Path, split: str, columns: Mapping[str, str], into: Imported, *, drop_unknown: bool = False
) -> None:
    """BEIR TSV / TREC qrels (by suffix .tsv, .txt, .qrels, .trec), or any table with query
    id, document id and (optional, default 1) grade columns. A judgement naming an unknown
    query is an error; one naming a document absent from the corpus is kept (trec_eval and
    BEIR count it in R: ArguAna's official qrels name five), counted and warned of, or dropped
    with `drop_unknown`. Rows naming an id dropped as empty are dropped and counted."""
    report: SourceReport
    judged: Qrels = into.qrels.setdefault(split, {})
    located: list[tuple[str, str, int, Where]] = []
    named = {"query_id", "doc_id", "score"} & set(columns)  # then it is a table with a header
    if not named and path.is_file() and path.name.lower().removesuffix(".gz").endswith(QRELS_TEXT_SUFFIXES):
        report = SourceReport(f"qrels:{split}", path, "qrels-tsv", {})
        for line, qid, doc, grade in iter_qrels(path):
            where = Where(0, line)
            ids = (_id(qid, where, path, "query-id"), _id(doc, where, path, "corpus-id"))
            located.append((*ids, _not_negative(grade, report), where))
    else:
        table = open_table(path)
        chosen = pick_columns(table, ("query_id", "doc_id", "score"), columns)
        report = SourceReport(f"qrels:{split}", path, table.format, chosen)
        for where, row in table.rows():
            qid = _id(row.get(chosen["query_id"]), where, path, chosen["query_id"])
            doc = _id(row.get(chosen["doc_id"]), where, path, chosen["doc_id"])
            grade = (
                _grade(row.get(chosen["score"]), where, path, chosen["score"], report)
                if "score" in chosen
                else 1
            )
            located.append((qid, doc, grade, where))
    for qid, doc, grade, where in located:
        report.rows += 1
        if qid in into.dropped_queries or doc in into.dropped_docs:
            report.dropped["names an empty query or document"] += 1
            continue
        if qid not in into.queries:
            raise where.error(path, f'unknown query id "{qid}"')
        if doc not in into.corpus and _absent_document_dropped(report, drop_unknown):
            continue
        previous = judged.setdefault(qid, {}).get(doc)
        if previous is not None and previous != grade:
            problem = f'conflicting grades for query "{qid}" and document "{doc}" ({previous} and {grade})'
            raise where.error(path, problem)
        judged[qid][doc] = grade
    _warn_of_absent_documents(str(path), report)
    into.reports.append(report)


def _absent_document_dropped(report: SourceReport, drop_unknown: bool) -> bool:
    """Count a judgement of a document absent from the corpus; True when it is to be dropped."""
    (report.dropped if drop_unknown else report.kept)[ABSENT_DOCUMENT] += 1
    return drop_unknown


def _warn_of_absent_documents(source: str, report: SourceReport) -> None:
    if kept := report.kept[ABSENT_DOCUMENT]:
        log.warning(
            "%s: %d judgements name documents not in the corpus; kept, as trec_eval and BEIR keep them "
            "(they count in R, though no model can retrieve them); drop_unknown_judgements drops them",
            source,
            kept,
        )
    if dropped := report.dropped[ABSENT_DOCUMENT]:
        log.info("%s: dropped %d judgements of documents not in the corpus", source, dropped)


def read_pairs(path: Path, split: str, columns: Mapping[str, str], into: Imported) -> None:
    """(query, positive[, negative][, grade]) rows -> queries, documents and `split` qrels.
    A negative is judged grade 0 (seen and not relevant); a grade of 0 makes the pair one."""
    table = open_table(path)
    chosen = pick_columns(table, ("query", "positive", "negative", "score"), columns)
    report = SourceReport(f"pairs:{split}", path, table.format, chosen)
    judged: Qrels = into.qrels.setdefault(split, {})
    first: dict[tuple[str, str], Where] = {}
    for where, row in table.rows():
        report.rows += 1
        query = _text(row.get(chosen["query"]), where, path, chosen["query"]).strip()
        positive = _text(row.get(chosen["positive"]), where, path, chosen["positive"]).strip()
        negative = (
            _text(row.get(chosen["negative"]), where, path, chosen["negative"]).strip()
            if "negative" in chosen
            else ""
        )
        grade = (
            _grade(row.get(chosen["score"]), where, path, chosen["score"], report) if "score" in chosen else 1
        )
        if not query or not positive:
            raise where.error(path, f"empty {'query' if not query else 'positive'} text")
        qid = _query_id(query, into, report)
        if elsewhere := next((s for s, j in into.qrels.items() if s != split and qid in j), None):
            raise where.error(
                path, f"the query is also judged in split {elsewhere!r}; one query in two splits leaks"
            )
        for text, value in ((positive, grade), (negative, 0)):
            if not text:
                continue
            doc = _doc_id(text, into, report)
            previous = judged.setdefault(qid, {}).get(doc)
            if previous is not None and previous != value:
                raise where.error(path, _conflict(previous, value, first[qid, doc], where))
            if previous is not None:
                report.merged["repeated (query, document) judgement"] += 1
            judged[qid][doc] = value
            first.setdefault((qid, doc), where)
    if not report.rows:
        raise DataError(path, "no rows")
    into.reports.append(report)


def _conflict(previous: int, grade: int, first: Where, where: Where) -> str:
    if first == where:
        return f"the positive and the negative are the same document (judged {previous} and {grade})"
    return f"the same query and document are judged {previous} at {_describe(first)} and {grade} here"


def _query_id(text: str, into: Imported, report: SourceReport) -> str:
    key = identity(text)
    if key in into.query_by_text:
        if into.queries[into.query_by_text[key]] != text:
            report.merged["query texts equal but for case or spacing"] += 1
        return into.query_by_text[key]
    qid = content_id("q", text)
    into.query_by_text[key] = qid
    into.queries[qid] = text
    return qid


def _doc_id(text: str, into: Imported, report: SourceReport) -> str:
    key = identity(text)
    if key in into.doc_by_text:
        known = into.corpus[into.doc_by_text[key]]
        if text not in (known.text, known.full_text()):
            report.merged["document texts equal but for case or spacing"] += 1
        return into.doc_by_text[key]
    doc_id = content_id("d", text)
    into.doc_by_text[key] = doc_id
    into.corpus[doc_id] = Document(title="", text=text)
    return doc_id


def read_ir_datasets(dataset_id: str, split: str, into: Imported, *, drop_unknown: bool = False) -> None:
    """Documents (from the first id that has them), queries and qrels of an `ir_datasets`
    dataset, e.g. `beir/scifact/test`, checked like files; recorded with a hash of what was
    read. Negative grades (some TREC collections mark junk with -1) become 0: judged, not
    relevant (counted under `changed`); judgements of absent documents as in `read_qrels`."""
    try:
        import ir_datasets
    except ImportError:
        raise IrtuneError("--ir-datasets needs its package: pip install 'irtune[ir-datasets]'") from None
    try:
        source = ir_datasets.load(dataset_id)
    except KeyError:
        raise IrtuneError(f"ir_datasets knows no dataset {dataset_id!r}") from None
    report = SourceReport(f"ir_datasets:{split}", Path(dataset_id), "ir_datasets", {})
    report.origin = f"ir_datasets:{dataset_id}"
    digest = hashlib.sha256()
    where = f"ir_datasets {dataset_id}"
    if source.has_docs() and not into.corpus:
        for doc in source.docs_iter():
            text = getattr(doc, "text", None)
            document = Document(
                title=getattr(doc, "title", "") or "", text=text if text is not None else doc.default_text()
            )
            digest.update(f"d\0{doc.doc_id}\0{document.title}\0{document.text}\0".encode())
            if doc.doc_id in into.corpus or doc.doc_id in into.dropped_docs:
                raise IrtuneError(f"{where}: duplicate document id {doc.doc_id!r}")
            if not document.full_text():
                report.dropped["empty document"] += 1
                into.dropped_docs.add(doc.doc_id)
                continue
            into.corpus[doc.doc_id] = document
    elif source.has_docs() and source.docs_count() not in (None, len(into.corpus) + len(into.dropped_docs)):
        raise IrtuneError(f"{where}: its documents are not those imported before (another corpus)")
    if source.has_queries():
        for query in source.queries_iter():
            text = getattr(query, "text", None)
            text = (text if text is not None else query.default_text()).strip()
            digest.update(f"q\0{query.query_id}\0{text}\0".encode())
            if not text:
                report.dropped["empty query"] += 1
                into.dropped_queries.add(query.query_id)
            elif into.queries.setdefault(query.query_id, text) != text:
                raise IrtuneError(f"{where}: query {query.query_id!r} has another text than before")
    if source.has_qrels():
        judged: Qrels = into.qrels.setdefault(split, {})
        for row in source.qrels_iter():
            report.rows += 1
            digest.update(f"r\0{row.query_id}\0{row.doc_id}\0{row.relevance}\0".encode())
            if row.doc_id in into.dropped_docs or row.query_id in into.dropped_queries:
                report.dropped["names an empty query or document"] += 1
                continue
            if row.query_id not in into.queries:
                raise IrtuneError(f"{where}: qrels name an unknown query id {row.query_id!r}")
            if row.doc_id not in into.corpus and _absent_document_dropped(report, drop_unknown):
                continue
            judged.setdefault(row.query_id, {})[row.doc_id] = _not_negative(int(row.relevance), report)
    _warn_of_absent_documents(where, report)
    report.digest = digest.hexdigest()
    into.reports.append(report)


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


HUB_PREFIX = "hf:"


def fetch_hub_file(spec: str) -> tuple[Path, str]:
    """`hf:OWNER/NAME/PATH/IN/REPO` -> (the file in the Hugging Face cache, its origin with the
    commit it was read at). Offline, a file cached before is used."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    parts = spec.removeprefix(HUB_PREFIX).strip("/").split("/")
    if len(parts) < 3:
        raise IrtuneError(f"{spec!r}: expected hf:OWNER/NAME/FILE (a file of a Hub dataset repo)")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        local = Path(hf_hub_download(repo_id, filename, repo_type="dataset"))
    except LocalEntryNotFoundError:  # a subclass of EntryNotFoundError: caught first
        raise IrtuneError(f"{spec}: not in the local cache and the Hub cannot be reached") from None
    except EntryNotFoundError:
        raise IrtuneError(f"{spec}: no file {filename!r} in the dataset repo {repo_id}") from None
    except HfHubHTTPError as exc:
        raise IrtuneError(f"{spec}: {' '.join(str(exc).split())[:200]}") from None
    commit = local.parent.name if local.parent.parent.name == "snapshots" else None
    if commit is None:  # a file in a subfolder of the repo
        commit = next((p.name for p in local.parents if p.parent.name == "snapshots"), "unknown")
    return local, f"{spec}@{commit}"


def _local(path: Path | None) -> tuple[Path | None, str | None]:
    if path is not None and str(path).startswith(HUB_PREFIX):
        return fetch_hub_file(str(path))
    return path, None


def assemble(request: ImportRequest) -> Imported:
    """Read and validate every source (files from the Hub fetched first); nothing is written."""
    check_column_roles(request.columns)
    for split in (*request.qrels, *request.pairs, *request.ir_datasets):
        check_split_name(split)
    if request.corpus is None and not request.pairs and not request.ir_datasets:
        raise IrtuneError("nothing to import: give --corpus FILE, --pairs FILE or --ir-datasets ID")
    if request.qrels and request.queries is None:
        raise IrtuneError("qrels need --queries FILE (the query texts their ids name)")
    into = Imported()

    def read(source: Path | None, reader: Any, *args: Any, **options: Any) -> None:
        local, origin = _local(source)
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


def judged_relevant_to_own_id(judged: Qrels) -> list[str]:
    """Queries judged relevant to the document that has their own id. Evaluation drops a
    retrieved document whose id is the query's (BEIR's default, for Quora's self-matches),
    so such a judgement can never be met."""
    return sorted(q for q, docs in judged.items() if docs.get(q, 0) > 0)


def qrels_summary(qrels: Mapping[str, Qrels]) -> dict[str, dict[str, int]]:
    return {
        split: {
            "queries": len(judged),
            "judgements": sum(len(d) for d in judged.values()),
            "relevant": sum(1 for d in judged.values() for g in d.values() if g > 0),
            "relevant_with_own_id": len(judged_relevant_to_own_id(judged)),
        }
        for split, judged in qrels.items()
    }


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
    checks.output_folder("--out", target)
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
        raise IrtuneError(f"{target} already exists (pass --force to replace it)")
    if stray := next((p for p in written_files(manifest) if not WRITTEN_FILE.fullmatch(p)), None):
        raise DataError(path, f"lists {stray!r}, which no import writes: refusing to replace anything")
    return manifest


def _empty_lock_folder(path: Path) -> bool:
    return path.name == GENERATION_JOURNALS.name and path.is_dir() and not any(path.iterdir())


WRITTEN_FILE = re.compile(rf"corpus\.jsonl|queries\.jsonl|qrels/{SPLIT_NAME.pattern}\.tsv")


def written_files(manifest: ImportManifest) -> set[str]:
    """The files the import wrote, by path in the dataset folder (the only ones --force replaces)."""
    if manifest.files is not None:
        return set(manifest.files)
    return {"corpus.jsonl", "queries.jsonl", *(f"qrels/{split}.tsv" for split in manifest.qrels)}


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


def _beir_lines(data: Imported) -> dict[str, Iterable[str]]:
    """The lines of each BEIR file, by path in the dataset folder."""
    return {
        "corpus.jsonl": (
            json.dumps({"_id": doc_id, "title": doc.title, "text": doc.text}, ensure_ascii=False) + "\n"
            for doc_id, doc in data.corpus.items()
        ),
        "queries.jsonl": (
            json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n"
            for qid, text in data.queries.items()
        ),
        **{
            f"qrels/{split}.tsv": chain(
                ["query-id\tcorpus-id\tscore\n"],
                (
                    f"{qid}\t{doc_id}\t{grade}\n"
                    for qid, docs in judged.items()
                    for doc_id, grade in docs.items()
                ),
            )
            for split, judged in data.qrels.items()
        },
    }


def _write_files(building: Path, data: Imported, target: Path) -> dict[str, str]:
    """Write the BEIR files under `building`; path -> sha256. A failed write (a full disk)
    names the file it was to become (the CLI says it in one line)."""
    written = {}
    for relative, lines in _beir_lines(data).items():
        path = building / relative
        try:
            path.parent.mkdir(exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                for line in lines:
                    handle.write(line)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(target / relative)) from exc
        written[relative] = sha256_file(path)
    return written


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
    on the way leaves no file of an import unlisted (the next --force replaces it)."""
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

"""Read a user's files (any table format of `irtune.data.tables`, qrels also as BEIR TSV or
4-column TREC files) into the data an import assembles, checking every value: a bad one is a
one-line `DataError` naming file and line (or row).

A *pairs* file (query text, positive text[, negative text][, grade]) has no ids: pairs get
stable ids from their normalised text, so the same text is the same document or query however
often it appears (or if it is also in the corpus file), and a query with several positives
becomes one query with several judgements.
"""

from __future__ import annotations

import hashlib
import logging
import math
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irtune.core.files import sha256_file, sha256_text
from irtune.data.beir import Document, Qrels, grade_problem, id_problem, iter_qrels, shown
from irtune.data.import_manifest import ImportedFile
from irtune.data.tables import Table, Where, open_table
from irtune.errors import DataError, InvalidValueError, IrtuneError

log = logging.getLogger(__name__)

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


def identity(text: str) -> str:
    """What makes two texts the same document or query in a pairs file: Unicode-compatible,
    case-folded, whitespace-collapsed. Punctuation counts ("C++" is not "C"), unlike the
    looser fingerprint the leakage checks use to catch near-copies."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_id(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha256(identity(text).encode('utf-8')).hexdigest()[:16]}"


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
            raise InvalidValueError(
                "{path}: no {role} column (looked for {defaults}; columns: {found}): name it with "
                "{columns} {role}=NAME",
                path=table.path,
                role=role,
                defaults=", ".join(DEFAULT_COLUMNS[role]),
                found=", ".join(table.columns) or "none",
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
    return not_negative(int(number), report)


def not_negative(grade: int, report: SourceReport) -> int:
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
        raise where.error(path, f'id "{new}" also comes from an ir_datasets source')
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
            located.append((*ids, not_negative(grade, report), where))
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
        if doc not in into.corpus and absent_document_dropped(report, drop_unknown):
            continue
        previous = judged.setdefault(qid, {}).get(doc)
        if previous is not None and previous != grade:
            problem = f'conflicting grades for query "{qid}" and document "{doc}" ({previous} and {grade})'
            raise where.error(path, problem)
        judged[qid][doc] = grade
    warn_of_absent_documents(str(path), report)
    into.reports.append(report)


def absent_document_dropped(report: SourceReport, drop_unknown: bool) -> bool:
    """Count a judgement of a document absent from the corpus; True when it is to be dropped."""
    (report.dropped if drop_unknown else report.kept)[ABSENT_DOCUMENT] += 1
    return drop_unknown


def warn_of_absent_documents(source: str, report: SourceReport) -> None:
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

"""Strict, line-accurate loading of BEIR folders (corpus/queries JSONL, qrels TSV).

Every problem in an input file is reported as `file:line: problem` (a DataError), so a
user can fix the file without reading a traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from irtune.core import checks
from irtune.core.files import sha256_file
from irtune.errors import DataError

log = logging.getLogger(__name__)

Qrels = dict[str, dict[str, int]]

# Generated queries live apart from the real ones, the whole split in one folder
# (`synthetic/queries.jsonl`, `synthetic/qrels.tsv`, `synthetic/manifest.json`) replaced as
# a unit: they may train and select, never be reported.
SYNTHETIC_SPLIT = "synthetic"
SYNTHETIC_DIR = Path("synthetic")
SYNTHETIC_QUERIES = SYNTHETIC_DIR / "queries.jsonl"
SYNTHETIC_QRELS = SYNTHETIC_DIR / "qrels.tsv"
SYNTHETIC_MANIFEST = SYNTHETIC_DIR / "manifest.json"
GENERATION_JOURNALS = Path(".irtune-generate")  # beside, not inside, the split folder swapped whole

# written by `irtune data import`; `"complete": false` while it moves its files in
IMPORT_MANIFEST = "irtune-import.json"

TREC_GRADES = range(-(2**31), 2**31)  # trec_eval and pytrec_eval keep a grade in a C int
_WHITESPACE = re.compile(r"\s")


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    text: str

    def full_text(self) -> str:
        """BEIR's document text: title and body joined by a space, stripped."""
        return f"{self.title} {self.text}".strip()


def content_sha256(path: Path) -> str:
    """sha256 of a file's content: of the decompressed bytes for a `.gz` file."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def shown(value: object) -> str:
    """A value as an error message shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def id_problem(value: str, field: str) -> str | None:
    """Why `value` cannot be a query or document id (None when it can): run and qrels files
    split their fields on whitespace, so an id holding any would not survive one."""
    if not value:
        return f'"{field}" is empty'
    if value.strip() != value:
        return f'"{field}" {shown(value)} has surrounding spaces, tabs or line breaks'
    if _WHITESPACE.search(value):
        return f'"{field}" {shown(value)} holds whitespace (run and qrels files split fields on it)'
    return None


def grade_problem(number: float) -> str | None:
    """Why `number` cannot be a relevance grade (None when it can)."""
    if isinstance(number, float) and not number.is_integer():
        return "is not an integer"
    if int(number) not in TREC_GRADES:
        return "is outside a 32-bit integer (the grades trec_eval holds)"
    return None


def find_jsonl(root: Path, stem: str) -> Path:
    """`stem.jsonl` or `stem.jsonl.gz` under root."""
    for candidate in (root / f"{stem}.jsonl", root / f"{stem}.jsonl.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(root / f"{stem}.jsonl", "file not found (also looked for .jsonl.gz)")


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, decoded line) for plain or gzipped files, failing on bad UTF-8."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:  # utf-8-sig on the first line: editors on Windows start files with a BOM
                    yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(path, f"not valid UTF-8 ({exc.reason})", number) from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, gzip.BadGzipFile) or "gzip" in str(exc).lower():
            raise DataError(path, f"not a valid gzip file ({exc})") from None
        raise DataError(path, f"cannot read file ({exc})") from None


def _iter_jsonl(path: Path, *, allow_empty: bool = False) -> Iterator[tuple[int, str, dict]]:
    """Yield (line, id, record); checks JSON, `_id` and `text` and duplicate ids."""
    seen: dict[str, int] = {}
    any_line = False
    for number, line in _read_lines(path):
        if not line.strip():
            continue
        any_line = True
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON ({exc.msg} at column {exc.colno})", number) from None
        if not isinstance(record, dict):
            raise DataError(path, "expected a JSON object", number)
        if "_id" not in record:
            raise DataError(path, 'missing "_id"', number)
        if not isinstance(record.get("text"), str):
            problem = 'missing "text"' if "text" not in record else '"text" is not a string'
            raise DataError(path, problem, number)
        raw_id = record["_id"]
        if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or raw_id == "":
            raise DataError(path, '"_id" must be a non-empty string', number)
        doc_id = str(raw_id)
        if wrong := id_problem(doc_id, "_id"):
            raise DataError(path, wrong, number)
        if doc_id in seen:
            raise DataError(path, f'duplicate id "{doc_id}" (first at line {seen[doc_id]})', number)
        seen[doc_id] = number
        yield number, doc_id, record
    if not any_line and not allow_empty:
        raise DataError(path, "empty file")


def iter_corpus(path: Path) -> Iterator[tuple[str, Document]]:
    """Stream (id, document) pairs in file order, so a large corpus need not sit in RAM."""
    for number, doc_id, record in _iter_jsonl(path):
        title = record.get("title") or ""
        if not isinstance(title, str):
            raise DataError(path, '"title" is not a string', number)
        yield doc_id, Document(title=title, text=record["text"])


def load_corpus(path: Path) -> dict[str, Document]:
    return dict(iter_corpus(path))


def load_queries(path: Path, *, allow_empty: bool = False) -> dict[str, str]:
    return {qid: record["text"] for _, qid, record in _iter_jsonl(path, allow_empty=allow_empty)}


def _parse_grade(value: str, path: Path, number: int) -> int:
    try:
        grade = float(value)
    except ValueError:
        raise DataError(path, f'relevance score "{value}" is not a number', number) from None
    if problem := grade_problem(grade):
        raise DataError(path, f'relevance score "{value}" {problem}', number)
    return int(grade)


def iter_qrels(path: Path) -> Iterator[tuple[int, str, str, int]]:
    """(line, query id, document id, grade) of `query-id corpus-id score` TSV (header
    optional, LF or CRLF) or 4-column TREC qrels (`qid iter docid rel`, whitespace-separated)."""
    if not path.is_file():
        raise DataError(path, "file not found")
    any_line = False
    for number, line in _read_lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if number == 1 and len(cols) in (3, 4) and not _is_number(cols[-1]):
            continue  # header row, e.g. "query-id corpus-id score"
        if len(cols) == 4:
            qid, _, doc_id, value = cols
        elif len(cols) == 3:
            qid, doc_id, value = cols
        else:
            separator = "tab" if "\t" in line else "whitespace"
            raise DataError(
                path,
                f"expected 3 {separator}-separated columns (query-id, corpus-id, score) or 4 (TREC: "
                f"query-id, iteration, doc-id, relevance), found {len(cols)}",
                number,
            )
        for value_id, field in ((qid, "query-id"), (doc_id, "corpus-id")):
            if problem := id_problem(value_id, field):
                raise DataError(path, problem, number)
        any_line = True
        yield number, qid, doc_id, _parse_grade(value.strip(), path, number)
    if not any_line:
        raise DataError(path, "empty file (no judgements)")


def load_qrels(path: Path) -> Qrels:
    """Qrels as {query id: {document id: grade}} (see `iter_qrels` for the formats)."""
    qrels: Qrels = {}
    for number, qid, doc_id, grade in iter_qrels(path):
        judged = qrels.setdefault(qid, {})
        if doc_id in judged and judged[doc_id] != grade:
            raise DataError(path, f'conflicting scores for query "{qid}" and document "{doc_id}"', number)
        judged[doc_id] = grade
    return qrels


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def check_import_finished(root: Path) -> None:
    """Refuse a folder an import was killed in while moving its files in: it may hold the new
    corpus beside the old qrels, which no import wrote together."""
    path = root / IMPORT_MANIFEST
    if not path.is_file():
        return
    try:
        complete = json.loads(path.read_bytes()).get("complete", True)
    except (OSError, ValueError, AttributeError) as exc:
        raise DataError(path, f"unreadable import manifest ({' '.join(str(exc).split())[:200]})") from None
    if complete is False:
        raise DataError(root, "an import into this folder was interrupted; re-run it")


IN_MEMORY_CORPUS_BYTES = 64 << 20


def _corpus_bytes(path: Path) -> int:
    """A corpus file's size, uncompressed as estimated (gzip shrinks JSONL text about 4x)."""
    return path.stat().st_size * (4 if path.suffix == ".gz" else 1)


class BeirDataset:
    """A BEIR folder: `corpus.jsonl[.gz]`, `queries.jsonl[.gz]`, `qrels/<split>.tsv`.

    Files are read lazily and validated strictly. Qrels rows naming unknown queries are
    dropped (they cannot be run) and rows naming unknown documents are kept (they still
    count in R, as trec_eval counts them); both are logged with a count, and raise in
    `strict` mode.
    """

    def __init__(self, root: Path | str, name: str | None = None, strict: bool = False) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(self.root, "dataset folder not found")
        check_import_finished(self.root)
        self.name = name or self.root.name
        self.strict = strict
        self._qrels: dict[str, Qrels] = {}

    @cached_property
    def corpus_path(self) -> Path:
        return find_jsonl(self.root, "corpus")

    @cached_property
    def queries_path(self) -> Path:
        return find_jsonl(self.root, "queries")

    @cached_property
    def corpus(self) -> dict[str, Document]:
        return load_corpus(self.corpus_path)

    @cached_property
    def doc_ids(self) -> list[str]:
        """Document ids in corpus order. A corpus file up to IN_MEMORY_CORPUS_BYTES is loaded
        whole, so that its texts come from the same parse (an evaluation reads both); a larger
        one is streamed for its ids and streamed again for its texts, never held in RAM."""
        if "corpus" in self.__dict__ or _corpus_bytes(self.corpus_path) <= IN_MEMORY_CORPUS_BYTES:
            return list(self.corpus)
        return [doc_id for doc_id, _ in iter_corpus(self.corpus_path)]

    def iter_texts(self) -> Iterator[str]:
        """BEIR document texts in corpus order, streamed from the file unless already loaded."""
        if "corpus" in self.__dict__:
            return (doc.full_text() for doc in self.corpus.values())
        return (doc.full_text() for _, doc in iter_corpus(self.corpus_path))

    @cached_property
    def real_queries(self) -> dict[str, str]:
        """The queries people wrote (`queries.jsonl`; empty for a corpus imported without any)."""
        return load_queries(self.queries_path, allow_empty=True)

    @cached_property
    def synthetic_queries(self) -> dict[str, str]:
        """Generated queries (`synthetic/queries.jsonl`), if the folder has any."""
        path = self.root / SYNTHETIC_QUERIES
        if not path.is_file():
            return {}
        found = {}
        for number, qid, record in _iter_jsonl(path):
            if qid in self.real_queries:
                raise DataError(path, f'id "{qid}" is also a real query id', number)
            found[qid] = record["text"]
        return found

    @cached_property
    def queries(self) -> dict[str, str]:
        """Real and generated queries by id; which split judges which is checked on reading qrels."""
        return {**self.real_queries, **self.synthetic_queries}

    def prompt_example_queries(self) -> dict[str, str]:
        """Real queries shown to the generator as few-shot examples (the synthetic split's
        manifest names them): training on the generated queries counts as having seen them."""
        path = self.root / SYNTHETIC_MANIFEST
        if not path.is_file():
            return {}
        try:
            ids = json.loads(path.read_text(encoding="utf-8"))["prompt"]["example_query_ids"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(path, f"unreadable synthetic manifest ({exc})") from None
        return {str(q): self.real_queries[str(q)] for q in ids if str(q) in self.real_queries}

    @staticmethod
    def is_synthetic(split: str) -> bool:
        return split == SYNTHETIC_SPLIT

    def splits(self) -> list[str]:
        qrels_dir = self.root / "qrels"
        real = {p.stem for p in qrels_dir.glob("*.tsv")} - {SYNTHETIC_SPLIT} if qrels_dir.is_dir() else set()
        generated = {SYNTHETIC_SPLIT} if (self.root / SYNTHETIC_QRELS).is_file() else set()
        return sorted(real | generated)

    def _qrels_file(self, split: str) -> Path:
        checks.split_name("split", split)  # every command reaches a split's files through here
        return (
            self.root / SYNTHETIC_QRELS if self.is_synthetic(split) else self.root / "qrels" / f"{split}.tsv"
        )

    def qrels_path(self, split: str) -> Path:
        path = self._qrels_file(split)
        if not path.is_file():
            available = ", ".join(self.splits()) or "none"
            hint = " (run `irtune generate`)" if self.is_synthetic(split) else ""
            raise DataError(path, f'split "{split}" not found (available: {available}){hint}')
        return path

    def check_files(self, split: str) -> None:
        """Raise now (one line) if the corpus, the queries or the split's qrels are missing,
        before a command starts work that needs them."""
        _ = self.corpus_path, self.queries_path, self.qrels_path(split)

    def has_split(self, split: str) -> bool:
        return self._qrels_file(split).is_file()

    def qrels(self, split: str) -> Qrels:
        if split not in self._qrels:
            self._qrels[split] = self._checked_qrels(split)
        return self._qrels[split]

    def _checked_qrels(self, split: str) -> Qrels:
        path = self.qrels_path(split)
        qrels = load_qrels(path)
        # a generated query judged in a real split would be evaluated; a real one judged in
        # the generated split would be trained on as if it were generated
        wrong_kind = self.real_queries if self.is_synthetic(split) else self.synthetic_queries
        if crossing := next((q for q in qrels if q in wrong_kind), None):
            kind = "real" if self.is_synthetic(split) else "generated"
            raise DataError(
                path, f'judges the {kind} query "{crossing}"; real and generated queries are judged apart'
            )
        unknown_queries = [qid for qid in qrels if qid not in self.queries]
        known_docs = set(self.doc_ids)
        unknown_docs = sum(1 for judged in qrels.values() for doc_id in judged if doc_id not in known_docs)
        if unknown_queries or unknown_docs:
            message = (
                f"{len(unknown_queries)} unknown query ids and {unknown_docs} rows with unknown document ids"
            )
            if self.strict:
                raise DataError(path, message)
            log.warning("%s: %s (unknown queries dropped, unknown documents kept)", path, message)
            for qid in unknown_queries:
                del qrels[qid]
        return qrels

    def relevant_queries(self, split: str) -> list[str]:
        """Query ids with at least one relevant (grade > 0) document, in file order."""
        return [qid for qid, judged in self.qrels(split).items() if any(g > 0 for g in judged.values())]

    def identity(self, paths: Iterable[Path]) -> dict[str, str]:
        """These files of the dataset by content, the dataset's identity wherever one is compared
        (split plans, results, training records, the leakage guard, the official datasets): BEIR
        path as the official zips name it (`queries.jsonl`, `qrels/test.tsv`) -> sha256 of the
        decompressed bytes, so a gzipped copy and a recompressed one are the same dataset."""
        return {p.relative_to(self.root).as_posix().removesuffix(".gz"): content_sha256(p) for p in paths}

    def file_hashes(self, split: str | None = None) -> dict[str, str]:
        """The identity of the corpus, the queries and `split`'s qrels (and generated queries)."""
        files = [self.corpus_path, self.queries_path]
        if split is not None:
            files.append(self.qrels_path(split))
        if split is not None and self.is_synthetic(split):
            files.append(self.root / SYNTHETIC_QUERIES)
            files.append(self.root / SYNTHETIC_MANIFEST)
        return self.identity(files)

    def corpus_hash(self) -> str:
        return sha256_file(self.corpus_path)

"""Write BEIR files as `irtune.data.beir` reads them: the one writer of the corpus, the queries
and the qrels, for an import and for a generated split.

Records are JSON lines (`_id`, `title` and `text` for a document; `_id`, `text` and optional
`metadata` for a query), qrels a `query-id corpus-id score` TSV with a header. Each file is
written atomically; files built in a folder beside their destination (then moved in) name
that destination when a write fails, the file a user knows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from irtune.core.files import atomic_path
from irtune.data.beir import Document

QRELS_HEADER = "query-id\tcorpus-id\tscore\n"

Judgements = Mapping[str, Mapping[str, int]]  # query id -> document id -> grade


def corpus_lines(corpus: Mapping[str, Document]) -> Iterator[str]:
    for doc_id, doc in corpus.items():
        yield json.dumps({"_id": doc_id, "title": doc.title, "text": doc.text}, ensure_ascii=False) + "\n"


def query_lines(
    queries: Mapping[str, str], metadata: Mapping[str, Mapping[str, Any]] | None = None
) -> Iterator[str]:
    """A query's record carries its `metadata` when there is any (a generated query's source)."""
    for qid, text in queries.items():
        record: dict[str, Any] = {"_id": qid, "text": text}
        if metadata is not None:
            record["metadata"] = metadata[qid]
        yield json.dumps(record, ensure_ascii=False) + "\n"


def qrels_lines(qrels: Judgements) -> Iterator[str]:
    yield QRELS_HEADER
    for qid, judged in qrels.items():
        for doc_id, grade in judged.items():
            yield f"{qid}\t{doc_id}\t{grade}\n"


def beir_files(
    corpus: Mapping[str, Document], queries: Mapping[str, str], qrels: Mapping[str, Judgements]
) -> dict[str, Iterator[str]]:
    """The lines of a BEIR folder's files by path in it: `corpus.jsonl`, `queries.jsonl` and
    `qrels/<split>.tsv` for each split of `qrels`."""
    return {
        "corpus.jsonl": corpus_lines(corpus),
        "queries.jsonl": query_lines(queries),
        **{f"qrels/{split}.tsv": qrels_lines(judged) for split, judged in qrels.items()},
    }


def write_files(folder: Path, files: Mapping[str, Iterable[str]], *, destination: Path) -> None:
    """Write each file's lines under `folder` (by relative path), atomically. A failed write (a
    full disk) names the file it was to become under `destination` (the CLI says it in one line)."""
    for relative, lines in files.items():
        try:
            with atomic_path(folder / relative) as tmp, open(tmp, "w", encoding="utf-8") as handle:
                for line in lines:
                    handle.write(line)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), str(destination / relative)) from exc

"""The manifest an import writes beside the BEIR files (`irtune-import.json`): which sources
went in (by content), which column played which role, what was dropped and why, and which
files the import wrote, the only ones a forced re-import replaces."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel, Field

from irtune.data.beir import Qrels

IMPORT_FORMAT = "irtune-import-v1"

SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # of a split an import writes (qrels/NAME.tsv)


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


WRITTEN_FILE = re.compile(rf"corpus\.jsonl|queries\.jsonl|qrels/{SPLIT_NAME.pattern}\.tsv")


def written_files(manifest: ImportManifest) -> set[str]:
    """The files the import wrote, by path in the dataset folder (the only ones a forced import replaces)."""
    if manifest.files is not None:
        return set(manifest.files)
    return {"corpus.jsonl", "queries.jsonl", *(f"qrels/{split}.tsv" for split in manifest.qrels)}


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

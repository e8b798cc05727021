"""Overlap between training queries and evaluated queries, by id and by normalised text."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass


def normalize_text(text: str) -> str:
    """Case-folded, accent-free, punctuation-free, single-spaced text."""
    decomposed = unicodedata.normalize("NFKD", text)
    no_marks = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", no_marks.casefold())).strip()


def text_fingerprint(text: str) -> str:
    return hashlib.sha1(normalize_text(text).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class TrainingQueries:
    """What is remembered of a training set: query ids and text fingerprints, and the content
    hash of the queries file the ids belong to (None: remembered before irtune kept it)."""

    dataset: str
    split: str
    ids: frozenset[str]
    fingerprints: frozenset[str]
    queries_sha256: str | None = None

    @classmethod
    def from_queries(cls, dataset: str, split: str, queries: Mapping[str, str]) -> TrainingQueries:
        return cls(
            dataset, split, frozenset(queries), frozenset(text_fingerprint(t) for t in queries.values())
        )

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "ids": sorted(self.ids),
            "fingerprints": sorted(self.fingerprints),
            "queries_sha256": self.queries_sha256,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> TrainingQueries:
        return cls(
            data["dataset"],
            data["split"],
            frozenset(data["ids"]),
            frozenset(data["fingerprints"]),
            data.get("queries_sha256"),
        )


@dataclass(frozen=True)
class Overlap:
    by_id: int
    by_text: int
    overlapping: tuple[str, ...]  # evaluated query ids that were trained on

    @property
    def count(self) -> int:
        return len(self.overlapping)

    def to_json(self) -> dict:
        return {
            "queries": self.count,
            "by_id": self.by_id,
            "by_text": self.by_text,
            "examples": list(self.overlapping[:10]),
        }


def find_overlap(
    training: TrainingQueries, dataset: str, evaluated: Mapping[str, str], queries_sha256: str | None = None
) -> Overlap:
    """Evaluated queries seen in training: same id in the same dataset (by name, or by the
    content hash of its queries file: a renamed copy is the same dataset), or same normalised
    text in any dataset."""
    same_content = queries_sha256 is not None and training.queries_sha256 == queries_sha256
    same_dataset = training.dataset == dataset or same_content
    by_id = {q for q in evaluated if same_dataset and q in training.ids}
    by_text = {q for q, text in evaluated.items() if text_fingerprint(text) in training.fingerprints}
    return Overlap(len(by_id), len(by_text), tuple(sorted(by_id | by_text)))

"""From a raw generation to a query worth training on, or the reason it is not.

Cheap checks here (pure functions); the round-trip check (the source document must be in
the base model's top-k over the whole corpus, as in Promptagator) runs afterwards, on the
survivors, because it needs the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from irtune.data.leakage import normalize_text, text_fingerprint

LABEL = re.compile(r"^\s*(?:relevant\s+)?(?:query|question|q|search)\s*\d*\s*[:.)-]\s*", re.IGNORECASE)
NUMBERING = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
QUOTES = "\"'`*“”‘’ "
MIN_COPY_WORDS = 6  # a generated span this long found verbatim in the document is a copy


def clean_generation(raw: str) -> str:
    """The first non-empty line, without a `Query:`-style label, list marker or quotes."""
    for line in raw.splitlines():
        line = LABEL.sub("", NUMBERING.sub("", line)).strip().strip(QUOTES).strip()
        if line:
            return " ".join(line.split())
    return ""


@dataclass(frozen=True)
class FilterSettings:
    min_words: int = 3
    max_words: int = 40


class QueryFilter:
    """Remembers what it kept, so a second copy of a query is a duplicate."""

    def __init__(self, settings: FilterSettings, fixed_texts: Iterable[str], real_queries: Iterable[str]):
        self.settings = settings
        self.fixed = [normalize_text(t) for t in fixed_texts if normalize_text(t)]
        self.real = {text_fingerprint(q) for q in real_queries}
        self.seen: set[str] = set()

    def reason_to_drop(self, query: str, document: str) -> str | None:
        words = len(query.split())
        if not query:
            return "empty"
        if words < self.settings.min_words:
            return f"shorter than {self.settings.min_words} words"
        if words > self.settings.max_words:
            return f"longer than {self.settings.max_words} words"
        normal = normalize_text(query)
        if not normal:
            return "no words"
        if any(normal == fixed or normal in fixed for fixed in self.fixed):
            return "repeats the prompt"
        if words >= MIN_COPY_WORDS and normal in normalize_text(document):
            return "copies the document"
        fingerprint = text_fingerprint(query)
        if fingerprint in self.real:
            return "equals a real query"  # never train on a text that could be evaluated
        if fingerprint in self.seen:
            return "duplicate"
        self.seen.add(fingerprint)
        return None

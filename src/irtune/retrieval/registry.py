"""Which retrievers exist: name -> where its factory lives, imported only when chosen.

The table is plain data so that the CLI and config validation can list the choices
without importing torch, faiss or bm25s.
"""

from __future__ import annotations

from dataclasses import dataclass

from irtune.errors import invalid


@dataclass(frozen=True)
class Registered:
    factory: str  # "module:function", called as function(settings, model)
    needs_model: bool
    summary: str


RETRIEVERS: dict[str, Registered] = {
    "dense": Registered("irtune.retrieval.dense:dense_retriever", True, "the model's embeddings"),
    "bm25": Registered("irtune.retrieval.bm25:bm25_retriever", False, "BM25 (bm25s, Lucene variant)"),
    "hybrid": Registered(
        "irtune.retrieval.hybrid:hybrid_retriever", True, "dense + BM25, convex fusion tuned on dev queries"
    ),
    "hybrid-rrf": Registered(
        "irtune.retrieval.hybrid:rrf_retriever", True, "dense + BM25, reciprocal rank fusion"
    ),
}


def retriever_names() -> tuple[str, ...]:
    return tuple(RETRIEVERS)


def check_retriever(name: str) -> Registered:
    if name not in RETRIEVERS:
        raise invalid(
            "retriever", "must be one of {choices}, not {name!r}", choices=", ".join(RETRIEVERS), name=name
        )
    return RETRIEVERS[name]

"""Which retrievers exist: name -> where its factory lives, imported only when chosen.

The table is plain data so that the CLI and config validation can list the choices
without importing torch, faiss or bm25s.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from irtune.errors import IrtuneError

if TYPE_CHECKING:
    from irtune.models import LoadedModel
    from irtune.retrieval.base import Retriever
    from irtune.settings import EvalSettings


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
        raise IrtuneError(f"--retriever must be one of {', '.join(RETRIEVERS)}, not {name!r}")
    return RETRIEVERS[name]


def make_retriever(name: str, settings: EvalSettings, model: LoadedModel | None) -> Retriever:
    registered = check_retriever(name)
    if registered.needs_model and model is None:
        raise IrtuneError(f"{name} retrieval needs a model: -m minilm, a hub id or a folder")
    module, _, function = registered.factory.partition(":")
    factory = getattr(importlib.import_module(module), function)
    retriever: Retriever = factory(settings, model)
    return retriever

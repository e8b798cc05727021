"""Dense retrieval: the model's embeddings, cached on disk, searched exactly shard by shard
(`exact`), through a FAISS index (`ann`), or as cheaper vectors made from them (`compressed`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from irtune.core.progress import progress_bar
from irtune.errors import InvalidValueError
from irtune.models.loading import LoadedModel
from irtune.results.schema import RetrieverInfo
from irtune.retrieval.base import Corpus, LabelledQueries, Retrieval, run_from_arrays
from irtune.retrieval.compressed import CompressedCorpus, Compression
from irtune.retrieval.encode import EmbeddingShards, encode_corpus_cached, encode_texts, entry_folder
from irtune.retrieval.exact import exact_search
from irtune.retrieval.settings import DEFAULT_INDEX_PARAMS

if TYPE_CHECKING:
    from irtune.retrieval.settings import RetrievalSettings


@dataclass(frozen=True)
class DenseRetriever:
    """A model's embeddings: the corpus encoded once into the on-disk cache (memory-mapped,
    resumable), queries encoded per search, exact inner-product search over the shards, or
    a FAISS index built from them (then its recall against exact search is reported)."""

    model: LoadedModel
    precision: str = "fp32"
    batch_size: int = 32
    cache_dir: Path | None = None
    store_dtype: str = "float32"
    index_kind: str = "exact"
    index_params: Mapping[str, Any] = field(default_factory=dict)
    devices: tuple[str, ...] = ()
    compression: Compression = field(default_factory=Compression)
    backend: str = "torch"  # irtune.retrieval.backends: torch, or an ONNX Runtime / OpenVINO export
    show_progress: bool = True
    name: str = "dense"
    uses_dev: bool = False

    def describe(self) -> RetrieverInfo:
        params = {**DEFAULT_INDEX_PARAMS[self.index_kind], **self.index_params}
        return RetrieverInfo(
            name=self.name,
            description="dense (inner product over cached embeddings)",
            encodes=True,
            precision=self._precision(),
            max_seq_length=self.model.max_seq_length,
            store_dtype=self.store_dtype,
            index=self.index_kind,
            index_params=params if self.index_kind != "exact" else {},
            params=self._compression_params(),
        )

    def _precision(self) -> str:
        """What the encoder computes in: int8 exports hold int8 weights and activations, and
        run the rest in fp32 or, when asked, bf16."""
        if not self.backend.endswith("-int8"):
            return self.precision
        return "int8" if self.precision == "fp32" else f"int8+{self.precision}"

    def _compression_params(self) -> dict[str, Any]:
        """dims and bytes per document searched (the efficiency frontier's x axis), and the
        compression when there is one."""
        c = self.compression
        full = self.model.model.get_embedding_dimension() or 0
        float_bytes = 2 if self.store_dtype == "float16" else 4
        dims, size = c.dims or full, c.bytes_per_document(full, float_bytes)
        if not c.active:
            return {"backend": self.backend, "dims": dims, "bytes_per_document": size}
        kind = self.store_dtype if c.quantize == "none" else c.quantize
        rescored = f", top {c.rescore}x k rescored by the float query" if c.rescore > 1 else ""
        return {
            "backend": self.backend,
            "dims": dims,
            "quantize": c.quantize,
            "rescore": c.rescore,
            "bytes_per_document": size,
            "compression": f"{dims} dims, {kind}{rescored} ({size:g} bytes/document)",
        }

    def index(self, corpus: Corpus, dev: LabelledQueries | None = None) -> DenseIndex:
        dims = self.compression.dims
        if dims is not None and dims > (full := self.model.model.get_embedding_dimension() or 0):
            raise InvalidValueError(  # before encoding
                "{dims} {value}: the model's embeddings have {full}", value=dims, full=full
            )
        started = time.perf_counter()
        model = self._encoder(corpus)
        timings = {"export_s": time.perf_counter() - started} if self.backend != "torch" else {}
        started = time.perf_counter()
        with contextlib.ExitStack() as stack:
            advance = None
            if self.show_progress:
                advance = stack.enter_context(progress_bar(f"encode {corpus.name} corpus", len(corpus)))
            shards = encode_corpus_cached(
                model,
                corpus.texts(),
                corpus.content_key,
                self.cache_dir,
                batch_size=self.batch_size,
                precision=self.precision,
                on_progress=advance,
                store_dtype=self.store_dtype,
                devices=self.devices,
                count=len(corpus),
            )
        timings["encode_corpus_s"] = time.perf_counter() - started
        compressed = None
        if self.compression.active:
            started = time.perf_counter()
            compressed = CompressedCorpus.build(shards.chunks, self.compression)
            timings["compress_s"] = time.perf_counter() - started
        faiss_index = None
        if self.index_kind != "exact":
            started = time.perf_counter()
            from irtune.retrieval import ann  # FAISS loads only for an ANN index

            dim = shards.chunks[0].shape[1] if shards.chunks else 0
            faiss_index = ann.build_index(
                shards.iter_with_offsets(), dim, self.index_kind, dict(self.index_params)
            )
            timings["index_build_s"] = time.perf_counter() - started
        return DenseIndex(self, model, corpus, shards, faiss_index, timings, compressed)

    def cache_entry(self, corpus: Corpus) -> Path:
        """Where `index` keeps the corpus embeddings."""
        if self.backend != "torch":
            raise ValueError("cache_entry: an export's embeddings are keyed by the export, not the model")
        return entry_folder(self.model, corpus.content_key, self.cache_dir, self.precision, self.store_dtype)

    def _encoder(self, corpus: Corpus) -> LoadedModel:
        """The model, or its export for another backend (static int8 calibrates on a sample
        of this corpus's documents, never on queries nor on their own documents)."""
        if self.backend == "torch":
            return self.model
        from irtune.core.cache import default_cache_dir
        from irtune.retrieval import backends

        calibration = backends.corpus_calibration(corpus, self.model.prompts.document)
        return backends.on_backend(
            self.model,
            self.backend,
            cache_dir=self.cache_dir or default_cache_dir(),
            calibration=calibration,
            precision=self.precision,
        )


@dataclass
class DenseIndex:
    retriever: DenseRetriever
    model: LoadedModel  # the retriever's model, or its export (--backend)
    corpus: Corpus
    shards: EmbeddingShards
    faiss_index: Any = None
    index_timings: dict[str, float] = field(default_factory=dict)
    compressed: CompressedCorpus | None = None
    _encoded: tuple[tuple[str, ...], np.ndarray] | None = field(default=None, repr=False)

    def encode_queries(self, queries: Mapping[str, str]) -> np.ndarray:
        """Query embeddings; the last set is kept, so scoring pairs after a search of the same
        queries (hard-negative mining) does not encode them twice."""
        key = tuple(queries)
        if self._encoded is None or self._encoded[0] != key:
            model, settings = self.model, self.retriever
            texts = [queries[q] for q in key]
            vectors = encode_texts(model, texts, model.prompts.query, settings.batch_size, settings.precision)
            self._encoded = (key, vectors)
        return self._encoded[1]

    def search(self, queries: Mapping[str, str], top_k: int) -> Retrieval:
        timings = dict(self.index_timings)
        qids = list(queries)
        started = time.perf_counter()
        vectors = self.encode_queries(queries)
        timings["encode_queries_s"] = time.perf_counter() - started
        started = time.perf_counter()
        if self.compressed is not None:
            scores, indices = self.compressed.search(vectors, top_k)
        else:
            scores, indices = exact_search(vectors, self.shards.iter_with_offsets(), top_k)
        timings["search_s"] = time.perf_counter() - started
        details: dict[str, Any] = {}
        if self.faiss_index is not None:
            from irtune.retrieval import ann

            exact_indices = indices
            started = time.perf_counter()
            scores, indices = ann.faiss_search(self.faiss_index, vectors, top_k)
            timings["index_search_s"] = time.perf_counter() - started
            details["index"] = {
                "type": self.retriever.index_kind,
                "params": {**DEFAULT_INDEX_PARAMS[self.retriever.index_kind], **self.retriever.index_params},
                "recall@100_vs_exact": ann.ann_recall(indices, exact_indices, 100),
                "recall@10_vs_exact": ann.ann_recall(indices, exact_indices, 10),
            }
        return Retrieval(run_from_arrays(qids, self.corpus.doc_ids, scores, indices), timings, details)

    def score_pairs(
        self, queries: Mapping[str, str], pairs: Mapping[str, Sequence[str]]
    ) -> dict[str, dict[str, float]]:
        """query · document for the given (query, documents) pairs, one shard at a time (the
        corpus embeddings are never loaded whole)."""
        vectors = self.encode_queries(queries)
        row_of = {q: i for i, q in enumerate(queries)}
        position = {d: i for i, d in enumerate(self.corpus.doc_ids)}
        wanted: dict[int, list[tuple[str, str]]] = {}
        for qid, docs in pairs.items():
            for doc in docs:
                wanted.setdefault(position[doc], []).append((qid, doc))
        scores: dict[str, dict[str, float]] = {q: {} for q in pairs}
        for offset, shard in self.shards.iter_with_offsets():
            for index in [i for i in wanted if offset <= i < offset + len(shard)]:
                vector = np.asarray(shard[index - offset], dtype=np.float32)
                for qid, doc in wanted[index]:
                    scores[qid][doc] = float(np.dot(vectors[row_of[qid]], vector))
        return scores


def dense_retriever(settings: RetrievalSettings, model: LoadedModel | None) -> DenseRetriever:
    if model is None:
        raise ValueError("dense retrieval needs a model")
    return DenseRetriever(
        model,
        precision=settings.precision,
        batch_size=settings.batch_size,
        cache_dir=settings.cache_dir,
        store_dtype=settings.store_dtype,
        index_kind=settings.index,
        index_params=settings.index_params,
        devices=settings.devices,
        compression=Compression(settings.dims, settings.quantize, settings.rescore, model.normalize),
        backend=settings.backend,
    )

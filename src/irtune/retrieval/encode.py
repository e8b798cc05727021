"""Encoding with an on-disk, resumable embedding cache.

Document embeddings are written in fixed-size chunks (`chunk_00000.npy`, ...), each
atomically, under a folder keyed by everything that changes the vectors: weights hash,
prompt, max length, precision, normalisation and the corpus content. A second run of
the same model on the same corpus reads them back (memory-mapped) instead of encoding;
an interrupted run re-encodes only the missing chunks.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from platformdirs import user_cache_dir

from irtune.fileio import atomic_path, sha256_text, write_json_atomic
from irtune.models import LoadedModel

CACHE_DIR_ENV = "IRTUNE_CACHE_DIR"
PRECISIONS = ("fp32", "bf16", "fp16")
CACHE_FORMAT = "irtune-embeddings-v1"

Progress = Callable[[int], None]
Pool = dict[Literal["input", "output", "processes"], Any]  # sentence-transformers' multi-process pool


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env) if env else Path(user_cache_dir("irtune")) / "cache"


@contextlib.contextmanager
def autocast_for(precision: str, device: torch.device) -> Iterator[None]:
    """bf16/fp16 autocast (matmuls in low precision, norms and softmax in fp32)."""
    if precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def encode_texts(
    model: LoadedModel,
    texts: Sequence[str],
    prompt: str,
    batch_size: int = 32,
    precision: str = "fp32",
    pool: Pool | None = None,
) -> np.ndarray:
    """Float32 embeddings (normalised when the model's similarity is cosine).

    With a multi-process `pool` (sentence-transformers' pool over several GPUs or CPU
    processes) the work is split across its workers.
    """
    if not texts:
        return np.zeros((0, model.model.get_sentence_embedding_dimension() or 0), np.float32)
    with torch.inference_mode(), autocast_for(precision, model.model.device):
        embeddings = model.model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=model.normalize,
            pool=pool,
        )
    return np.asarray(embeddings, dtype=np.float32)


@dataclass
class EmbeddingShards:
    """Corpus embeddings as memory-mapped chunks, in corpus order."""

    folder: Path
    chunks: list[np.ndarray]

    @property
    def count(self) -> int:
        return sum(len(c) for c in self.chunks)

    def iter_with_offsets(self) -> Iterator[tuple[int, np.ndarray]]:
        offset = 0
        for chunk in self.chunks:
            yield offset, chunk
            offset += len(chunk)

    def to_array(self) -> np.ndarray:
        return np.concatenate([np.asarray(c, dtype=np.float32) for c in self.chunks])


def cache_key(
    model: LoadedModel, prompt: str, precision: str, content_key: str, store_dtype: str = "float32"
) -> str:
    return sha256_text(
        CACHE_FORMAT,
        model.weights_sha256,
        prompt,
        str(model.max_seq_length),
        precision,
        str(model.normalize),
        content_key,
        *([] if store_dtype == "float32" else [store_dtype]),
    )


def encode_corpus_cached(
    model: LoadedModel,
    texts: Iterable[str],
    content_key: str,
    cache_dir: Path | None = None,
    batch_size: int = 32,
    precision: str = "fp32",
    chunk_size: int = 2048,
    store_dtype: str = "float32",
    on_progress: Progress | None = None,
    devices: Sequence[str] | None = None,
    count: int | None = None,
) -> EmbeddingShards:
    """Encode `texts` with the document prompt, reusing/resuming the on-disk cache.

    `content_key` must identify the texts (e.g. the corpus file hash plus the text recipe).
    `texts` may be a stream (give its length as `count`): only one chunk of text is held
    in memory at a time, and the embeddings stay on disk, memory-mapped.
    """
    if count is None:
        if not isinstance(texts, Sequence):
            raise TypeError("encode_corpus_cached: give count= when texts is a stream")
        count = len(texts)
    key = cache_key(model, model.prompts.document, precision, content_key, store_dtype)
    folder = (cache_dir or default_cache_dir()) / "embeddings" / key
    folder.mkdir(parents=True, exist_ok=True)
    n_chunks = (count + chunk_size - 1) // chunk_size
    stream = iter(texts)
    chunks: list[np.ndarray] = []
    with contextlib.ExitStack() as stack:
        pool = None
        if devices:
            pool = model.model.start_multi_process_pool(list(devices))
            stack.callback(model.model.stop_multi_process_pool, pool)
        # texts are read only up to the last chunk missing from the cache: a cached re-run
        # does not read the corpus texts at all
        missing = [i for i in range(n_chunks) if not _chunk_path(folder, i, chunk_size).is_file()]
        last_needed = max(missing, default=-1)
        for index in range(n_chunks):
            batch: list[str] = []
            if index <= last_needed:
                batch = list(itertools.islice(stream, chunk_size))
                if len(batch) != min(chunk_size, count - index * chunk_size):
                    raise ValueError(f"encode_corpus_cached: the text stream ended before {count} texts")
            chunk = _chunk(model, batch, index, chunk_size, folder, batch_size, precision, store_dtype, pool)
            expected = min(chunk_size, count - index * chunk_size)
            if len(chunk) != expected:  # a foreign or truncated file: never trust it
                path = _chunk_path(folder, index, chunk_size)
                path.unlink()
                raise RuntimeError(f"{path}: cached chunk has {len(chunk)} rows, expected {expected}")
            chunks.append(chunk)
            if on_progress is not None:
                on_progress(len(chunks[-1]))
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        write_json_atomic(
            manifest,
            {
                "format": CACHE_FORMAT,
                "model_weights_sha256": model.weights_sha256,
                "prompt": model.prompts.document,
                "max_seq_length": model.max_seq_length,
                "precision": precision,
                "content_key": content_key,
                "count": count,
                "chunk_size": chunk_size,
                "store_dtype": store_dtype,
            },
        )
    return EmbeddingShards(folder=folder, chunks=chunks)


def _chunk(
    model: LoadedModel,
    texts: list[str],
    index: int,
    chunk_size: int,
    folder: Path,
    batch_size: int,
    precision: str,
    store_dtype: str,
    pool: Pool | None,
) -> np.ndarray:
    """Chunk `index` of the corpus embeddings: read from the cache, or its `texts` encoded."""
    path = _chunk_path(folder, index, chunk_size)
    if not path.is_file():
        vectors = encode_texts(model, texts, model.prompts.document, batch_size, precision, pool)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, vectors.astype(store_dtype))
    return np.load(path, mmap_mode="r")


def _chunk_path(folder: Path, index: int, chunk_size: int) -> Path:
    return folder / f"chunk_{index:05d}_{chunk_size}.npy"

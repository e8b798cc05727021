"""Encoding with an on-disk, resumable embedding cache.

Document embeddings are written in fixed-size chunks (`chunk_00000.npy`, ...), each
atomically, under a folder keyed by everything that changes the vectors: weights hash,
prompt, max length, precision, normalisation and the corpus content. A second run of
the same model on the same corpus reads them back (memory-mapped) instead of encoding;
an interrupted run re-encodes only the missing chunks.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from platformdirs import user_cache_dir

from irtune.fileio import atomic_path, sha256_text, write_json_atomic
from irtune.models import LoadedModel

CACHE_DIR_ENV = "IRTUNE_CACHE_DIR"
PRECISIONS = ("fp32", "bf16", "fp16")
CACHE_FORMAT = "irtune-embeddings-v1"

Progress = Callable[[int], None]


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
) -> np.ndarray:
    """Float32 embeddings (normalised when the model's similarity is cosine)."""
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


def cache_key(model: LoadedModel, prompt: str, precision: str, content_key: str) -> str:
    return sha256_text(
        CACHE_FORMAT,
        model.weights_sha256,
        prompt,
        str(model.max_seq_length),
        precision,
        str(model.normalize),
        content_key,
    )


def encode_corpus_cached(
    model: LoadedModel,
    texts: Sequence[str],
    content_key: str,
    cache_dir: Path | None = None,
    batch_size: int = 32,
    precision: str = "fp32",
    chunk_size: int = 2048,
    store_dtype: str = "float32",
    on_progress: Progress | None = None,
) -> EmbeddingShards:
    """Encode `texts` with the document prompt, reusing/resuming the on-disk cache.

    `content_key` must identify the texts (e.g. the corpus file hash plus the text recipe).
    """
    key = cache_key(model, model.prompts.document, precision, content_key)
    folder = (cache_dir or default_cache_dir()) / "embeddings" / key
    folder.mkdir(parents=True, exist_ok=True)
    n_chunks = (len(texts) + chunk_size - 1) // chunk_size
    chunks: list[np.ndarray] = []
    for index in range(n_chunks):
        start, stop = index * chunk_size, min((index + 1) * chunk_size, len(texts))
        path = folder / f"chunk_{index:05d}_{chunk_size}.npy"
        if not path.is_file():
            vectors = encode_texts(
                model, texts[start:stop], model.prompts.document, batch_size, precision
            )
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.save(handle, vectors.astype(store_dtype))
        chunk = np.load(path, mmap_mode="r")
        if len(chunk) != stop - start:  # a foreign or truncated file: never trust it
            path.unlink()
            raise RuntimeError(f"{path}: cached chunk has {len(chunk)} rows, expected {stop - start}")
        chunks.append(chunk)
        if on_progress is not None:
            on_progress(stop - start)
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
                "count": len(texts),
                "chunk_size": chunk_size,
                "store_dtype": store_dtype,
            },
        )
    return EmbeddingShards(folder=folder, chunks=chunks)


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))

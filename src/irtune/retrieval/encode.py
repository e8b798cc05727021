"""Encoding with an on-disk, resumable embedding cache.

Document embeddings are written in fixed-size chunks (`chunk_00000.npy`, ...), each
atomically, under a folder keyed by everything that changes the vectors: weights hash (and,
for an exported backend, the export's content), prompt, max length, precision, normalisation
and the corpus content. A second run of the same model on the same corpus reads them back
(memory-mapped) instead of encoding; an interrupted run re-encodes only the missing chunks.

The cache trusts a chunk only when the entry's manifest lists it with its sha256: the manifest
is rewritten (atomically) after each chunk is written, so it is the journal an interrupted
encode resumes from, and it is checked once per process before a chunk is used. A chunk the
manifest does not list, or whose bytes no longer match (truncated, zeroed, same-shape garbage
that would otherwise pass silently and wreck every metric), is reported with its file name,
dropped and encoded again; it is never re-blessed.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from irtune.core.cache import default_cache_dir
from irtune.core.files import (
    atomic_path,
    hashed_files,
    sha256_file_once,
    sha256_text,
    write_json_atomic,
)
from irtune.core.locks import folder_lock
from irtune.models.loading import LoadedModel

log = logging.getLogger(__name__)

CACHE_FORMAT = "irtune-embeddings-v1"
MANIFEST = "manifest.json"

Progress = Callable[[int], None]
Pool = dict[Literal["input", "output", "processes"], Any]  # sentence-transformers' multi-process pool


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
        return np.zeros((0, model.model.get_embedding_dimension() or 0), np.float32)
    # an export computes in the precision it was loaded with (irtune.retrieval.backends)
    autocast = precision if model.backend == "torch" else "fp32"
    with torch.inference_mode(), autocast_for(autocast, model.model.device):
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
        *([] if model.backend_key is None else [model.backend, model.backend_key]),
    )


def entry_folder(
    model: LoadedModel,
    content_key: str,
    cache_dir: Path | None,
    precision: str = "fp32",
    store_dtype: str = "float32",
) -> Path:
    """The cache entry of `model`'s document embeddings of the texts `content_key` names."""
    key = cache_key(model, model.prompts.document, precision, content_key, store_dtype)
    return (cache_dir or default_cache_dir()) / "embeddings" / key


def share_entry(entry: Path, cache_dir: Path | None) -> bool:
    """Move a cache entry from a private cache (a training run's work folder) into `cache_dir`
    under the same key, its folder name: the chunks its manifest lists, then the manifest
    (atomically), which is what makes them trusted there. An entry already in `cache_dir` is
    kept as it is. False when there was nothing to move."""
    manifest = entry / MANIFEST
    if not manifest.is_file():
        return False
    target = (cache_dir or default_cache_dir()) / "embeddings" / entry.name
    with folder_lock(target, what="embedding cache entry", wait=True):
        if (target / MANIFEST).is_file():
            return False
        for name in _Journal(manifest, {}).chunks:
            if (entry / name).is_file():  # one that is not is encoded again there, like any missing chunk
                shutil.move(entry / name, target / name)
        with atomic_path(target / MANIFEST) as tmp:
            shutil.copyfile(manifest, tmp)
        manifest.unlink()
    return True


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
    folder = entry_folder(model, content_key, cache_dir, precision, store_dtype)
    n_chunks = (count + chunk_size - 1) // chunk_size
    stream = iter(texts)
    chunks: list[np.ndarray] = []
    with contextlib.ExitStack() as stack:
        # a second process encoding the same entry waits, then finds the chunks written
        stack.enter_context(folder_lock(folder, what="embedding cache entry", wait=True))
        pool = None
        if devices:
            pool = model.model.start_multi_process_pool(list(devices))
            stack.callback(model.model.stop_multi_process_pool, pool)
        journal = _Journal(
            folder / MANIFEST,
            {
                "format": CACHE_FORMAT,
                "model_weights_sha256": model.weights_sha256,
                "prompt": model.prompts.document,
                "max_seq_length": model.max_seq_length,
                "precision": precision,
                "backend": model.backend,
                "backend_key": model.backend_key,
                "content_key": content_key,
                "count": count,
                "chunk_size": chunk_size,
                "store_dtype": store_dtype,
            },
        )
        # an untrusted chunk is dropped here, so it counts as missing; texts are read only up to
        # the last missing chunk: a cached re-run does not read the corpus texts at all
        rows = [min(chunk_size, count - i * chunk_size) for i in range(n_chunks)]
        missing = {i for i in range(n_chunks) if not journal.trusts(_chunk_path(folder, i, chunk_size))}
        consumed = 0
        for index in range(n_chunks):
            path = _chunk_path(folder, index, chunk_size)
            if index in missing:
                skipped = sum(1 for _ in itertools.islice(stream, index * chunk_size - consumed))
                batch = list(itertools.islice(stream, rows[index]))
                consumed += skipped + len(batch)
                if consumed != index * chunk_size + rows[index]:
                    raise ValueError(f"encode_corpus_cached: the text stream ended before {count} texts")
                vectors = encode_texts(model, batch, model.prompts.document, batch_size, precision, pool)
                _save_chunk(path, vectors.astype(store_dtype))
                journal.record(path)
            chunks.append(np.load(path, mmap_mode="r"))
            if on_progress is not None:
                on_progress(len(chunks[-1]))
    return EmbeddingShards(folder=folder, chunks=chunks)


class _Journal:
    """A cache entry's manifest: its settings and each finished chunk with its sha256, rewritten
    atomically after every chunk (the caller holds the entry's lock)."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path, self.settings = path, settings
        self.chunks = self._listed()

    def _listed(self) -> dict[str, str]:
        try:
            recorded = json.loads(self.path.read_text(encoding="utf-8")).get("chunks", {})
        except FileNotFoundError:
            return {}
        except (ValueError, AttributeError, OSError) as exc:
            log.warning("%s: unreadable (%s); its chunks are encoded again", self.path, exc)
            return {}
        return dict(recorded) if isinstance(recorded, dict) else {}

    def trusts(self, chunk: Path) -> bool:
        """True for a chunk listed with the sha256 it has; any other chunk file is dropped
        (with a warning) so that it is encoded again."""
        if not chunk.is_file():
            return False
        listed = self.chunks.get(chunk.name)
        if listed is not None and sha256_file_once(chunk) == listed:
            return True
        problem = (
            "it is not listed in its cache entry's manifest"
            if listed is None
            else "its bytes do not match the sha256 its manifest records (a damaged or replaced file)"
        )
        log.warning("%s: %s; dropping it and encoding it again", chunk, problem)
        chunk.unlink()
        self.chunks.pop(chunk.name, None)
        hashed_files.pop(chunk, None)
        return False

    def record(self, chunk: Path) -> None:
        self.chunks[chunk.name] = sha256_file_once(chunk)
        write_json_atomic(self.path, {**self.settings, "chunks": dict(sorted(self.chunks.items()))})


def _save_chunk(path: Path, vectors: np.ndarray) -> None:
    """Written by Python's file object, not numpy's C stdio: on a full disk numpy reports a short
    write without its cause, or nothing at all when the bytes fit its buffer (the chunk is cut
    short and would then be hashed into the manifest as if whole)."""
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def _chunk_path(folder: Path, index: int, chunk_size: int) -> Path:
    return folder / f"chunk_{index:05d}_{chunk_size}.npy"

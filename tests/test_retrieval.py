"""Dense search paths: shard streaming equals in-memory search; FAISS indexes vs exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from irtune.data.beir import BeirDataset
from irtune.evaluation.runner import evaluate_dataset
from irtune.models.loading import load_model
from irtune.retrieval import ann
from irtune.retrieval.encode import encode_corpus_cached, encode_texts
from irtune.retrieval.exact import exact_search
from irtune.retrieval.settings import RetrievalSettings, make_retriever


def unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_streaming_over_shards_equals_one_in_memory_matrix():
    corpus, queries = unit(1000, 16, 0), unit(37, 16, 1)
    full_scores, full_index = exact_search(queries, [(0, corpus)], top_k=25)
    shards = [(o, corpus[o : o + 97]) for o in range(0, 1000, 97)]
    s_scores, s_index = exact_search(queries, shards, top_k=25, query_batch=8)
    assert (s_index == full_index).all() and np.allclose(s_scores, full_scores)
    brute = np.argsort(-(queries @ corpus.T), axis=1)[:, :25]
    assert (full_index == brute).all()


def test_float16_shards_give_the_same_ranking(tiny_model, scifact_slice, cache_dir):
    model = load_model(str(tiny_model), device="cpu")
    texts = [d.full_text() for d in BeirDataset(scifact_slice).corpus.values()]
    q = encode_texts(model, texts[:20], "")
    f32 = encode_corpus_cached(model, texts, "k", cache_dir, chunk_size=50)
    f16 = encode_corpus_cached(model, texts, "k", cache_dir, chunk_size=50, store_dtype="float16")
    assert f16.folder != f32.folder and f16.chunks[0].dtype == np.float16
    top32 = exact_search(q, f32.iter_with_offsets(), 10)[1]
    top16 = exact_search(q, f16.iter_with_offsets(), 10)[1]
    assert ann.ann_recall(top16, top32, 10) > 0.9


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_faiss_indexes_against_exact(kind):
    corpus, queries = unit(3000, 32, 2), unit(50, 32, 3)
    shards = [(o, corpus[o : o + 1000]) for o in range(0, 3000, 1000)]
    _, exact = exact_search(queries, shards, 100)
    params = {"nlist": 16, "nprobe": 16} if kind == "ivf" else {}
    index = ann.build_index(shards, 32, kind, params)
    _, approx = ann.faiss_search(index, queries, 100)
    recall = ann.ann_recall(approx, exact, 100)
    assert recall == 1.0 if kind in ("flat", "ivf") else recall > 0.8  # ivf probes every list here


def test_eval_with_an_ann_index_reports_its_recall(tiny_model, scifact_slice, cache_dir):
    model = load_model(str(tiny_model), device="cpu")
    settings = RetrievalSettings(cache_dir=cache_dir, index="hnsw", index_params={"ef_search": 16})
    entry = evaluate_dataset(BeirDataset(scifact_slice), settings, model).result
    index = entry.retrieval["index"]
    assert index["type"] == "hnsw" and index["params"]["ef_search"] == 16
    assert 0 < index["recall@100_vs_exact"] <= 1
    assert "index_build_s" in entry.timings_s
    assert make_retriever("dense", settings, model).describe().approximate


def test_multi_process_encoding_matches_single_process(tiny_model, scifact_slice, cache_dir):
    model = load_model(str(tiny_model), device="cpu")
    texts = [d.full_text() for d in BeirDataset(scifact_slice).corpus.values()][:60]
    single = encode_corpus_cached(model, texts, "a", cache_dir / "one", chunk_size=30).to_array()
    pooled = encode_corpus_cached(
        model, texts, "a", cache_dir / "two", chunk_size=30, devices=["cpu", "cpu"]
    ).to_array()
    assert np.allclose(single, pooled, atol=1e-5)


def test_dense_eval_streams_a_large_corpus_and_matches_in_memory_encoding(
    tiny_model, scifact_slice, cache_dir, monkeypatch
):
    from irtune.data import beir

    monkeypatch.setattr(beir, "IN_MEMORY_CORPUS_BYTES", 0)  # every corpus counts as large
    model = load_model(str(tiny_model), device="cpu")
    streamed = BeirDataset(scifact_slice)
    entry = evaluate_dataset(streamed, RetrievalSettings(cache_dir=cache_dir), model).result
    assert "corpus" not in streamed.__dict__  # texts were streamed from the file, never all loaded
    assert entry.corpus_size == len(streamed.doc_ids) == len(BeirDataset(scifact_slice).corpus)
    texts = [d.full_text() for d in BeirDataset(scifact_slice).corpus.values()]
    in_memory = encode_corpus_cached(model, texts, "in-memory", cache_dir, chunk_size=64).to_array()
    from_stream = encode_corpus_cached(
        model, streamed.iter_texts(), "stream", cache_dir, chunk_size=64, count=len(texts)
    ).to_array()
    assert np.array_equal(in_memory, from_stream)


def test_dense_eval_parses_a_small_corpus_once(tiny_model, scifact_slice, cache_dir, monkeypatch):
    """Ids and texts of a corpus within IN_MEMORY_CORPUS_BYTES come from one parse of its file."""
    from irtune.data import beir

    parses: list[Path] = []
    iter_corpus = beir.iter_corpus
    monkeypatch.setattr(beir, "iter_corpus", lambda path: parses.append(path) or iter_corpus(path))
    dataset = BeirDataset(scifact_slice)
    model = load_model(str(tiny_model), device="cpu")
    entry = evaluate_dataset(dataset, RetrievalSettings(cache_dir=cache_dir), model).result
    assert parses == [dataset.corpus_path]
    assert entry.corpus_size == len(dataset.corpus)


def test_a_stream_shorter_than_its_count_is_refused(tiny_model, cache_dir):
    model = load_model(str(tiny_model), device="cpu")
    with pytest.raises(ValueError, match="ended before 10 texts"):
        encode_corpus_cached(model, iter(["a", "b"]), "short", cache_dir, chunk_size=4, count=10)


def test_a_cached_corpus_is_not_read_again(tiny_model, scifact_slice, cache_dir):
    model = load_model(str(tiny_model), device="cpu")
    texts = [d.full_text() for d in BeirDataset(scifact_slice).corpus.values()]
    first = encode_corpus_cached(model, texts, "once", cache_dir, chunk_size=64).to_array()

    def must_not_be_read():
        raise AssertionError("texts read although every chunk is cached")
        yield  # pragma: no cover

    again = encode_corpus_cached(
        model, must_not_be_read(), "once", cache_dir, chunk_size=64, count=len(texts)
    )
    assert np.array_equal(first, again.to_array())


def test_a_block_of_corpus_rows_stays_within_the_byte_budget(monkeypatch):
    """Few queries on a wide corpus: the float32 copy of a block (rows x dim) is bounded by
    BLOCK_BYTES, not only the score matrix (10 queries x 768 dims once copied 10 GB at once)."""
    from irtune.retrieval import exact

    copied: list[int] = []
    float32 = exact._float32
    monkeypatch.setattr(
        exact, "_float32", lambda pieces: copied.append((out := float32(pieces)).nbytes) or out
    )
    monkeypatch.setattr(exact, "BLOCK_BYTES", 4 * 16 * 100, raising=False)  # 100 rows of 16 dims
    corpus, queries = unit(1000, 16, 0), unit(3, 16, 1)
    _, index = exact_search(queries, [(o, corpus[o : o + 300]) for o in range(0, 1000, 300)], top_k=25)
    assert max(copied) == 4 * 16 * 100 and sum(copied) == corpus.nbytes
    assert (index == np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :25]).all()
    monkeypatch.undo()
    assert exact.block_rows(queries=10, query_batch=1024, dim=768) == exact.BLOCK_BYTES // (4 * 768)
    assert exact.block_rows(queries=4096, query_batch=1024, dim=8) == exact.SCORES_PER_STEP // 1024


@pytest.mark.parametrize("rows_per_block", [1, 3, 7, 1000])
def test_ties_at_the_cut_off_keep_the_lowest_corpus_index(monkeypatch, rows_per_block):
    """Equal scores (duplicate documents) at the k-th place: the lowest corpus indices are
    kept, best first and then by index, whatever the block layout."""
    from irtune.retrieval import exact

    monkeypatch.setattr(exact, "BLOCK_BYTES", 4 * 2 * rows_per_block, raising=False)
    corpus = np.array([[1.0, 0.0]] * 12 + [[2.0, 0.0]] * 2 + [[1.0, 0.0]] * 6, dtype=np.float32)
    queries = np.array([[1.0, 0.0], [0.5, 0.0]], dtype=np.float32)
    shards = [(0, corpus[:5]), (5, corpus[5:13]), (13, corpus[13:])]
    scores, index = exact_search(queries, shards, top_k=6)
    assert index.tolist() == [[12, 13, 0, 1, 2, 3]] * 2
    assert scores.tolist() == [[2.0, 2.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5, 0.5, 0.5]]

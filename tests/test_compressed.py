"""Cheaper document vectors (truncated dims, int8, ubinary) against brute-force references,
and end to end from the embedding cache without encoding again."""

from __future__ import annotations

import json

import numpy as np
import pytest

from irtune.cli.app import flag_names
from irtune.errors import IrtuneError, ParameterError
from irtune.retrieval.compressed import CompressedCorpus, Compression, truncated
from irtune.retrieval.settings import RetrievalSettings


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture()
def corpus():
    rng = np.random.default_rng(7)
    docs, queries = _unit(rng, 300, 48), _unit(rng, 20, 48)
    return [docs[:128], docs[128:256], docs[256:]], queries  # three shards, like the cache


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def test_truncation_renormalises_and_ranks_like_brute_force(corpus):
    shards, queries = corpus
    docs = np.concatenate(shards)
    built = CompressedCorpus.build(shards, Compression(dims=16))
    scores, indices = built.search(queries, 10)
    d16, q16 = docs[:, :16], queries[:, :16]
    d16 = d16 / np.linalg.norm(d16, axis=1, keepdims=True)
    q16 = q16 / np.linalg.norm(q16, axis=1, keepdims=True)
    reference = q16 @ d16.T
    assert np.array_equal(indices, _top(reference, 10))
    assert np.allclose(scores, np.take_along_axis(reference, indices, axis=1), atol=1e-5)
    assert np.allclose(np.linalg.norm(truncated(docs, 16), axis=1), 1.0, atol=1e-6)


def test_int8_ranks_as_the_float_query_against_dequantised_documents(corpus):
    shards, queries = corpus
    docs = np.concatenate(shards)
    built = CompressedCorpus.build(shards, Compression(quantize="int8"))
    # the reference quantises the whole corpus at once (ranges: its per-dimension min and max)
    low, high = docs.min(axis=0), docs.max(axis=0)
    step = (high - low) / 255
    codes = np.clip(np.floor((docs - low) / step), 0, 255)
    dequantised = codes * step + low
    reference = queries @ dequantised.T
    scores, indices = built.search(queries, 15)
    assert np.array_equal(indices, _top(reference, 15))
    # the scores are query · dequantised document (run files hold real similarities)
    assert np.allclose(scores, np.take_along_axis(reference, indices, axis=1), atol=1e-4)
    assert built.codes is not None and built.codes.dtype == np.int8 and built.ranges is not None
    assert np.allclose(built.ranges, np.vstack((low, high)))
    # and int8 is close to, but not exactly, float: the reference is not the float ranking
    assert not np.array_equal(_top(reference, 15), _top(queries @ docs.T, 15))


def test_ubinary_is_hamming_search_and_rescoring_reorders_by_the_float_query(corpus):
    """Hamming distances tie a lot, so the reference checks values, not the order among ties."""
    shards, queries = corpus
    docs = np.concatenate(shards)
    bits_d, bits_q = docs > 0, queries > 0
    hamming = (bits_q[:, None, :] != bits_d[None, :, :]).sum(axis=2)
    built = CompressedCorpus.build(shards, Compression(quantize="ubinary"))
    scores, indices = built.search(queries, 10)
    assert np.array_equal(-scores, np.sort(hamming, axis=1)[:, :10])
    assert np.array_equal(-scores, np.take_along_axis(hamming, indices, axis=1))
    assert all(len(set(row)) == 10 for row in indices)
    assert built.codes is not None and built.codes.shape == (300, 6)  # 48 bits in 6 bytes
    rescored = CompressedCorpus.build(shards, Compression(quantize="ubinary", rescore=4))
    r_scores, r_indices = rescored.search(queries, 10)
    by_float = np.einsum("qd,qcd->qc", queries, bits_d[r_indices].astype(np.float32))
    assert np.allclose(r_scores, by_float, atol=1e-5)  # the float query against the bits
    assert np.all(np.diff(r_scores, axis=1) <= 1e-6)
    cutoff = np.sort(hamming, axis=1)[:, 39:40]  # every rescored document was a top-40 candidate
    assert np.all(np.take_along_axis(hamming, r_indices, axis=1) <= cutoff)
    # rescoring keeps the best of the candidates by the float query: at least as good as the
    # float-query score of the plain Hamming top 10
    plain = np.einsum("qd,qcd->qc", queries, bits_d[indices].astype(np.float32))
    assert np.all(r_scores.sum(axis=1) >= plain.sum(axis=1) - 1e-5)


def test_many_queries_give_the_same_result_as_one_at_a_time(corpus):
    shards, queries = corpus
    built = CompressedCorpus.build(shards, Compression(dims=24, quantize="int8"))
    together = built.search(queries, 7)[1]
    alone = np.concatenate([built.search(queries[i : i + 1], 7)[1] for i in range(len(queries))])
    assert np.array_equal(together, alone)


def test_bytes_per_document():
    assert Compression().bytes_per_document(384) == 1536
    assert Compression(dims=128).bytes_per_document(384, float_bytes=2) == 256  # float16 cache
    assert Compression(dims=128, quantize="int8").bytes_per_document(384) == 128
    assert Compression(dims=64, quantize="ubinary").bytes_per_document(384) == 8
    assert Compression(dims=100, quantize="ubinary").bytes_per_document(384) == 13  # padded bits
    codes = CompressedCorpus.build(
        [_unit(np.random.default_rng(1), 5, 384)], Compression(100, "ubinary")
    ).codes
    assert codes is not None and codes.shape == (5, 13)


def test_a_dot_product_model_is_truncated_without_renormalising(corpus):
    """Renormalising would turn a dot-product model into a cosine one behind the label."""
    shards, queries = corpus
    docs = np.concatenate(shards) * np.linspace(0.5, 2.0, 300, dtype=np.float32)[:, None]  # unequal norms
    built = CompressedCorpus.build([docs], Compression(dims=16, normalize=False))
    scores, indices = built.search(queries, 10)
    reference = queries[:, :16] @ docs[:, :16].T
    assert np.array_equal(indices, _top(reference, 10))
    assert np.allclose(scores, np.take_along_axis(reference, indices, axis=1), atol=1e-5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"dims": 0}, "dims must be at least 1"),
        ({"quantize": "int4"}, "quantize must be one of none, int8, ubinary"),
        ({"quantize": "int8", "rescore": 4}, "rescore applies to quantize ubinary"),
        ({"quantize": "int8", "retriever": "bm25"}, "apply to retriever dense with index exact"),
        ({"dims": 64, "index": "hnsw"}, "apply to retriever dense with index exact"),
    ],
)
def test_bad_compression_settings_are_one_line(settings, message):
    with pytest.raises(IrtuneError, match=message):
        RetrievalSettings(**settings)


def test_compressed_runs_come_from_the_cache_and_compare_with_full_precision(
    tiny_model, scifact_slice, cache_dir, tmp_path
):
    from irtune.api import compare, evaluate

    full = evaluate(str(tiny_model), str(scifact_slice), cache_dir=cache_dir, out_dir=tmp_path / "full")
    chunks = sorted(p.stat().st_mtime_ns for p in cache_dir.glob("embeddings/*/chunk_*.npy"))
    cheap = evaluate(
        str(tiny_model),
        str(scifact_slice),
        cache_dir=cache_dir,
        out_dir=tmp_path / "d16-ubinary",
        dims=16,
        quantize="ubinary",
        rescore=4,
    )
    assert sorted(p.stat().st_mtime_ns for p in cache_dir.glob("embeddings/*/chunk_*.npy")) == chunks
    params = cheap.retriever.params
    assert params["dims"] == 16 and params["bytes_per_document"] == 2 and params["quantize"] == "ubinary"
    assert "16 dims, ubinary" in cheap.retriever.label()
    assert "compress_s" in cheap.datasets[0].timings_s
    assert cheap.datasets[0].metrics["ndcg@10"] != full.datasets[0].metrics["ndcg@10"]
    [comparison] = compare(tmp_path / "full" / "results.json", tmp_path / "d16-ubinary" / "results.json")
    assert comparison.datasets[0].queries == full.datasets[0].queries.count
    # the change comes from the compression, not the model: the comparison says so
    [caveat] = [c for c in comparison.caveats if c.startswith("compression differs")]
    assert "baseline full vectors, candidate 16 dims, ubinary" in caveat
    recorded = json.loads((tmp_path / "d16-ubinary" / "results.json").read_text())
    assert recorded["retriever"]["params"]["bytes_per_document"] == 2
    assert full.retriever.params == {"backend": "torch", "dims": 32, "bytes_per_document": 128.0}
    from irtune.api import report

    page = report([tmp_path / "full", tmp_path / "d16-ubinary"], out=tmp_path / "r.html").read_text()
    assert 'id="chart-frontier"' in page and "16 dims, ubinary" in page
    page = report([tmp_path / "full", tmp_path / "full"], out=tmp_path / "same.html").read_text()
    assert 'id="chart-frontier"' not in page  # one size only: no frontier to draw
    with pytest.raises(ParameterError, match=r"^dims 64: the model's embeddings have 32$") as caught:
        evaluate(str(tiny_model), str(scifact_slice), cache_dir=cache_dir, dims=64)
    assert caught.value.naming(flag_names(["eval"])) == "--dims 64: the model's embeddings have 32"

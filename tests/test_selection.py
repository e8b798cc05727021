"""Dev selection scores every candidate on the same documents, chosen without any candidate."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from irtune.data.beir import BeirDataset
from irtune.data.leakage import text_fingerprint
from irtune.data.splits import SplitPart
from irtune.models.loading import LoadedModel, Prompts
from irtune.training.selection import PoolSettings, build_dev_set, interpolated_state, score_dev

from conftest import write_beir

DIM = 8
QUERIES = 4


class StubEncoder:
    """Just enough of a SentenceTransformer: a fixed vector per text, dot-product similarity."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.device = torch.device("cpu")
        self.similarity_fn_name = "dot"
        self.max_seq_length = 64
        self.encoded: list[str] = []  # every text this model was asked to encode

    def get_embedding_dimension(self) -> int:
        return DIM

    def encode(self, texts, **_kwargs) -> np.ndarray:
        self.encoded.extend(texts)
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)


def unit(i: int, scale: float = 1.0) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i] = scale
    return v


def stub(name: str, vectors: dict[str, np.ndarray]) -> LoadedModel:
    return LoadedModel(name, name, StubEncoder(vectors), Prompts("", "", "none"), f"sha-{name}")


def gaming_setup(tmp_path):
    """Per dev query i: positive p_i, a decoy b_i, five distractors g_ij, shared fillers.

    The base ranks b_i over p_i (NDCG@10 = 1/log2(3) = 0.6309 everywhere). The gaming
    candidate ranks p_i first among the base model's top documents but puts the five
    distractors, which the base ranks last, above it: 1/log2(7) = 0.3562 on the corpus.
    """
    corpus, queries, qrels = {}, {}, {}
    base, gaming = {}, {}
    filler = np.full(DIM, 0.1, np.float32)
    for i in range(QUERIES):
        queries[f"q{i}"] = f"query {i}"
        base[f"query {i}"] = gaming[f"query {i}"] = unit(i)
        corpus[f"p{i}"] = {"text": f"positive {i}"}
        base[f"positive {i}"], gaming[f"positive {i}"] = unit(i, 0.9), unit(i, 1.0)
        corpus[f"b{i}"] = {"text": f"decoy {i}"}
        base[f"decoy {i}"], gaming[f"decoy {i}"] = unit(i, 1.0), unit(i, 0.0)
        for j in range(5):
            corpus[f"g{i}{j}"] = {"text": f"distractor {i} {j}"}
            base[f"distractor {i} {j}"], gaming[f"distractor {i} {j}"] = unit(i, -1.0), unit(i, 1.5)
        qrels[f"q{i}"] = {f"p{i}": 1}
    for j in range(20):
        corpus[f"f{j}"] = {"text": f"filler {j}"}
        base[f"filler {j}"] = gaming[f"filler {j}"] = filler
    root = write_beir(tmp_path / "toy", corpus, queries, {"dev": qrels, "test": qrels})
    return BeirDataset(root), stub("base", base), stub("gaming", gaming)


def test_a_candidate_that_games_the_base_pool_is_not_selected(tmp_path):
    """On the old pool (dev positives + the base's top 5) the gaming stub scored 1.0000 and
    would have been shipped over the base (0.6309); on the corpus it scores 0.3562."""
    dataset, base, gaming = gaming_setup(tmp_path)
    dev = build_dev_set(dataset, SplitPart("dev", None), PoolSettings())
    assert dev.full_corpus and dev.doc_ids == dataset.doc_ids
    # the old pool: dev positives + the base model's top 5 for each dev query
    base_top = {"b", "p", "f"}  # decoys, positives and fillers; never the distractors
    old_pool = [d for d in dataset.doc_ids if d[0] in base_top]
    biased = replace(dev, doc_ids=old_pool, documents={"kind": "base top-k pool"})
    assert score_dev(gaming, [biased], "fp32", 32, tmp_path / "c")["ndcg@10"] == 1.0
    base_score = score_dev(base, [dev], "fp32", 32, tmp_path / "c")["ndcg@10"]
    gaming_score = score_dev(gaming, [dev], "fp32", 32, tmp_path / "c")["ndcg@10"]
    assert round(base_score, 4) == 0.6309
    assert round(gaming_score, 4) == 0.3562
    assert gaming_score < base_score


def test_large_corpus_pool_is_model_free_seeded_and_recorded(tmp_path):
    dataset, base, gaming = gaming_setup(tmp_path)
    pool = PoolSettings(max_full_corpus=10, bm25_k=3, random_docs=6, seed=7)
    dev = build_dev_set(dataset, SplitPart("dev", None), pool)
    assert not dev.full_corpus
    positives = {f"p{i}" for i in range(QUERIES)}
    assert positives <= set(dev.doc_ids) and len(dev.doc_ids) < len(dataset.doc_ids)
    assert dev.doc_ids == [d for d in dataset.doc_ids if d in set(dev.doc_ids)]  # corpus order
    assert dev.documents["kind"] == "fixed pool" and dev.documents["random_sample"] == 6
    assert dev.documents["bm25_top_k"] == 3 and dev.documents["random_seed"] == 7
    assert build_dev_set(dataset, SplitPart("dev", None), pool).doc_ids == dev.doc_ids  # deterministic
    other_seed = build_dev_set(dataset, SplitPart("dev", None), PoolSettings(10, 3, 6, seed=8))
    assert other_seed.doc_ids != dev.doc_ids
    # the base and a candidate are scored on exactly these documents (and the dev queries)
    pooled = {dataset.corpus[d].full_text() for d in dev.doc_ids}
    for model in (base, gaming):
        score_dev(model, [dev], "fp32", 32, tmp_path / "c")
        assert sorted(model.model.encoded) == sorted(pooled | {f"query {i}" for i in range(QUERIES)})


def test_trained_and_same_text_queries_are_excluded_from_dev(tmp_path):
    dataset, _, _ = gaming_setup(tmp_path)
    same_text = frozenset({text_fingerprint("QUERY 3!")})  # q3's text under another id
    dev = build_dev_set(
        dataset,
        SplitPart("dev", None),
        PoolSettings(),
        exclude=frozenset({"q0", "q2"}),
        exclude_texts=same_text,
    )
    assert dev.qids == ["q1"] and set(dev.qrels) == {"q1"}
    assert dev.documents["queries"] == 1 and dev.documents["left_out_same_text"] == 1


def test_the_end_points_of_interpolation_are_the_two_models_bit_for_bit():
    """alpha 1 ships the epoch model that was scored on dev, alpha 0 the base: the same bits,
    negative zeros included (MiniLM's word embeddings hold one; lerp's arithmetic turns it
    into +0.0, another weights hash, and the shipped model's embeddings were encoded again)."""
    base = {"w": torch.tensor([-0.0, 1.5, -2.0, 0.0]), "ids": torch.tensor([1, 2])}
    tuned = {"w": torch.tensor([-0.0, 1.25, -0.0, 3.0]), "ids": torch.tensor([3, 4])}

    def bits(state: dict[str, torch.Tensor]) -> dict[str, list[int]]:
        return {
            k: v.view(torch.int32 if v.is_floating_point() else v.dtype).tolist() for k, v in state.items()
        }

    assert bits(interpolated_state(base, tuned, 1.0)) == bits(tuned)
    assert bits(interpolated_state(base, tuned, 0.0)) == {"w": bits(base)["w"], "ids": [3, 4]}
    assert interpolated_state(base, tuned, 0.5)["w"].tolist() == [0.0, 1.375, -1.0, 1.5]

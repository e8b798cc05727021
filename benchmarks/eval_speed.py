"""Evaluation speed on SciFact test with the bundled MiniLM, irtune vs its peers.

(a) irtune cold (empty embedding cache, bf16 autocast; its NDCG@10 is checked against
BEIR's fp32 number), (b) irtune re-run on the cache,
(c) BEIR's EvaluateRetrieval(DenseRetrievalExactSearch(SentenceBERT)), (d)
sentence-transformers' InformationRetrievalEvaluator, (e) bare `model.encode` of corpus +
queries in fp32 (the floor for an fp32 peer). All in one process, one after the other.

    python benchmarks/eval_speed.py [--dataset scifact] [--precision bf16]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from irtune.data.registry import resolve_dataset
from irtune.evaluation import evaluate_dataset
from irtune.models import bundled_model_path, load_model
from irtune.settings import EvalSettings

from _common import data_dir, timed, write_results


def irtune_eval(dataset, precision: str, cache: Path) -> float:
    model = load_model("minilm")
    entry = evaluate_dataset(dataset, EvalSettings(precision=precision, cache_dir=cache), model).result
    return entry.metrics["ndcg@10"]


def beir_eval(dataset) -> float:
    from beir.retrieval import models
    from beir.retrieval.evaluation import EvaluateRetrieval
    from beir.retrieval.search.dense import DenseRetrievalExactSearch

    corpus = {d: {"title": doc.title, "text": doc.text} for d, doc in dataset.corpus.items()}
    qrels = dataset.qrels("test")
    queries = {q: dataset.queries[q] for q in qrels}
    searcher = DenseRetrievalExactSearch(models.SentenceBERT(str(bundled_model_path())), batch_size=32)
    retriever = EvaluateRetrieval(searcher, score_function="cos_sim", k_values=[10, 100, 1000])
    results = retriever.retrieve(corpus, queries)
    ndcg, _map, _recall, _p = retriever.evaluate(qrels, results, [10, 100])
    return ndcg["NDCG@10"]


def st_evaluator(dataset) -> float:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    qrels = dataset.qrels("test")
    evaluator = InformationRetrievalEvaluator(
        queries={q: dataset.queries[q] for q in qrels},
        corpus={d: doc.full_text() for d, doc in dataset.corpus.items()},
        relevant_docs={q: {d for d, g in j.items() if g > 0} for q, j in qrels.items()},
        ndcg_at_k=[10],
        batch_size=32,
        write_csv=False,
    )
    scores = evaluator(SentenceTransformer(str(bundled_model_path())))
    return next(v for k, v in scores.items() if k.endswith("cosine_ndcg@10"))


def bare_encode(dataset) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_path()))
    qrels = dataset.qrels("test")
    with torch.inference_mode():
        model.encode([d.full_text() for d in dataset.corpus.values()], batch_size=32)
        model.encode([dataset.queries[q] for q in qrels], batch_size=32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--precision", default="bf16")
    args = parser.parse_args()
    dataset = resolve_dataset(args.dataset, data_dir())
    _ = dataset.corpus, dataset.queries  # parse once, outside every timing
    rows = {}
    with tempfile.TemporaryDirectory() as cache:
        rows["irtune_cold"] = timed(lambda: irtune_eval(dataset, args.precision, Path(cache) / "x"))
        rows["irtune_cached"] = timed(lambda: irtune_eval(dataset, args.precision, Path(cache) / "x"))
    rows["beir_exact_search"] = timed(lambda: beir_eval(dataset))
    rows["st_ir_evaluator"] = timed(lambda: st_evaluator(dataset))
    rows["bare_encode_fp32"] = timed(lambda: bare_encode(dataset))
    fastest_peer = min(rows["beir_exact_search"][1], rows["st_ir_evaluator"][1])
    figures = {
        name: {
            "wall_s": round(seconds, 2),
            "ndcg@10": round(ndcg, 4) if ndcg is not None else None,
            "speedup_vs_beir": round(rows["beir_exact_search"][1] / seconds, 2),
            "speedup_vs_st_evaluator": round(rows["st_ir_evaluator"][1] / seconds, 2),
            "speedup_vs_bare_encode": round(rows["bare_encode_fp32"][1] / seconds, 2),
            "speedup_vs_fastest_peer": round(fastest_peer / seconds, 2),
        }
        for name, (ndcg, seconds) in rows.items()
    }
    for name, f in figures.items():
        print(
            f"{name:22s} {f['wall_s']:8.1f} s  NDCG@10={f['ndcg@10']}  "
            f"x{f['speedup_vs_fastest_peer']:.2f} vs fastest peer"
        )
    # BEIR's exact search runs the same model in fp32 and scores with pytrec_eval: the reference
    delta = abs(figures["irtune_cold"]["ndcg@10"] - figures["beir_exact_search"]["ndcg@10"])
    write_results(
        "eval_speed",
        {
            "dataset": args.dataset,
            "precision": args.precision,
            "figures": figures,
            "ndcg10_delta_vs_fp32": round(delta, 4),
            "targets": {"cold_vs_fastest_peer": 1.5, "cached_vs_fastest_peer": 20, "max_ndcg10_delta": 0.002},
        },
    )


if __name__ == "__main__":
    main()

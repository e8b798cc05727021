"""Evaluation speed on SciFact test with the bundled MiniLM: irtune's CPU paths against its
peers, side by side, in one process, one after the other.

Peers (fp32, as their users run them): BEIR's EvaluateRetrieval(DenseRetrievalExactSearch(
SentenceBERT)), sentence-transformers' InformationRetrievalEvaluator, and the bare
`model.encode` of corpus + queries (the floor for any fp32 torch evaluator: no search, no
metrics). irtune: torch fp32 and bf16 autocast, ONNX Runtime fp32 and dynamic int8, OpenVINO
fp32 and static int8 (calibrated on 300 corpus documents), each run in fp32 and in bf16 (on a
CPU with bf16), each cold (empty embedding cache;
a backend's one-time export is timed apart and not in its wall time), then one re-run on the
cache.

Tokens/s counts the tokens each path encodes (corpus + test queries, truncated at the model's
256); the CPU's peak is estimated as the best of three fp32 4096×4096 matrix products through
torch on all cores, divided by the model's FLOPs per token (2 × its non-embedding parameters,
plus attention at the mean sequence length). int8 paths may pass that fp32 figure.

    python benchmarks/eval_speed.py [--dataset scifact]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch

from irtune.data.registry import resolve_dataset
from irtune.evaluation.runner import evaluate_dataset
from irtune.models.loading import bundled_model_path, load_model
from irtune.retrieval import backends
from irtune.retrieval.base import Corpus
from irtune.retrieval.dense import DenseRetriever
from irtune.retrieval.settings import RetrievalSettings

from _common import data_dir, timed, write_results

IRTUNE_PATHS = (
    ("torch", "fp32"),
    ("torch", "bf16"),
    ("onnx", "fp32"),
    ("onnx-int8", "fp32"),
    ("openvino", "fp32"),
    ("openvino", "bf16"),
    ("openvino-int8", "fp32"),
    ("openvino-int8", "bf16"),
)
PEERS = ("beir_exact_search", "st_ir_evaluator")


def irtune_eval(dataset: Any, backend: str, precision: str, cache: Path) -> float:
    model = load_model("minilm")
    settings = RetrievalSettings(precision=precision, cache_dir=cache, backend=backend)
    return evaluate_dataset(dataset, settings, model).result.metrics["ndcg@10"]


def export_once(dataset: Any, backend: str, cache: Path) -> None:
    """The one-time export (and static calibration) into the cache the timed run then reuses."""
    retriever = DenseRetriever(load_model("minilm"), cache_dir=cache, backend=backend)
    retriever._encoder(Corpus.of(dataset))


def beir_eval(dataset: Any) -> float:
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


def st_evaluator(dataset: Any) -> float:
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


def bare_encode(dataset: Any) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_model_path()))
    qrels = dataset.qrels("test")
    with torch.inference_mode():
        model.encode([d.full_text() for d in dataset.corpus.values()], batch_size=32)
        model.encode([dataset.queries[q] for q in qrels], batch_size=32)


def encoded_tokens(dataset: Any) -> tuple[int, float]:
    """Tokens encoded (corpus + test queries, truncated as the model truncates) and their mean."""
    model = load_model("minilm").model
    texts = [d.full_text() for d in dataset.corpus.values()]
    texts += [dataset.queries[q] for q in dataset.qrels("test")]
    lengths = [int(model.tokenize([t])["attention_mask"].sum()) for t in texts]
    return sum(lengths), sum(lengths) / len(lengths)


def peak_tokens_per_second(mean_length: float) -> dict[str, float]:
    """fp32 GEMM peak of this CPU (best of three 4096³ products on all cores) over MiniLM's
    FLOPs per token."""
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    a @ b  # warm-up
    best = min(timed(lambda: a @ b)[1] for _ in range(3))
    gflops = 2 * 4096**3 / best / 1e9
    model = load_model("minilm").model
    config = model[0].model.config
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    layers = sum(p.numel() for p in model.parameters()) - embedding
    attention = 4 * config.num_hidden_layers * mean_length * config.hidden_size  # QK^T and AV
    flops_per_token = 2 * layers + attention
    return {
        "fp32_gemm_gflops": round(gflops, 1),
        "flops_per_token": round(flops_per_token),
        "peak_tokens_per_s": round(gflops * 1e9 / flops_per_token),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="scifact")
    args = parser.parse_args()
    dataset = resolve_dataset(args.dataset, data_dir())
    _ = dataset.corpus, dataset.queries, dataset.qrels("test")  # parse once, outside every timing
    tokens, mean_length = encoded_tokens(dataset)
    peak = peak_tokens_per_second(mean_length)
    print(f"{tokens} tokens (mean {mean_length:.1f}); {peak}")
    rows: dict[str, dict[str, Any]] = {}

    def record(name: str, ndcg: float | None, seconds: float, **extra: Any) -> None:
        rows[name] = {
            "wall_s": round(seconds, 2),
            "ndcg@10": None if ndcg is None else round(ndcg, 4),
            **extra,
        }
        print(f"{name:26s} {seconds:8.1f} s  NDCG@10={rows[name]['ndcg@10']}", flush=True)

    for name, fn in (("beir_exact_search", beir_eval), ("st_ir_evaluator", st_evaluator)):
        record(name, *timed(lambda fn=fn: fn(dataset)))
    record("bare_encode_fp32", None, timed(lambda: bare_encode(dataset))[1])
    with tempfile.TemporaryDirectory() as work:
        for backend, precision in IRTUNE_PATHS:
            if backend != "torch" and precision == "bf16" and not backends.cpu_runs_bf16():
                print(f"irtune_{backend}_bf16: skipped, this CPU has no bf16", flush=True)
                continue
            cache = Path(work) / f"{backend}-{precision}"
            extra = {}
            if backend != "torch":
                extra["export_s"] = round(timed(lambda b=backend, c=cache: export_once(dataset, b, c))[1], 2)
            named = backend == "torch" or precision != "fp32"  # an export runs in fp32 unless named
            name = f"irtune_{backend}_{precision}" if named else f"irtune_{backend}"
            record(
                name, *timed(lambda b=backend, p=precision, c=cache: irtune_eval(dataset, b, p, c)), **extra
            )
            if backend == "torch" and precision == "fp32":
                cached = timed(lambda c=cache: irtune_eval(dataset, "torch", "fp32", c))
                record("irtune_torch_fp32_cached", *cached)
    fastest_peer = min(rows[p]["wall_s"] for p in PEERS)
    reference = rows["irtune_torch_fp32"]["ndcg@10"]
    for name, row in rows.items():
        row["speedup_vs_fastest_peer"] = round(fastest_peer / row["wall_s"], 2)
        if not name.endswith("_cached"):
            row["tokens_per_s"] = round(tokens / row["wall_s"])
            row["share_of_fp32_peak"] = round(tokens / row["wall_s"] / peak["peak_tokens_per_s"], 3)
        if row["ndcg@10"] is not None:
            row["ndcg10_delta_vs_fp32"] = round(row["ndcg@10"] - reference, 4)
    header = ["wall s", "NDCG@10", "Δ fp32", "x peer", "tok/s", "% peak"]
    print(f"{'path':26s} " + " ".join(f"{h:>8s}" for h in header))
    for name, row in rows.items():
        delta, share = row.get("ndcg10_delta_vs_fp32"), row.get("share_of_fp32_peak")
        cells = [
            f"{row['wall_s']:.1f}",
            str(row["ndcg@10"] or ""),
            "" if delta is None else format(delta, "+.4f"),
            f"{row['speedup_vs_fastest_peer']:.2f}",
            str(row.get("tokens_per_s", "")),
            "" if share is None else format(100 * share, ".1f"),
        ]
        print(f"{name:26s} " + " ".join(f"{c:>8s}" for c in cells))
    eligible = [
        (row["speedup_vs_fastest_peer"], name)
        for name, row in rows.items()
        if name.startswith("irtune")
        and not name.endswith("_cached")
        and abs(row.get("ndcg10_delta_vs_fp32") or 0) <= 0.002
    ]
    headline = max(eligible)
    print(f"fastest irtune path within 0.002 NDCG@10 of fp32: {headline[1]}, x{headline[0]:.2f} vs the peer")
    write_results(
        "eval_speed",
        {
            "dataset": args.dataset,
            "tokens": tokens,
            "mean_tokens_per_text": round(mean_length, 1),
            "cpu_peak_estimate": peak,
            "figures": rows,
            "headline": {"path": headline[1], "speedup_vs_fastest_peer": headline[0]},
            "targets": {"speedup_vs_fastest_peer": 3.0, "max_ndcg10_delta": 0.002},
        },
    )


if __name__ == "__main__":
    main()

"""irtune's fixed costs in evaluation: a tiny model over a large synthetic corpus, where
encoding is cheap, so that whatever irtune adds to encode + top-k shows.

The model is a 2-layer, 32-dim random BERT with MiniLM's tokenizer (as the tests' `tiny_model`),
max length 32; the corpus is `scale.py`'s synthetic sentences (default 100,000 documents), each
query a word window of one document, judged relevant to it; top-1000 retrieval, fp32, one batch
size for all. In one process, interleaved (which side goes first alternates), --repeats times:

- bare: sentence-transformers `encode` of corpus and queries, then a torch matmul and a running
  top-k over corpus chunks (BEIR's 50,000) — the floor; and the peer's whole pipeline, that
  floor plus reading the corpus file, building the run dict and scoring it with pytrec_eval;
- irtune: `irtune.evaluate` of the same with an empty cache (results.json and the run file
  written), then a cached re-run (the per-process chunk-hash memo cleared, as in a new process),
  each split by phase with timers around irtune's own functions (the outermost one counts).

Ratios are medians over the repeats of irtune's wall / the floor in the same repeat.
`--profile` also writes a cProfile of one cold irtune run (top functions by own time).

    python benchmarks/fixed_costs.py [--docs 100000] [--queries 1000] [--repeats 3] [--threads 1] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import json
import pstats
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scale import synthetic_texts

from _common import RESULTS, write_results

WORK = RESULTS / "fixed_costs_work"
TOP_K = 1000
PEER_CHUNK = 50_000  # BEIR DenseRetrievalExactSearch's corpus_chunk_size

# phase -> the (module, qualified name) functions whose time it is; a call inside another
# timed call counts for the outer one only
PHASES: dict[str, tuple[tuple[str, str], ...]] = {
    "encode": (("irtune.retrieval.encode", "encode_texts"), ("irtune.retrieval.dense", "encode_texts")),
    "chunk_writes_checksums": (
        ("irtune.retrieval.encode", "_save_chunk"),
        ("irtune.retrieval.encode", "_Journal.record"),
        ("irtune.retrieval.encode", "_Journal.trusts"),
    ),
    "search_topk": (("irtune.retrieval.dense", "exact_search"),),
    "run_assembly": (
        ("irtune.retrieval.dense", "run_from_arrays"),
        ("irtune.evaluation.runner", "without_self_matches"),
    ),
    "metrics": (("irtune.evaluation.runner", "evaluate_run"), ("irtune.evaluation.runner", "mean_metrics")),
    "results_build_validate": (
        ("irtune.evaluation.job", "assemble_results"),
        ("irtune.results.schema", "_numbers_problem"),
    ),
    "results_writing": (("irtune.evaluation.job", "write_results"),),
}


def tiny_model(folder: Path, max_seq_length: int) -> Path:
    """A 2-layer, 32-dim random BERT with MiniLM's tokenizer, saved as a sentence-transformers model."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from irtune.models.loading import bundled_model_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder / "bert")
    tokenizer.save_pretrained(folder / "bert")
    transformer = Transformer(str(folder / "bert"), max_seq_length=max_seq_length)
    SentenceTransformer(modules=[transformer, Pooling(32, "mean")], device="cpu").save(str(folder / "st"))
    return folder / "st"


def write_dataset(folder: Path, docs: int, queries: int) -> None:
    """A BEIR folder: synthetic documents, and queries that are word windows of one document
    each, judged relevant to it (kept while its sizes match)."""
    sizes = folder / "sizes.json"
    if sizes.is_file() and json.loads(sizes.read_text()) == [docs, queries]:
        return
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    texts = synthetic_texts(docs, 1, 8, 24)
    rng = np.random.default_rng(3)
    targets = rng.choice(docs, queries, replace=False)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as out:
        for i, text in enumerate(texts):
            out.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as out:
        for i, target in enumerate(targets):
            words = texts[target].split()
            start = int(rng.integers(0, max(1, len(words) - 6)))
            out.write(json.dumps({"_id": f"q{i}", "text": " ".join(words[start : start + 6])}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{t}\t1" for i, t in enumerate(targets)]
    (folder / "qrels" / "test.tsv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    sizes.write_text(json.dumps([docs, queries]))


class PhaseTimer:
    """Seconds spent in each phase's functions while `installed`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._depth = 0

    def _wrap(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started

        return timed

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        import importlib

        originals = []
        for phase, targets in PHASES.items():
            for module, qualname in targets:
                *path, name = qualname.split(".")
                owner: Any = functools.reduce(getattr, path, importlib.import_module(module))
                original = owner.__dict__[name]
                originals.append((owner, name, original))
                setattr(owner, name, self._wrap(phase, original))
        try:
            yield
        finally:
            for owner, name, original in reversed(originals):
                setattr(owner, name, original)


def bare(model_dir: Path, dataset: Path, batch_size: int, max_seq_length: int) -> dict[str, float]:
    """sentence-transformers encode + torch top-k (the floor), then what a peer adds to it:
    reading the files, the run dict and pytrec_eval."""
    import pytrec_eval
    import torch
    from sentence_transformers import SentenceTransformer

    from irtune.data.beir import BeirDataset

    times: dict[str, float] = {}
    started = time.perf_counter()
    data = BeirDataset(dataset)
    doc_ids, texts = list(data.corpus), [doc.full_text() for doc in data.corpus.values()]
    qrels = {q: dict(judged) for q, judged in data.qrels("test").items()}
    qids = list(qrels)
    times["read"] = time.perf_counter() - started

    started = time.perf_counter()
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = max_seq_length
    normalize = model.similarity_fn_name in (None, "cosine")
    with torch.inference_mode():
        docs = model.encode(
            texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=normalize
        )
        queries = model.encode(
            [data.queries[q] for q in qids],
            batch_size=batch_size,
            convert_to_tensor=True,
            normalize_embeddings=normalize,
        )
    times["encode"] = time.perf_counter() - started

    started = time.perf_counter()
    best_scores = torch.empty((len(queries), 0))
    best_index = torch.empty((len(queries), 0), dtype=torch.long)
    for start in range(0, len(docs), PEER_CHUNK):
        scores = queries @ docs[start : start + PEER_CHUNK].T
        local_scores, local_index = torch.topk(scores, min(TOP_K, scores.shape[1]), dim=1)
        merged_scores = torch.cat([best_scores, local_scores], dim=1)
        merged_index = torch.cat([best_index, local_index + start], dim=1)
        best_scores, order = torch.topk(merged_scores, min(TOP_K, merged_scores.shape[1]), dim=1)
        best_index = torch.gather(merged_index, 1, order)
    times["topk"] = time.perf_counter() - started

    started = time.perf_counter()
    index_rows, score_rows = best_index.tolist(), best_scores.tolist()
    run = {
        q: {doc_ids[i]: s for i, s in zip(index_rows[row], score_rows[row], strict=True) if doc_ids[i] != q}
        for row, q in enumerate(qids)
    }
    times["run_dict"] = time.perf_counter() - started
    started = time.perf_counter()
    measures = {"ndcg_cut.10", "ndcg_cut.100", "map_cut.100", "recall.100", "recall.1000"}
    pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    times["pytrec_eval"] = time.perf_counter() - started
    times["floor"] = times["encode"] + times["topk"]
    times["peer_pipeline"] = sum(times[k] for k in ("read", "encode", "topk", "run_dict", "pytrec_eval"))
    return times


def irtune_eval(
    model_dir: Path, dataset: Path, cache: Path, out: Path, batch_size: int, max_seq_length: int
) -> tuple[dict[str, float], float]:
    """irtune's evaluation, split by phase, and its NDCG@10."""
    import irtune
    from irtune.core.files import hashed_files

    hashed_files.clear()  # a re-run in a new process hashes every chunk once
    timer = PhaseTimer()
    started = time.perf_counter()
    with timer.installed():
        results = irtune.evaluate(
            str(model_dir),
            str(dataset),
            out_dir=out,
            max_seq_length=max_seq_length,
            batch_size=batch_size,
            top_k=TOP_K,
            cache_dir=cache,
            force=True,
        )
    wall = time.perf_counter() - started
    phases = {name: timer.seconds.get(name, 0.0) for name in PHASES}
    phases["other"] = wall - sum(phases.values())
    phases["wall"] = wall
    return phases, results.datasets[0].metrics["ndcg@10"]


def profile_cold(model_dir: Path, dataset: Path, batch_size: int, max_seq_length: int, lines: int) -> str:
    """The top functions by own time in one cold irtune run."""
    with tempfile.TemporaryDirectory() as tmp:
        profiler = cProfile.Profile()
        profiler.enable()
        irtune_eval(model_dir, dataset, Path(tmp) / "cache", Path(tmp) / "out", batch_size, max_seq_length)
        profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(lines)
    return text.getvalue()


def repeat_ratios(row: dict[str, dict[str, float]]) -> dict[str, float]:
    """irtune against the floor in one repeat. The encode-matched ratio puts the floor's encode
    in place of irtune's (the same sentence-transformers call on the same texts): on shared
    cores two back-to-back encodes differ by up to 2x, which would hide or invent fixed costs."""
    bare, cold, cached = row["bare"], row["irtune_cold"], row["irtune_cached"]
    return {
        "irtune_cold / (encode + topk)": cold["wall"] / bare["floor"],
        "irtune_cold encode-matched / (encode + topk)": (cold["wall"] - cold["encode"] + bare["encode"])
        / bare["floor"],
        "irtune_cold / peer_pipeline": cold["wall"] / bare["peer_pipeline"],
        "irtune_cached / topk": cached["wall"] / bare["topk"],
    }


def median_row(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(row[key] for row in rows), 3) for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-seq-length", type=int, default=32)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for both sides (on shared cores, spinning OpenMP threads swamp a tiny model)",
    )
    parser.add_argument("--profile", action="store_true", help="also profile one cold irtune run")
    parser.add_argument("--name", default="fixed_costs", help="results/<name>.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    dataset = WORK / f"beir_{args.docs}_{args.queries}"
    write_dataset(dataset, args.docs, args.queries)
    shutil.rmtree(WORK / "model", ignore_errors=True)
    model_dir = tiny_model(WORK / "model", args.max_seq_length)
    common = (args.batch_size, args.max_seq_length)
    rows: list[dict[str, Any]] = []
    ndcg: set[float] = set()
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cache, out = Path(tmp) / "cache", Path(tmp) / "out"
            if repeat % 2:
                cold, score = irtune_eval(model_dir, dataset, cache, out, *common)
                floor = bare(model_dir, dataset, *common)
            else:
                floor = bare(model_dir, dataset, *common)
                cold, score = irtune_eval(model_dir, dataset, cache, out, *common)
            cached, cached_score = irtune_eval(model_dir, dataset, cache, out, *common)
        ndcg |= {score, cached_score}
        row = {"bare": floor, "irtune_cold": cold, "irtune_cached": cached}
        print(json.dumps(row), flush=True)
        rows.append(row)
    ratios = [repeat_ratios(r) for r in rows]
    payload: dict[str, Any] = {
        "docs": args.docs,
        "queries": args.queries,
        "top_k": TOP_K,
        "precision": "fp32",
        "batch_size": args.batch_size,
        "max_seq_length": args.max_seq_length,
        "torch_threads": torch.get_num_threads(),
        "ndcg@10": sorted(ndcg),
        "median_ratios": median_row(ratios),
        "median_seconds": {side: median_row([r[side] for r in rows]) for side in rows[0]},
        "repeats": rows,
    }
    if args.profile:
        payload["profile_cold"] = profile_cold(model_dir, dataset, *common, lines=40).splitlines()
    print(json.dumps(payload["median_ratios"], indent=2))
    write_results(args.name, payload)


if __name__ == "__main__":
    main()

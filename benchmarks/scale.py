"""Scale: a Quora-size corpus (522,931 short texts) with 10,000 queries on one machine.

Builds a deterministic synthetic corpus from sentences of the shared SciFact and NFCorpus
corpora, written as a BEIR corpus.jsonl, and encodes it with irtune's evaluation path
(texts streamed from the file, embeddings in memory-mapped shards of irtune's cache), then
measures, each in a fresh subprocess so that peak RSS is its own:
- encode throughput (docs/s) and peak RSS,
- exact search over shards (running top-k) at 50k, 100k, 200k and 522,931 documents,
  with the time/memory scaling exponent log(t2/t1)/log(n2/n1),
- FAISS IVF and HNSW: build and search time, peak RSS and recall@100/@10 against exact.

    python benchmarks/scale.py [--docs 522931] [--queries 10000] [--precision bf16]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time

import numpy as np

from _common import RESULTS, data_dir, write_results

WORK = RESULTS / "scale_work"
SIZES = (50_000, 100_000, 200_000)


def sentences() -> list[str]:
    from irtune.data.registry import resolve_dataset

    out: set[str] = set()
    for name in ("scifact", "nfcorpus"):
        for doc in resolve_dataset(name, data_dir()).corpus.values():
            out.update(s.strip() for s in re.split(r"(?<=[.!?])\s+", doc.text) if len(s.split()) >= 6)
    return sorted(out)


def synthetic_texts(n: int, seed: int, min_words: int, max_words: int) -> list[str]:
    """Word windows of random sentences: short, varied, deterministic."""
    pool = [s.split() for s in sentences()]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pool), n)
    lengths = rng.integers(min_words, max_words + 1, n)
    starts = rng.random(n)
    texts = []
    for p, length, start in zip(picks, lengths, starts, strict=True):
        words = pool[p]
        first = int(start * max(1, len(words) - length))
        texts.append(" ".join(words[first : first + length]))
    return texts


def worker(args: argparse.Namespace) -> dict:
    """One measurement in this (fresh) process; prints a JSON line."""
    from irtune.core.provenance import peak_rss_mb
    from irtune.data.beir import BeirDataset
    from irtune.models.loading import load_model
    from irtune.retrieval import ann
    from irtune.retrieval.base import Corpus
    from irtune.retrieval.dense import DenseRetriever
    from irtune.retrieval.encode import encode_texts
    from irtune.retrieval.exact import exact_search
    from irtune.retrieval.settings import DEFAULT_INDEX_PARAMS

    model = load_model("minilm")
    dataset = BeirDataset(WORK / "beir", name="synthetic-quora-size")
    retriever = DenseRetriever(model, precision=args.precision, batch_size=128, cache_dir=WORK / "cache")
    started = time.perf_counter()
    shards = retriever.index(Corpus.of(dataset)).shards
    encode_s = time.perf_counter() - started
    if args.worker == "encode":
        return {
            "docs": shards.count,
            "encode_s": encode_s,
            "docs_per_s": shards.count / encode_s,
            "peak_rss_mb": peak_rss_mb(),
        }
    q = encode_texts(model, list(dataset.queries.values()), model.prompts.query, 128, args.precision)
    limited = [(o, s) for o, s in shards.iter_with_offsets() if o < args.n]
    limited = [(o, s[: args.n - o]) for o, s in limited]
    started = time.perf_counter()
    _, exact = exact_search(q, limited, 100)
    exact_s = time.perf_counter() - started
    result = {"docs": args.n, "exact_search_s": exact_s, "queries": len(q)}
    if args.worker == "exact":
        return {**result, "peak_rss_mb": peak_rss_mb()}
    started = time.perf_counter()
    index = ann.build_index(limited, q.shape[1], args.worker)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    _, approx = ann.faiss_search(index, q, 100)
    search_s = time.perf_counter() - started
    return {
        **result,
        "index": args.worker,
        "params": DEFAULT_INDEX_PARAMS[args.worker],
        "build_s": build_s,
        "search_s": search_s,
        "peak_rss_mb": peak_rss_mb(),
        "recall@100_vs_exact": ann.ann_recall(approx, exact, 100),
        "recall@10_vs_exact": ann.ann_recall(approx, exact, 10),
    }


def run_worker(kind: str, n: int, precision: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--n", str(n), "--precision", precision],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(row))
    return row


def write_beir(docs: int, queries: int) -> None:
    """The synthetic corpus and queries as a BEIR folder (kept while its sizes match)."""
    folder = WORK / "beir"
    sizes = folder / "sizes.json"
    if sizes.is_file() and json.loads(sizes.read_text()) == [docs, queries]:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name, texts in (
        ("corpus", synthetic_texts(docs, 1, 8, 24)),
        ("queries", synthetic_texts(queries, 2, 5, 12)),
    ):
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for i, text in enumerate(texts):
                handle.write(json.dumps({"_id": f"{name[0]}{i}", "title": "", "text": text}) + "\n")
    sizes.write_text(json.dumps([docs, queries]))


def exponent(rows: list[dict], key: str) -> float:
    a, b = rows[0], rows[-1]
    return math.log(b[key] / a[key]) / math.log(b["docs"] / a["docs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=522_931)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--worker", choices=("encode", "exact", "ivf", "hnsw"))
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=list(SIZES),
        help="smaller corpus sizes searched for the scaling exponent",
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    write_beir(args.docs, args.queries)
    encode = run_worker("encode", args.docs, args.precision)
    sizes = [n for n in args.sizes if n < args.docs]
    exact_rows = [run_worker("exact", n, args.precision) for n in (*sizes, args.docs)]
    ann_rows = [run_worker(kind, args.docs, args.precision) for kind in ("ivf", "hnsw")]
    write_results(
        "scale" if args.docs == 522_931 else f"scale_{args.docs}",
        {
            "docs": args.docs,
            "queries": args.queries,
            "precision": args.precision,
            "encode": encode,
            "exact": exact_rows,
            "ann": ann_rows,
            "scaling_exponent_exact_search_time": exponent(exact_rows, "exact_search_s") if sizes else None,
            "scaling_exponent_exact_peak_rss": exponent(exact_rows, "peak_rss_mb") if sizes else None,
            "target_peak_rss_mb": 4096,
        },
    )


if __name__ == "__main__":
    main()

"""Training memory at Quora size: fine-tuning with hard-negative mining over 522,931 documents.

The corpus is `benchmarks/scale.py`'s synthetic one. Judged queries are made from it: each
is a word window of one document, relevant to that document only (train / dev / test
parts, so irtune's honest plan trains on train, selects on dev and never touches test).
`irtune train` then mines negatives with the base model over the whole corpus (embeddings
memory-mapped from the cache, never loaded whole), trains a few hundred steps and selects
on dev (above 100k documents: a model-free pool, dev positives + BM25 top-100 + 10k
random documents). Peak RSS is that of the training process alone.

    python benchmarks/train_scale.py --encode-only   # fill the embedding cache (~40 min, 2 cores)
    python benchmarks/train_scale.py [--steps 300]   # the measured training run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from scale import WORK, write_beir

from _common import write_results

DOCS = 522_931
FOLDER = WORK / "beir-train"
CACHE = WORK / "cache"
PARTS = {"train": 3_000, "dev": 300, "test": 300}


def write_judged_queries() -> None:
    """corpus.jsonl linked from the scale corpus; queries are windows of distinct documents."""
    write_beir(DOCS, 10_000)
    FOLDER.mkdir(parents=True, exist_ok=True)
    corpus = FOLDER / "corpus.jsonl"
    if not corpus.exists():
        corpus.symlink_to(WORK / "beir" / "corpus.jsonl")
    texts = {}
    with open(corpus, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            texts[record["_id"]] = record["text"]
    ids = sorted(texts)
    rng = np.random.default_rng(7)
    chosen = rng.choice(len(ids), size=sum(PARTS.values()), replace=False)
    (FOLDER / "qrels").mkdir(exist_ok=True)
    with open(FOLDER / "queries.jsonl", "w", encoding="utf-8") as queries:
        start = 0
        for part, count in PARTS.items():
            rows = ["query-id\tcorpus-id\tscore"]
            for n, index in enumerate(chosen[start : start + count]):
                words = texts[ids[index]].split()
                length = min(len(words), int(rng.integers(5, 9)))
                first = int(rng.integers(0, len(words) - length + 1))
                qid = f"{part}{n}"
                queries.write(
                    json.dumps({"_id": qid, "text": " ".join(words[first : first + length])}) + "\n"
                )
                rows.append(f"{qid}\t{ids[index]}\t1")
            (FOLDER / "qrels" / f"{part}.tsv").write_text("\n".join(rows) + "\n")
            start += count


def encode_only() -> None:
    from irtune.data.beir import BeirDataset
    from irtune.models.loading import load_model
    from irtune.retrieval.base import Corpus
    from irtune.retrieval.dense import DenseRetriever

    dataset = BeirDataset(FOLDER, name="synthetic-train")
    started = time.perf_counter()
    DenseRetriever(load_model("minilm"), precision="bf16", batch_size=128, cache_dir=CACHE).index(
        Corpus.of(dataset)
    )
    print(f"encoded {len(dataset.doc_ids):,} documents in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encode-only", action="store_true")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--loss", default="cached_mnrl")
    args = parser.parse_args()
    write_judged_queries()
    if args.encode_only:
        encode_only()
        return
    out = WORK / "model"
    config = WORK / "train.toml"
    config.write_text(
        "\n".join(
            [
                "epochs = 1",
                f"max_steps = {args.steps}",
                "batch_size = 32",
                "learning_rate = 3e-5",
                "warmup_steps = 10",
                f'loss = "{args.loss}"',
                "mini_batch_size = 8",
                "hard_negatives = true",
                "num_negatives = 1",
                'precision = "bf16"',
                'mixed_precision = "bf16"',
                "encode_batch_size = 128",
                "interpolation_alphas = [0.0, 1.0]",
                "save_steps = 100",
            ]
        )
        + "\n"
    )
    command = [
        sys.executable, "-m", "irtune", "train", "-m", "minilm", "--train", str(FOLDER),
        "--config", str(config), "--out", str(out), "--cache-dir", str(CACHE),
    ]  # fmt: skip
    if out.exists():
        import shutil

        shutil.rmtree(out)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    record = json.loads((out / "irtune_training.json").read_text())
    write_results(
        "train_scale",
        {
            "docs": DOCS,
            "train_queries": PARTS["train"],
            "max_steps": args.steps,
            "steps_trained": record["curve"][-1]["steps"],  # one epoch of the training queries at most
            "loss": args.loss,
            "peak_rss_mb": round(peak_mb, 1),
            "target_peak_rss_mb": 4096,
            "wall_s": round(wall, 1),
            "dev_documents": record["selected"].get("dev_documents"),
            "selected": {k: record["selected"].get(k) for k in ("epoch", "alpha", "shipped")},
            "command": " ".join(command),
        },
    )
    print(f"peak RSS of the training process: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()

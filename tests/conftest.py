"""Shared fixtures: a tiny random BERT model, BEIR slices of the shared data, a CLI runner."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_BEIR = Path(os.environ.get("IRTUNE_TEST_BEIR", REPO.parent / "shared" / "data" / "beir"))


def shared_dataset(name: str) -> Path:
    path = SHARED_BEIR / name
    if not path.is_dir():
        pytest.skip(f"shared BEIR data not found at {path} (set IRTUNE_TEST_BEIR)")
    return path


def write_beir(
    root: Path,
    corpus: dict[str, dict],
    queries: dict[str, str],
    qrels: dict[str, dict[str, dict[str, int]]],
    gzip_files: bool = False,
) -> Path:
    """Write a BEIR folder (CRLF qrels with header, like the official zips)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)

    def dump(name: str, rows: list[dict]) -> None:
        text = "".join(json.dumps(r) + "\n" for r in rows).encode()
        if gzip_files:
            (root / f"{name}.jsonl.gz").write_bytes(gzip.compress(text, mtime=0))
        else:
            (root / f"{name}.jsonl").write_bytes(text)

    dump(
        "corpus",
        [
            {"_id": d, "title": v.get("title", ""), "text": v["text"], "metadata": {}}
            for d, v in corpus.items()
        ],
    )
    dump("queries", [{"_id": q, "text": t, "metadata": {}} for q, t in queries.items()])
    for split, rows in qrels.items():
        lines = ["query-id\tcorpus-id\tscore"] + [
            f"{q}\t{d}\t{g}" for q, judged in rows.items() for d, g in judged.items()
        ]
        (root / "qrels" / f"{split}.tsv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return root


def slice_dataset(
    source: Path, target: Path, queries_per_split: dict[str, int], extra_docs: int, seed: int = 0
) -> Path:
    """A small BEIR folder cut from a shared dataset: the first N queries of each split,
    their judged documents and `extra_docs` random distractors."""
    from irtune.data.beir import BeirDataset

    full = BeirDataset(source)
    qrels = {}
    for split, n in queries_per_split.items():
        rows = full.qrels(split)
        qrels[split] = {q: rows[q] for q in list(rows)[:n]}
    docs = {d for rows in qrels.values() for judged in rows.values() for d in judged if d in full.corpus}
    rest = sorted(set(full.corpus) - docs)
    docs |= set(random.Random(seed).sample(rest, min(extra_docs, len(rest))))
    corpus = {
        d: {"title": full.corpus[d].title, "text": full.corpus[d].text} for d in full.corpus if d in docs
    }
    queries = {q: full.queries[q] for rows in qrels.values() for q in rows}
    return write_beir(target, corpus, queries, qrels)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-dim random BERT with MiniLM's tokenizer, saved as a sentence-transformers model."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    from irtune.models.loading import bundled_model_path

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-model")
    bert_dir = folder / "bert"
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    transformer = Transformer(str(bert_dir), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(32, "mean")], device="cpu")
    out = folder / "st"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def scifact_slice(tmp_path_factory) -> Path:
    """SciFact: 40 train and 30 test queries, their documents and 150 distractors."""
    return slice_dataset(
        shared_dataset("scifact"),
        tmp_path_factory.mktemp("beir") / "scifact",
        {"train": 40, "test": 30},
        extra_docs=150,
    )


@pytest.fixture(scope="session")
def nfcorpus_slice(tmp_path_factory) -> Path:
    """NFCorpus: 20 train, 10 dev and 10 test queries with graded judgements."""
    return slice_dataset(
        shared_dataset("nfcorpus"),
        tmp_path_factory.mktemp("beir") / "nfcorpus",
        {"train": 20, "dev": 10, "test": 10},
        extra_docs=50,
    )


@pytest.fixture()
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


def irtune(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "irtune", *args], capture_output=True, text=True, env=env, timeout=300
    )


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]

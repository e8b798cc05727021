"""Honest, deterministic query-level splits, saved to disk as JSON.

Each dataset gets a plan with three disjoint query sets: `train` (fine-tuning), `dev`
(model selection) and `eval` (the reported numbers):

- train + dev + test splits (NFCorpus): used as they are;
- train + test (SciFact): a held-out dev slice of train;
- dev + test, no train (Quora): train on dev minus a slice, select on the slice, report test;
- test only (SciDocs): test is cut into a tune half (train + dev) and an eval half.

Queries that share a relevant document (Quora's duplicate-question clusters, for one)
are kept on the same side, and assignment hashes the group with a seed, so a plan is
reproducible and stable when queries are added.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from irtune.data.beir import BeirDataset
from irtune.errors import DataError, IrtuneError
from irtune.fileio import write_json_atomic

SPLIT_FORMAT = "irtune-split-v1"
PARTS = ("train", "dev", "eval")


@dataclass(frozen=True)
class SplitPart:
    split: str
    query_ids: frozenset[str] | None  # None: every query of the split

    def to_json(self) -> dict[str, Any]:
        ids = sorted(self.query_ids) if self.query_ids is not None else None
        return {"split": self.split, "query_ids": ids}


@dataclass(frozen=True)
class SplitPlan:
    dataset: str
    method: str
    seed: int
    train: SplitPart
    dev: SplitPart
    eval: SplitPart

    def part(self, name: str) -> SplitPart:
        return {"train": self.train, "dev": self.dev, "eval": self.eval}[name]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SPLIT_FORMAT,
            "dataset": self.dataset,
            "method": self.method,
            "seed": self.seed,
            **{name: self.part(name).to_json() for name in PARTS},
        }


def _unit_hash(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def query_groups(qrels: dict[str, dict[str, int]]) -> dict[str, str]:
    """Map each query to a group representative: queries linked by a shared relevant
    document (or by being each other's relevant document) end in the same group."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for qid, judged in qrels.items():
        for doc, grade in judged.items():
            if grade > 0:
                a, b = find("q:" + qid), find("q:" + doc if doc in qrels else "d:" + doc)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {qid: find("q:" + qid) for qid in qrels}


def partition(
    qrels: dict[str, dict[str, int]], fraction: float, seed: int
) -> tuple[frozenset[str], frozenset[str]]:
    """(rest, held-out ≈ fraction of queries), whole groups on one side."""
    groups = query_groups(qrels)
    held = frozenset(q for q, g in groups.items() if _unit_hash(seed, g) < fraction)
    return frozenset(qrels) - held, held


def make_plan(
    dataset: BeirDataset, seed: int = 13, dev_fraction: float = 0.2, eval_fraction: float = 0.5
) -> SplitPlan:
    has = {s for s in ("train", "dev", "test") if dataset.has_split(s)}
    if "test" not in has:
        raise IrtuneError(f"{dataset.root}: no qrels/test.tsv, cannot plan an honest evaluation")
    if {"train", "dev"} <= has:
        return SplitPlan(
            dataset.name,
            "native train/dev/test",
            seed,
            SplitPart("train", None),
            SplitPart("dev", None),
            SplitPart("test", None),
        )
    if has & {"train", "dev"}:
        source = "train" if "train" in has else "dev"
        rest, held = partition(dataset.qrels(source), dev_fraction, seed)
        return SplitPlan(
            dataset.name,
            f"{source} split with a held-out dev slice; test reported",
            seed,
            SplitPart(source, rest),
            SplitPart(source, held),
            SplitPart("test", None),
        )
    tune, evaluated = partition(dataset.qrels("test"), eval_fraction, seed)
    tune_qrels = {q: j for q, j in dataset.qrels("test").items() if q in tune}
    train, dev = partition(tune_qrels, dev_fraction, seed + 1)
    return SplitPlan(
        dataset.name,
        "test-only: query-level tune/eval halves of test",
        seed,
        SplitPart("test", train),
        SplitPart("test", dev),
        SplitPart("test", evaluated),
    )


def save_plan(plan: SplitPlan, path: Path) -> None:
    write_json_atomic(path, plan.to_json())


def load_plan(path: Path) -> SplitPlan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"cannot read split file ({exc})") from None
    if data.get("format") != SPLIT_FORMAT:
        raise DataError(path, f'not an irtune split file (format must be "{SPLIT_FORMAT}")')
    try:
        parts = {
            name: SplitPart(
                data[name]["split"],
                frozenset(data[name]["query_ids"]) if data[name]["query_ids"] is not None else None,
            )
            for name in PARTS
        }
        return SplitPlan(data["dataset"], data["method"], int(data["seed"]), **parts)
    except (KeyError, TypeError) as exc:
        raise DataError(path, f"malformed split file (missing {exc})") from None

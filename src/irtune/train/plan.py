"""Which queries a training run uses, and the leakage guard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from irtune.data.beir import BeirDataset
from irtune.data.registry import resolve_dataset
from irtune.data.splits import SplitPart, SplitPlan, load_plan, make_plan
from irtune.errors import IrtuneError, LeakageError
from irtune.leakage import TrainingQueries, find_overlap, text_fingerprint
from irtune.train.config import DOMAIN_PRESETS, TrainConfig
from irtune.train.pairs import training_queries

SEED_PROTOCOL_ORDER = ("train", "dev", "test")


@dataclass
class TrainSet:
    dataset: BeirDataset
    part: SplitPart
    plan: SplitPlan
    dropped_duplicates: tuple[str, ...] = ()  # training queries whose text is evaluated

    @property
    def label(self) -> str:
        subset = "" if self.part.query_ids is None else " (held-out subset)"
        return f"{self.dataset.name}:{self.part.split}{subset}"

    def queries(self) -> dict[str, str]:
        return {q: self.dataset.queries[q] for q in training_queries(self.dataset, self.part)}

    def remembered(self) -> TrainingQueries:
        return TrainingQueries.from_queries(self.dataset.name, self.part.split, self.queries())


def expand_presets(specs: Sequence[str], groups: dict[str, Sequence[str]] | None = None) -> list[str]:
    """`general`, `scientific` or a user group name -> its datasets; other specs unchanged."""
    known = {**DOMAIN_PRESETS, **(groups or {})}
    expanded: list[str] = []
    for spec in specs:
        expanded.extend(known.get(spec, (spec,)))
    return list(dict.fromkeys(expanded))


def resolve_train_sets(
    specs: Sequence[str],
    config: TrainConfig,
    data_dir: Path | None = None,
    split_files: Sequence[Path] = (),
) -> list[TrainSet]:
    """`dataset[:split]` specs -> training sets under the honest plan (or the seed protocol)."""
    plans = {plan.dataset: plan for plan in (load_plan(p) for p in split_files)}
    sets = []
    for spec in specs:
        name, _, split = spec.partition(":")
        dataset = resolve_dataset(name, data_dir)
        plan = plans.get(dataset.name) or make_plan(
            dataset, config.split_seed, config.dev_fraction, config.eval_fraction
        )
        if config.protocol == "seed":
            split = split or next(s for s in SEED_PROTOCOL_ORDER if dataset.has_split(s))
            part = SplitPart(split, None)
        elif not split or split == plan.train.split:
            part = plan.train
        else:
            dataset.qrels_path(split)  # fails clearly on a missing split
            part = SplitPart(split, None)
        sets.append(TrainSet(dataset, part, plan))
    if not sets:
        raise IrtuneError("no training data: give --train DATASET[:SPLIT] or --preset")
    return sets


def evaluated_queries(target: TrainSet) -> dict[str, str]:
    part = target.plan.eval
    return {q: target.dataset.queries[q] for q in training_queries(target.dataset, part)}


def drop_text_duplicates(train_sets: Sequence[TrainSet]) -> list[TrainSet]:
    """Remove training queries whose normalised text equals an evaluated query's text under
    another id (SciFact repeats 2 test claims in train, for one). Same-id overlap is left
    for the leakage guard: that is training on the evaluated split itself."""
    evaluated: dict[str, set[str]] = {}
    for target in train_sets:
        for qid, text in evaluated_queries(target).items():
            evaluated.setdefault(text_fingerprint(text), set()).add(f"{target.dataset.name}\0{qid}")
    cleaned = []
    for train in train_sets:
        queries = train.queries()
        dropped = tuple(
            q
            for q, text in queries.items()
            if (hits := evaluated.get(text_fingerprint(text))) and f"{train.dataset.name}\0{q}" not in hits
        )
        if dropped:
            keep = frozenset(queries) - set(dropped)
            train = TrainSet(train.dataset, SplitPart(train.part.split, keep), train.plan, dropped)
        cleaned.append(train)
    return cleaned


def leakage_report(train_sets: Sequence[TrainSet]) -> list[dict]:
    """Every (training set, evaluated set) pair that shares queries, by id or normalised text."""
    findings = []
    for train in train_sets:
        remembered = train.remembered()
        for target in train_sets:
            evaluated_part = target.plan.eval
            evaluated = evaluated_queries(target)
            overlap = find_overlap(remembered, target.dataset.name, evaluated)
            if overlap.count:
                findings.append(
                    {
                        "train_set": train.label,
                        "evaluated": f"{target.dataset.name}:{evaluated_part.split}",
                        "evaluated_queries": len(evaluated),
                        **overlap.to_json(),
                    }
                )
    return findings


def guard_leakage(train_sets: Sequence[TrainSet], allow: bool) -> list[dict]:
    findings = leakage_report(train_sets)
    if findings and not allow:
        first = findings[0]
        raise LeakageError(
            f"refusing to train: {first['queries']} of the {first['evaluated_queries']} queries "
            f"evaluated on {first['evaluated']} are in training set {first['train_set']} "
            f"({first['by_id']} by id, {first['by_text']} by text)"
            + (f"; {len(findings) - 1} more overlaps" if len(findings) > 1 else "")
            + ". Pass --allow-leakage to train anyway: every result will be marked contaminated."
        )
    return findings

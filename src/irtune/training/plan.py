"""Which queries a training run uses, and the leakage guard."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from irtune.data.beir import BeirDataset, content_sha256
from irtune.data.leakage import TrainingQueries, find_overlap, text_fingerprint
from irtune.data.registry import resolve_dataset
from irtune.data.splits import (
    LEFT_OUT_FOR_CLUSTERS,
    SplitPart,
    SplitPlan,
    make_plan,
    plan_overlaps,
    plans_for,
    queries_are_documents,
    separate_clusters,
    synthetic_plan,
    without_cluster_mates,
)
from irtune.errors import IrtuneError, LeakageError, ParameterError
from irtune.training.config import DOMAIN_PRESETS, TrainConfig
from irtune.training.pairs import training_queries

SEED_PROTOCOL_ORDER = ("train", "dev", "test")

log = logging.getLogger(__name__)


def default_train_split(dataset: BeirDataset) -> str:
    """The split a dataset named without one trains on: the first of train, dev and test it has
    (the train side of `make_plan`'s plan; the seed protocol trains on all of it)."""
    found = next((split for split in SEED_PROTOCOL_ORDER if dataset.has_split(split)), None)
    if found is None:
        available = ", ".join(dataset.splits()) or "none"
        raise IrtuneError(
            f"{dataset.root}: no train, dev or test split to train on (available: {available}); "
            "name one as DATASET:SPLIT"
        )
    return found


@dataclass
class TrainSet:
    dataset: BeirDataset
    part: SplitPart
    plan: SplitPlan
    dropped_duplicates: tuple[str, ...] = ()  # training queries whose text is evaluated
    excluded_positives: frozenset[str] = frozenset()  # positives that are evaluated queries

    @property
    def key(self) -> str:
        """Unique among a run's training sets: one dataset may train from two splits."""
        return f"{self.dataset.name}:{self.part.split}"

    @property
    def label(self) -> str:
        subset = "" if self.part.query_ids is None else " (held-out subset)"
        return f"{self.dataset.name}:{self.part.split}{subset}"

    def queries(self) -> dict[str, str]:
        return {q: self.dataset.queries[q] for q in training_queries(self.dataset, self.part)}

    def seen_queries(self) -> dict[str, str]:
        """What training shows the model: its queries, and for generated ones also the real
        queries their prompts held as examples."""
        if self.dataset.is_synthetic(self.part.split):
            return {**self.dataset.prompt_example_queries(), **self.queries()}
        return self.queries()

    def remembered(self) -> TrainingQueries:
        return TrainingQueries.from_queries(self.dataset.name, self.part.split, self.seen_queries())


def expand_presets(specs: Sequence[str], groups: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """`general`, `scientific` or a user group name -> its datasets (a group may name groups);
    other specs unchanged. A group reaching itself is refused: `group cycle: a → b → a`."""
    known = {**DOMAIN_PRESETS, **(groups or {})}

    def expand(spec: str, within: tuple[str, ...]) -> list[str]:
        if spec not in known:
            return [spec]
        if spec in within:
            raise IrtuneError(f"group cycle: {' → '.join((*within[within.index(spec) :], spec))}")
        return [name for member in known[spec] for name in expand(member, (*within, spec))]

    return list(dict.fromkeys(name for spec in specs for name in expand(spec, ())))


def resolve_train_sets(
    specs: Sequence[str],
    config: TrainConfig,
    data_dir: Path | None = None,
    split_files: Sequence[Path] = (),
) -> list[TrainSet]:
    """`dataset[:split]` specs -> training sets under the honest plan (or the seed protocol)."""
    datasets = [resolve_dataset(spec.partition(":")[0], data_dir) for spec in specs]
    plans = plans_for(split_files, datasets, "trained")
    honest = config.protocol == "honest"
    sets: dict[str, TrainSet] = {}
    for spec, dataset in zip(specs, datasets, strict=True):
        split = spec.partition(":")[2]
        if dataset.is_synthetic(split) and config.protocol == "seed":
            raise IrtuneError(
                f"{spec}: the seed protocol reports all of test; it cannot train on generated queries"
            )
        if split:
            dataset.qrels_path(split)  # a missing split fails clearly, before any planning
        planner = synthetic_plan if dataset.is_synthetic(split) else make_plan
        if dataset.name in plans:
            plan, path = plans[dataset.name]
            plan = plan_held_to_clusters(dataset, plan, path.name) if honest else plan
        else:
            plan = planner(dataset, config.split_seed, config.dev_fraction, config.eval_fraction)
        if not honest:
            split = split or default_train_split(dataset)
            part = SplitPart(split, None)
            plan = seed_protocol_plan(plan, part)
        elif not split or split == plan.train.split:
            part = plan.train
        else:
            part, left_out = without_cluster_mates(dataset, SplitPart(split, None), plan.eval)
            warn_left_out_for_clusters(spec, {"train": left_out})
        train_set = TrainSet(dataset, part, plan)
        if train_set.key in sets:
            raise IrtuneError(f"training set {train_set.key} is given twice ({spec!r})")
        sets[train_set.key] = train_set
    if not sets:
        raise ParameterError("no training data: give {datasets} (DATASET[:SPLIT] or a preset)")
    return list(sets.values())


def plan_held_to_clusters(dataset: BeirDataset, plan: SplitPlan, origin: str) -> SplitPlan:
    """A split file's plan with duplicate clusters kept off its train and dev side, as
    `make_plan` keeps them (a hand-made or older file may not)."""
    separated, left_out = separate_clusters(dataset, plan)
    if not any(left_out.values()):
        return plan
    warn_left_out_for_clusters(origin, left_out)
    return replace(separated, stats={**plan.stats, LEFT_OUT_FOR_CLUSTERS: left_out})


def warn_left_out_for_clusters(where: str, left_out: Mapping[str, int]) -> None:
    if counts := [f"{n} {part}" for part, n in left_out.items() if n]:
        log.warning(
            "%s: left out %s queries sharing a duplicate cluster with an evaluated query",
            where,
            " and ".join(counts),
        )


def seed_protocol_plan(plan: SplitPlan, train: SplitPart) -> SplitPlan:
    """The published study's plan: train on a whole split, report the whole test split.

    The model carries this plan, so it is evaluated on the same queries as its baseline
    (a test-only dataset's honest plan would score it on half of test)."""
    return replace(
        plan,
        method=f"seed protocol: train on all of {train.split}, report all of test (contaminated)",
        train=train,
        eval=SplitPart("test", None),
        stats={},
    )


def evaluated_queries(target: TrainSet) -> dict[str, str]:
    part = target.plan.eval
    return {q: target.dataset.queries[q] for q in training_queries(target.dataset, part)}


def evaluated_documents(train: TrainSet, train_sets: Sequence[TrainSet]) -> frozenset[str]:
    """Documents of `train`'s corpus that are evaluated queries of any training set's plan,
    by id (same dataset) or normalised text: never to be trained on as negatives."""
    ids: set[str] = set()
    fingerprints: set[str] = set()
    linked = queries_are_documents(train.dataset)
    for target in train_sets:
        for qid, text in evaluated_queries(target).items():
            fingerprints.add(text_fingerprint(text))
            if target.dataset.name == train.dataset.name and linked:
                ids.add(qid)
    corpus = train.dataset.corpus
    return frozenset(
        d for d, doc in corpus.items() if d in ids or text_fingerprint(doc.full_text()) in fingerprints
    )


def drop_evaluated_positives(
    train_sets: Sequence[TrainSet], forbidden_by_key: Mapping[str, frozenset[str]]
) -> list[TrainSet]:
    """Leave out training positives that are evaluated queries (Quora's dev and test share
    duplicate clusters: a dev query's duplicate can be a test query). Training on that pair
    would teach the model an evaluated query's text; the rest of the query's pairs stay.
    `forbidden_by_key`: `evaluated_documents` per training set, computed once by the caller
    (it fingerprints the whole corpus) and reused to keep those documents out of negatives."""
    cleaned = []
    for train in train_sets:
        forbidden = forbidden_by_key[train.key]
        if forbidden:
            qrels = train.dataset.qrels(train.part.split)
            hit = frozenset(
                d for q in train.queries() for d, g in qrels[q].items() if g > 0 and d in forbidden
            )
            if hit:
                train = replace(train, excluded_positives=train.excluded_positives | hit)
        cleaned.append(train)
    return cleaned


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
            train = replace(train, part=SplitPart(train.part.split, keep), dropped_duplicates=dropped)
        cleaned.append(train)
    return cleaned


def leakage_report(train_sets: Sequence[TrainSet]) -> list[dict]:
    """Every way evaluated queries reach training or selection: a training set sharing
    queries (by id or normalised text) with an evaluated set, a training positive that is
    an evaluated query (datasets whose queries are documents: Quora, ArguAna), and plans
    whose train/dev/eval parts overlap (a hand-edited split file)."""
    findings = []
    targets = list({t.dataset.name: t for t in train_sets}.values())  # one plan per dataset
    for train in train_sets:
        remembered = train.remembered()
        documents = positive_documents(train)
        for target in targets:
            evaluated_part = target.plan.eval
            evaluated = evaluated_queries(target)
            where = {
                "train_set": train.label,
                "evaluated": f"{target.dataset.name}:{evaluated_part.split}",
                "evaluated_queries": len(evaluated),
            }
            overlap = find_overlap(remembered, target.dataset.name, evaluated)
            if overlap.count:
                findings.append({"kind": "training queries", **where, **overlap.to_json()})
            overlap = find_overlap(documents, target.dataset.name, evaluated)
            if overlap.count:
                findings.append({"kind": "training positives", **where, **overlap.to_json()})
    for target in targets:
        for first, second, shared in plan_overlaps(target.dataset, target.plan):
            findings.append(
                {
                    "kind": "split plan parts",
                    "train_set": f"{target.dataset.name} plan part {first}",
                    "evaluated": f"{target.dataset.name} plan part {second}",
                    "evaluated_queries": len(evaluated_queries(target)),
                    "parts": f"{first}/{second}",
                    **shared,
                }
            )
    return findings


def positive_documents(train: TrainSet) -> TrainingQueries:
    """A training set's positive documents, remembered like queries (id and text)."""
    dataset = train.dataset
    corpus = dataset.corpus
    qrels = dataset.qrels(train.part.split)
    docs = {
        d: corpus[d].full_text()
        for q in train.queries()
        for d, g in qrels[q].items()
        if g > 0 and d in corpus and d not in train.excluded_positives
    }
    remembered = TrainingQueries.from_queries(dataset.name, train.part.split, docs)
    if queries_are_documents(dataset):
        return remembered
    return TrainingQueries(dataset.name, train.part.split, frozenset(), remembered.fingerprints)


def inherited_leakage(train_sets: Sequence[TrainSet], inherited: Sequence[TrainingQueries]) -> list[dict]:
    """Evaluated queries that a model the base descends from trained on (the base's lineage):
    training on top of it does not make them held out."""
    findings = []
    for target in {t.dataset.name: t for t in train_sets}.values():
        evaluated = evaluated_queries(target)
        queries_sha256 = content_sha256(target.dataset.queries_path)
        for remembered in inherited:
            overlap = find_overlap(remembered, target.dataset.name, evaluated, queries_sha256)
            if overlap.count:
                findings.append(
                    {
                        "kind": "the base model's training queries",
                        "train_set": f"{remembered.dataset}:{remembered.split}",
                        "evaluated": f"{target.dataset.name}:{target.plan.eval.split}",
                        "evaluated_queries": len(evaluated),
                        **overlap.to_json(),
                    }
                )
    return findings


def guard_leakage(
    train_sets: Sequence[TrainSet], allow: bool, inherited: Sequence[TrainingQueries] = ()
) -> list[dict]:
    """`inherited`: what the base model's lineage trained on (irtune.models.lineage)."""
    findings = leakage_report(train_sets) + inherited_leakage(train_sets, inherited)
    if findings and not allow:
        raise LeakageError(
            "refusing to train: {queries} of the {evaluated_queries} queries evaluated on {evaluated} "
            "are in {kind} of {train_set} ({by_id} by id, {by_text} by text){more}. Pass "
            "{allow_leakage} to train anyway: every result will be marked contaminated.",
            **findings[0],
            more=f"; {len(findings) - 1} more overlaps" if len(findings) > 1 else "",
        )
    return findings

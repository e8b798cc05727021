"""Honest, deterministic query-level splits, saved to disk as JSON.

Each dataset gets a plan with three disjoint query sets: `train` (fine-tuning), `dev`
(model selection) and `eval` (the reported numbers):

- train + dev + test splits (NFCorpus): used as they are;
- train + test (SciFact): a held-out dev slice of train;
- dev + test, no train (Quora): train on dev minus a slice, select on the slice, report test;
- test only (SciDocs): test is cut into a tune half (train + dev) and an eval half.

Only *duplicate* queries are kept on one side: queries with the same normalised text, and
queries linked through a relevant document that is itself a question (Quora's duplicate
clusters). Queries that merely share relevant documents (NFCorpus: ~40 relevant documents
per query, each relevant to ~30 queries) are topically related, not duplicates: gluing
them together collapses a split (one component held 318 of NFCorpus' 323 test queries).
Their count is reported instead. Groups are taken in a seeded hash order until the
held-out part reaches its requested size, so every part lands within a few points of its
fraction, or the split is refused.

Where queries are documents, a duplicate cluster can span splits (Quora: a dev question
whose duplicates are a test question's relevant documents). The closure over every split's
qrels decides: a train or dev query whose cluster holds an evaluated query is left out, and
the plan's stats count them.

A plan records the identity of the files it was cut from (`BeirDataset.identity`: the queries
and the qrels of the splits it names, by content); it applies only to a dataset with those
files. A plan whose record lacks the queries or its evaluated qrels (made by hand, or by an
irtune that hashed raw bytes by file name: `queries.jsonl.gz`) applies by name only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from irtune.core import checks
from irtune.core.files import write_json_atomic
from irtune.data.beir import SYNTHETIC_QRELS, SYNTHETIC_QUERIES, SYNTHETIC_SPLIT, BeirDataset
from irtune.data.leakage import text_fingerprint
from irtune.errors import DataError, IrtuneError

log = logging.getLogger(__name__)

SPLIT_FORMAT = "irtune-split-v1"
PARTS = ("train", "dev", "eval")
FRACTION_TOLERANCE = 0.05  # a part may miss its requested share by this much (or one query)
LEFT_OUT_FOR_CLUSTERS = "left_out_sharing_a_duplicate_cluster_with_eval"

SPLIT_FILE_SUFFIX = ".split.json"

Qrels = Mapping[str, Mapping[str, int]]


def split_file_name(dataset_name: str) -> str:
    """The file name of a dataset's split plan in a folder of plans (`<dataset>.split.json`)."""
    return f"{dataset_name}{SPLIT_FILE_SUFFIX}"


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
    stats: dict[str, Any] = field(default_factory=dict, compare=False)
    # identity of the files the plan was cut from (`BeirDataset.identity`); None for a hand-made
    # plan or one written before plans carried them
    dataset_files: dict[str, str] | None = field(default=None, compare=False)

    def part(self, name: str) -> SplitPart:
        return {"train": self.train, "dev": self.dev, "eval": self.eval}[name]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SPLIT_FORMAT,
            "dataset": self.dataset,
            "method": self.method,
            "seed": self.seed,
            **{name: self.part(name).to_json() for name in PARTS},
            "stats": self.stats,
            "dataset_files": self.dataset_files,
        }


def _unit_hash(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def duplicate_groups(
    qrels: Qrels, queries: Mapping[str, str], linked_through_documents: bool = False
) -> dict[str, str]:
    """Map each query to a group representative; a group holds duplicate queries only:
    the same normalised text or, where queries are themselves documents (Quora, ArguAna:
    `linked_through_documents`), a shared relevant document or one another as relevant
    document. Elsewhere a document id equal to a query id is a coincidence of naming."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for qid, judged in qrels.items():
        find("q:" + qid)
        if qid in queries:
            union("q:" + qid, "t:" + text_fingerprint(queries[qid]))
        for doc, grade in judged.items():
            if grade > 0 and linked_through_documents:
                union("q:" + qid, "q:" + doc)
    return {qid: find("q:" + qid) for qid in qrels}


def balanced_partition(
    groups: Mapping[str, str], fraction: float, seed: int, what: str
) -> tuple[frozenset[str], frozenset[str]]:
    """(rest, held-out): whole groups on one side, the held-out part as close to `fraction`
    of the queries as the groups allow; refused when that is off by more than the tolerance."""
    if not 0 < fraction < 1:
        raise IrtuneError(f"{what}: the fraction must be between 0 and 1 (exclusive), not {fraction}")
    members: dict[str, list[str]] = {}
    for qid, group in groups.items():
        members.setdefault(group, []).append(qid)
    total = len(groups)
    target = round(fraction * total)
    if target == 0 or target == total:
        raise IrtuneError(f"{what}: {total} queries are too few to hold out {fraction:.0%} of them")
    held: list[str] = []
    for group in sorted(members, key=lambda g: (_unit_hash(seed, g), g)):
        if len(held) == target:
            break
        if len(held) + len(members[group]) <= target:
            held.extend(members[group])
    if abs(len(held) - fraction * total) > max(FRACTION_TOLERANCE * total, 1.0) or not held:
        largest = max(len(m) for m in members.values())
        raise IrtuneError(
            f"{what}: cannot hold out {fraction:.0%} of {total} queries within "
            f"{FRACTION_TOLERANCE:.0%} (got {len(held)}): the largest group of duplicate queries "
            f"has {largest}"
        )
    return frozenset(groups) - set(held), frozenset(held)


def sharing_relevant_documents(qrels: Qrels, queries: Collection[str], others: Qrels) -> int:
    """How many of `queries` have a relevant document that is also relevant to a query of
    `others` (topical neighbours across a split: allowed, but worth knowing)."""
    seen = {d for judged in others.values() for d, g in judged.items() if g > 0}
    return sum(1 for q in queries if any(g > 0 and d in seen for d, g in qrels.get(q, {}).items()))


def queries_are_documents(dataset: BeirDataset) -> bool:
    """Quora, ArguAna: most query ids are also document ids. Only then is a document id equal
    to a query id taken as the same text."""
    ids = list(dataset.real_queries)  # generated queries are never documents
    corpus = set(dataset.doc_ids)
    return bool(ids) and sum(q in corpus for q in ids) * 2 > len(ids)


def _part_qrels(dataset: BeirDataset, part: SplitPart) -> dict[str, Mapping[str, int]]:
    qrels = dataset.qrels(part.split)
    return {q: j for q, j in qrels.items() if part.query_ids is None or q in part.query_ids}


def plan_stats(dataset: BeirDataset, plan: SplitPlan) -> dict[str, Any]:
    """Part sizes and how many dev/eval queries share a relevant document with training."""
    parts = {name: _part_qrels(dataset, plan.part(name)) for name in PARTS}
    relevant = {
        name: [q for q, j in rows.items() if any(g > 0 for g in j.values())] for name, rows in parts.items()
    }
    return {
        "queries": {name: len(qids) for name, qids in relevant.items()},
        "sharing_a_relevant_document_with_train": {
            name: sharing_relevant_documents(parts[name], relevant[name], parts["train"])
            for name in ("dev", "eval")
        },
    }


def duplicate_clusters(dataset: BeirDataset) -> dict[str, str]:
    """`duplicate_groups` over the qrels of every real split at once, linked through
    documents: a cluster can span splits. Generated queries are made from documents and
    are left out of it."""
    judged: dict[str, dict[str, int]] = {}
    for split in dataset.splits():
        if not dataset.is_synthetic(split):
            for qid, grades in dataset.qrels(split).items():
                merged = judged.setdefault(qid, {})
                merged.update({d: max(g, merged.get(d, g)) for d, g in grades.items()})
    return duplicate_groups(judged, dataset.queries, linked_through_documents=True)


def evaluated_cluster_mates(
    dataset: BeirDataset, evaluated: Collection[str], candidates: Iterable[str]
) -> frozenset[str]:
    """The `candidates` that are not evaluated but share a duplicate cluster (across every
    split) with an evaluated query: training or selecting on them trains or selects on that
    query's pairs. Only where queries are documents; elsewhere a cluster is a set of same-text
    queries, which training and selection leave out by text."""
    if not queries_are_documents(dataset):
        return frozenset()
    clusters = duplicate_clusters(dataset)
    hit = {clusters[q] for q in evaluated if q in clusters}
    return frozenset(q for q in candidates if q not in evaluated and q in clusters and clusters[q] in hit)


def without_cluster_mates(
    dataset: BeirDataset, part: SplitPart, evaluated: SplitPart
) -> tuple[SplitPart, int]:
    """`part` without the queries that share a duplicate cluster with a query of `evaluated`,
    and how many were left out."""
    queries = _part_qrels(dataset, part)
    mates = evaluated_cluster_mates(dataset, frozenset(_part_qrels(dataset, evaluated)), queries)
    return (SplitPart(part.split, frozenset(queries) - mates) if mates else part), len(mates)


def separate_clusters(dataset: BeirDataset, plan: SplitPlan) -> tuple[SplitPlan, dict[str, int]]:
    """The plan without the train and dev queries that share a duplicate cluster with one of
    its evaluated queries, and how many each part lost."""
    train, from_train = without_cluster_mates(dataset, plan.train, plan.eval)
    dev, from_dev = without_cluster_mates(dataset, plan.dev, plan.eval)
    return replace(plan, train=train, dev=dev), {"train": from_train, "dev": from_dev}


def _partition_split(
    dataset: BeirDataset, qrels: Qrels, fraction: float, seed: int, what: str, linked: bool
) -> tuple[frozenset[str], frozenset[str]]:
    groups = duplicate_groups(qrels, dataset.queries, linked)
    return balanced_partition(groups, fraction, seed, what)


def make_plan(
    dataset: BeirDataset, seed: int = 13, dev_fraction: float = 0.2, eval_fraction: float = 0.5
) -> SplitPlan:
    checks.fraction("dev_fraction", dev_fraction)
    checks.fraction("eval_fraction", eval_fraction)
    has = {s for s in ("train", "dev", "test") if dataset.has_split(s)}
    if "test" not in has:
        raise IrtuneError(f"{dataset.root}: no qrels/test.tsv, cannot plan an honest evaluation")
    if {"train", "dev"} <= has:
        plan = SplitPlan(
            dataset.name,
            "native train/dev/test",
            seed,
            SplitPart("train", None),
            SplitPart("dev", None),
            SplitPart("test", None),
        )
        return _finished(dataset, plan)
    linked = queries_are_documents(dataset)
    if has & {"train", "dev"}:
        source = "train" if "train" in has else "dev"
        qrels = _relevant_only(dataset.qrels(source))
        rest, held = _partition_split(
            dataset, qrels, dev_fraction, seed, f"{dataset.name}:{source} dev slice", linked
        )
        plan = SplitPlan(
            dataset.name,
            f"{source} split with a held-out dev slice; test reported",
            seed,
            SplitPart(source, rest),
            SplitPart(source, held),
            SplitPart("test", None),
        )
        return _finished(dataset, plan)
    qrels = _relevant_only(dataset.qrels("test"))
    tune, evaluated = _partition_split(
        dataset, qrels, eval_fraction, seed, f"{dataset.name}:test eval part", linked
    )
    tune_qrels = {q: j for q, j in qrels.items() if q in tune}
    train, dev = _partition_split(
        dataset, tune_qrels, dev_fraction, seed + 1, f"{dataset.name}:test dev slice", linked
    )
    plan = SplitPlan(
        dataset.name,
        "test-only: query-level tune/eval halves of test",
        seed,
        SplitPart("test", train),
        SplitPart("test", dev),
        SplitPart("test", evaluated),
    )
    return _finished(dataset, plan)


def synthetic_plan(
    dataset: BeirDataset, seed: int = 13, dev_fraction: float = 0.2, eval_fraction: float = 0.5
) -> SplitPlan:
    """Train on the generated queries. Select on real judged queries when the dataset has
    any (its honest plan's dev part; or a whole real dev/train split when nothing is
    evaluated here), else on a held-out slice of the generated ones. Report real queries
    only: the honest plan's eval part, or nothing when the dataset has no test split."""
    train = SplitPart(SYNTHETIC_SPLIT, None)
    if dataset.has_split("test"):
        real = make_plan(dataset, seed, dev_fraction, eval_fraction)
        method = f"synthetic queries train; dev and eval are real queries ({real.method})"
        plan = _finished(dataset, SplitPlan(dataset.name, method, seed, train, real.dev, real.eval))
        left_out = {"train": 0, "dev": real.stats[LEFT_OUT_FOR_CLUSTERS]["dev"]}  # by the real plan
        return replace(plan, stats={**plan.stats, LEFT_OUT_FOR_CLUSTERS: left_out})
    nothing = SplitPart(SYNTHETIC_SPLIT, frozenset())  # no real queries to report here
    real_split = next((s for s in ("dev", "train") if dataset.has_split(s)), None)
    if real_split is not None:
        method = f"synthetic queries train; dev is the real {real_split} split; no test split to report"
        plan = SplitPlan(dataset.name, method, seed, train, SplitPart(real_split, None), nothing)
        return _finished(dataset, plan)
    qrels = _relevant_only(dataset.qrels(SYNTHETIC_SPLIT))
    rest, held = _partition_split(
        dataset, qrels, dev_fraction, seed, f"{dataset.name}:{SYNTHETIC_SPLIT} dev slice", False
    )
    method = "synthetic queries only: dev is a held-out slice of them (no real queries); no test split"
    plan = SplitPlan(
        dataset.name,
        method,
        seed,
        SplitPart(SYNTHETIC_SPLIT, rest),
        SplitPart(SYNTHETIC_SPLIT, held),
        nothing,
    )
    return _finished(dataset, plan)


def _relevant_only(qrels: Qrels) -> dict[str, Mapping[str, int]]:
    """Queries with a relevant document: the others are never trained or evaluated, and
    counting them would skew the parts' sizes."""
    return {q: j for q, j in qrels.items() if any(g > 0 for g in j.values())}


def _finished(dataset: BeirDataset, plan: SplitPlan) -> SplitPlan:
    """The plan as saved: duplicate clusters kept off the train and dev side, its stats and
    the hashes of the files it was cut from."""
    separated, left_out = separate_clusters(dataset, plan)
    stats = {**plan_stats(dataset, separated), LEFT_OUT_FOR_CLUSTERS: left_out}
    return replace(separated, stats=stats, dataset_files=plan_files(dataset, separated))


def plan_files(dataset: BeirDataset, plan: SplitPlan) -> dict[str, str]:
    """The identity of the files a plan depends on: the queries and the qrels of each real split
    it names (where queries are documents, clusters span splits), and the generated queries and
    their qrels where it cuts them into parts."""
    named = {plan.part(name).split for name in PARTS}
    cut = {plan.part(name).split for name in PARTS if plan.part(name).query_ids is not None}
    splits = sorted(s for s in named if not dataset.is_synthetic(s) or s in cut)
    paths = [dataset.queries_path, *(dataset.qrels_path(s) for s in splits)]
    if SYNTHETIC_SPLIT in splits:
        paths.append(dataset.root / SYNTHETIC_QUERIES)
    return dataset.identity(paths)


def _identifies_its_dataset(plan: SplitPlan) -> bool:
    """Whether the plan records the identity of the queries and the qrels it evaluates: without
    them (a hand-made plan; an empty record; raw-byte hashes by file name, as written before
    plans hashed content) it applies to the dataset of its name only, by query id."""
    split = plan.eval.split
    eval_qrels = SYNTHETIC_QRELS.as_posix() if split == SYNTHETIC_SPLIT else f"qrels/{split}.tsv"
    return {"queries.jsonl", eval_qrels} <= (plan.dataset_files or {}).keys()


def _differing_files(plan: SplitPlan, dataset: BeirDataset) -> list[str]:
    """The files of `plan.dataset_files` whose content in `dataset` is another (or missing)."""
    differing = []
    for name, sha256 in sorted((plan.dataset_files or {}).items()):
        path = next((p for p in (dataset.root / name, dataset.root / f"{name}.gz") if p.is_file()), None)
        if path is None or dataset.identity([path])[name] != sha256:
            differing.append(name)
    return differing


_warned_by_id: set[Path] = set()  # the plans a model carries: warned once per process


def _warn_applied_by_id(plan_path: Path, dataset: BeirDataset, carried_by: str | None) -> None:
    if carried_by is None:
        log.warning(
            "%s: carries no hashes of the dataset files it was cut from (made by hand or by an older "
            "irtune): its query ids are used as they are; cut it again with `irtune split` to have it "
            "checked against %s",
            plan_path,
            dataset.root,
        )
    elif plan_path not in _warned_by_id:
        _warned_by_id.add(plan_path)
        log.warning(
            "%s: trained before plans recorded their dataset's files: its plan is applied by query id (%s)",
            carried_by,
            plan_path,
        )


def check_plan_files(
    plan: SplitPlan, dataset: BeirDataset, origin: Path, carried_by: str | None = None
) -> bool:
    """Whether the plan applies to `dataset`'s files. A plan cut from other files is refused, or
    skipped with a warning when it is one that a model carries (`carried_by`: the model's name;
    the model was trained on other files). A plan without their identity (made by hand, or by an
    older irtune) is used as it is, with a warning: what it selects is its own list of query
    ids, which results record with the file's hash."""
    if not _identifies_its_dataset(plan):
        _warn_applied_by_id(origin, dataset, carried_by)
        return True
    if not (differing := _differing_files(plan, dataset)):
        return True
    verb = "differs" if len(differing) == 1 else "differ"
    where = f"({', '.join(differing)} {verb} in {dataset.root})"
    if carried_by is None:
        raise DataError(
            origin,
            f"cut from other files of dataset {plan.dataset} {where}: cut a split of these files with "
            "`irtune split` and use that one",
        )
    log.warning(
        "%s: the model's split plan was cut from other files of dataset %s %s: not applied, all of "
        "its queries are evaluated (%s; those it trained on are counted as contamination)",
        origin,
        plan.dataset,
        where,
        carried_by,
    )
    return False


def _applies_to(plan: SplitPlan, datasets: Sequence[BeirDataset]) -> BeirDataset | None:
    """The dataset of the plan's name, or else one with the files it was cut from."""
    return next((d for d in datasets if d.name == plan.dataset), None) or next(
        (d for d in datasets if _identifies_its_dataset(plan) and not _differing_files(plan, d)), None
    )


def plans_for(
    split_files: Sequence[Path], datasets: Sequence[BeirDataset], used: str, carried_by: str | None = None
) -> dict[str, tuple[SplitPlan, Path]]:
    """Dataset name -> the plan that applies to it and its file. A plan applies to the dataset
    of its name or else to one with the files it was cut from, and only when cut from that
    dataset's files. A file that applies to no dataset (`used`: "evaluated", "trained") is
    refused (it would be ignored), unless it is one of the plans a model carries (`carried_by`:
    the model's name), which are skipped."""
    found: dict[str, tuple[SplitPlan, Path]] = {}
    for path in split_files:
        plan = load_plan(path)
        dataset = _applies_to(plan, datasets)
        if dataset is None:
            if carried_by is not None:
                continue
            names = ", ".join(dict.fromkeys(d.name for d in datasets))
            raise DataError(
                path, f"cut from dataset {plan.dataset}, which is not {used} here ({used}: {names})"
            )
        if dataset.name in found:
            raise DataError(
                path, f"a second split file for dataset {dataset.name} (first: {found[dataset.name][1]})"
            )
        if check_plan_files(plan, dataset, path, carried_by):
            found[dataset.name] = (plan, path)
    return found


def plan_overlaps(dataset: BeirDataset, plan: SplitPlan) -> list[tuple[str, str, dict[str, Any]]]:
    """(part, other part, overlap) for query ids found in two parts of a plan over one split.

    A hand-made or edited split file can put evaluated queries into dev (selection on the
    reported queries) or train; training refuses such a plan unless leakage is allowed.
    Same-text queries under other ids are not counted here: training leaves them out of
    train and dev (native splits hold a few: NFCorpus dev and test share one text).
    """
    ids = {name: set(_part_qrels(dataset, plan.part(name))) for name in PARTS}
    findings = []
    for a, b in (("train", "dev"), ("train", "eval"), ("dev", "eval")):
        if plan.part(a).split != plan.part(b).split:
            continue
        overlapping = sorted(ids[a] & ids[b])
        if overlapping:
            overlap = {
                "queries": len(overlapping),
                "by_id": len(overlapping),
                "by_text": 0,
                "examples": overlapping[:10],
            }
            findings.append((a, b, overlap))
    return findings


def save_plan(plan: SplitPlan, path: Path) -> None:
    write_json_atomic(path, plan.to_json())


def check_plan_file(plan: SplitPlan, path: Path, *, force: bool) -> None:
    """`path` may receive `plan` (`irtune split --out`): it is absent, already holds this plan
    (a re-run), or `force` replaces it."""

    def holds_this_plan(existing: Path) -> bool:
        try:
            return load_plan(existing) == plan
        except DataError:
            return False

    checks.replaceable_file("out_dir", path, holds_this_plan, "irtune's split file of this plan", force=force)


def load_plan(path: Path) -> SplitPlan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"cannot read split file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != SPLIT_FORMAT:
        raise DataError(path, f'not an irtune split file (format must be "{SPLIT_FORMAT}")')
    try:
        parts = {
            name: SplitPart(
                data[name]["split"],
                frozenset(data[name]["query_ids"]) if data[name]["query_ids"] is not None else None,
            )
            for name in PARTS
        }
        stats = data.get("stats") or {}
        dataset, method, seed = data["dataset"], data["method"], int(data["seed"])
    except (KeyError, TypeError) as exc:
        raise DataError(path, f"malformed split file (missing {exc})") from None
    files = _read_dataset_files(data.get("dataset_files"), path)
    return SplitPlan(dataset, method, seed, parts["train"], parts["dev"], parts["eval"], stats, files)


def _read_dataset_files(value: object, path: Path) -> dict[str, str] | None:
    """`dataset_files` of a split file: sha256 by relative path inside the dataset folder."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(name, str) and isinstance(sha, str) and _inside_a_folder(name)
        for name, sha in value.items()
    ):
        raise DataError(path, '"dataset_files" must map paths inside the dataset folder to sha256 hashes')
    return value


def _inside_a_folder(name: str) -> bool:
    relative = PurePosixPath(name)
    return bool(name) and not relative.is_absolute() and ".." not in relative.parts

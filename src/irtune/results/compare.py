"""Align evaluation results and compare them per dataset and metric, with significance."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from irtune.errors import DataError, InvalidValueError, IrtuneError
from irtune.results.files import FRONTIER_FILE
from irtune.results.metrics import HEADLINE_METRICS
from irtune.results.model import ModelRecord, TrainSetRecord
from irtune.results.schema import DatasetResult, ResultsFile, read_results, results_path
from irtune.results.seeds import seed_groups, seed_of, shipped_by_dev_score, summary_dev_score
from irtune.results.significance import bootstrap_ci, holm, paired_randomization_test, two_level_bootstrap_ci

ALPHA = 0.05
TIE = 1e-12
MEANING_SETTINGS = ("top_k", "ignore_identical_ids")  # differ: the metrics measure other things
# Besides the model's weights, what moves a run's numbers while their meaning holds: each one
# that differs between two runs is named (a caveat; the verdict credits nothing to fine-tuning).
# All but the retriever belong to the embeddings, so they are compared between runs that encode.
SETUP_SETTINGS = (
    "retriever", "compression", "precision", "backend", "prompts", "max_seq_length", "store_dtype", "index",
)  # fmt: skip


class MetricComparison(BaseModel):
    metric: str
    baseline: float
    candidate: float
    ci_low: float
    ci_high: float
    p_value: float
    wins: int
    ties: int
    losses: int
    p_holm: float = 1.0

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline

    @property
    def relative(self) -> float:
        return self.delta / self.baseline if self.baseline else math.nan

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "delta": self.delta,
            "relative": self.relative,
            "ci95": [self.ci_low, self.ci_high],
            "p_value": self.p_value,
            "p_holm": self.p_holm,
            "significant": self.significant,
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
        }


class DatasetComparison(BaseModel):
    dataset: str
    split: str
    queries: int
    contaminated: bool
    metrics: list[MetricComparison]
    deltas: dict[str, list[float]] = Field(repr=False)  # per-query candidate - baseline
    trained_on: bool = False  # the candidate's lineage trained on this dataset (other queries of it)

    def metric(self, name: str) -> MetricComparison:
        return next(m for m in self.metrics if m.metric == name)


def _dataset_json(d: Any) -> dict[str, Any]:
    """One dataset's entry of a comparison or a seed recipe, as JSON."""
    return {
        "dataset": d.dataset,
        "split": d.split,
        "queries": d.queries,
        "contaminated": d.contaminated,
        "metrics": [m.to_json() for m in d.metrics],
    }


class SeedGain(BaseModel):
    """One metric on one dataset over a recipe's seeds: each run's test gain over the baseline
    and the two-level bootstrap CI of their mean (seeds and queries resampled)."""

    metric: str
    gains: list[float]  # each seed's mean per-query gain, in seed order
    ci_low: float = 0.0
    ci_high: float = 0.0
    deltas: list[list[float]] = Field(repr=False, exclude=True)  # [seed][query]: candidate - baseline

    @property
    def mean(self) -> float:
        return float(np.mean(self.gains))

    @property
    def excludes_zero(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "gains": self.gains,
            "mean": self.mean,
            "range": [min(self.gains), max(self.gains)],
            "ci": [self.ci_low, self.ci_high],
        }


class SeedDataset(BaseModel):
    dataset: str
    split: str
    queries: int
    contaminated: bool  # a run of the recipe (or the baseline) trained on evaluated queries
    metrics: list[SeedGain]

    def metric(self, name: str) -> SeedGain:
        return next(m for m in self.metrics if m.metric == name)


class SeedRuns(BaseModel):
    """A recipe trained once per seed (irtune.results.seeds): the comparison it is attached to tests the
    run that ships; the others are measured, not tested, and the recipe's gain is judged from
    its CIs. Those CIs are a family of their own, every recipe interval of the report, each at
    1 - ALPHA / family (Bonferroni): more seeds make an interval more precise, never more
    numerous."""

    seeds: list[int]
    labels: list[str]
    shipped: int  # the seed that ships
    reason: str  # why that seed
    datasets: list[SeedDataset]
    level: float = 1 - ALPHA
    family: int = 1  # recipe intervals corrected together

    def describe_level(self) -> str:
        """'95% CI' or '98.8% CI (Bonferroni over 4 recipe intervals)'."""
        level = f"{100 * self.level:.4g}% CI"
        return level if self.family == 1 else f"{level} (Bonferroni over {self.family} recipe intervals)"

    def to_json(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "labels": self.labels,
            "shipped": self.shipped,
            "reason": self.reason,
            "ci_level": self.level,
            "ci_family": self.family,
            "datasets": [_dataset_json(d) for d in self.datasets],
        }


class Correction(BaseModel):
    """The multiple-comparison correction applied, and over which family of tests: a p-value
    only means what it says if the reader knows how many tests it was corrected for."""

    model_config = ConfigDict(frozen=True)

    method: str
    family: str
    comparisons: int  # comparisons corrected together (against the baseline and head to head)
    datasets: int  # per comparison (the most any comparison has)
    metrics: int
    tests: int  # every p-value of the family

    def describe(self) -> str:
        """'Holm-corrected over all 24 tests (3 comparisons × 2 datasets × 4 metrics)'."""
        parts = [_count(self.datasets, "dataset"), _count(self.metrics, "metric")]
        if self.comparisons > 1:
            parts.insert(0, _count(self.comparisons, "comparison"))
        shape = " × ".join(parts)
        if self.tests != self.comparisons * self.datasets * self.metrics:  # datasets differ
            shape = f"{_count(self.comparisons, 'comparison')} of up to {shape.split(' × ', 1)[1]}"
        return f"{self.method.capitalize()}-corrected over all {_count(self.tests, 'test')} ({shape})"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


class RunSetup(BaseModel):
    """The settings of one results file that decide what its numbers mean (None: the
    retriever has no embeddings, hence no precision, index or max length; or the file did
    not record it)."""

    model_config = ConfigDict(frozen=True)

    path: str
    retriever: str
    label: str  # how the retriever describes itself, e.g. "dense · fp32 · exact search"
    encodes: bool
    precision: str | None
    index: str | None
    approximate: bool
    top_k: int | None
    ignore_identical_ids: bool | None
    max_seq_length: int | None
    store_dtype: str | None
    compression: str | None = None
    backend: str | None = None  # None: recorded before backends existed, so torch
    prompts: dict[str, str] = Field(default_factory=dict)  # query / document prompts of the encoder
    weights_sha256: str | None = None  # the encoder's weights
    index_params: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, result: ResultsFile) -> RunSetup:
        info = result.retriever
        dense = info.dense_parts()
        part = dense[0] if dense else None
        return cls(
            path=result.name,
            retriever=info.name,
            label=info.label(),
            encodes=part is not None,
            precision=part.precision if part else None,
            index=part.index if part else None,
            approximate=info.approximate,
            top_k=result.settings.top_k,
            ignore_identical_ids=result.settings.ignore_identical_ids,
            max_seq_length=part.max_seq_length if part else None,
            store_dtype=part.store_dtype if part else None,
            compression=part.params.get("compression") if part else None,
            backend=part.params.get("backend") if part else None,
            prompts=_prompts(result.model) if part else {},
            weights_sha256=result.model.weights_sha256 if part and result.model else None,
            index_params=dict(part.index_params) if part else {},
        )

    def shown(self, setting: str) -> str:
        """A setting of SETUP_SETTINGS as the caveats and the verdict name it."""
        value = getattr(self, setting)
        if setting == "prompts":
            return ", ".join(f"{role} {text!r}" for role, text in value.items()) or "none"
        if setting == "compression":
            return value or "full vectors"
        if setting == "backend":
            return value or "torch"
        if setting == "index":  # exhaustive indexes find the same documents; approximate ones differ
            return f"{value} {self.index_params}" if self.approximate else "exhaustive search"
        return str(value)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump()


def check_setups(base: RunSetup, cand: RunSetup) -> list[str]:
    """Refuse two runs whose metrics mean different things (another ranking depth, self-matches
    kept or dropped, approximate vs exhaustive search); return caveats for differences that
    only move the numbers (two dense runs encoded at another precision or max length), since
    part of the measured change then comes from the setting, not from the model.

    A dense run against BM25 is the comparison of two retrievers, the point of the exercise:
    BM25 has no precision or index, so nothing about those is checked; the embedding
    settings are checked between any two runs that both encode (dense, a fusion with dense)."""
    where = f"cannot compare {base.path} with {cand.path}"
    caveats = []
    for name in MEANING_SETTINGS:
        b, c = getattr(base, name), getattr(cand, name)
        if b is None or c is None:
            caveats.append(f"{name} is missing from a results file, so it could not be checked")
        elif b != c:
            raise IrtuneError(f"{where}: {name} differs ({b} vs {c}); evaluate both with the same {name}")
    if base.approximate != cand.approximate:
        raise IrtuneError(
            f"{where}: index differs ({_search(base)} vs {_search(cand)}); approximate search misses "
            "documents that exact search finds, so evaluate both exactly or with the same index"
        )
    for name, b, c in setup_differences(base, cand):
        if name == "retriever" and not weights_differ(base, cand):
            continue  # one model (or none) under two retrievers: comparing retrievers is the point
        also = " as well as the model's weights" if name == "retriever" else ""
        caveats.append(
            f"{name} differs (baseline {b}, candidate {c}){also}: part of the difference may "
            "come from it, not from the model"
        )
    return caveats


def setup_differences(base: RunSetup, cand: RunSetup) -> list[tuple[str, str, str]]:
    """(setting, baseline's, candidate's) for each of SETUP_SETTINGS the two runs differ in; the
    embedding settings only between two runs that both encode (BM25 has no precision)."""
    names = SETUP_SETTINGS if base.encodes and cand.encodes else ("retriever",)
    shown = ((name, base.shown(name), cand.shown(name)) for name in names)
    return [(name, b, c) for name, b, c in shown if b != c]


def weights_differ(base: RunSetup, cand: RunSetup) -> bool:
    """Both runs encode, with other weights: a difference may then be the model's."""
    return base.weights_sha256 is not None and cand.weights_sha256 not in (None, base.weights_sha256)


def _prompts(model: ModelRecord | None) -> dict[str, str]:
    """The prompts a run encoded with, empty ones left out (no prompt)."""
    prompts = model.prompts if model else {}
    return {role: prompts[role] for role in ("query", "document") if prompts.get(role)}


def _search(setup: RunSetup) -> str:
    if setup.index is None:
        return f"{setup.retriever}, exact"
    return f"{setup.index}, {'approximate' if setup.approximate else 'exact'}"


def base_weights(result: ResultsFile) -> str | None:
    """The weights hash of the model a fine-tuned run's model was trained from (None: untuned)."""
    training = result.model.training if result.model else None
    return training.base_model.weights_sha256 if training else None


def against_own_base(baseline: ResultsFile, candidate: ResultsFile) -> bool:
    """The candidate is a fine-tuned model and the baseline is its own base model: a difference
    then measures what fine-tuning did if nothing else differs (Comparison.credits_training)."""
    own = base_weights(candidate)
    return own is not None and baseline.model is not None and baseline.model.weights_sha256 == own


def _train_sets(result: ResultsFile) -> list[TrainSetRecord]:
    """The training sets of a run's model and of every model it was tuned from."""
    training = result.model.training if result.model else None
    return [t for summary in (training.lineage() if training else []) for t in summary.train_sets]


def trained_on(result: ResultsFile) -> tuple[str, ...]:
    """The datasets a run's model or any model it was tuned from was fine-tuned on (empty: a
    base model or a model-free run)."""
    return tuple(sorted({t.dataset for t in _train_sets(result)}))


def _dataset_identity(files: Mapping[str, str]) -> dict[str, str]:
    """The corpus and queries of a dataset's identity (`BeirDataset.identity`): its qrels differ
    from split to split."""
    return {name: sha for name, sha in files.items() if name in ("corpus.jsonl", "queries.jsonl")}


def lineage_trained_on(result: ResultsFile, entry: DatasetResult) -> bool:
    """Whether the run's model lineage trained on the evaluated dataset: the same files (a copy
    under another name is the same dataset), or the same name (a slice of it, or files recorded
    before results held the dataset's identity)."""
    evaluated = _dataset_identity(entry.data_files_sha256)
    return any(
        t.dataset == entry.dataset or (evaluated and _dataset_identity(t.data_files_sha256) == evaluated)
        for t in _train_sets(result)
    )


class Comparison(BaseModel):
    baseline_label: str
    candidate_label: str
    # "vs baseline": every candidate against the study's baseline; "head to head": two tuned
    # models on a dataset both trained on (see head_to_head_pairs), in the same Holm family
    kind: Literal["vs baseline", "head to head"] = "vs baseline"
    baseline_trained_on: tuple[str, ...] = ()
    candidate_trained_on: tuple[str, ...] = ()
    against_base: bool = False  # the baseline is the candidate's own base model (dense)
    contaminated: bool
    datasets: list[DatasetComparison]
    metrics: tuple[str, ...]
    correction: Correction | None = None
    caveats: list[str] = Field(default_factory=list)
    baseline_setup: RunSetup | None = None
    candidate_setup: RunSetup | None = None
    seeds: SeedRuns | None = None  # the candidate is the shipped run of a recipe over these seeds

    @property
    def differences(self) -> list[str]:
        """'retriever (dense → hybrid)' for each setting besides the weights the runs differ in."""
        if self.baseline_setup is None or self.candidate_setup is None:
            return []
        return [
            f"{n} ({b} → {c})" for n, b, c in setup_differences(self.baseline_setup, self.candidate_setup)
        ]

    @property
    def credits_training(self) -> bool:
        """The candidate was tuned from the baseline's model and the runs differ by weights
        alone: only then is the change what fine-tuning did."""
        return self.against_base and not self.differences

    @property
    def other_weights(self) -> bool:
        """Two models (not one under two settings, nor a model-free run) are compared."""
        base, cand = self.baseline_setup, self.candidate_setup
        return base is not None and cand is not None and weights_differ(base, cand)

    def summary(self) -> dict[str, dict[str, float]]:
        """Macro average over datasets, per metric."""
        out = {}
        for name in self.metrics:
            rows = [d.metric(name) for d in self.datasets]
            base = float(np.mean([r.baseline for r in rows]))
            cand = float(np.mean([r.candidate for r in rows]))
            out[name] = {
                "baseline": base,
                "candidate": cand,
                "delta": cand - base,
                "relative": (cand - base) / base if base else math.nan,
                "improved_datasets": sum(r.delta > TIE for r in rows),
                "significant_wins": sum(r.significant and r.delta > 0 for r in rows),
                "significant_losses": sum(r.significant and r.delta < 0 for r in rows),
            }
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline_label,
            "candidate": self.candidate_label,
            "kind": self.kind,
            "trained_on": {
                "baseline": list(self.baseline_trained_on),
                "candidate": list(self.candidate_trained_on),
            },
            "contaminated": self.contaminated,
            "datasets": [_dataset_json(d) for d in self.datasets],
            "summary": self.summary(),
            "correction": self.correction.to_json() if self.correction else None,
            "caveats": list(self.caveats),
            "differences": self.differences,
            "setup": {
                "baseline": self.baseline_setup.to_json() if self.baseline_setup else None,
                "candidate": self.candidate_setup.to_json() if self.candidate_setup else None,
            },
            "seeds": self.seeds.to_json() if self.seeds else None,
        }


def key_name(entry: DatasetResult) -> str:
    return f"{entry.dataset}:{entry.split}"


def _check_alignment(base: DatasetResult, cand: DatasetResult, base_path: str, cand_path: str) -> None:
    where = f"{cand.dataset}:{cand.split}"
    if base.queries.ids_sha256 != cand.queries.ids_sha256:
        raise IrtuneError(
            f"cannot compare {where}: {base_path} evaluated {base.queries.count} queries "
            f"({base.queries.selection}), {cand_path} evaluated {cand.queries.count} "
            f"({cand.queries.selection}); evaluate both on the same query set"
        )
    if set(base.per_query) != set(cand.per_query):
        raise IrtuneError(
            f"cannot compare {where}: {base_path} and {cand_path} score different queries per query"
        )
    if base.data_files_sha256 != cand.data_files_sha256:
        if any(name.endswith(".gz") for name in (*base.data_files_sha256, *cand.data_files_sha256)):
            raise IrtuneError(
                f"cannot compare {where}: {base_path} and {cand_path} identify their data files "
                "differently (results written before irtune hashed a gzipped file's content): evaluate "
                "the older one again"
            )
        raise IrtuneError(
            f"cannot compare {where}: the data files differ between {base_path} and {cand_path}"
        )


def refuse_repeated_content(result: ResultsFile) -> None:
    """A results file listing one dataset twice under two names (`eval -d scifact -d copy` of a
    copied folder, by a version that did not refuse it) would count its tests twice in the Holm
    family and its numbers twice in the averages: refused, as `irtune eval` refuses it now."""
    names: dict[tuple[str, frozenset[tuple[str, str]]], str] = {}
    for entry in result.datasets:
        if not entry.data_files_sha256:
            continue  # recorded before results held the files' hashes
        content = (entry.split, frozenset(entry.data_files_sha256.items()))
        if (first := names.setdefault(content, entry.dataset)) != entry.dataset:
            raise IrtuneError(
                f"cannot compare {result.name}: datasets {entry.dataset!r} and {first!r} hold the same "
                f"files (one dataset by content, split {entry.split}); evaluate it once"
            )


def _check_per_query_metrics(entry: DatasetResult, path: str, metrics: tuple[str, ...]) -> None:
    if missing := [m for m in metrics if any(m not in v for v in entry.per_query.values())]:
        raise IrtuneError(f"cannot compare {key_name(entry)}: {path} has no per-query {missing[0]}")


def holm_over_family(comparisons: Sequence[Comparison]) -> None:
    """Holm over every (comparison, dataset, metric) test reported together, as one family.
    Holm per metric across datasets left the four metrics of a single dataset uncorrected;
    Holm per comparison let several candidates be compared and the lucky one kept."""
    tests = [m for c in comparisons for d in c.datasets for m in d.metrics]
    for m, adjusted in zip(tests, holm([m.p_value for m in tests]), strict=True):
        m.p_holm = adjusted
    correction = Correction(
        method="holm",
        family="comparisons x datasets x metrics",
        comparisons=len(comparisons),
        datasets=max(len(c.datasets) for c in comparisons),
        metrics=max(len(c.metrics) for c in comparisons),
        tests=len(tests),
    )
    for comparison in comparisons:
        comparison.correction = correction


def _metric_comparison(
    name: str, base: DatasetResult, cand: DatasetResult, qids: list[str]
) -> MetricComparison:
    b = np.array([base.per_query[q][name] for q in qids])
    c = np.array([cand.per_query[q][name] for q in qids])
    d = c - b
    low, high = bootstrap_ci(d)
    return MetricComparison(
        metric=name,
        baseline=float(b.mean()),
        candidate=float(c.mean()),
        ci_low=low,
        ci_high=high,
        p_value=paired_randomization_test(d),
        wins=int((d > TIE).sum()),
        ties=int((np.abs(d) <= TIE).sum()),
        losses=int((d < -TIE).sum()),
    )


def compare(
    baseline: ResultsFile, candidate: ResultsFile, metrics: tuple[str, ...] = HEADLINE_METRICS
) -> Comparison:
    """One candidate against the baseline, corrected over its own tests."""
    return compare_study(baseline, [candidate], metrics)[0]


def head_to_head_pairs(candidates: Sequence[ResultsFile]) -> list[tuple[ResultsFile, ResultsFile, str]]:
    """(per-dataset model, domain model, dataset): each model tuned on one dataset alone
    against each model tuned from the same base on that dataset *and others*, on that dataset
    (same split). Whether the domain model matches its specialists is a question about the two
    tuned models, so it is tested directly (paired, same queries), not read off two deltas
    against the baseline."""
    pairs = []
    for specialist in candidates:
        own = trained_on(specialist)
        if len(own) != 1:
            continue
        dataset = own[0]
        for domain in candidates:
            wider = trained_on(domain)
            same_base = base_weights(domain) == base_weights(specialist)
            shared = {(e.dataset, e.split) for e in domain.datasets} & {
                (e.dataset, e.split) for e in specialist.datasets
            }
            if len(wider) > 1 and dataset in wider and same_base and any(d == dataset for d, _ in shared):
                pairs.append((specialist, domain, dataset))
    return pairs


def compare_study(
    baseline: ResultsFile, candidates: Sequence[ResultsFile], metrics: tuple[str, ...] = HEADLINE_METRICS
) -> list[Comparison]:
    """Each candidate against the baseline, then each domain model against each per-dataset
    model on its dataset (head_to_head_pairs), all corrected as one Holm family: the report
    states both kinds of result, so both count as tests."""
    if not candidates:
        raise IrtuneError("nothing to compare: give at least one candidate besides the baseline")
    for result in (baseline, *candidates):
        refuse_repeated_content(result)
    recipes = _recipes(baseline, candidates, metrics)
    shipped = {id(runs[seeds.seeds.index(seeds.shipped)]): seeds for runs, seeds in recipes}
    measured_only = {id(r) for runs, _ in recipes for r in runs if id(r) not in shipped}
    tested = [c for c in candidates if id(c) not in measured_only]
    comparisons = [_uncorrected(baseline, c, metrics) for c in tested]
    for candidate, comparison in zip(tested, comparisons, strict=True):
        comparison.seeds = shipped.get(id(candidate))
    comparisons += [
        _uncorrected(specialist, domain, metrics, only=dataset, kind="head to head")
        for specialist, domain, dataset in head_to_head_pairs(tested)
    ]
    holm_over_family(comparisons)
    recipe_intervals(comparisons)
    return comparisons


def _recipes(
    baseline: ResultsFile, candidates: Sequence[ResultsFile], metrics: tuple[str, ...]
) -> list[tuple[list[ResultsFile], SeedRuns]]:
    """(runs by seed, their summary) for each recipe given with several seeds (irtune.results.seeds):
    only the run chosen on dev is tested; every seed is measured on the baseline's queries."""
    found = []
    for runs in seed_groups(candidates):
        seeds = [seed_of(r) or 0 for r in runs]
        scores = [summary_dev_score(r.model.training if r.model else None) for r in runs]
        index, reason = shipped_by_dev_score(seeds, scores)
        datasets = [_seed_dataset(baseline, runs, entry, metrics) for entry in runs[index].datasets]
        summary = SeedRuns(
            seeds=seeds,
            labels=[r.label for r in runs],
            shipped=seeds[index],
            reason=reason,
            datasets=[d for d in datasets if d is not None],
        )
        found.append((runs, summary))
    return found


def _seed_dataset(
    baseline: ResultsFile, runs: list[ResultsFile], entry: DatasetResult, metrics: tuple[str, ...]
) -> SeedDataset | None:
    """Each seed's per-query gains on one dataset, paired with the baseline's same queries
    (every run of a recipe evaluated the same datasets: they are part of its key)."""
    key = (entry.dataset, entry.split)
    base = next((e for e in baseline.datasets if (e.dataset, e.split) == key), None)
    if base is None:
        return None
    entries = []
    for run in runs:
        own = next(e for e in run.datasets if (e.dataset, e.split) == key)
        _check_alignment(base, own, baseline.name, run.name)
        _check_per_query_metrics(own, run.name, metrics)
        entries.append(own)
    qids = sorted(entry.per_query)
    gains = []
    for name in metrics:
        deltas = [[e.per_query[q][name] - base.per_query[q][name] for q in qids] for e in entries]
        gains.append(SeedGain(metric=name, gains=[float(np.mean(d)) for d in deltas], deltas=deltas))
    return SeedDataset(
        dataset=entry.dataset,
        split=entry.split,
        queries=len(qids),
        contaminated=base.contaminated or any(e.contaminated for e in entries),
        metrics=gains,
    )


def recipe_intervals(comparisons: Sequence[Comparison]) -> None:
    """The two-level bootstrap CI of every recipe gain the comparisons report, each at the
    level that keeps the whole family of recipe intervals at 1 - ALPHA (Bonferroni)."""
    recipes = [c.seeds for c in comparisons if c.seeds is not None]
    gains = [m for runs in recipes for d in runs.datasets for m in d.metrics]
    level = 1 - ALPHA / max(1, len(gains))
    for runs in recipes:
        runs.level, runs.family = level, len(gains)
    for gain in gains:
        gain.ci_low, gain.ci_high = two_level_bootstrap_ci(np.array(gain.deltas), level)


def _uncorrected(
    baseline: ResultsFile,
    candidate: ResultsFile,
    metrics: tuple[str, ...],
    *,
    only: str | None = None,
    kind: Literal["vs baseline", "head to head"] = "vs baseline",
) -> Comparison:
    base_setup, cand_setup = RunSetup.of(baseline), RunSetup.of(candidate)
    caveats = check_setups(base_setup, cand_setup)
    base_entries = {(e.dataset, e.split): e for e in baseline.datasets}
    rows: list[DatasetComparison] = []
    for entry in candidate.datasets:
        base = base_entries.get((entry.dataset, entry.split))
        if base is None or (only is not None and entry.dataset != only):
            continue
        _check_alignment(base, entry, baseline.name, candidate.name)
        _check_per_query_metrics(base, baseline.name, metrics)
        _check_per_query_metrics(entry, candidate.name, metrics)
        qids = sorted(entry.per_query)
        comparisons = [_metric_comparison(name, base, entry, qids) for name in metrics]
        rows.append(
            DatasetComparison(
                dataset=entry.dataset,
                split=entry.split,
                queries=len(qids),
                contaminated=entry.contaminated or base.contaminated,
                trained_on=lineage_trained_on(candidate, entry),
                metrics=comparisons,
                deltas={
                    name: [entry.per_query[q][name] - base.per_query[q][name] for q in qids]
                    for name in metrics
                },
            )
        )
    if not rows:
        raise IrtuneError(f"nothing to compare: {candidate.name} and {baseline.name} share no dataset/split")
    return Comparison(
        baseline_label=baseline.label,
        candidate_label=candidate.label,
        kind=kind,
        baseline_trained_on=trained_on(baseline),
        candidate_trained_on=trained_on(candidate),
        against_base=against_own_base(baseline, candidate),
        contaminated=any(r.contaminated for r in rows),
        datasets=rows,
        metrics=tuple(metrics),
        caveats=caveats,
        baseline_setup=base_setup,
        candidate_setup=cand_setup,
    )


def load_comparisons(
    results: Sequence[Path], baseline: Path | None = None
) -> tuple[list[Comparison], list[ResultsFile]]:
    """Compare every result with the baseline (default: the sweep's baseline when the results
    are the settings of one frontier, else the first result given), and domain models with
    per-dataset models head to head (compare_study)."""
    if baseline is None and (chosen := frontier_baseline(results)) is not None:
        baseline, results = chosen, [p for p in results if results_path(p).resolve() != chosen.resolve()]
    loaded = [read_results(p) for p in results]
    if baseline is not None:
        loaded.insert(0, read_results(baseline))
    elif len(loaded) < 2:
        raise InvalidValueError("give at least two results, or a {baseline} and one result")
    base, *candidates = distinct_labels(loaded)
    return compare_study(base, candidates), [base, *candidates]


def frontier_baseline(results: Sequence[Path]) -> Path | None:
    """The run a sweep compared its settings with (`frontier.json`'s baseline), when `results`
    hold it and are all settings of that one sweep (`irtune report runs/sizes/*/`): the shell
    gives the folders alphabetically, and `d16-float` is not what the sweep compared with."""
    files = [results_path(p).resolve() for p in results]
    folders = {f.parent.parent for f in files}
    if len(folders) != 1 or not (frontier := folders.pop() / FRONTIER_FILE).is_file():
        return None
    try:
        data = json.loads(frontier.read_text(encoding="utf-8"))
        chosen = results_path(frontier.parent / data["settings"][data["baseline"]]).resolve()
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, KeyError, TypeError) as exc:
        raise DataError(frontier, f"cannot read the sweep's baseline ({type(exc).__name__}: {exc})") from None
    return chosen if chosen in files else None


def distinct_labels(results: list[ResultsFile]) -> list[ResultsFile]:
    """Runs that share a label (`irtune eval m` and `irtune eval m --precision fp16` are both
    "m") would be one name in every table and one color in every chart: each repeated label
    gets its results file's folder, and a number if the folders are named alike too."""
    counts = Counter(r.label for r in results)
    taken: set[str] = set()
    named = []
    for number, result in enumerate(results, 1):
        label = result.label
        if counts[label] > 1:
            label = f"{label} ({Path(result.path).parent.name if result.path else number})"
            if label in taken or label in counts:
                label = f"{label} #{number}"
        taken.add(label)
        named.append(result if label == result.label else result.model_copy(update={"label": label}))
    return named

"""Align evaluation results and compare them per dataset and metric, with significance."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from irtune.errors import DataError, IrtuneError
from irtune.evaluate import RESULTS_FORMAT
from irtune.metrics import HEADLINE_METRICS
from irtune.significance import bootstrap_ci, holm, paired_randomization_test

ALPHA = 0.05
TIE = 1e-12
APPROXIMATE_FREE = ("exact", "flat")  # exhaustive search; FAISS ivf and hnsw are approximate
MEANING_SETTINGS = ("top_k", "ignore_identical_ids")  # differ: the metrics measure other things
DENSE_CAVEATS = ("precision", "max_seq_length", "store_dtype")  # differ: numbers move, meaning holds


def load_results(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "results file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON ({exc.msg})", exc.lineno) from None
    if data.get("format") != RESULTS_FORMAT:
        raise DataError(path, f'not an irtune results file (format must be "{RESULTS_FORMAT}")')
    data["_path"] = str(path)
    return data


@dataclass
class MetricComparison:
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


@dataclass
class DatasetComparison:
    dataset: str
    split: str
    queries: int
    contaminated: bool
    metrics: list[MetricComparison]
    deltas: dict[str, list[float]] = field(repr=False)

    def metric(self, name: str) -> MetricComparison:
        return next(m for m in self.metrics if m.metric == name)


@dataclass(frozen=True)
class Correction:
    """The multiple-comparison correction applied, and over which family of tests: a p-value
    only means what it says if the reader knows how many tests it was corrected for."""

    method: str
    family: str
    datasets: int
    metrics: int

    @property
    def tests(self) -> int:
        return self.datasets * self.metrics

    def describe(self) -> str:
        """'Holm-corrected over all 8 tests (2 datasets × 4 metrics)'."""
        return (
            f"{self.method.capitalize()}-corrected over all {_count(self.tests, 'test')} "
            f"({_count(self.datasets, 'dataset')} × {_count(self.metrics, 'metric')})"
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "tests": self.tests}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class RunSetup:
    """The settings of one results file that decide what its numbers mean (None: BM25 has
    no embeddings, hence no precision, index or max length; or the file did not record it)."""

    path: str
    retriever: str
    precision: str | None
    index: str | None
    approximate: bool
    top_k: int | None
    ignore_identical_ids: bool | None
    max_seq_length: int | None
    store_dtype: str | None
    index_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, result: dict[str, Any]) -> RunSetup:
        settings = result.get("settings") or {}
        path = str(result.get("_path", result.get("label")))
        top_k, identical = settings.get("top_k"), settings.get("ignore_identical_ids")
        if settings.get("retriever", "dense") == "bm25":  # BM25 ignores --index and --precision
            return cls(path, "bm25", None, None, False, top_k, identical, None, None)
        index = settings.get("index", "exact")
        return cls(
            path=path,
            retriever="dense",
            precision=settings.get("precision"),
            index=index,
            approximate=bool(settings.get("approximate", index not in APPROXIMATE_FREE)),
            top_k=top_k,
            ignore_identical_ids=identical,
            max_seq_length=(result.get("model") or {}).get("max_seq_length"),
            store_dtype=settings.get("store_dtype"),
            index_params=dict(settings.get("index_params") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_setups(base: RunSetup, cand: RunSetup) -> list[str]:
    """Refuse two runs whose metrics mean different things (another ranking depth, self-matches
    kept or dropped, approximate vs exhaustive search); return caveats for differences that
    only move the numbers (two dense runs encoded at another precision or max length), since
    part of the measured change then comes from the setting, not from the model.

    A dense run against BM25 is the comparison of two retrievers, the point of the exercise:
    BM25 has no precision or index, so nothing about those is checked."""
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
    if base.approximate and (base.index, base.index_params) != (cand.index, cand.index_params):
        caveats.append(
            f"approximate indexes differ (baseline {base.index} {base.index_params}, candidate "
            f"{cand.index} {cand.index_params}): they lose different documents"
        )
    if base.retriever == cand.retriever == "dense":
        for name in DENSE_CAVEATS:
            b, c = getattr(base, name), getattr(cand, name)
            if b != c:
                caveats.append(
                    f"{name} differs (baseline {b}, candidate {c}): part of the difference may "
                    "come from it, not from the model"
                )
    return caveats


def _search(setup: RunSetup) -> str:
    if setup.index is None:
        return f"{setup.retriever}, exact"
    return f"{setup.index}, {'approximate' if setup.approximate else 'exact'}"


@dataclass
class Comparison:
    baseline_label: str
    candidate_label: str
    contaminated: bool
    datasets: list[DatasetComparison]
    metrics: tuple[str, ...]
    correction: Correction | None = None
    caveats: list[str] = field(default_factory=list)
    baseline_setup: RunSetup | None = None
    candidate_setup: RunSetup | None = None

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
            "contaminated": self.contaminated,
            "datasets": [
                {
                    "dataset": d.dataset,
                    "split": d.split,
                    "queries": d.queries,
                    "contaminated": d.contaminated,
                    "metrics": [m.to_json() for m in d.metrics],
                }
                for d in self.datasets
            ],
            "summary": self.summary(),
            "correction": self.correction.to_json() if self.correction else None,
            "caveats": list(self.caveats),
            "setup": {
                "baseline": self.baseline_setup.to_json() if self.baseline_setup else None,
                "candidate": self.candidate_setup.to_json() if self.candidate_setup else None,
            },
        }


def _check_alignment(base: dict, cand: dict, base_path: str, cand_path: str) -> None:
    where = f"{cand['dataset']}:{cand['split']}"
    if base["queries"]["ids_sha256"] != cand["queries"]["ids_sha256"]:
        raise IrtuneError(
            f"cannot compare {where}: {base_path} evaluated {base['queries']['count']} queries "
            f"({base['queries']['selection']}), {cand_path} evaluated {cand['queries']['count']} "
            f"({cand['queries']['selection']}); evaluate both on the same query set"
        )
    if base["data_files_sha256"] != cand["data_files_sha256"]:
        raise IrtuneError(
            f"cannot compare {where}: the data files differ between {base_path} and {cand_path}"
        )


def holm_over_family(rows: list[DatasetComparison], metrics: tuple[str, ...]) -> Correction:
    """Holm over every (dataset, metric) test the comparison reports, as one family: Holm per
    metric across datasets left the four metrics of a single dataset uncorrected."""
    tests = [m for r in rows for m in r.metrics]
    for m, adjusted in zip(tests, holm([m.p_value for m in tests]), strict=True):
        m.p_holm = adjusted
    return Correction("holm", "datasets x metrics", len(rows), len(metrics))


def compare(
    baseline: dict[str, Any], candidate: dict[str, Any], metrics: tuple[str, ...] = HEADLINE_METRICS
) -> Comparison:
    base_setup, cand_setup = RunSetup.of(baseline), RunSetup.of(candidate)
    caveats = check_setups(base_setup, cand_setup)
    base_entries = {(e["dataset"], e["split"]): e for e in baseline["datasets"]}
    rows: list[DatasetComparison] = []
    for entry in candidate["datasets"]:
        key = (entry["dataset"], entry["split"])
        if key not in base_entries:
            continue
        base = base_entries[key]
        _check_alignment(base, entry, baseline["_path"], candidate["_path"])
        qids = sorted(entry["per_query"])
        comparisons, deltas = [], {}
        for name in metrics:
            b = np.array([base["per_query"][q][name] for q in qids])
            c = np.array([entry["per_query"][q][name] for q in qids])
            d = c - b
            low, high = bootstrap_ci(d)
            comparisons.append(
                MetricComparison(
                    name,
                    float(b.mean()),
                    float(c.mean()),
                    low,
                    high,
                    paired_randomization_test(d),
                    int((d > TIE).sum()),
                    int((np.abs(d) <= TIE).sum()),
                    int((d < -TIE).sum()),
                )
            )
            deltas[name] = d.tolist()
        rows.append(
            DatasetComparison(
                entry["dataset"],
                entry["split"],
                len(qids),
                bool(entry["contaminated"] or base["contaminated"]),
                comparisons,
                deltas,
            )
        )
    if not rows:
        raise IrtuneError(
            f"nothing to compare: {candidate['_path']} and {baseline['_path']} share no dataset/split"
        )
    correction = holm_over_family(rows, tuple(metrics))
    return Comparison(
        baseline.get("label", baseline["_path"]),
        candidate.get("label", candidate["_path"]),
        any(r.contaminated for r in rows),
        rows,
        tuple(metrics),
        correction=correction,
        caveats=caveats,
        baseline_setup=base_setup,
        candidate_setup=cand_setup,
    )

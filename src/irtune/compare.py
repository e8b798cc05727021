"""Align evaluation results and compare them per dataset and metric, with significance."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from irtune.errors import DataError, IrtuneError
from irtune.evaluate import RESULTS_FORMAT
from irtune.metrics import HEADLINE_METRICS
from irtune.significance import bootstrap_ci, holm, paired_randomization_test

ALPHA = 0.05
TIE = 1e-12


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


@dataclass
class Comparison:
    baseline_label: str
    candidate_label: str
    contaminated: bool
    datasets: list[DatasetComparison]
    metrics: tuple[str, ...]

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


def compare(
    baseline: dict[str, Any], candidate: dict[str, Any], metrics: tuple[str, ...] = HEADLINE_METRICS
) -> Comparison:
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
    for name in metrics:  # Holm across datasets, per metric
        group = [r.metric(name) for r in rows]
        for m, adjusted in zip(group, holm([m.p_value for m in group]), strict=True):
            m.p_holm = adjusted
    return Comparison(
        baseline.get("label", baseline["_path"]),
        candidate.get("label", candidate["_path"]),
        any(r.contaminated for r in rows),
        rows,
        tuple(metrics),
    )

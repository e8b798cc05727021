"""The efficiency frontier in one call: a model's embeddings at several sizes (dims x int8 /
binary storage), each setting made from the one float embedding cache and written as its own
results file, every one compared with the full-precision run (paired tests, Holm over the
whole family: settings x datasets x metrics)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from irtune.core import checks, inputs
from irtune.core.files import write_json_atomic
from irtune.errors import invalid
from irtune.results.files import FRONTIER_FILE, RESULTS_FILE
from irtune.retrieval.settings import QUANTIZATIONS, compression_needs_exact_dense, rescore_without_ubinary

if TYPE_CHECKING:
    from irtune.evaluation.job import EvaluationJob
    from irtune.results.compare import Comparison
    from irtune.results.schema import ResultsFile
    from irtune.retrieval.settings import RetrievalSettings

FULL = "full"  # the setting every other one is compared with


@dataclass(frozen=True)
class Setting:
    dims: int | None  # None: all of the model's dimensions
    quantize: str = "none"
    rescore: int = 1

    @property
    def name(self) -> str:
        """'full' (every dimension, float), else 'd128-int8', 'd384-ubinary-rescore4'; a
        setting at all dimensions is named by the model's size once the sweep knows it."""
        if self.dims is None and self.quantize == "none":
            return FULL
        kind = "float" if self.quantize == "none" else self.quantize
        size = "dall" if self.dims is None else f"d{self.dims}"
        return f"{size}-{kind}" + (f"-rescore{self.rescore}" if self.rescore > 1 else "")

    def resolved(self, full: int | None) -> Setting:
        """This setting on a model of `full` dimensions: all of them is `dims=None`."""
        return replace(self, dims=None) if self.dims == full else self

    def named(self, full: int | None) -> str:
        point = self.resolved(full)
        if point.name == FULL or point.dims is not None or full is None:
            return point.name
        return replace(point, dims=full).name


def grid(dims: int | Sequence[int], quantize: str | Sequence[str], rescore: int = 1) -> list[Setting]:
    """Full precision first, then every size (all dimensions, then each of `dims`) x every
    storage in `quantize`; `rescore` applies to the binary ones (one size or storage may
    stand for a list of one)."""
    sizes: list[int | None] = [
        None,
        *dict.fromkeys(inputs.items("dims", dims, int, _dimension, required=False)),
    ]
    kinds = list(dict.fromkeys(inputs.names("quantize", quantize)))
    for kind in kinds:
        if kind not in QUANTIZATIONS:
            raise invalid(
                "quantize",
                "must be among {allowed}, not {kind!r}",
                allowed=", ".join(QUANTIZATIONS),
                kind=kind,
            )
    if inputs.whole_number("rescore", rescore) > 1 and "ubinary" not in kinds:
        raise rescore_without_ubinary()
    settings = [Setting(None)]
    for size in sizes:
        for kind in kinds:
            setting = Setting(size, kind, rescore if kind == "ubinary" else 1)
            if setting not in settings:
                settings.append(setting)
    return settings


def _dimension(parameter: str, value: object, at: object) -> int:
    size = inputs.whole_number(parameter, value)
    checks.at_least(parameter, size, 1)
    return size


@dataclass
class Frontier:
    runs: dict[str, ResultsFile]  # setting name -> its results, full precision first
    comparisons: dict[str, Comparison]  # every other setting against FULL

    @property
    def baseline(self) -> str:
        """What every setting is compared with: all dimensions as this run encoded them."""
        return self.runs[FULL].retriever.label()

    def to_json(self) -> dict[str, object]:
        correction = next((c.correction for c in self.comparisons.values() if c.correction), None)
        return {
            "baseline": FULL,
            "baseline_retriever": self.baseline,
            "settings": {name: f"{name}/{RESULTS_FILE}" for name in self.runs},
            "correction": correction.describe() if correction else None,
            "rows": self.rows(),
            "comparisons": {name: c.to_json() for name, c in self.comparisons.items()},
        }

    def rows(self, metric: str = "ndcg@10") -> list[dict[str, object]]:
        """One row per setting and dataset: size, quality, change and search time."""
        table: list[dict[str, object]] = []
        for name, run in self.runs.items():
            for entry in run.datasets:
                row: dict[str, object] = {
                    "setting": name,
                    "dataset": entry.dataset,
                    "bytes_per_document": run.retriever.params.get("bytes_per_document"),
                    metric: entry.metrics[metric],
                    "search_ms_per_query": 1000 * entry.timings_s.get("search_s", 0.0) / entry.queries.count,
                }
                if name in self.comparisons:
                    change = next(d for d in self.comparisons[name].datasets if d.dataset == entry.dataset)
                    row |= {"delta": change.metric(metric).delta, "p_holm": change.metric(metric).p_holm}
                table.append(row)
        return table


def sweep(job: EvaluationJob, points: Sequence[Setting]) -> Frontier:
    """Evaluate every setting of `points` on the job (the model loads once, the corpus is
    encoded once into the cache); with its `out_dir`, each setting's results go to
    `out_dir/SETTING`."""
    from irtune.evaluation.job import check_before_loading, run_evaluation
    from irtune.results.compare import compare_study

    settings, out_dir = job.settings, job.out_dir
    if settings.retriever != "dense" or settings.index != "exact":
        raise compression_needs_exact_dense(
            "several {dims}/{quantize} settings apply", settings.retriever, settings.index
        )
    checks.output_folder("out_dir", out_dir)
    if job.model is None or isinstance(job.model, str):
        check_before_loading(replace(job, out_dir=None))  # (no model is refused here)
        _check_outputs(
            out_dir, settings, [point.named(None) for point in points], job.force, family_known=False
        )
    model = job.load_model()
    assert model is not None  # dense retrieval has one
    full = model.model.get_embedding_dimension()
    # e.g. dims 384 on a 384-dimensional model: that is `full`
    resolved = {point.named(full): point.resolved(full) for point in points}
    _check_outputs(out_dir, settings, list(resolved), job.force, family_known=True)
    label = job.label or model.name
    runs: dict[str, ResultsFile] = {}
    for name, point in resolved.items():
        chosen = replace(settings, dims=point.dims, quantize=point.quantize, rescore=point.rescore)
        setting_job = replace(
            job,
            model=model,
            settings=chosen,
            out_dir=out_dir / name if out_dir else None,
            label=f"{label} {name}",
        )
        runs[name] = run_evaluation(setting_job)
    others = [run for name, run in runs.items() if name != FULL]
    comparisons = compare_study(runs[FULL], others) if others else []
    names = {f"{label} {name}": name for name in runs}
    frontier = Frontier(runs, {names[c.candidate_label]: c for c in comparisons})
    if out_dir is not None:  # the corrected p-values, with the family they were corrected over
        write_json_atomic(out_dir / FRONTIER_FILE, frontier.to_json())
    return frontier


def _check_outputs(
    out_dir: Path | None,
    settings: RetrievalSettings,
    names: Sequence[str],
    force: bool,
    *,
    family_known: bool,
) -> None:
    """Each setting's folder (`out_dir/NAME`) and the sweep's frontier.json hold nothing a
    sweep of these settings would not write, unless `force`. Before the model loads, a setting
    at all dimensions has no final name yet (`dall-int8`, later `d384-int8`): the family of
    settings in frontier.json is compared only once it is known (`family_known`)."""
    from irtune.evaluation.job import check_results_folder

    if out_dir is None:
        return
    for name in names:
        check_results_folder(out_dir / name, settings, force)
    path = out_dir / FRONTIER_FILE
    if force or not path.exists():
        return
    held = _frontier_settings(path)
    if held is None:
        raise invalid(
            "out_dir",
            "{path}: holds a frontier.json irtune did not write; choose another folder, or "
            "force replacing it",
            path=out_dir,
        )
    if family_known and sorted(held) != sorted(names):
        raise invalid(
            "out_dir",
            "{path}: holds the frontier.json of another sweep (settings {held}); choose another folder, "
            "or force replacing it",
            path=out_dir,
            held=", ".join(held),
        )


def _frontier_settings(path: Path) -> list[str] | None:
    """The setting names a frontier.json lists; None if it is not a frontier irtune wrote."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    settings = data.get("settings") if isinstance(data, dict) else None
    if not isinstance(settings, dict) or data.get("baseline") != FULL:
        return None
    return list(settings)

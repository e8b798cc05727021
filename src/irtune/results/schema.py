"""Evaluation results as typed objects: what `irtune eval` writes and compare/report read.

A results file is read once, validated, and from then on used through these models, never
through raw keys. Files written before the format had a version 2 (`irtune-results-v1`)
are converted on reading, so old runs stay comparable. Every construction is checked (the
numbers, a model's inherited contamination), whether read from a file or built in memory.
This module imports only pydantic: `irtune compare` and `irtune report` must start without
loading torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from irtune.core.files import sha256_text
from irtune.errors import DataError
from irtune.results.files import RESULTS_FILE
from irtune.results.model import ModelRecord
from irtune.results.record import Record

RESULTS_FORMAT = "irtune-results-v2"
V1_FORMAT = "irtune-results-v1"
EXHAUSTIVE_INDEXES = ("exact", "flat")  # FAISS ivf and hnsw are approximate
NUMBERS_ERROR = "numbers"  # the validation error of a dataset's numbers


class RetrieverInfo(Record):
    """How a run was retrieved, as the retriever describes itself. The fields that decide
    what the numbers mean (precision, index, max length) are typed, so that compare can
    refuse unlike runs without knowing which retriever produced them."""

    name: str  # the registered name: dense, bm25, ...
    description: str  # e.g. "bm25s 0.3.16 method=lucene k1=1.5 b=0.75 ..."
    encodes: bool  # uses a model's embeddings: precision and max length move its numbers
    precision: str | None = None
    max_seq_length: int | None = None
    store_dtype: str | None = None
    index: str | None = None  # exact, flat, ivf, hnsw; None: no vector index
    index_params: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)  # retriever-specific settings
    components: list[RetrieverInfo] = Field(default_factory=list)  # a fusion's parts

    @property
    def approximate(self) -> bool:
        own = self.index is not None and self.index not in EXHAUSTIVE_INDEXES
        return own or any(c.approximate for c in self.components)

    def dense_parts(self) -> list[RetrieverInfo]:
        """This retriever and its components that encode (what precision etc. apply to)."""
        return [r for r in (self, *self.components) if r.encodes and r.index is not None]

    def label(self) -> str:
        """'dense · fp32 · exact search · max length 256': shown next to the numbers."""
        if self.components:  # a fusion: "hybrid (convex) of [dense · fp32 ... + bm25 ...]"
            inner = " + ".join(c.label() for c in self.components)
            kind = self.params.get("fusion")
            return f"{self.name} ({kind}) of [{inner}]" if kind else f"{self.name} of [{inner}]"
        if not self.encodes:
            return f"{self.name} · exact search"
        if self.index in (None, "exact"):
            search = "exact search"
        else:
            search = f"{self.index} (FAISS, {'approximate' if self.approximate else 'exact'})"
        precision = self.precision or "precision not recorded"
        if self.store_dtype == "float16":
            precision += " (float16 cache)"
        parts = [self.name, precision, search]
        if self.params.get("backend", "torch") != "torch":  # e.g. "onnx-int8 backend"
            parts.insert(2, f"{self.params['backend']} backend")
        if "compression" in self.params:  # e.g. "128 dims, int8 (128 bytes/document)"
            parts.append(str(self.params["compression"]))
        if self.max_seq_length is not None:
            parts.append(f"max length {self.max_seq_length}")
        return " · ".join(parts)


class QuerySet(Record):
    """Which queries were evaluated: compare refuses two runs over different sets."""

    selection: str  # "all" or "eval part of <split file>"
    selection_sha256: str | None = None
    count: int
    ids_sha256: str


class Contamination(Record):
    contaminated: bool = False
    model_contaminated: bool = False
    overlap: list[dict[str, Any]] = Field(default_factory=list)


class DatasetResult(Record):
    dataset: str
    split: str
    queries: QuerySet
    corpus_size: int
    # evaluated queries whose id is also a document id: only then does ignore_identical_ids
    # change a number (None: recorded before irtune counted them)
    query_ids_in_corpus: int | None = None
    # evaluated queries judged relevant to a document with their own id: ignore_identical_ids
    # drops that document, so it is never found (None: recorded before irtune counted them)
    self_judged_queries: int | None = None
    data_files_sha256: dict[str, str]
    # the public dataset whose official files these are (irtune.data.official); None: other
    # files (a slice, a copy), or recorded before irtune checked
    public_dataset: str | None = None
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    timings_s: dict[str, float] = Field(default_factory=dict)
    # what the retriever reports for this dataset: recall of an approximate index against
    # exact search, the fusion weight it chose on dev queries, ...
    retrieval: dict[str, Any] = Field(default_factory=dict)
    contaminated: bool = False
    contamination: Contamination = Field(default_factory=Contamination)
    run_file: str | None = None

    @model_validator(mode="after")
    def _numbers_are_what_they_summarise(self) -> Self:
        if problem := _numbers_problem(self):
            raise PydanticCustomError(
                NUMBERS_ERROR, "{problem}", {"problem": problem, "dataset": self.dataset}
            )
        return self


class EvaluationSettings(Record):
    split: str = "test"
    top_k: int | None = None
    metrics: list[str] = Field(default_factory=list)
    ignore_identical_ids: bool | None = None
    batch_size: int | None = None
    cache_dir: str | None = None
    devices: list[str] = Field(default_factory=list)


class ResultsFile(Record):
    format: str = RESULTS_FORMAT
    label: str
    model: ModelRecord | None = None
    retriever: RetrieverInfo
    settings: EvaluationSettings
    environment: dict[str, Any] = Field(default_factory=dict)
    contaminated: bool = False
    datasets: list[DatasetResult]
    # where the file was read from (set by `read_results`; never written)
    path: str | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _contamination_marks_agree(cls, data: Any) -> Any:
        """The contamination marks of a file, made to agree so that every view (compare, the
        Markdown and the HTML report) reads the same answer from them. A contaminated model
        (itself, or an ancestor in its training summary: results written before irtune
        followed the chain hold that mark only there) taints every number it produced; a run
        marked contaminated with no dataset marked cannot say which numbers are clean, so all
        are marked; a marked dataset marks its run."""
        if not isinstance(data, dict) or not isinstance(datasets := data.get("datasets"), list):
            return data
        model = data.get("model")
        if isinstance(model, dict) and _model_contaminated(model):
            data = {**data, "model": {**model, "contaminated": True}}
            datasets = [_marked(e, by_model=True) for e in datasets]
        elif data.get("contaminated") and not any(map(_is_marked, datasets)):
            datasets = [_marked(e, by_model=False) for e in datasets]
        else:
            datasets = [_marked(e, by_model=False) if _is_marked(e) else e for e in datasets]
        contaminated = bool(data.get("contaminated")) or any(map(_is_marked, datasets))
        return {**data, "contaminated": contaminated, "datasets": datasets}

    @property
    def name(self) -> str:
        """How messages refer to this run: its file, else its label."""
        return self.path or self.label

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _model_contaminated(model: dict[str, Any]) -> bool:
    """Whether a model's raw description is marked contaminated, by itself or by its training
    lineage (a malformed description is not: validating the file then names what is wrong)."""
    try:
        record = ModelRecord.model_validate(model)
    except ValidationError:
        return False
    return record.contaminated or bool(record.training and record.training.lineage_contaminated)


def _is_marked(entry: Any) -> bool:
    """Whether a dataset's raw result is marked contaminated, by itself or in its contamination."""
    if not isinstance(entry, dict):
        return False
    contamination = entry.get("contamination")
    return bool(
        entry.get("contaminated") or (isinstance(contamination, dict) and contamination.get("contaminated"))
    )


def _marked(entry: Any, *, by_model: bool) -> Any:
    """A dataset's result, as a raw dict, marked contaminated (`by_model`: by its model)."""
    if not isinstance(entry, dict):
        return entry
    contamination = entry.get("contamination")
    contamination = contamination if isinstance(contamination, dict) else {}
    marks = {"contaminated": True, "model_contaminated": True} if by_model else {"contaminated": True}
    return {**entry, "contaminated": True, "contamination": {**contamination, **marks}}


def results_path(path: Path) -> Path:
    """A results file given as itself or as its folder."""
    path = Path(path)
    return path / RESULTS_FILE if path.is_dir() else path


def read_results(path: Path) -> ResultsFile:
    """A results file (or the one in a folder, `RESULTS_FILE`), in either format version."""
    path = results_path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "results file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON ({exc.msg})", exc.lineno) from None
    except RecursionError:
        raise DataError(path, "malformed JSON (nested too deeply)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read results file ({exc})") from None
    kind = data.get("format") if isinstance(data, dict) else None
    if kind not in (RESULTS_FORMAT, V1_FORMAT):
        raise DataError(path, f'not an irtune results file (format must be "{RESULTS_FORMAT}")')
    try:
        results = ResultsFile.model_validate(upgrade_v1(data) if kind == V1_FORMAT else data)
    except (ValidationError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise DataError(path, _problem_in_file(exc)) from None
    return results.model_copy(update={"path": str(path)})


def _numbers_problem(entry: DatasetResult) -> str | None:
    """What is wrong with a dataset's numbers, if anything. Compare pairs the per-query scores:
    they must be the queries the file says it evaluated. Every view prints the averages: they
    must be the mean of the per-query values (a NaN or a 7.5 became a p-value or a mean of 1.28)."""
    queries = len(entry.per_query)
    if queries != entry.queries.count or sha256_text(*sorted(entry.per_query)) != entry.queries.ids_sha256:
        return (
            f"per_query holds {queries} queries, not the {entry.queries.count} evaluated "
            "queries the file records (edited or damaged)"
        )
    for qid, scores in entry.per_query.items():
        for name, value in scores.items():
            if not 0 <= value <= 1:  # False for NaN too
                return f"per_query.{qid}.{name}: {value} is not a number in [0, 1]"
    return next(filter(None, (_average_problem(entry, name) for name in entry.metrics)), None)


def _average_problem(entry: DatasetResult, name: str) -> str | None:
    average = entry.metrics[name]
    if not 0 <= average <= 1:
        return f"metrics.{name}: {average} is not a number in [0, 1]"
    values = [scores[name] for scores in entry.per_query.values() if name in scores]
    if not entry.per_query:
        return None
    if (held := len(values)) < len(entry.per_query):
        return f"per_query: {name} (averaged in metrics) is held by {held} of {len(entry.per_query)} queries"
    mean = math.fsum(values) / held
    if not math.isclose(average, mean, rel_tol=1e-9, abs_tol=1e-12):  # the writer's fsum/n: exact
        return f"metrics.{name}: {average} is not the mean of its {len(values)} per-query values ({mean})"
    return None


def _problem_in_file(exc: Exception) -> str:
    """One line: a dataset's numbers as `datasets.<i> (<name>): <field>: <problem>`, anything
    else as `invalid results file (<field>: <problem>)`."""
    if not isinstance(exc, ValidationError):
        return f"invalid results file (missing or malformed {exc})"
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    if error["type"] == NUMBERS_ERROR:
        return f"{where} ({error['ctx']['dataset']}): {error['msg']}"
    detail = f"{where}: {error['msg']}" if where else error["msg"]
    return f"invalid results file ({detail})"


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A v1 document in the v2 shape. v1 kept the retriever's settings among the evaluation
    settings, a BM25 description per dataset and the index report under `index`."""
    settings = dict(data["settings"])
    model = data.get("model")
    entries = data["datasets"]
    if settings.get("retriever", "dense") == "bm25":
        description = str(entries[0].get("retriever", "bm25")) if entries else "bm25"
        retriever: dict[str, Any] = {"name": "bm25", "description": description, "encodes": False}
    else:
        retriever = {
            "name": "dense",
            "description": "dense (exact inner product over cached embeddings)",
            "encodes": True,
            "precision": settings.get("precision"),
            "max_seq_length": (model or {}).get("max_seq_length"),
            "store_dtype": settings.get("store_dtype"),
            "index": settings.get("index", "exact"),
            "index_params": settings.get("index_params") or {},
        }
    datasets = []
    for entry in entries:
        upgraded = {k: v for k, v in entry.items() if k not in ("retriever", "index")}
        index = entry.get("index") or {}
        if index.get("type", "exact") != "exact":
            upgraded["retrieval"] = {"index": index}
        datasets.append(upgraded)
    kept = ("split", "top_k", "metrics", "ignore_identical_ids", "batch_size", "cache_dir", "devices")
    return {
        **data,
        "format": RESULTS_FORMAT,
        "upgraded_from": V1_FORMAT,
        "retriever": retriever,
        "settings": {k: settings[k] for k in kept if k in settings},
        "datasets": datasets,
    }

"""One evaluation, asked for once (`EvaluationJob`: the model, the datasets, the retrieval
settings and where the results go) and passed whole to what checks, runs and sweeps it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irtune.core import checks
from irtune.core.files import sha256_file
from irtune.core.locks import folder_lock
from irtune.data.beir import BeirDataset
from irtune.data.leakage import text_fingerprint
from irtune.data.registry import resolve_dataset
from irtune.data.splits import SPLIT_FILE_SUFFIX, SplitPlan, evaluated_cluster_mates, make_plan, plans_for
from irtune.errors import IrtuneError, ParameterError
from irtune.evaluation.runner import (
    DatasetEvaluation,
    QuerySelection,
    assemble_results,
    evaluate_dataset,
    refuse_repeated_datasets,
    selected_queries,
    write_results,
)
from irtune.models.lineage import SPLITS_DIR
from irtune.results.files import RESULTS_FILE
from irtune.results.schema import EvaluationSettings, ResultsFile, read_results
from irtune.retrieval.base import LabelledQueries, Retriever
from irtune.retrieval.registry import check_retriever
from irtune.retrieval.settings import ModelOptions, RetrievalSettings, check_model_given, make_retriever
from irtune.training.pairs import training_queries

if TYPE_CHECKING:
    from irtune.models.loading import LoadedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationJob:
    """An evaluation as asked: `model` (a name, hub id or folder, loaded with `model_options`;
    a loaded model; or None for a model-free retriever) on `datasets` (names under `data_dir`,
    or folders) with `settings`. With `out_dir`, results.json and run files are written there
    (results of another setup are replaced only with `force`); `split_files` choose each
    dataset's evaluated queries (else a fine-tuned model's own plans, else the whole split)."""

    model: str | LoadedModel | None
    datasets: Sequence[str]
    settings: RetrievalSettings = field(default_factory=RetrievalSettings)
    model_options: ModelOptions = field(default_factory=ModelOptions)
    out_dir: Path | None = None
    split_files: Sequence[Path] = ()
    data_dir: Path | None = None
    strict: bool = False
    label: str | None = None
    force: bool = False

    def __post_init__(self) -> None:  # lists become tuples: a request is not changed once made
        object.__setattr__(self, "datasets", tuple(self.datasets))
        object.__setattr__(self, "split_files", tuple(self.split_files))

    def load_model(self) -> LoadedModel | None:
        """The model, loaded now when given by name and the retriever needs one."""
        if not isinstance(self.model, str):
            return self.model
        if not check_retriever(self.settings.retriever).needs_model:
            return None
        return self.model_options.for_backend(self.settings.backend).load(self.model)


@dataclass(frozen=True)
class HeldOut:
    """A dataset's split plan from a file: its `eval` queries are evaluated, its `dev`
    queries are what a self-tuning retriever may fit on."""

    plan: SplitPlan
    selection: QuerySelection
    origin: str


def held_out_from_files(
    split_files: Sequence[Path], datasets: Sequence[BeirDataset], carried_by: str | None = None
) -> dict[str, HeldOut]:
    """dataset name -> its plan and the selection of its `eval` queries, from the split files
    that apply to `datasets` (see `plans_for`; `carried_by`: the model whose plans they are)."""
    return {
        name: HeldOut(
            plan,
            QuerySelection(f"eval part of {path.name}", plan.eval.query_ids, sha256_file(path)),
            path.name,
        )
        for name, (plan, path) in plans_for(split_files, datasets, "evaluated", carried_by).items()
    }


def dev_queries(
    dataset: BeirDataset, plan: SplitPlan, origin: str, evaluated: Sequence[str]
) -> LabelledQueries:
    """The plan's dev queries minus any evaluated query (by id or normalised text) and any
    query in an evaluated query's duplicate cluster (where queries are documents)."""
    ids = set(evaluated)
    texts = {text_fingerprint(dataset.queries[q]) for q in evaluated}
    candidates = training_queries(dataset, plan.dev)
    mates = evaluated_cluster_mates(dataset, ids, candidates)
    qids = [
        q
        for q in candidates
        if q not in ids and q not in mates and text_fingerprint(dataset.queries[q]) not in texts
    ]
    if not qids:
        raise ParameterError(
            "{name}: no dev query left to tune the retriever on ({origin}); give {split_files} the file of "
            "a split of it with dev queries apart from the evaluated ones (irtune's `split`)",
            name=dataset.name,
            origin=origin,
        )
    qrels = dataset.qrels(plan.dev.split)
    return LabelledQueries(
        {q: dataset.queries[q] for q in qids},
        {q: qrels[q] for q in qids},
        f"dev part ({plan.dev.split}) of {origin}",
    )


def _plans_in(model_folder: Path | None) -> list[Path]:
    """The split plans saved in a fine-tuned model's folder (for a hub id: its cache snapshot)."""
    folder = model_folder / SPLITS_DIR if model_folder is not None else None
    return sorted(folder.glob(f"*{SPLIT_FILE_SUFFIX}")) if folder is not None and folder.is_dir() else []


def _model_split_files(model: LoadedModel | None) -> list[Path]:
    """Split plans saved with a fine-tuned model, so that by default it is evaluated on the
    queries it did not train on (explicit split files take precedence)."""
    if model is None or model.training is None:
        return []
    return _plans_in(model.folder)


def _planned_before_loading(model_spec: str | LoadedModel | None) -> set[str]:
    """Datasets whose evaluated split a model's own plans decide, as far as is known before
    loading it (a local folder; a hub id's plans are known only once downloaded)."""
    if model_spec is None:
        return set()
    folder = Path(model_spec).expanduser() if isinstance(model_spec, str) else model_spec.folder
    return {p.name.removesuffix(SPLIT_FILE_SUFFIX) for p in _plans_in(folder)}


def run_evaluation(job: EvaluationJob) -> ResultsFile:
    """Evaluate on each dataset (its `eval` queries where a split file names them).

    Everything that can be checked without a model is checked first (datasets, their files
    and splits, split files, the output folder), so a typo fails before the model loads.
    Results already in `out_dir` are replaced only by an evaluation of the same setup (a
    re-run), or with `force`."""
    found, explicit = check_before_loading(job)
    with contextlib.ExitStack() as stack:
        if job.out_dir is not None:
            stack.enter_context(folder_lock(job.out_dir, what="results folder"))
        settings = job.settings
        model = job.load_model()
        retriever = make_retriever(settings.retriever, settings, model)
        evaluations = _evaluate_all(model, retriever, found, settings, explicit)
        default_label = (
            model.name if model is not None and settings.retriever == "dense" else settings.retriever
        )
        results = assemble_results(evaluations, settings, retriever, model, job.label or default_label)
        if job.out_dir is not None:
            _refuse_other_setup(job.out_dir, job.force, _setup(results))
            write_results(job.out_dir, results, [e.run for e in evaluations])
        return results


def check_before_loading(job: EvaluationJob) -> tuple[list[BeirDataset], dict[str, HeldOut]]:
    """Everything about an evaluation that can be checked without a model: the output
    folder (and the setup of the results it holds), the backend, each dataset with its files
    and split, the split files."""
    settings = job.settings
    check_model_given(settings.retriever, job.model)
    check_results_folder(job.out_dir, settings, job.force)
    if settings.backend != "torch":
        from irtune.retrieval.backends import require

        device = job.model_options.device
        if device not in (None, "cpu") and not str(device).startswith("cpu:"):
            raise ParameterError(
                "{backend} {name} runs on the CPU, not {device_name}; drop {device}",
                name=settings.backend,
                device_name=device,
            )
        require(settings.backend)
    found = [resolve_dataset(name, job.data_dir, job.strict) for name in job.datasets]
    refuse_repeated_datasets(found)
    explicit = held_out_from_files(job.split_files, found)
    planned = _planned_before_loading(job.model)  # their split is the plan's (checked later)
    for dataset in found:
        held = explicit.get(dataset.name)
        if held or dataset.name not in planned:
            dataset.check_files(held.plan.eval.split if held else settings.split)
    return found, explicit


def check_results_folder(out_dir: Path | None, settings: RetrievalSettings, force: bool) -> None:
    """`out_dir` can be written in and holds no results of an evaluation with other settings
    or another retriever (unless `force`): what can be told before a model loads."""
    checks.output_folder("out_dir", out_dir)
    if out_dir is not None:
        known = {"retriever": settings.retriever, "settings": _settings_setup(settings.describe())}
        _refuse_other_setup(out_dir, force, known)


def _settings_setup(settings: EvaluationSettings) -> dict[str, Any]:
    """The evaluation settings that make the numbers (not where or how fast they were made)."""
    return settings.model_dump(mode="json", exclude={"cache_dir", "devices", "batch_size"})


def _setup(results: ResultsFile) -> dict[str, Any]:
    """What a results file's numbers are of, by content: the model's weights, prompts and max
    length, the retriever with its settings, the evaluation settings, and each dataset's
    files and evaluated queries. Its label, date, timings and machine are not part of it."""
    model = results.model
    return {
        "model": None if model is None else [model.weights_sha256, model.prompts, model.max_seq_length],
        "retriever": results.retriever.name,
        "retriever settings": results.retriever.model_dump(mode="json"),
        "settings": _settings_setup(results.settings),
        "datasets": [[d.split, d.data_files_sha256, d.queries.ids_sha256] for d in results.datasets],
    }


def _refuse_other_setup(out_dir: Path, force: bool, setup: dict[str, Any]) -> None:
    """Refuse to replace the results in `out_dir` when they differ from `setup` (some or all
    of `_setup`'s parts) in any part, or cannot be read; `force` replaces them."""
    if force or not (out_dir / RESULTS_FILE).exists():
        return
    try:
        held = _setup(read_results(out_dir))
    except IrtuneError as exc:
        raise ParameterError(
            "{out_dir} {path}: holds a results.json irtune cannot read ({problem}); choose another "
            "folder, or force replacing it",
            path=out_dir,
            problem=exc,
        ) from None
    differ = [part for part, value in setup.items() if held[part] != value]
    if "retriever" in differ:  # then its settings are another retriever's: not news
        differ = [part for part in differ if part != "retriever settings"]
    if differ:
        raise ParameterError(
            "{out_dir} {path}: holds the results of another evaluation (other {parts}); choose "
            "another folder, or force replacing them",
            path=out_dir,
            parts=", ".join(differ),
        )


def _carried_held_out(
    model: LoadedModel | None, found: Sequence[BeirDataset], explicit: dict[str, HeldOut]
) -> dict[str, HeldOut]:
    """The held-out parts of the split plans a fine-tuned model carries, for the datasets that
    no explicit split file covers (those win, and a carried plan of other files is skipped)."""
    if model is None:
        return {}
    uncovered = [d for d in found if d.name not in explicit]
    return held_out_from_files(_model_split_files(model), uncovered, carried_by=model.name)


def _evaluate_all(
    model: LoadedModel | None,
    retriever: Retriever,
    found: Sequence[BeirDataset],
    settings: RetrievalSettings,
    explicit: dict[str, HeldOut],
) -> list[DatasetEvaluation]:
    carried = _carried_held_out(model, found, explicit)
    held = {**carried, **explicit}
    evaluations = []
    for dataset in found:
        chosen = held.get(dataset.name)
        if model is not None and dataset.name in carried:
            log.warning(
                "%s: evaluating %s on the held-out queries of the model's split plan %s "
                "(evaluate the baseline with the same split files)",
                model.name,
                dataset.name,
                carried[dataset.name].origin,
            )
        if chosen and dataset.is_synthetic(chosen.plan.eval.split):
            raise ParameterError(
                "{name}: {origin} reports no real queries (trained on generated queries of a dataset "
                "without a test split): evaluate on another dataset, or give {split_files}",
                name=dataset.name,
                origin=chosen.origin,
            )
        split = chosen.plan.eval.split if chosen else settings.split
        selection = chosen.selection if chosen else QuerySelection()
        dataset_settings = replace(settings, split=split)
        dev = None
        if retriever.uses_dev:
            plan, origin = (
                (chosen.plan, chosen.origin) if chosen else (make_plan(dataset), "the default split plan")
            )
            evaluated = selected_queries(dataset, split, selection)
            dev = dev_queries(dataset, plan, origin, evaluated)
        evaluations.append(
            evaluate_dataset(dataset, dataset_settings, model, selection, retriever=retriever, dev=dev)
        )
    return evaluations

"""Evaluate a retriever on BEIR datasets; write results.json and TREC run files."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from irtune.core.files import atomic_path, sha256_text, write_json_atomic
from irtune.core.provenance import environment
from irtune.data.beir import BeirDataset, Qrels, content_sha256
from irtune.data.import_manifest import judged_relevant_to_own_id
from irtune.data.leakage import find_overlap
from irtune.data.official import official_name
from irtune.errors import InvalidValueError, IrtuneError, invalid
from irtune.results.files import RESULTS_FILE
from irtune.results.metrics import evaluate_run, mean_metrics, rank_documents
from irtune.results.schema import (
    Contamination,
    DatasetResult,
    ModelRecord,
    QuerySet,
    ResultsFile,
)
from irtune.retrieval.base import Corpus, LabelledQueries, Retriever, Run
from irtune.retrieval.settings import RetrievalSettings, make_retriever

if TYPE_CHECKING:
    from irtune.models.loading import LoadedModel

log = logging.getLogger(__name__)


@dataclass
class QuerySelection:
    """Which of a split's queries are evaluated (all, or a held-out part from a split file)."""

    name: str = "all"
    query_ids: frozenset[str] | None = None
    source_sha256: str | None = None


@dataclass
class DatasetEvaluation:
    result: DatasetResult
    run: Run = field(repr=False)


def selected_queries(dataset: BeirDataset, split: str, selection: QuerySelection) -> list[str]:
    qids = dataset.relevant_queries(split)
    if selection.query_ids is not None:
        unknown = selection.query_ids - set(dataset.qrels(split))
        if unknown:
            raise IrtuneError(
                f'{dataset.name}: {len(unknown)} selected query ids are not in split "{split}" '
                f"(e.g. {sorted(unknown)[:3]})"
            )
        qids = [q for q in qids if q in selection.query_ids]
    if not qids:
        raise IrtuneError(f'{dataset.name}: no query with a relevant document in split "{split}"')
    return qids


def refuse_repeated_datasets(datasets: Sequence[BeirDataset]) -> None:
    """Results are kept by dataset name: a dataset given twice would be listed twice (and count
    twice in a comparison's correction family), by its name or by its content under another
    name (a copied folder: the same corpus, queries and qrels files)."""
    if len(datasets) < 2:
        return  # nothing to repeat, and no corpus to hash
    roots: dict[str, Path] = {}
    names: dict[frozenset[tuple[str, str]], str] = {}  # content -> the name it was first given by
    for dataset in datasets:
        if (seen := roots.get(dataset.name)) is not None:
            where = "" if seen.resolve() == dataset.root.resolve() else f" (by {seen} and {dataset.root})"
            raise invalid("datasets", "name {name!r} is given twice{where}", name=dataset.name, where=where)
        roots[dataset.name] = dataset.root
        files = [dataset.corpus_path, dataset.queries_path, *map(dataset.qrels_path, dataset.splits())]
        content = frozenset(dataset.identity(files).items())
        if (first := names.setdefault(content, dataset.name)) != dataset.name:
            raise invalid(
                "datasets",
                "{name!r} holds the same files as {first!r} (one dataset by content): give it once",
                name=dataset.name,
                first=first,
            )


def without_self_matches(run: Run, top_k: int, ignore_identical_ids: bool) -> Run:
    """Each query's top_k, after dropping a document whose id is the query's own (BEIR's
    default: on Quora a question retrieves itself)."""
    kept: Run = {}
    for qid, hits in run.items():
        if ignore_identical_ids and qid in hits:
            hits = {d: s for d, s in hits.items() if d != qid}
        kept[qid] = hits if len(hits) <= top_k else dict(islice(hits.items(), top_k))
    return kept


def self_judged_queries(dataset: BeirDataset, qrels: Qrels, qids: Sequence[str], dropped: bool) -> int:
    """How many evaluated queries are judged relevant to the document with their own id; when
    identical ids are dropped that document is never found (warned: it scores 0 silently)."""
    count = len(judged_relevant_to_own_id({q: qrels[q] for q in qids}))
    if count and dropped:
        log.warning(
            "%s: %d of %d evaluated queries are judged relevant to the document with their own id, which "
            "identical-id dropping removes (they cannot score it); keep identical ids if they are meant",
            dataset.name,
            count,
            len(qids),
        )
    return count


def evaluate_dataset(
    dataset: BeirDataset,
    settings: RetrievalSettings,
    model: LoadedModel | None = None,
    selection: QuerySelection | None = None,
    *,
    retriever: Retriever | None = None,
    dev: LabelledQueries | None = None,
) -> DatasetEvaluation:
    """Search the dataset's selected queries with `retriever` (default: the one the
    settings name) and score the run; `dev` are the judged queries a retriever that tunes
    itself may fit on (never the evaluated ones: refused if they overlap)."""
    if dataset.is_synthetic(settings.split):
        raise InvalidValueError(
            "{name}: {split} {value!r} holds generated queries; they may train and select a model "
            "but never measure it: evaluate on real queries (set {split} to test)",
            name=dataset.name,
            value=settings.split,
        )
    selection = selection or QuerySelection()
    retriever = retriever or make_retriever(settings.retriever, settings, model)
    started = time.perf_counter()
    qrels = dataset.qrels(settings.split)
    qids = selected_queries(dataset, settings.split, selection)
    load_s = time.perf_counter() - started
    if dev is not None and (shared := set(dev.queries) & set(qids)):
        raise IrtuneError(
            f"{dataset.name}: {len(shared)} of the dev queries a retriever tunes on are evaluated "
            f"(e.g. {sorted(shared)[0]!r}); tune on other queries"
        )
    extra = 1 if settings.ignore_identical_ids else 0  # room for a dropped self-match
    index = retriever.index(Corpus.of(dataset), dev)
    retrieval = index.search({q: dataset.queries[q] for q in qids}, settings.top_k + extra)
    run = without_self_matches(retrieval.run, settings.top_k, settings.ignore_identical_ids)
    started = time.perf_counter()
    per_query = evaluate_run(
        {q: qrels[q] for q in qids}, run, settings.metrics, settings.ignore_identical_ids
    )
    timings = {"load_s": load_s, **retrieval.timings_s, "metrics_s": time.perf_counter() - started}
    contamination = _contamination(model, dataset, qids)
    result = DatasetResult(
        dataset=dataset.name,
        split=settings.split,
        queries=QuerySet(
            selection=selection.name,
            selection_sha256=selection.source_sha256,
            count=len(qids),
            ids_sha256=sha256_text(*sorted(qids)),
        ),
        corpus_size=len(dataset.doc_ids),
        query_ids_in_corpus=len(set(qids) & set(dataset.doc_ids)),
        self_judged_queries=self_judged_queries(dataset, qrels, qids, settings.ignore_identical_ids),
        data_files_sha256=dataset.file_hashes(settings.split),
        public_dataset=official_name(dataset, settings.split),
        metrics=mean_metrics(per_query),
        per_query=per_query,
        timings_s={k: round(v, 3) for k, v in timings.items()},
        retrieval=retrieval.details,
        contaminated=contamination.contaminated,
        contamination=contamination,
    )
    return DatasetEvaluation(result=result, run=run)


def _contamination(model: LoadedModel | None, dataset: BeirDataset, qids: Sequence[str]) -> Contamination:
    """Evaluated queries that the model or any model it was fine-tuned from trained on."""
    if model is None or not model.training:
        return Contamination()
    evaluated = {q: dataset.queries[q] for q in qids}
    queries_sha256 = content_sha256(dataset.queries_path)
    overlaps = []
    for generation, training in model.training.lineage_train_queries():
        overlap = find_overlap(training, dataset.name, evaluated, queries_sha256)
        if overlap.count:
            by = {"trained_by": "base model" + "'s base" * (generation - 1)} if generation else {}
            overlaps.append({"train_set": f"{training.dataset}:{training.split}", **by, **overlap.to_json()})
    return Contamination(
        contaminated=model.contaminated or bool(overlaps),
        model_contaminated=model.contaminated,
        overlap=overlaps,
    )


def write_run_file(path: Path, run: dict[str, dict[str, float]], tag: str) -> None:
    """TREC run file. Scores are written round-trippable (repr: shortest exact form), not
    rounded: rounding ties near-equal scores, and trec_eval re-ranks ties by document id,
    so a re-read run would be ordered (and scored) differently from the evaluated one. The tag
    is one token (whitespace becomes `_`): TREC tools split a line on whitespace."""
    tag = "_".join(tag.split()) or "irtune"
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for qid, scores in run.items():
            out.write(
                "".join(
                    f"{qid} Q0 {doc} {rank} {float(scores[doc])!r} {tag}\n"
                    for rank, doc in enumerate(rank_documents(scores), start=1)
                )
            )


def assemble_results(
    evaluations: Sequence[DatasetEvaluation],
    settings: RetrievalSettings,
    retriever: Retriever,
    model: LoadedModel | None,
    label: str,
) -> ResultsFile:
    """The results record of an evaluation (written by `write_results`, if at all)."""
    return ResultsFile(
        label=label,
        model=ModelRecord.model_validate(model.describe()) if model else None,
        retriever=retriever.describe(),
        settings=settings.describe(),
        environment=environment(),
        contaminated=any(e.result.contaminated for e in evaluations),
        datasets=[e.result for e in evaluations],
    )


def write_results(out_dir: Path, results: ResultsFile, runs: Sequence[Run]) -> Path:
    """results.json plus one TREC run file per dataset (`runs/<dataset>.<split>.trec`). The run
    files an earlier results.json in the same folder listed are removed once it is replaced (a
    reused `out_dir` holds only the files of the results it holds); other files are left alone."""
    out_dir.mkdir(parents=True, exist_ok=True)
    listed_before = _listed_run_files(out_dir)
    entries = []
    for entry, run in zip(results.datasets, runs, strict=True):
        run_path = out_dir / "runs" / f"{entry.dataset}.{entry.split}.trec"
        write_run_file(run_path, run, tag=results.label)
        entries.append(entry.model_copy(update={"run_file": str(run_path.relative_to(out_dir))}))
    path = out_dir / RESULTS_FILE
    write_json_atomic(path, results.model_copy(update={"datasets": entries}).to_json())
    written = [out_dir / entry.run_file for entry in entries if entry.run_file]
    for old in listed_before:
        if old.is_file() and not any(old.samefile(new) for new in written):  # samefile: case-blind disks
            old.unlink()
    return path


def _listed_run_files(out_dir: Path) -> list[Path]:
    """The run files the results.json in `out_dir` lists (inside `out_dir` only; none if it is
    missing or unreadable: then nothing is removed)."""
    try:
        data = json.loads((out_dir / RESULTS_FILE).read_text(encoding="utf-8"))
        names = [entry["run_file"] for entry in data["datasets"] if isinstance(entry.get("run_file"), str)]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    root = out_dir.resolve()
    return [out_dir / name for name in names if (out_dir / name).resolve().is_relative_to(root)]

"""`irtune export --format mteb`: a results file as MTEB task-result JSON, laid out as MTEB's
results repository lays it out (MODEL/REVISION/TASK.json), so irtune numbers load beside
leaderboard numbers with mteb's own tools.

Only numbers that mean what MTEB's mean are exported: a dense run on the official files of a
BEIR task (by content: a slice or an edited copy named like the task is not the task), on all
of its test queries, never contaminated (MTEB's format has nowhere to carry the mark). A dataset
that is not a public one is refused rather than exported under its own name: mteb loads a
result only for a task it knows, so such a file would not load beside leaderboard numbers.
`dataset_revision` names irtune's data files, not MTEB's dataset revision: irtune read BEIR's
files, and mteb refuses to merge such a result with results from its own revision rather than
silently equating them."""

from __future__ import annotations

import json
import os
import re
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from irtune.core import checks
from irtune.core.files import tidy_on_failure, write_json_atomic
from irtune.data.official import OFFICIAL_DATASETS
from irtune.errors import InvalidValueError, IrtuneError
from irtune.results.schema import DatasetResult, ResultsFile

# irtune dataset name -> MTEB task name (BEIR's English retrieval tasks; all eng-Latn)
MTEB_TASKS = {
    "scifact": "SciFact",
    "nfcorpus": "NFCorpus",
    "scidocs": "SCIDOCS",
    "quora": "QuoraRetrieval",
    "arguana": "ArguAna",
    "fiqa": "FiQA2018",
    "trec-covid": "TRECCOVID",
    "nq": "NQ",
    "hotpotqa": "HotpotQA",
    "webis-touche2020": "Touche2020",
    "dbpedia-entity": "DBPedia",
    "fever": "FEVER",
    "climate-fever": "ClimateFEVER",
    "msmarco": "MSMARCO",
}
FAMILIES = {"ndcg": "ndcg", "map": "map", "recall": "recall", "p": "precision", "mrr": "mrr"}
NO_REVISION = "no_revision_available"
# the start of the dataset_revision of every task result irtune exports
REVISION_PREFIX = "irtune-beir-files-"  # what MTEB records for a model without a hub revision
# the tasks on which MTEB drops a document whose id is the query's (mteb 2.x task metadata)
MTEB_IGNORES_IDENTICAL_IDS = {"QuoraRetrieval", "ArguAna", "FiQA2018", "FEVER", "MSMARCO"}


def mteb_metric(name: str) -> str:
    """ndcg@10 -> ndcg_at_10, p@1 -> precision_at_1 (MTEB's names)."""
    family, _, k = name.partition("@")
    return f"{FAMILIES.get(family, family)}_at_{k}"


def _public_task(entry: DatasetResult, where: str) -> str:
    """The MTEB task of an entry read from a public dataset's official files, on all its test queries."""
    official = OFFICIAL_DATASETS.get(entry.public_dataset or "")
    if official is None:
        named = f" of {entry.dataset}" if entry.dataset in MTEB_TASKS else ""
        raise IrtuneError(
            f"{where}: {entry.dataset}'s files are not the official files{named} (irtune verifies those of "
            f"{', '.join(sorted(OFFICIAL_DATASETS))}); a slice or an edited copy is not an MTEB task "
            "(results from before irtune checked this: evaluate again)"
        )
    task = MTEB_TASKS[official.name]
    if entry.split != "test":
        raise IrtuneError(f"{where}: MTEB reports {task} on its test split, not {entry.split}")
    full_count, full_ids = official.relevant_queries["test"]
    if entry.queries.selection != "all" and entry.queries.ids_sha256 != full_ids:
        raise IrtuneError(
            f"{where}: {entry.dataset} was scored on {entry.queries.count} of its {full_count} test queries "
            f"({entry.queries.selection}); MTEB scores all of them, so the numbers would not be comparable"
        )
    return task


def _checked(result: ResultsFile, entry: DatasetResult, where: str) -> str:
    task = _public_task(entry, where)
    if entry.contaminated or result.contaminated:  # a contaminated ancestor marks both on read
        raise IrtuneError(f"{where}: {entry.dataset} is contaminated; MTEB's format cannot carry the mark")
    if "ndcg@10" not in entry.metrics:
        raise IrtuneError(f"{where}: {entry.dataset} has no NDCG@10, MTEB's main score for {task}")
    mteb_drops = task in MTEB_IGNORES_IDENTICAL_IDS
    if result.settings.ignore_identical_ids != mteb_drops and entry.query_ids_in_corpus != 0:
        remedy = "dropping" if mteb_drops else "keeping"
        raise IrtuneError(
            f"{where}: MTEB {'drops' if mteb_drops else 'keeps'} documents whose id is the query's on "
            f"{task} and this run did not (or did not record whether any exist); evaluate again {remedy} them"
        )
    return task


def _check_search(result: ResultsFile, where: str) -> None:
    """MTEB's numbers are exact search over the model's full vectors at full precision."""
    if result.model is None or result.retriever.name != "dense":
        raise IrtuneError(f"{where}: MTEB scores embedding models; this is a {result.retriever.name} run")
    part = result.retriever.dense_parts()[0]
    if result.retriever.approximate or "compression" in part.params:
        raise IrtuneError(f"{where}: approximate search or compressed vectors are not comparable to MTEB's")
    if (
        part.precision != "fp32"
        or part.params.get("backend", "torch") != "torch"
        or part.store_dtype == "float16"
    ):
        raise IrtuneError(
            f"{where}: encoded at {part.precision} ({part.params.get('backend', 'torch')} backend, "
            f"{part.store_dtype} cache); evaluate again in fp32 on the torch backend for "
            "MTEB-comparable numbers"
        )


def task_result(result: ResultsFile, entry: DatasetResult, where: str) -> tuple[str, dict[str, Any]]:
    """(MTEB task name, its TaskResult as JSON) for one dataset of a results file."""
    task = _checked(result, entry, where)
    scores: dict[str, Any] = {mteb_metric(m): round(float(v), 6) for m, v in entry.metrics.items()}
    scores |= {"main_score": scores["ndcg_at_10"], "hf_subset": "default", "languages": ["eng-Latn"]}
    corpus = next((v for k, v in entry.data_files_sha256.items() if k.startswith("corpus")), "")
    return task, {
        "dataset_revision": f"{REVISION_PREFIX}{corpus[:12]}",
        "task_name": task,
        "mteb_version": "2.0.0",  # the schema version written (the writer was irtune)
        "scores": {entry.split: [scores]},
        "evaluation_time": round(sum(float(t) for t in entry.timings_s.values()), 3),
        "kg_co2_emissions": None,
        "date": None,
    }


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "__"))


def export_mteb(
    results_path: Path, out_dir: Path, model_name: str | None = None, *, force: bool = False
) -> list[Path]:
    """Write OUT/MODEL/REVISION/TASK.json for each dataset of the results file (every check
    passes before anything is written). An existing TASK.json is replaced only if it is
    irtune's export of the task from the same data files, or with `force`."""
    from irtune.results.schema import read_results

    result = read_results(results_path)
    where = str(results_path)
    _check_search(result, where)
    assert result.model is not None
    tasks = [task_result(result, entry, where) for entry in result.datasets]  # all checked first
    name = _folder_name(model_name or result.model.name)
    if not name.strip("."):
        raise InvalidValueError("{model_name} {value!r}: not a usable folder name", value=model_name)
    folder = out_dir / name / (result.model.revision or NO_REVISION)
    for task, data in tasks:
        same = partial(_same_export, data=data)
        what = "irtune's export of this task from the same files"
        checks.replaceable_file("out_dir", folder / f"{task}.json", same, what, force=force)
    return _write_all(folder, {f"{task}.json": data for task, data in tasks})


def _same_export(path: Path, data: dict[str, Any]) -> bool:
    """Whether `path` is a task result irtune exported for the same task and data files."""
    try:
        held = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    keys = ("task_name", "dataset_revision")
    return (
        isinstance(held, dict)
        and str(held.get("dataset_revision")).startswith(REVISION_PREFIX)
        and all(held.get(key) == data[key] for key in keys)
    )


def _write_all(folder: Path, documents: dict[str, Any]) -> list[Path]:
    """Every document written in a work folder inside `folder`, then renamed into place: a
    failure (a full disk) leaves none of them, and no folder it created."""
    with tidy_on_failure(folder):
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as work:
            for name, data in documents.items():
                try:
                    write_json_atomic(Path(work) / name, data)
                except OSError as exc:  # name the file the user asked for, not the work copy
                    raise OSError(exc.errno, exc.strerror, str(folder / name)) from None
            for name in documents:
                os.replace(Path(work) / name, folder / name)
    return [folder / name for name in documents]

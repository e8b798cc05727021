"""`irtune run`: the whole study from one TOML file, as resumable stages.

Stages: honest splits (one per dataset) -> baseline evaluation (+ BM25) -> one training per
variant -> evaluation of each variant on its held-out queries -> comparison and report. Each
stage writes under `<out_dir>/stages/<name>-<hash of its inputs>/` and marks completion with
`done.json`; a re-run skips finished stages, resumes an interrupted training, and
`--force NAME` redoes a stage (`--force splits`: every dataset's).

A stage's inputs are its own settings, the sha256 of every data file it reads and the
stamps of the stages it is built on: an edited qrels file redoes exactly the stages that
read it, and a dataset a stage does not read cannot redo it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from irtune import checks
from irtune.comparison import Comparison, load_comparisons
from irtune.config_errors import read_toml, validated
from irtune.data.beir import SYNTHETIC_MANIFEST, SYNTHETIC_QUERIES, BeirDataset
from irtune.data.registry import resolve_dataset
from irtune.data.splits import make_plan, save_plan
from irtune.errors import IrtuneError
from irtune.fileio import sha256_file, sha256_text, write_json_atomic
from irtune.locks import folder_lock
from irtune.models import hub_repo_id, hub_snapshot, resolve_model_location
from irtune.reporting.files import write_report
from irtune.results import read_results
from irtune.retrieval.registry import RETRIEVERS, retriever_names
from irtune.settings import PRECISIONS, EvalSettings, ModelOptions
from irtune.tracking import Tracking, log_comparisons, log_results
from irtune.training.card import add_test_results
from irtune.training.config import TrainConfig
from irtune.training.metadata import TRAINING_METADATA
from irtune.training.plan import expand_presets
from irtune.training.trainer import train_model
from irtune.workflows import run_evaluation

log = logging.getLogger(__name__)


class ModelSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: str = "minilm"
    query_prompt: str | None = None
    doc_prompt: str | None = None
    max_seq_length: int | None = Field(None, ge=8)
    device: str | None = None

    @field_validator("device")
    @classmethod
    def _existing_device(cls, device: str | None) -> str | None:
        try:
            checks.device("device", device)
        except IrtuneError as exc:
            raise ValueError(str(exc)) from None
        return device

    def options(self) -> ModelOptions:
        return ModelOptions(self.device, self.max_seq_length, self.query_prompt, self.doc_prompt)


class EvaluationSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    datasets: list[str] = Field(min_length=1)
    split: str = "test"
    precision: str = "fp32"
    batch_size: int = Field(32, ge=1)
    # the base model (or no model) under each retriever; the first is the baseline
    retrievers: list[str] = Field(default_factory=lambda: ["dense", "bm25"], min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "bm25" in data:
            raise ValueError(
                'evaluation.bm25 was replaced by evaluation.retrievers (e.g. retrievers = ["dense", '
                f'"bm25"]; choices: {", ".join(retriever_names())})'
            )
        return data

    @field_validator("precision")
    @classmethod
    def _known_precision(cls, precision: str) -> str:
        if precision not in PRECISIONS:
            raise ValueError(f"must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        return precision

    @field_validator("retrievers")
    @classmethod
    def _known_retrievers(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in retriever_names():
                raise ValueError(f"unknown retriever {name!r} (choices: {', '.join(retriever_names())})")
        if len(set(names)) != len(names):
            raise ValueError("retrievers must not repeat a name")
        return names


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    train: list[str] = Field(min_length=1)
    evaluate_on: list[str] | None = None
    training: dict[str, Any] = Field(default_factory=dict)


class Study(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    out_dir: Path
    data_dir: Path | None = None
    model: ModelSection = Field(default_factory=ModelSection)
    evaluation: EvaluationSection
    training: TrainConfig = Field(default_factory=TrainConfig)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    variants: list[Variant] = Field(default_factory=list)
    # trackers only observe: not part of any stage's inputs, so turning them on redoes nothing
    tracking: Tracking = Field(default_factory=Tracking)

    @field_validator("variants")
    @classmethod
    def _unique_names(cls, variants: list[Variant]) -> list[Variant]:
        names = [v.name for v in variants]
        if len(names) != len(set(names)):
            raise ValueError("variant names must be unique")
        return variants

    @model_validator(mode="after")
    def _targets_are_evaluated(self) -> Study:
        for variant in self.variants:
            for target in variant.evaluate_on or []:
                if target not in self.evaluation.datasets:
                    raise ValueError(
                        f"variant {variant.name}: evaluate_on names {target!r}, which is not in "
                        "evaluation.datasets"
                    )
        return self


def load_study(path: Path, data_dir: Path | None = None) -> Study:
    """The study config, validated, with every dataset, training set and evaluation target
    resolved now: a typo fails before the first stage, not after an hour of training."""
    study = validated(Study, read_toml(path), str(path))
    for variant in study.variants:  # validate per-variant overrides now, not mid-run
        validated(
            TrainConfig,
            {**study.training.model_dump(), **variant.training},
            f"{path}: variants.{variant.name}.training",
        )
    _resolve_inputs(study, path, data_dir or study.data_dir)
    try:
        study.tracking.check()
    except IrtuneError as exc:
        raise IrtuneError(f"{path}: tracking: {exc}") from None
    return study


def _resolve_inputs(study: Study, path: Path, data_dir: Path | None) -> None:
    """Every dataset the study evaluates or trains on exists with the files and split it needs."""
    needed = [("evaluation.datasets", name, study.evaluation.split) for name in study.evaluation.datasets]
    for variant in study.variants:
        for spec in expand_presets(variant.train, study.groups):
            name, _, split = spec.partition(":")
            needed.append((f"variants.{variant.name}.train", name, split or "test"))
    for key, name, split in needed:
        try:
            resolve_dataset(name, data_dir).check_files(split)
        except IrtuneError as exc:
            raise IrtuneError(f"{path}: {key}: {exc}") from None


class Stages:
    """Hash-keyed stage folders with completion markers. A stage built on another keys on its
    `stamp`, so redoing a stage (`--force`) redoes every stage built on it."""

    def __init__(self, root: Path, force: Sequence[str]) -> None:
        self.root = root / "stages"
        self.force = set(force)
        self.total = 0
        self.count = 0

    def folder(self, name: str, inputs: Any) -> Path:
        key = sha256_text(json.dumps(inputs, sort_keys=True, default=str))[:12]
        return self.root / f"{name.replace(':', '-')}-{key}"

    def run(
        self,
        name: str,
        inputs: Any,
        work: Callable[[Path], Any],
        stale: Callable[[Path], str | None] = lambda _: None,
    ) -> Path:
        """Do `work` in the stage's folder unless it is done; a done stage for which `stale`
        gives a reason is redone."""
        self.count += 1
        folder = self.folder(name, inputs)
        done = folder / "done.json"
        if self.forced(name) and folder.exists():
            shutil.rmtree(folder)
        if done.is_file() and (reason := stale(folder)):
            log.warning("stage %s: %s; redone", name, reason)
            shutil.rmtree(folder)
        if done.is_file():
            log.info("stage %d/%d %s: done, skipped", self.count, self.total, name)
            return folder
        log.info("stage %d/%d: %s", self.count, self.total, name)
        folder.mkdir(parents=True, exist_ok=True)
        work(folder)
        write_json_atomic(done, {"stage": name, "inputs": inputs, "id": uuid.uuid4().hex})
        return folder

    def forced(self, name: str) -> bool:
        """`--force NAME` names a stage, or a kind of stage done per dataset (`splits`)."""
        return name in self.force or name.partition(":")[0] in self.force

    @staticmethod
    def stamp(folder: Path) -> str:
        """A finished stage as the keys of later stages name it: its folder and the id of the
        run that finished it. A folder name alone survives a forced redo, and the stages built
        on it were skipped with results of the old weights. (Stages finished before ids were
        recorded keep their name, so their studies are not redone.)"""
        done = json.loads((folder / "done.json").read_text(encoding="utf-8"))
        return f"{folder.name}@{done['id']}" if "id" in done else folder.name


MODEL_FILES_NOT_LOADED = frozenset({"README.md"})
# the qrels an honest split plan is cut from (`make_plan`): every stage that reads a dataset
# reads them, through its split file or by planning itself
PLAN_SPLITS = ("train", "dev", "test")


class StudyInputs:
    """The datasets a study reads, each resolved once, and the sha256 of their files, each
    file hashed once per run (a corpus can be large)."""

    def __init__(self, data_dir: Path | None) -> None:
        self.data_dir = data_dir
        self._datasets: dict[str, BeirDataset] = {}
        self._sha256: dict[Path, str] = {}
        self._hub_revisions: dict[str, dict[str, str]] = {}

    def dataset(self, name: str) -> BeirDataset:
        if name not in self._datasets:
            self._datasets[name] = resolve_dataset(name, self.data_dir)
        return self._datasets[name]

    def content(self, name: str, splits: Iterable[str] = ()) -> dict[str, str]:
        """sha256 by path in the dataset folder of what a stage reads of it: the corpus, the
        queries (real and generated), and the qrels of the plan's splits and of `splits`
        that exist (a split added later changes the plan, so its absence is keyed too).

        Raw bytes by file name, not the dataset's identity (`BeirDataset.identity`): a stage key
        only detects change, and recompressing a file redoes its stages at worst."""
        dataset = self.dataset(name)
        files = [dataset.corpus_path, dataset.queries_path, dataset.root / SYNTHETIC_QUERIES]
        for split in dict.fromkeys([*PLAN_SPLITS, *splits]):
            if dataset.has_split(split):
                files.append(dataset.qrels_path(split))
                if dataset.is_synthetic(split):
                    files.append(dataset.root / SYNTHETIC_MANIFEST)
        return {str(p.relative_to(dataset.root)): self._hash(p) for p in files if p.is_file()}

    def model(self, spec: str) -> dict[str, Any]:
        """The base model as the sha256 of the files it loads from when it is a folder on this
        machine (a path, the bundled and parted aliases), else as the hub commit it loads at:
        new weights under the same name redo every stage that encoded with them. A hub id whose
        commit cannot be resolved (offline and not in the cache: loading it fails too) is keyed
        on its name. The card and training logs are left out: evaluating a model rewrites its card."""
        location = Path(resolve_model_location(spec))
        if not location.is_dir():
            if spec not in self._hub_revisions:  # one look-up per run
                self._hub_revisions[spec] = _hub_revision(spec)
            return {"spec": spec, **self._hub_revisions[spec]}
        files = sorted(
            path
            for path in location.rglob("*")
            if path.is_file()
            and path.relative_to(location).as_posix() not in MODEL_FILES_NOT_LOADED
            and not any(
                part.startswith((".", "_")) or part == "runs" for part in path.relative_to(location).parts
            )
        )
        return {
            "spec": spec,
            "files": {path.relative_to(location).as_posix(): self._hash(path) for path in files},
        }

    def _hash(self, path: Path) -> str:
        if path not in self._sha256:
            self._sha256[path] = sha256_file(path)
        return self._sha256[path]


def _hub_revision(spec: str) -> dict[str, str]:
    """The commit a hub model loads at (its cache snapshot's folder name, resolved as `load_model`
    resolves it: online, or offline from the cache), or nothing when it cannot be resolved."""
    try:
        snapshot = hub_snapshot(hub_repo_id(spec), os.environ.get("SENTENCE_TRANSFORMERS_HOME"))
    except (OSError, ValueError) as exc:
        log.warning("%s: the hub commit cannot be resolved (%s); its stages are keyed on its name", spec, exc)
        return {}
    return {"revision": snapshot.name}


def _splits_by_dataset(specs: Sequence[str]) -> dict[str, list[str]]:
    """`dataset[:split]` training specs -> the splits named for each dataset (none: the plan's)."""
    named: dict[str, list[str]] = {}
    for spec in specs:
        name, _, split = spec.partition(":")
        named.setdefault(name, []).extend([split] if split else [])
    return named


def _retriever_stage(name: str) -> str:
    """The base model under the dense retriever is "baseline"; other retrievers that use the
    base model are "baseline-<name>"; model-free ones (bm25) go by their own name."""
    if name == "dense":
        return "baseline"
    return f"baseline-{name}" if RETRIEVERS[name].needs_model else name


def _model_name(base: str) -> str:
    """A model folder goes by its folder name in labels; aliases and hub ids as written."""
    path = Path(base)
    return path.name if path.is_dir() else base


def run_label(base: str, retriever: str = "dense", train: Sequence[str] = (), variant: str = "") -> str:
    """Runs are labelled by model and training data, never by a bare variant name: a variant
    called "scifact" would read as a dataset in a legend. "minilm (base)", "bm25",
    "minilm (base, hybrid)", "minilm tuned on scifact", "minilm tuned on scifact+nfcorpus
    (scientific)"."""
    if not RETRIEVERS[retriever].needs_model:
        return retriever
    model = _model_name(base)
    if not train:
        return f"{model} (base)" if retriever == "dense" else f"{model} (base, {retriever})"
    data = "+".join(train)
    return f"{model} tuned on {data}" + ("" if variant in ("", data) else f" ({variant})")


def run_study(
    study: Study, data_dir: Path | None = None, cache_dir: Path | None = None, force: Sequence[str] = ()
) -> tuple[Path, list[Comparison]]:
    """Run (or resume) the study; returns the report path and the comparisons it shows."""
    checks.output_folder("out_dir", study.out_dir)
    with folder_lock(study.out_dir, what="study"):
        return _run_stages(study, data_dir or study.data_dir, cache_dir, force)


def _run_stages(
    study: Study, data_dir: Path | None, cache_dir: Path | None, force: Sequence[str]
) -> tuple[Path, list[Comparison]]:
    out = study.out_dir
    ev = study.evaluation
    study_inputs = StudyInputs(data_dir)
    datasets = {name: study_inputs.dataset(name) for name in ev.datasets}
    split_stages = {name: f"splits:{dataset.name}" for name, dataset in datasets.items()}
    retriever_stages = {name: _retriever_stage(name) for name in ev.retrievers}
    known = {"splits", "report", *split_stages.values(), *retriever_stages.values()} | {
        f"{kind}:{v.name}" for v in study.variants for kind in ("train", "eval")
    }
    if unknown := set(force) - known:
        raise IrtuneError(
            f"--force: unknown stage {sorted(unknown)[0]!r} (stages: {', '.join(sorted(known))})"
        )
    stages = Stages(out, force)
    stages.total = len(datasets) + len(ev.retrievers) + 2 * len(study.variants) + 1
    training = study.training
    options = study.model.options()

    def make_splits(dataset: BeirDataset) -> Callable[[Path], None]:
        def work(folder: Path) -> None:
            plan = make_plan(dataset, training.split_seed, training.dev_fraction, training.eval_fraction)
            save_plan(plan, folder / f"{dataset.name}.split.json")

        return work

    split_settings = {
        "seed": training.split_seed,
        "dev": training.dev_fraction,
        "eval": training.eval_fraction,
    }
    split_files = {}
    for name, stage in split_stages.items():
        split_inputs = {**split_settings, "data": study_inputs.content(name)}
        folder = stages.run(stage, split_inputs, make_splits(datasets[name]))
        split_files[name] = folder / f"{datasets[name].name}.split.json"

    def applied(names: Iterable[str]) -> list[Path]:
        """The split files a stage reading these datasets applies (none under the seed protocol)."""
        if training.protocol == "seed":
            return []
        return [split_files[name] for name in names if name in split_files]

    def reads(splits_by_name: dict[str, list[str]]) -> dict[str, Any]:
        """A stage's inputs from the datasets it reads: their files' content (with the qrels
        of the named splits) and the split files it applies, as the stamps of their stages."""
        return {
            "data": {name: study_inputs.content(name, splits) for name, splits in splits_by_name.items()},
            "splits": [stages.stamp(path.parent) for path in applied(splits_by_name)],
        }

    def evaluate(
        model: str | None, retriever: str, names: Sequence[str], label: str
    ) -> Callable[[Path], None]:
        def work(folder: Path) -> None:
            settings = EvalSettings(
                split=ev.split,
                retriever=retriever,
                batch_size=ev.batch_size,
                precision=ev.precision,
                cache_dir=cache_dir,
            )
            result = run_evaluation(
                model,
                names,
                settings,
                model_options=options,
                out_dir=folder,
                split_files=applied(names),
                data_dir=data_dir,
                label=label,
            )
            log_results(study.tracking, result, folder / "results.json")

        return work

    def train(specs: list[str], config: TrainConfig) -> Callable[[Path], None]:
        def work(folder: Path) -> None:
            model_dir = folder / "model"
            if (model_dir / TRAINING_METADATA).is_file():  # finished just before an interruption
                return
            train_model(
                study.model.base,
                specs,
                model_dir,
                config,
                data_dir,
                cache_dir,
                applied(_splits_by_dataset(specs)),
                resume=model_dir.exists(),
                model_options=options,
                tracking=study.tracking,
            )

        return work

    eval_settings = {
        "model": study.model.model_dump(),
        "evaluation": ev.model_dump(exclude={"retrievers"}),  # each stage names its own
        "protocol": training.protocol,
    }

    def evaluation_reads(names: Sequence[str]) -> dict[str, Any]:
        return reads({name: [ev.split] for name in names})

    results = []
    for name, stage in retriever_stages.items():
        with_model = RETRIEVERS[name].needs_model
        model = study.model.base if with_model else None
        label = run_label(study.model.base, name)
        stage_inputs = {
            **eval_settings,
            **evaluation_reads(ev.datasets),
            "model": eval_settings["model"] if with_model else None,
            "base_model": study_inputs.model(study.model.base) if with_model else None,
            "retriever": name,
        }
        results.append(stages.run(stage, stage_inputs, evaluate(model, name, ev.datasets, label)))
    for variant in study.variants:
        config = TrainConfig.model_validate({**training.model_dump(), **variant.training})
        specs = expand_presets(variant.train, study.groups)
        train_inputs = {
            "model": study.model.model_dump(),
            "base_model": study_inputs.model(study.model.base),
            "specs": specs,
            "config": config.model_dump(),
            **reads(_splits_by_dataset(specs)),
        }
        trained = stages.run(f"train:{variant.name}", train_inputs, train(specs, config))
        trained_names = {s.partition(":")[0] for s in specs}
        targets = variant.evaluate_on or [n for n in ev.datasets if n in trained_names] or ev.datasets

        def measured_other_weights(
            folder: Path, trained: Path = trained, name: str = variant.name
        ) -> str | None:
            """Stages finished before run ids were recorded key on folder names alone, so an
            evaluation could look done after its model was retrained."""
            shipped = json.loads((trained / "model" / TRAINING_METADATA).read_text(encoding="utf-8"))
            model = read_results(folder / "results.json").model
            if model is None or model.weights_sha256 != shipped["weights_sha256"]:
                return f"measured other weights than train:{name} holds"
            return None

        evaluated = stages.run(
            f"eval:{variant.name}",
            {
                **eval_settings,
                **evaluation_reads(targets),
                "trained": stages.stamp(trained),
                "targets": targets,
            },
            evaluate(
                str(trained / "model"),
                "dense",
                targets,
                run_label(study.model.base, train=specs, variant=variant.name),
            ),
            stale=measured_other_weights,
        )
        if ev.split == "test":  # the model's card gets its held-out test metrics (Hub model-index)
            add_test_results(trained / "model", [read_results(evaluated / "results.json")])
        results.append(evaluated)

    def report(folder: Path) -> None:
        _, _, comparisons = write_report([r / "results.json" for r in results], folder / "report.html")
        log_comparisons(study.tracking, comparisons)

    final = stages.run("report", {"results": [stages.stamp(r) for r in results]}, report)
    for name in ("report.html", "report.md"):
        shutil.copyfile(final / name, out / name)
    return out / "report.html", load_comparisons([r / "results.json" for r in results])[0]

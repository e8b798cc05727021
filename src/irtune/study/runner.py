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
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from irtune.core import checks
from irtune.core.configs import read_toml, validated
from irtune.core.files import sha256_file, sha256_text, write_json_atomic
from irtune.core.locks import folder_lock
from irtune.data.beir import SYNTHETIC_MANIFEST, SYNTHETIC_QUERIES, BeirDataset
from irtune.data.registry import resolve_dataset
from irtune.data.splits import make_plan, save_plan
from irtune.errors import IrtuneError
from irtune.evaluation.job import run_evaluation
from irtune.models.lineage import TRAINING_METADATA, TrainingRecord
from irtune.models.loading import hub_repo_id, hub_snapshot, resolve_model_location
from irtune.reporting.files import write_report
from irtune.results.compare import Comparison, load_comparisons
from irtune.results.schema import read_results
from irtune.results.seeds import dev_score, shipped_run
from irtune.results.tracking import Tracking, log_comparisons, log_results
from irtune.retrieval.registry import RETRIEVERS, retriever_names
from irtune.retrieval.settings import PRECISIONS, ModelOptions, RetrievalSettings
from irtune.training.card import add_test_results
from irtune.training.config import TrainConfig
from irtune.training.plan import default_train_split, expand_presets
from irtune.training.trainer import WORK, train_model

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


def _distinct(names: list[str]) -> list[str]:
    if repeated := next((name for name in names if names.count(name) > 1), None):
        raise ValueError(f"must not repeat a name ({repeated!r} twice)")
    return names


class EvaluationSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    datasets: list[str] = Field(min_length=1)
    # the only split a study can report: a key of its own so that configs say what they report
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

    @field_validator("split")
    @classmethod
    def _reported_split(cls, split: str) -> str:
        """The honest plans evaluate their held-out test queries (the seed protocol: all of test);
        any other split would be silently replaced by test, or hold queries a variant trains or
        selects on."""
        if split != "test":
            raise ValueError(
                f'must be "test": a study reports the held-out test queries of each dataset (its split '
                f'plan\'s eval part), and its variants train and select on the others, so "{split}" '
                "cannot be reported"
            )
        return split

    @field_validator("datasets")
    @classmethod
    def _distinct_datasets(cls, names: list[str]) -> list[str]:
        return _distinct(names)

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
        return _distinct(names)


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    train: list[str] = Field(min_length=1)
    evaluate_on: list[str] | None = None
    training: dict[str, Any] = Field(default_factory=dict)

    @field_validator("evaluate_on")
    @classmethod
    def _distinct_targets(cls, names: list[str] | None) -> list[str] | None:
        return names if names is None else _distinct(names)


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
    def _compares_runs(self) -> Study:
        """The report compares every run with the first retriever's: one run has nothing to
        compare with (and nothing would say so until every stage before the report had run)."""
        if not self.variants and len(self.evaluation.retrievers) < 2:
            raise ValueError(
                "a study compares runs: give it a variant ([[variants]]) or a second retriever in "
                "evaluation.retrievers (the first is the baseline)"
            )
        return self

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
    for variant in study.variants:
        try:
            _refuse_repeated_training_sets(expand_presets(variant.train, study.groups), data_dir)
        except IrtuneError as exc:
            raise IrtuneError(f"{path}: variants.{variant.name}.train: {exc}") from None


def _refuse_repeated_training_sets(specs: Sequence[str], data_dir: Path | None) -> None:
    """`ds` trains on its plan's train split (`default_train_split`): with `ds:train` beside it,
    training would refuse the repeated set only after the stages before it had run."""
    seen: dict[str, str] = {}
    for spec in specs:
        name, _, split = spec.partition(":")
        dataset = resolve_dataset(name, data_dir)
        key = f"{dataset.name}:{split or default_train_split(dataset)}"
        if key in seen:
            raise IrtuneError(f"{seen[key]!r} and {spec!r} both train on {key}")
        seen[key] = spec


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
        """`--force NAME` names a stage, a kind of stage done per dataset (`splits`), or a
        variant's stages over all its seeds (`train:NAME` forces `train:NAME@seed-1` ...)."""
        return bool({name, name.partition(":")[0], name.partition("@")[0]} & self.force)

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


def _record_shipped_seed(path: Path, variant: str, runs: Sequence[tuple[TrainConfig, Path, Path]]) -> None:
    """`<variant>.seeds.json`: the runs of a variant trained over several seeds, and which one
    ships (the best on dev, irtune.results.seeds.shipped_run) and why."""
    seeds = [config.seed for config, _, _ in runs]
    models = [trained / "model" for _, trained, _ in runs]
    records = [json.loads((model / TRAINING_METADATA).read_text(encoding="utf-8")) for model in models]
    index, reason = shipped_run(seeds, records)
    log.info("%s: ships %s", variant, reason)
    write_json_atomic(
        path,
        {
            "variant": variant,
            "shipped": {"seed": seeds[index], "model": str(models[index]), "reason": reason},
            "runs": [
                {"seed": seed, "model": str(model), "dev": dev_score(record), "results": str(evaluated)}
                for seed, model, record, (_, _, evaluated) in zip(seeds, models, records, runs, strict=True)
            ],
        },
    )


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


def run_label(
    base: str, retriever: str = "dense", train: Sequence[str] = (), variant: str = "", seed: int | None = None
) -> str:
    """Runs are labelled by model and training data, never by a bare variant name: a variant
    called "scifact" would read as a dataset in a legend. "minilm (base)", "bm25",
    "minilm (base, hybrid)", "minilm tuned on scifact", "minilm tuned on scifact+nfcorpus
    (scientific)"; one run of a variant trained over several seeds: "... (scientific, seed 2)"."""
    if not RETRIEVERS[retriever].needs_model:
        return retriever
    model = _model_name(base)
    if not train:
        return f"{model} (base)" if retriever == "dense" else f"{model} (base, {retriever})"
    data = "+".join(train)
    notes = [
        note
        for note in (variant if variant != data else "", f"seed {seed}" if seed is not None else "")
        if note
    ]
    return f"{model} tuned on {data}" + (f" ({', '.join(notes)})" if notes else "")


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
    run = StudyRun(study, data_dir, cache_dir, force)
    run.splits()
    results = [run.retriever(name) for name in study.evaluation.retrievers]
    for variant in study.variants:
        results += run.variant(variant)
    final = run.report(results)
    for name in ("report.html", "report.md"):
        shutil.copyfile(final / name, study.out_dir / name)
    return study.out_dir / "report.html", load_comparisons([r / "results.json" for r in results])[0]


class StudyRun:
    """The stages of one run of a study, in the order they run (and are counted): the split
    plan of each dataset, each retriever over the base model, the training and the evaluation
    of each run of each variant (one per seed), the report."""

    def __init__(self, study: Study, data_dir: Path | None, cache_dir: Path | None, force: Sequence[str]):
        self.study = study
        self.data_dir = data_dir
        self.cache_dir = cache_dir
        self.inputs = StudyInputs(data_dir)
        self.datasets = {name: self.inputs.dataset(name) for name in study.evaluation.datasets}
        self.configs = {
            v.name: TrainConfig.model_validate({**study.training.model_dump(), **v.training})
            for v in study.variants
        }
        planned = self._planned()
        known = {"splits", *planned} | {
            f"{kind}:{name}" for name in self.configs for kind in ("train", "eval")
        }
        if unknown := set(force) - known:
            raise IrtuneError(
                f"--force: unknown stage {sorted(unknown)[0]!r} (stages: {', '.join(sorted(known))})"
            )
        self.stages = Stages(study.out_dir, force)
        self.stages.total = len(planned)
        self.split_files: dict[str, Path] = {}  # by dataset, once `splits` ran
        self.options = study.model.options()
        self.eval_settings = {
            "model": study.model.model_dump(),
            "evaluation": study.evaluation.model_dump(exclude={"retrievers"}),  # each stage names its own
            "protocol": study.training.protocol,
        }

    def _planned(self) -> list[str]:
        return [
            *(f"splits:{dataset.name}" for dataset in self.datasets.values()),
            *(_retriever_stage(name) for name in self.study.evaluation.retrievers),
            *(
                f"{kind}:{name}{suffix}"
                for name in self.configs
                for _, suffix in self._runs(name)
                for kind in ("train", "eval")
            ),
            "report",
        ]

    def _runs(self, variant: str) -> list[tuple[TrainConfig, str]]:
        """(config, stage suffix) of each training run of a variant: one, or one per seed
        ("@seed-N")."""
        config = self.configs[variant]
        return [(run, "" if config.seeds is None else f"@seed-{run.seed}") for run in config.per_seed()]

    def splits(self) -> None:
        training = self.study.training
        settings = {"seed": training.split_seed, "dev": training.dev_fraction, "eval": training.eval_fraction}
        for name, dataset in self.datasets.items():
            inputs = {**settings, "data": self.inputs.content(name)}
            folder = self.stages.run(
                f"splits:{dataset.name}", inputs, partial(_write_plan, dataset, training)
            )
            self.split_files[name] = folder / f"{dataset.name}.split.json"

    def applied(self, names: Iterable[str]) -> list[Path]:
        """The split files a stage reading these datasets applies (none under the seed protocol)."""
        if self.study.training.protocol == "seed":
            return []
        return [self.split_files[name] for name in names if name in self.split_files]

    def reads(self, splits_by_name: dict[str, list[str]]) -> dict[str, Any]:
        """A stage's inputs from the datasets it reads: their files' content (with the qrels
        of the named splits) and the split files it applies, as the stamps of their stages."""
        return {
            "data": {name: self.inputs.content(name, splits) for name, splits in splits_by_name.items()},
            "splits": [self.stages.stamp(path.parent) for path in self.applied(splits_by_name)],
        }

    def _evaluation_inputs(self, names: Sequence[str]) -> dict[str, Any]:
        return {**self.eval_settings, **self.reads({name: [self.study.evaluation.split] for name in names})}

    def retriever(self, name: str) -> Path:
        """The base model (or no model) under one retriever, on every dataset."""
        with_model = RETRIEVERS[name].needs_model
        base = self.study.model.base
        inputs = {
            **self._evaluation_inputs(self.study.evaluation.datasets),
            "model": self.eval_settings["model"] if with_model else None,
            "base_model": self.inputs.model(base) if with_model else None,
            "retriever": name,
        }
        work = partial(
            self._evaluate,
            base if with_model else None,
            name,
            self.study.evaluation.datasets,
            run_label(base, name),
        )
        return self.stages.run(_retriever_stage(name), inputs, work)

    def variant(self, variant: Variant) -> list[Path]:
        """The evaluation stage of each training run of a variant; over several seeds, which run
        ships is recorded beside the report."""
        done = [
            (config, *self._train_and_evaluate(variant, config, suffix))
            for config, suffix in self._runs(variant.name)
        ]
        if self.configs[variant.name].seeds is not None:
            _record_shipped_seed(self.study.out_dir / f"{variant.name}.seeds.json", variant.name, done)
        return [evaluated for _, _, evaluated in done]

    def _train_and_evaluate(self, variant: Variant, config: TrainConfig, suffix: str) -> tuple[Path, Path]:
        """(train stage, eval stage) of one training run of a variant."""
        study = self.study
        specs = expand_presets(variant.train, study.groups)
        train_inputs = {
            "model": study.model.model_dump(),
            "base_model": self.inputs.model(study.model.base),
            "specs": specs,
            "config": config.model_dump(exclude={"seeds"}),
            **self.reads(_splits_by_dataset(specs)),
        }
        train_stage = f"train:{variant.name}{suffix}"
        trained = self.stages.run(train_stage, train_inputs, partial(self._train, specs, config))
        trained_names = {s.partition(":")[0] for s in specs}
        datasets = study.evaluation.datasets
        targets = variant.evaluate_on or [n for n in datasets if n in trained_names] or datasets
        label = run_label(
            study.model.base, train=specs, variant=variant.name, seed=config.seed if suffix else None
        )
        evaluated = self.stages.run(
            f"eval:{variant.name}{suffix}",
            {**self._evaluation_inputs(targets), "trained": self.stages.stamp(trained), "targets": targets},
            partial(self._evaluate, str(trained / "model"), "dense", targets, label),
            stale=partial(_measured_other_weights, trained / "model", train_stage),
        )
        # the model's card gets its held-out test metrics (Hub model-index)
        add_test_results(trained / "model", [read_results(evaluated / "results.json")])
        return trained, evaluated

    def report(self, results: Sequence[Path]) -> Path:
        return self.stages.run(
            "report", {"results": [self.stages.stamp(r) for r in results]}, partial(self._report, results)
        )

    def _evaluate(
        self, model: str | None, retriever: str, names: Sequence[str], label: str, folder: Path
    ) -> None:
        ev = self.study.evaluation
        settings = RetrievalSettings(
            split=ev.split,
            retriever=retriever,
            batch_size=ev.batch_size,
            precision=ev.precision,
            cache_dir=self.cache_dir,
        )
        result = run_evaluation(
            model,
            names,
            settings,
            model_options=self.options,
            out_dir=folder,
            split_files=self.applied(names),
            data_dir=self.data_dir,
            label=label,
        )
        log_results(self.study.tracking, result, folder / "results.json")

    def _train(self, specs: list[str], config: TrainConfig, folder: Path) -> None:
        model_dir = folder / "model"
        if (model_dir / TRAINING_METADATA).is_file():  # finished just before an interruption
            return
        train_model(
            self.study.model.base,
            specs,
            model_dir,
            config,
            self.data_dir,
            self.cache_dir,
            self.applied(_splits_by_dataset(specs)),
            resume=(model_dir / WORK).is_dir(),  # an unfinished run to continue
            model_options=self.options,
            tracking=self.study.tracking,
        )

    def _report(self, results: Sequence[Path], folder: Path) -> None:
        _, _, comparisons = write_report(
            [r / "results.json" for r in results], folder / "report.html", data_dir=self.data_dir
        )
        log_comparisons(self.study.tracking, comparisons)


def _write_plan(dataset: BeirDataset, training: TrainConfig, folder: Path) -> None:
    plan = make_plan(dataset, training.split_seed, training.dev_fraction, training.eval_fraction)
    save_plan(plan, folder / f"{dataset.name}.split.json")


def _measured_other_weights(model: Path, train_stage: str, folder: Path) -> str | None:
    """Stages finished before run ids were recorded key on folder names alone, so an
    evaluation could look done after its model was retrained."""
    shipped = TrainingRecord.read(model / TRAINING_METADATA)
    measured = read_results(folder / "results.json").model
    if measured is None or measured.weights_sha256 != shipped.weights_sha256:
        return f"measured other weights than {train_stage} holds"
    return None

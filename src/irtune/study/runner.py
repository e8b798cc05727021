"""`irtune run`: the whole study from one TOML file, as resumable stages.

Stages: honest splits (one per dataset) -> baseline evaluation (+ BM25) -> one training per
variant -> evaluation of each variant on its held-out queries -> comparison and report. Each
stage is one method of `StudyRun`; how stages are keyed, skipped and forced (`force=["splits"]`:
every dataset's) is `irtune.study.stages`, the config `irtune.study.config`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from irtune.core import checks
from irtune.core.files import write_json_atomic
from irtune.core.locks import folder_lock
from irtune.data.beir import BeirDataset
from irtune.data.splits import make_plan, save_plan, split_file_name
from irtune.evaluation.job import EvaluationJob, run_evaluation
from irtune.models.lineage import TRAINING_METADATA, TrainingRecord
from irtune.reporting.files import write_report
from irtune.results.compare import Comparison, load_comparisons
from irtune.results.files import RESULTS_FILE
from irtune.results.schema import read_results
from irtune.results.tracking import log_comparisons, log_results
from irtune.retrieval.registry import RETRIEVERS
from irtune.retrieval.settings import RetrievalSettings
from irtune.study.config import Study, Variant
from irtune.study.stages import Stages, StudyInputs
from irtune.training.card import add_test_results
from irtune.training.config import TrainConfig
from irtune.training.plan import expand_presets
from irtune.training.seed_runs import shipped_seed
from irtune.training.trainer import WORK, train_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VariantRun:
    """One training run of a variant: its only one, or one per seed (stages "@seed-N")."""

    variant: Variant
    specs: list[str]  # the `dataset[:split]` it trains on, presets expanded
    config: TrainConfig
    seeded: bool

    @property
    def train_stage(self) -> str:
        return f"train:{self.variant.name}{self._suffix}"

    @property
    def eval_stage(self) -> str:
        return f"eval:{self.variant.name}{self._suffix}"

    @property
    def stages(self) -> tuple[str, str]:
        return self.train_stage, self.eval_stage

    @property
    def _suffix(self) -> str:
        return f"@seed-{self.config.seed}" if self.seeded else ""

    def targets(self, evaluated: list[str]) -> list[str]:
        """The datasets it is evaluated on: those named, else those of the study's it trains on,
        else all of the study's."""
        trained = {spec.partition(":")[0] for spec in self.specs}
        return self.variant.evaluate_on or [n for n in evaluated if n in trained] or evaluated


def run_study(
    study: Study, data_dir: Path | None = None, cache_dir: Path | None = None, force: Sequence[str] = ()
) -> tuple[Path, list[Comparison]]:
    """Run (or resume) the study; returns the report path and the comparisons it shows."""
    checks.output_folder("out_dir", study.out_dir)
    with folder_lock(study.out_dir, what="study"):
        return StudyRun(study, data_dir or study.data_dir, cache_dir, force).run()


class StudyRun:
    """One run of a study, one method per stage, in the order they run (and are counted): the
    split plan of each dataset, each retriever over the base model, the training and the
    evaluation of each run of each variant (one per seed), the report."""

    def __init__(self, study: Study, data_dir: Path | None, cache_dir: Path | None, force: Sequence[str]):
        self.study = study
        self.cache_dir = cache_dir
        self.inputs = StudyInputs(data_dir)
        self.datasets = {name: self.inputs.dataset(name) for name in study.evaluation.datasets}
        self.runs = {variant.name: self._runs(variant) for variant in study.variants}
        self.stages = Stages(study.out_dir, self._planned(), force)
        self.split_files: dict[str, Path] = {}  # by dataset, once `splits` ran
        self.options = study.model.options()
        self.eval_settings = {
            "model": study.model.model_dump(),
            "evaluation": study.evaluation.model_dump(exclude={"retrievers"}),  # each stage names its own
            "protocol": study.training.protocol,
        }

    def _runs(self, variant: Variant) -> list[VariantRun]:
        config = TrainConfig.model_validate(self.study.training_of(variant))
        specs = expand_presets(variant.train, self.study.groups)
        return [VariantRun(variant, specs, run, config.seeds is not None) for run in config.per_seed()]

    def _planned(self) -> list[str]:
        """Every stage's name, in the order they run: `Stages` counts them and checks `force`."""
        return [
            *(_splits_stage(dataset) for dataset in self.datasets.values()),
            *(_retriever_stage(name) for name in self.study.evaluation.retrievers),
            *(stage for runs in self.runs.values() for run in runs for stage in run.stages),
            "report",
        ]

    def run(self) -> tuple[Path, list[Comparison]]:
        """Every stage, in order; the report is copied to the study's folder."""
        self.splits()
        results = [self.baseline(name) for name in self.study.evaluation.retrievers]
        for variant in self.study.variants:
            results += self.variant(variant)
        final = self.report(results)
        for name in ("report.html", "report.md"):
            shutil.copyfile(final / name, self.study.out_dir / name)
        return self.study.out_dir / "report.html", load_comparisons([r / RESULTS_FILE for r in results])[0]

    def splits(self) -> None:
        """The honest split plan of each dataset."""
        training = self.study.training
        settings = {"seed": training.split_seed, "dev": training.dev_fraction, "eval": training.eval_fraction}
        for name, dataset in self.datasets.items():
            inputs = {**settings, "data": self.inputs.content(name)}
            folder = self.stages.run(_splits_stage(dataset), inputs, partial(_write_plan, dataset, training))
            self.split_files[name] = folder / split_file_name(dataset.name)

    def baseline(self, retriever: str) -> Path:
        """The base model (or no model) under one retriever, on every dataset."""
        with_model = RETRIEVERS[retriever].needs_model
        base = self.study.model.base
        inputs = {
            **self._evaluation_inputs(self.study.evaluation.datasets),
            "model": self.eval_settings["model"] if with_model else None,
            "base_model": self.inputs.model(base) if with_model else None,
            "retriever": retriever,
        }
        work = partial(
            self._evaluate,
            base if with_model else None,
            retriever,
            self.study.evaluation.datasets,
            run_label(base, retriever),
        )
        return self.stages.run(_retriever_stage(retriever), inputs, work)

    def variant(self, variant: Variant) -> list[Path]:
        """The evaluation stage of each training run of a variant; over several seeds, which run
        ships is recorded beside the report."""
        runs = self.runs[variant.name]
        done = []
        for run in runs:
            trained = self.train(run)
            done.append((run.config, trained, self.evaluate(run, trained)))
        if runs[0].seeded:
            _record_shipped_seed(self.study.out_dir / f"{variant.name}.seeds.json", variant.name, done)
        return [evaluated for _, _, evaluated in done]

    def train(self, run: VariantRun) -> Path:
        """The training stage of one run of a variant."""
        inputs = {
            "model": self.study.model.model_dump(),
            "base_model": self.inputs.model(self.study.model.base),
            "specs": run.specs,
            "config": run.config.model_dump(exclude={"seeds"}),
            **self.reads(_splits_by_dataset(run.specs)),
        }
        return self.stages.run(run.train_stage, inputs, partial(self._train, run))

    def evaluate(self, run: VariantRun, trained: Path) -> Path:
        """The evaluation stage of one run of a variant; the model's card gets its held-out test
        metrics (Hub model-index)."""
        targets = run.targets(self.study.evaluation.datasets)
        seed = run.config.seed if run.seeded else None
        label = run_label(self.study.model.base, train=run.specs, variant=run.variant.name, seed=seed)
        model = trained / "model"
        evaluated = self.stages.run(
            run.eval_stage,
            {**self._evaluation_inputs(targets), "trained": self.stages.stamp(trained), "targets": targets},
            partial(self._evaluate, str(model), "dense", targets, label),
            stale=partial(_measured_other_weights, model, run.train_stage),
        )
        add_test_results(model, [read_results(evaluated / RESULTS_FILE)])
        return evaluated

    def report(self, results: Sequence[Path]) -> Path:
        return self.stages.run(
            "report", {"results": [self.stages.stamp(r) for r in results]}, partial(self._report, results)
        )

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
            EvaluationJob(
                model,
                names,
                settings,
                model_options=self.options,
                out_dir=folder,
                split_files=self.applied(names),
                data_dir=self.inputs.data_dir,
                label=label,
            )
        )
        log_results(self.study.tracking, result, folder / RESULTS_FILE)

    def _train(self, run: VariantRun, folder: Path) -> None:
        model_dir = folder / "model"
        if (model_dir / TRAINING_METADATA).is_file():  # finished just before an interruption
            return
        train_model(
            self.study.model.base,
            run.specs,
            model_dir,
            run.config,
            data_dir=self.inputs.data_dir,
            cache_dir=self.cache_dir,
            split_files=self.applied(_splits_by_dataset(run.specs)),
            resume=(model_dir / WORK).is_dir(),  # an unfinished run to continue
            model_options=self.options,
            tracking=self.study.tracking,
        )

    def _report(self, results: Sequence[Path], folder: Path) -> None:
        _, _, comparisons = write_report(
            [r / RESULTS_FILE for r in results], folder / "report.html", data_dir=self.inputs.data_dir
        )
        log_comparisons(self.study.tracking, comparisons)


def _splits_stage(dataset: BeirDataset) -> str:
    return f"splits:{dataset.name}"


def _retriever_stage(name: str) -> str:
    """The base model under the dense retriever is "baseline"; other retrievers that use the
    base model are "baseline-<name>"; model-free ones (bm25) go by their own name."""
    if name == "dense":
        return "baseline"
    return f"baseline-{name}" if RETRIEVERS[name].needs_model else name


def _splits_by_dataset(specs: Sequence[str]) -> dict[str, list[str]]:
    """`dataset[:split]` training specs -> the splits named for each dataset (none: the plan's)."""
    named: dict[str, list[str]] = {}
    for spec in specs:
        name, _, split = spec.partition(":")
        named.setdefault(name, []).extend([split] if split else [])
    return named


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


def _record_shipped_seed(path: Path, variant: str, runs: Sequence[tuple[TrainConfig, Path, Path]]) -> None:
    """`<variant>.seeds.json`: the runs of a variant trained over several seeds, and which one
    ships (irtune.training.seed_runs.shipped_seed) and why, with each run's results."""
    seeds = [config.seed for config, _, _ in runs]
    _, record = shipped_seed(seeds, [trained / "model" for _, trained, _ in runs])
    log.info("%s: ships %s", variant, record["shipped"]["reason"])
    for entry, (_, _, evaluated) in zip(record["runs"], runs, strict=True):
        entry["results"] = str(evaluated)
    write_json_atomic(path, {"variant": variant, **record})


def _write_plan(dataset: BeirDataset, training: TrainConfig, folder: Path) -> None:
    plan = make_plan(dataset, training.split_seed, training.dev_fraction, training.eval_fraction)
    save_plan(plan, folder / split_file_name(dataset.name))


def _measured_other_weights(model: Path, train_stage: str, folder: Path) -> str | None:
    """Stages finished before run ids were recorded key on folder names alone, so an
    evaluation could look done after its model was retrained."""
    shipped = TrainingRecord.read(model / TRAINING_METADATA)
    measured = read_results(folder / RESULTS_FILE).model
    if measured is None or measured.weights_sha256 != shipped.weights_sha256:
        return f"measured other weights than {train_stage} holds"
    return None

"""A study's TOML file, validated: the base model, what is evaluated and how, the training
settings and the variants that override them. `load_study` also resolves every dataset the study
reads, so a typo fails before the first stage, not after an hour of training."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from irtune.core import checks
from irtune.core.configs import read_toml, validated
from irtune.data.beir import BeirDataset
from irtune.errors import IrtuneError
from irtune.results.tracking import Tracking
from irtune.retrieval.registry import retriever_names
from irtune.retrieval.settings import PRECISIONS, ModelOptions
from irtune.study.stages import StudyInputs
from irtune.training.config import TrainConfig
from irtune.training.plan import default_train_split, expand_presets


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

    def training_of(self, variant: Variant) -> dict[str, Any]:
        """A variant's training settings: the study's, overridden by its own."""
        return {**self.training.model_dump(), **variant.training}


def load_study(path: Path, data_dir: Path | None = None) -> Study:
    """The study config, validated, with every dataset, training set and evaluation target
    resolved now: a typo fails before the first stage, not after an hour of training."""
    study = validated(Study, read_toml(path), str(path))
    for variant in study.variants:  # validate per-variant overrides now, not mid-run
        validated(TrainConfig, study.training_of(variant), f"{path}: variants.{variant.name}.training")
    _resolve_inputs(study, path, StudyInputs(data_dir or study.data_dir).dataset)
    try:
        study.tracking.check()
    except IrtuneError as exc:
        raise IrtuneError(f"{path}: tracking: {exc}") from None
    return study


def _resolve_inputs(study: Study, path: Path, dataset: Callable[[str], BeirDataset]) -> None:
    """Every dataset the study evaluates or trains on exists with the files and split it needs."""
    needed = [("evaluation.datasets", name, study.evaluation.split) for name in study.evaluation.datasets]
    for variant in study.variants:
        for spec in expand_presets(variant.train, study.groups):
            name, _, split = spec.partition(":")
            needed.append((f"variants.{variant.name}.train", name, split or "test"))
    for key, name, split in needed:
        try:
            dataset(name).check_files(split)
        except IrtuneError as exc:
            raise IrtuneError(f"{path}: {key}: {exc}") from None
    for variant in study.variants:
        try:
            _refuse_repeated_training_sets(expand_presets(variant.train, study.groups), dataset)
        except IrtuneError as exc:
            raise IrtuneError(f"{path}: variants.{variant.name}.train: {exc}") from None


def _refuse_repeated_training_sets(specs: Sequence[str], dataset: Callable[[str], BeirDataset]) -> None:
    """`ds` trains on its plan's train split (`default_train_split`): with `ds:train` beside it,
    training would refuse the repeated set only after the stages before it had run."""
    seen: dict[str, str] = {}
    for spec in specs:
        name, _, split = spec.partition(":")
        resolved = dataset(name)
        key = f"{resolved.name}:{split or default_train_split(resolved)}"
        if key in seen:
            raise IrtuneError(f"{seen[key]!r} and {spec!r} both train on {key}")
        seen[key] = spec

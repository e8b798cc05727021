"""The model a results file measured, and how it was trained: the training summary a results
file repeats of the model's `irtune_training.json` (and, through each base model, of its
ancestors'), typed.

Every field a report, a model card, compare or a seed recipe reads is declared, so a summary
that lacks one is refused when the results file is read (one line naming the key) instead of
becoming a blank cell. Fields irtune writes but nothing reads are kept as written (extra fields).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from irtune.results.record import Record

DevScores = dict[str, Any]  # dev selection metrics, macro and per dataset (`per_dataset`)


class ModelRecord(Record):
    name: str
    location: str | None = None
    revision: str | None = None
    weights_sha256: str
    prompts: dict[str, str] = Field(default_factory=dict)
    max_seq_length: int | None = None
    similarity: str | None = None
    contaminated: bool = False
    training: TrainingSummary | None = None  # how irtune fine-tuned it (None: a plain model)


class SplitPlanSummary(Record):
    """How a training set's dataset was split: which split selects and which is reported."""

    method: str
    seed: int | None = None
    dev: str
    eval: str


class TrainSetRecord(Record):
    spec: str
    dataset: str
    split: str
    queries: int
    subset_of_split: bool
    dropped_duplicates_of_evaluated: list[str] = Field(default_factory=list)
    positives_left_out_as_evaluated_queries: list[str] = Field(default_factory=list)
    data_files_sha256: dict[str, str] = Field(default_factory=dict)  # the dataset's identity
    public_dataset: str | None = None  # irtune.data.official: whose official files these are
    plan: SplitPlanSummary


class TrainingSettings(Record):
    """The training config as recorded (`TrainConfig`): the settings reports and cards show are
    declared, the others kept as written (a seed recipe compares them all)."""

    loss: str
    epochs: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    max_steps: int | None
    seed: int | None = None  # None: a summary written by hand (no seed recipe)
    hard_negatives: bool
    num_negatives: int
    negatives_range_min: int
    negatives_range_max: int
    relative_margin: float
    max_positives_per_query: int | None
    max_pairs_per_dataset: int | None


class DevDocuments(Record):
    """The documents dev selection scored every candidate on (irtune.training.selection)."""

    kind: str  # "full corpus" or "fixed pool"
    documents: int
    queries: int


class AlphaScores(Record):
    """Dev scores of the base/tuned interpolation weight `alpha` (0: the base, 1: the tuned model)."""

    alpha: float
    dev: DevScores


class Selection(Record):
    """Which weights shipped and why. Without dev queries only `epoch`, `alpha` and `criterion`
    are recorded: the last epoch ships."""

    epoch: int
    alpha: float
    shipped: str = "fine-tuned"  # or "base": no candidate beat the base on dev
    dev: DevScores | None = None
    base_dev: DevScores | None = None
    criterion: str
    dev_documents: dict[str, DevDocuments] = Field(default_factory=dict)
    interpolation: list[AlphaScores] = Field(default_factory=list)


class EpochPoint(Record):
    """One trained epoch: cumulative optimizer steps and dev scores (None: no dev queries)."""

    epoch: int
    steps: int
    dev: DevScores | None = None


class LossPoint(Record):
    epoch: int
    step: int
    loss: float


class TrainingSummary(Record):
    """What a results file repeats of a model's training record (`TrainingRecord.summary`)."""

    base_model: ModelRecord  # with its own summary under `training` when irtune tuned it too
    train_sets: list[TrainSetRecord]
    contaminated: bool
    leakage: list[dict[str, Any]] = Field(default_factory=list)
    protocol: str
    selected: Selection
    config: TrainingSettings
    curve: list[EpochPoint] = Field(default_factory=list)
    loss: list[LossPoint] = Field(default_factory=list)
    wall_time_s: float | None = None

    def lineage(self) -> list[TrainingSummary]:
        """This summary and its ancestors', newest first."""
        chain = [self]
        while (base := chain[-1].base_model.training) is not None:
            chain.append(base)
        return chain

    @property
    def lineage_contaminated(self) -> bool:
        """Whether any model of the chain was trained contaminated (a base model's description
        carries the mark too: records written before irtune kept the chain hold it only there)."""
        return any(s.contaminated or s.base_model.contaminated for s in self.lineage())


ModelRecord.model_rebuild()

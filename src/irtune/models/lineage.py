"""`irtune_training.json`, typed: how a fine-tuned model was made.

Written last into the model folder by `irtune train` (its presence marks a finished run)
and read whenever the model is loaded: evaluation uses it to mark contamination and to
find the model's held-out queries. A model fine-tuned from an irtune model holds its base
model's record (`base_training`, recursively): its history is that whole chain, and every
ancestor's training queries and contamination count. Reading it validates it, so a damaged
record is one line naming the field rather than a KeyError deep in an evaluation. This
module imports only pydantic and irtune's light modules (errors, leakage, results): loading a
model's record needs nothing from the training stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from irtune.data.leakage import TrainingQueries
from irtune.errors import DataError
from irtune.results.model import (
    EpochPoint,
    LossPoint,
    ModelRecord,
    Selection,
    TrainingSettings,
    TrainingSummary,
    TrainSetRecord,
)

TRAINING_FORMAT = "irtune-training-v1"
SUMMARY_KEYS = (
    "base_model",
    "train_sets",
    "contaminated",
    "leakage",
    "protocol",
    "selected",
    "config",
    "curve",  # dev scores per epoch and loss per logging step: the report charts them
    "loss",
    "wall_time_s",
)


TRAINING_METADATA = "irtune_training.json"
SPLITS_DIR = "irtune_splits"  # the honest split plans a fine-tuned model was trained under


class TrainingRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    format: str = TRAINING_FORMAT
    base_model: ModelRecord
    weights_sha256: str
    train_sets: list[TrainSetRecord]
    train_queries: list[dict[str, Any]]  # irtune.data.leakage.TrainingQueries, as JSON
    protocol: str
    contaminated: bool
    leakage: list[dict[str, Any]] = Field(default_factory=list)
    config: TrainingSettings
    selected: Selection
    curve: list[EpochPoint] = Field(default_factory=list)
    loss: list[LossPoint] = Field(default_factory=list)
    wall_time_s: float | None = None
    environment: dict[str, Any] = Field(default_factory=dict)
    files_sha256: dict[str, str] = Field(default_factory=dict)
    activation_checkpointing: bool | None = None  # None: recorded before the memory policy
    # the base model's own record when irtune fine-tuned it too (None: a plain base model, or a
    # record written before irtune kept the chain)
    base_training: TrainingRecord | None = None

    def lineage(self) -> list[TrainingRecord]:
        """This record and its ancestors', newest first."""
        chain = [self]
        while chain[-1].base_training is not None:
            chain.append(chain[-1].base_training)
        return chain

    @property
    def lineage_contaminated(self) -> bool:
        """Contaminated if any ancestor is (read from the base models' descriptions, which
        records written before `base_training` existed hold too)."""
        return self.summary().lineage_contaminated

    def lineage_train_queries(self) -> list[tuple[int, TrainingQueries]]:
        """(generation: 0 this model, 1 its base, ...; what it trained on) over the chain."""
        return [
            (generation, TrainingQueries.from_json(data))
            for generation, record in enumerate(self.lineage())
            for data in record.train_queries
        ]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def summary(self) -> TrainingSummary:
        """What a results file repeats about the model's training."""
        return TrainingSummary.model_validate(self.model_dump(mode="json", include=set(SUMMARY_KEYS)))

    @classmethod
    def read(cls, path: Path) -> TrainingRecord:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON ({exc.msg})", exc.lineno) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(path, f"cannot read the training record ({exc})") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise DataError(path, f"invalid training record ({where}: {error['msg']})") from None

"""What one training run is asked to do, built once where training starts (`train_model`) and
handed down its steps instead of a chain of positional arguments."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from irtune.results.tracking import Tracking
from irtune.retrieval.settings import ModelOptions
from irtune.training.config import TrainConfig
from irtune.training.distributed import Distributed
from irtune.training.state import WORK


@dataclass(frozen=True)
class TrainingRun:
    """Fine-tune `base_spec` on `train_specs` under `config`, writing the model to `out_dir`
    (continuing its unfinished run with `resume`). `config.mixed_precision` is `auto` until
    the base model is loaded on its device, then what runs there."""

    base_spec: str
    train_specs: tuple[str, ...]
    out_dir: Path
    config: TrainConfig
    data_dir: Path | None = None
    cache_dir: Path | None = None
    split_files: tuple[Path, ...] = ()
    resume: bool = False
    model_options: ModelOptions = field(default_factory=ModelOptions)
    tracking: Tracking = field(default_factory=Tracking)
    dist: Distributed = field(default_factory=Distributed)

    @property
    def work(self) -> Path:
        """The run's own folder of unfinished work (epochs, state, caches), removed at the end."""
        return self.out_dir / WORK

    def epoch_dir(self, epoch: int) -> Path:
        return self.work / f"epoch-{epoch}"

    def tracked_params(self) -> dict[str, Any]:
        """What a tracker logs as the run's parameters."""
        return {"base_model": self.base_spec, "train": ",".join(self.train_specs), **self.config.model_dump()}


@dataclass(frozen=True)
class WallClock:
    """A run's wall time across interruptions: what earlier processes spent (`before`, from
    the state) plus this one's since `started`."""

    before: float
    started: float

    def total(self) -> float:
        return self.before + time.perf_counter() - self.started

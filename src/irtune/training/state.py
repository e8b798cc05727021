"""What an interrupted training run has done so far, kept in `<out>/_irtune_work/state.json`.

`--resume` reads it back: epochs already trained are not trained again, and dev scores
already computed (the base's, each epoch's, each interpolation weight's) are reused. The
file is rewritten atomically after every step that would be costly to redo. Files written
before this class existed (a plain dict with the same keys) load unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from irtune.core.files import write_json_atomic
from irtune.errors import InvalidValueError, invalid
from irtune.models.lineage import TRAINING_METADATA

WORK = "_irtune_work"
STATE = "state.json"

DevScores = dict[str, Any]  # `score_dev`'s result: selection metrics, macro and per dataset


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """Absent optional fields are left out, as the dict-based state left them out."""
        return self.model_dump(exclude_none=True)


class CurvePoint(_Record):
    """One trained epoch: cumulative optimizer steps, rows left out, dev scores (if any)."""

    epoch: int
    steps: int
    rows_left_out_for_false_negatives: dict[str, int]
    dev: DevScores | None = None


class LossPoint(_Record):
    epoch: int
    step: int
    loss: float


class AlphaPoint(_Record):
    """Dev scores of base/tuned interpolation weight `alpha` (0: the base, 1: the tuned model)."""

    alpha: float
    dev: DevScores


class TrainingState(_Record):
    completed_epochs: int = 0
    curve: list[CurvePoint] = []
    loss: list[LossPoint] = []
    # sha256 of how dev was scored: scores from another setup are never reused
    selection_key: str | None = None
    base_dev: DevScores | None = None
    effective_warmup_steps: int | None = None
    steps_done: int = 0
    wall_s: float = 0.0
    interpolation: list[AlphaPoint] = []
    activation_checkpointing: bool | None = None  # as the memory policy decided (CPU)
    # what the run's numbers depend on (`irtune.training.trainer.run_settings`): a resumed run
    # continues only under the same
    settings: dict[str, str] | None = None

    @staticmethod
    def path(out_dir: Path) -> Path:
        return out_dir / WORK / STATE

    @classmethod
    def load(cls, out_dir: Path, resume: bool) -> TrainingState:
        """A fresh state, or the interrupted run's (only with `resume`)."""
        path = cls.path(out_dir)
        if (out_dir / TRAINING_METADATA).is_file():
            raise InvalidValueError(
                "{path}: already holds a finished trained model (use a new {out_dir})", path=out_dir
            )
        if not (out_dir / WORK).is_dir():
            check_new_folder(out_dir, resume)
            return cls()
        if not path.is_file():
            return cls()
        if not resume:
            raise InvalidValueError(
                "{path}: holds an unfinished training run; pass {resume} or use a new {out_dir}", path=out_dir
            )
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise InvalidValueError(
                "{path}: not JSON ({exc}); use a new {out_dir}", path=path, exc=exc
            ) from None
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "state"
            raise InvalidValueError(
                "{path}: not a training state this irtune can resume ({where}: {problem}); "
                "use a new {out_dir}",
                path=path,
                where=where,
                problem=error["msg"],
            ) from None

    def continue_under(self, settings: dict[str, str], out_dir: Path, defaults: dict[str, str]) -> None:
        """Record the run's settings, or check a resumed run's against those it started under:
        epochs trained under one learning rate and continued under another would be recorded
        as a run of the second. A state written before irtune recorded them is taken as is; a
        setting missing from the recorded ones (added to irtune since) reads as its default."""
        started = {**{k: v for k, v in defaults.items() if k in settings}, **(self.settings or settings)}
        if differ := [k for k in {*started, *settings} if started.get(k) != settings.get(k)]:
            first = min(differ)
            raise InvalidValueError(
                "{path}: the unfinished run was started under other settings ("
                + _difference(first)
                + "); resume under the same settings or use a new {out_dir}",
                path=out_dir,
                was=started.get(first),
                now=settings.get(first),
            )
        self.settings = settings

    def save(self, out_dir: Path) -> None:
        write_json_atomic(self.path(out_dir), self.to_json())


def _difference(key: str) -> str:
    """One setting's change in words: a config field as its parameter, the rest by name."""
    if key.startswith("config."):
        return "{" + key.removeprefix("config.") + "} was {was}, now {now}"
    if key.startswith("train:"):
        return f"the training data differ ({key.removeprefix('train:')})"
    if key == "train":
        return "the training sets were {was}, now {now}"
    if key == "processes":
        return "it ran in {was} processes, now {now}"
    return "the base model differs (weights, prompts, max length or similarity)"


def check_new_folder(out_dir: Path, resume: bool) -> None:
    """`out_dir` holds no training run: it must then be absent or empty (a user's files and
    another command's results are never written over), and there is nothing to resume. The
    work folder is the run's own: another rank of a distributed run may have just made it."""
    found = sorted(p.name for p in out_dir.iterdir() if p.name != WORK) if out_dir.is_dir() else []
    if found:
        raise foreign_folder(out_dir, found)
    if resume:
        raise invalid(
            "resume", "{path}: holds no unfinished training run; start one without {resume}", path=out_dir
        )


def foreign_folder(out_dir: Path, found: list[str]) -> InvalidValueError:
    shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
    return invalid(
        "out_dir",
        "{path}: holds files irtune train did not write ({shown}); choose an empty or new folder",
        path=out_dir,
        shown=shown,
    )

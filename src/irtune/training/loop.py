"""The epochs. One optimizer and one linear schedule span them all; each epoch is its own
Hugging Face trainer, so that positives are re-sampled per epoch and the model is
dev-scored in between. After each epoch its weights, the optimizer and the state are
saved: an interrupted run resumes after the last finished epoch (or from the trainer's
last checkpoint within the epoch)."""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset, DatasetDict
from sentence_transformers import SentenceTransformerTrainer
from transformers import PrinterCallback, ProgressCallback, TrainerCallback, get_linear_schedule_with_warmup

from irtune.core.files import atomic_path
from irtune.models.loading import LoadedModel
from irtune.results.tracking import release_trainer_run
from irtune.training import dev
from irtune.training.arguments import mixed_precision, training_arguments
from irtune.training.config import TrainConfig
from irtune.training.losses import build_loss
from irtune.training.memory import activation_checkpointing, checkpointed_activations, return_freed_memory
from irtune.training.pairs import epoch_pairs
from irtune.training.rows import epoch_dataset
from irtune.training.run import TrainingRun, WallClock
from irtune.training.selection import SELECTION_KEY, DevSet
from irtune.training.sources import Source
from irtune.training.state import CurvePoint, DevScores, LossPoint, TrainingState

log = logging.getLogger(__name__)


def logged_loss(trainer: SentenceTransformerTrainer, epoch: int) -> list[LossPoint]:
    """The epoch's training loss per logging step, from the Trainer's own log history: an epoch
    resumed from a step checkpoint gets the steps logged before it back with the Trainer's
    state (a callback would only see those after it)."""
    return [
        LossPoint(epoch=epoch, step=entry["step"], loss=entry["loss"])
        for entry in trainer.state.log_history
        if "loss" in entry
    ]


class LossOnTheBar(ProgressCallback):
    """The Trainer's progress bar, with the latest loss on it instead of a raw log dict
    (`{'loss': '0.61', 'grad_norm': ...}`) printed under the bar at every logging step."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)


class LossInTheLog(TrainerCallback):
    """Without a bar (the Trainer's printer): one log line per logging step, not a raw dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            log.info("step %d/%d: loss %.4f", state.global_step, state.max_steps, float(logs["loss"]))


def readable_progress(trainer: SentenceTransformerTrainer) -> None:
    """Swap the Trainer's raw log printing for a loss on its bar, or in irtune's log."""
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(LossOnTheBar())
    elif trainer.pop_callback(PrinterCallback) is not None:
        trainer.add_callback(LossInTheLog())


def steps_per_epoch(sizes: Sequence[int], config: TrainConfig) -> int:
    batches = [math.ceil(n / config.batch_size) for n in sizes]
    if config.multi_dataset_sampler == "round_robin" and len(batches) > 1:
        return min(batches) * len(batches)
    return sum(batches)


def latest_checkpoint(folder: Path) -> str | None:
    """The newest *complete* step checkpoint of an epoch. The Trainer writes a checkpoint's
    files one by one and `trainer_state.json` last, so a process killed while saving leaves a
    folder without it (or with it cut short); such a folder is removed, with a warning, and the
    one before it used (resuming from it crashed every rerun)."""
    checkpoints = sorted(
        (p for p in folder.glob("checkpoint-*") if p.name.split("-")[1].isdigit()),
        key=lambda p: int(p.name.split("-")[1]),
        reverse=True,
    )
    for checkpoint in checkpoints:
        try:
            json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
            return str(checkpoint)
        except (OSError, ValueError):
            log.warning(
                "%s: incomplete (interrupted while saving); removed, resuming from the one before", checkpoint
            )
            shutil.rmtree(checkpoint, ignore_errors=True)
    return None


@dataclass(frozen=True)
class Schedule:
    """Optimizer steps of the whole run: per epoch (per rank), in all (capped by `max_steps`)
    and of warmup (capped at a tenth of them)."""

    per_epoch: int
    total: int
    warmup: int

    @classmethod
    def of(cls, run: TrainingRun, sources: Sequence[Source]) -> Schedule:
        config = run.config
        sizes = [
            len(
                epoch_pairs(
                    s.positives, 1, config.seed, config.max_positives_per_query, config.max_pairs_per_dataset
                )
            )
            for s in sources
        ]
        per_epoch = math.ceil(steps_per_epoch(sizes, config) / run.dist.world)
        total = per_epoch * config.epochs
        if config.max_steps is not None:
            total = min(total, config.max_steps)
        return cls(per_epoch, total, min(config.warmup_steps, max(1, total // 10)))

    def logging_steps(self) -> int:
        return max(1, min(10, self.per_epoch // 50))  # enough points for a loss chart


Optimizers = tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]


def new_optimizers(run: TrainingRun, model: torch.nn.Module, schedule: Schedule) -> Optimizers:
    """AdamW and one linear schedule that spans every epoch."""
    config = run.config
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    return optimizer, get_linear_schedule_with_warmup(optimizer, schedule.warmup, schedule.total)


def resume_after(run: TrainingRun, epoch: int, model: torch.nn.Module, optimizers: Optimizers) -> None:
    """The weights, optimizer and schedule as finished epoch `epoch` left them."""
    optimizer, scheduler = optimizers
    model.load_state_dict(torch.load(run.epoch_dir(epoch) / "weights.pt", weights_only=True))
    saved = torch.load(run.epoch_dir(epoch) / "optim.pt", weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    log.info("resuming after epoch %d", epoch)


def fit(
    run: TrainingRun,
    base: LoadedModel,
    sources: Sequence[Source],
    dev_sets: list[DevSet],
    state: TrainingState,
    clock: WallClock,
) -> None:
    """Train the epochs not yet in `state`, recording each in it."""
    config, model = run.config, base.model
    schedule = Schedule.of(run, sources)
    state.effective_warmup_steps = schedule.warmup
    optimizers = new_optimizers(run, model, schedule)
    loss = build_loss(base, config, gather=run.dist.world > 1)  # before resuming: a guide copies the base
    if state.completed_epochs:
        resume_after(run, state.completed_epochs, model, optimizers)
    return_freed_memory(model.device)
    checkpointing = activation_checkpointing(config, model, mixed_precision(config, model.device))
    state.activation_checkpointing = checkpointing
    with checkpointed_activations(model, checkpointing):
        for epoch in range(state.completed_epochs + 1, config.epochs + 1):
            remaining = schedule.total - state.steps_done
            if remaining <= 0:
                break
            log.info("epoch %d/%d", epoch, config.epochs)
            built = {s.train.key: epoch_dataset(s, epoch, config) for s in sources}
            max_steps = remaining if remaining < schedule.per_epoch else -1
            trainer = train_epoch(run, base, epoch, built, loss, optimizers, max_steps, schedule)
            state.steps_done += trainer.state.global_step
            state.completed_epochs = epoch
            if not run.dist.main:
                continue
            save_epoch(run, epoch, model, optimizers)
            point = CurvePoint(
                epoch=epoch,
                steps=state.steps_done,
                rows_left_out_for_false_negatives={name: n for name, (_, n) in built.items()},
            )
            if dev_sets:
                point.dev = score_epoch(run, base, epoch, dev_sets, state)
            state.curve.append(point)
            state.loss.extend(logged_loss(trainer, epoch))
            state.wall_s = clock.total()
            state.save(run.out_dir)


def train_epoch(
    run: TrainingRun,
    base: LoadedModel,
    epoch: int,
    built: Mapping[str, tuple[Dataset, int]],
    loss: torch.nn.Module,
    optimizers: Optimizers,
    max_steps: int,
    schedule: Schedule,
) -> SentenceTransformerTrainer:
    """One epoch's Hugging Face trainer, run on the epoch's rows (`built`: per training set,
    its rows and how many were left out), from the epoch's last step checkpoint if any."""
    datasets = {name: data for name, (data, _) in built.items()}
    first = next(iter(datasets.values()))
    epoch_dir = run.epoch_dir(epoch)
    args = training_arguments(
        run, base, epoch, first.column_names, max_steps=max_steps, logging_steps=schedule.logging_steps()
    )
    with run.tracking.epoch(run.out_dir, epoch):
        trainer = SentenceTransformerTrainer(
            model=base.model,
            args=args,
            train_dataset=first if len(datasets) == 1 else DatasetDict(datasets),
            loss=loss,
            optimizers=optimizers,
        )
        readable_progress(trainer)
        trainer.train(resume_from_checkpoint=latest_checkpoint(epoch_dir))
        release_trainer_run(trainer)
    return trainer


def save_epoch(run: TrainingRun, epoch: int, model: torch.nn.Module, optimizers: Optimizers) -> None:
    """A finished epoch's weights, optimizer and schedule, to resume after it; its step
    checkpoints are then of no use."""
    optimizer, scheduler = optimizers
    epoch_dir = run.epoch_dir(epoch)
    with atomic_path(epoch_dir / "weights.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    with atomic_path(epoch_dir / "optim.pt") as tmp:
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp)
    for checkpoint in epoch_dir.glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)


def score_epoch(
    run: TrainingRun, base: LoadedModel, epoch: int, dev_sets: list[DevSet], state: TrainingState
) -> DevScores:
    """The dev scores of the weights `epoch` left, logged beside the base's."""
    base.refresh_hash()
    scores = dev.score(base, dev_sets, run.config, run.work / "cache")
    base_score = state.base_dev[SELECTION_KEY] if state.base_dev else math.nan
    log.info("epoch %d: dev %s %.4f (base %.4f)", epoch, SELECTION_KEY, scores[SELECTION_KEY], base_score)
    return scores

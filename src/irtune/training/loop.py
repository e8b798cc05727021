"""The epochs. One optimizer and one linear schedule span them all; each epoch is its own
Hugging Face trainer, so that positives are re-sampled per epoch and the model is
dev-scored in between. After each epoch its weights, the optimizer and the state are
saved: an interrupted run resumes after the last finished epoch (or from the trainer's
last checkpoint within the epoch)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import DatasetDict
from sentence_transformers import SentenceTransformerTrainer
from transformers import PrinterCallback, ProgressCallback, TrainerCallback, get_linear_schedule_with_warmup

from irtune.core.files import atomic_path
from irtune.models.loading import LoadedModel
from irtune.results.tracking import Tracking, release_trainer_run
from irtune.training import dev
from irtune.training.arguments import mixed_precision, training_arguments
from irtune.training.config import TrainConfig
from irtune.training.distributed import Distributed
from irtune.training.losses import build_loss
from irtune.training.memory import activation_checkpointing, checkpointed_activations, return_freed_memory
from irtune.training.pairs import epoch_pairs
from irtune.training.rows import epoch_dataset
from irtune.training.selection import SELECTION_KEY, DevSet
from irtune.training.sources import Source
from irtune.training.state import WORK, CurvePoint, LossPoint, TrainingState

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


def fit(
    base: LoadedModel,
    sources: Sequence[Source],
    dev_sets: list[DevSet],
    config: TrainConfig,
    out_dir: Path,
    state: TrainingState,
    dist: Distributed,
    started: float,
    wall_before: float,
    tracking: Tracking | None = None,
) -> None:
    """Train the epochs not yet in `state`, recording each in it."""
    work = out_dir / WORK
    sizes = [
        len(
            epoch_pairs(
                s.positives, 1, config.seed, config.max_positives_per_query, config.max_pairs_per_dataset
            )
        )
        for s in sources
    ]
    per_epoch = math.ceil(steps_per_epoch(sizes, config) / dist.world)
    total_steps = per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    warmup = min(config.warmup_steps, max(1, total_steps // 10))
    state.effective_warmup_steps = warmup
    model = base.model
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    loss = build_loss(base, config, gather=dist.world > 1)
    if state.completed_epochs:
        last = work / f"epoch-{state.completed_epochs}"
        model.load_state_dict(torch.load(last / "weights.pt", weights_only=True))
        optim = torch.load(last / "optim.pt", weights_only=True)
        optimizer.load_state_dict(optim["optimizer"])
        scheduler.load_state_dict(optim["scheduler"])
        log.info("resuming after epoch %d", state.completed_epochs)
    return_freed_memory(model.device)
    checkpointing = activation_checkpointing(config, model, mixed_precision(config, model.device))
    state.activation_checkpointing = checkpointing
    with checkpointed_activations(model, checkpointing):
        for epoch in range(state.completed_epochs + 1, config.epochs + 1):
            remaining = total_steps - state.steps_done
            if remaining <= 0:
                break
            log.info("epoch %d/%d", epoch, config.epochs)
            built = {s.train.key: epoch_dataset(s, epoch, config) for s in sources}
            datasets = {name: data for name, (data, _) in built.items()}
            train_data = next(iter(datasets.values())) if len(datasets) == 1 else DatasetDict(datasets)
            epoch_dir = work / f"epoch-{epoch}"
            args = training_arguments(
                base,
                config,
                epoch_dir,
                epoch,
                next(iter(datasets.values())).column_names,
                max_steps=remaining if remaining < per_epoch else -1,
                logging_steps=max(1, min(10, per_epoch // 50)),  # enough points for a loss chart
                dist=dist,
                report_to=tracking.report_to if tracking else (),
            )
            with tracking.epoch(out_dir, epoch) if tracking else contextlib.nullcontext():
                trainer = SentenceTransformerTrainer(
                    model=model,
                    args=args,
                    train_dataset=train_data,
                    loss=loss,
                    optimizers=(optimizer, scheduler),
                )
                readable_progress(trainer)
                trainer.train(resume_from_checkpoint=latest_checkpoint(epoch_dir))
                release_trainer_run(trainer)
            state.steps_done += trainer.state.global_step
            state.completed_epochs = epoch
            if not dist.main:
                continue
            with atomic_path(epoch_dir / "weights.pt") as tmp:
                torch.save(model.state_dict(), tmp)
            with atomic_path(epoch_dir / "optim.pt") as tmp:
                torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp)
            for checkpoint in epoch_dir.glob("checkpoint-*"):
                shutil.rmtree(checkpoint, ignore_errors=True)
            point = CurvePoint(
                epoch=epoch,
                steps=state.steps_done,
                rows_left_out_for_false_negatives={name: n for name, (_, n) in built.items()},
            )
            if dev_sets:
                base.refresh_hash()
                point.dev = dev.score(base, dev_sets, config, work / "cache")
                base_score = state.base_dev[SELECTION_KEY] if state.base_dev else math.nan
                log.info(
                    "epoch %d: dev %s %.4f (base %.4f)",
                    epoch,
                    SELECTION_KEY,
                    point.dev[SELECTION_KEY],
                    base_score,
                )
            state.curve.append(point)
            state.loss.extend(logged_loss(trainer, epoch))
            state.wall_s = wall_before + time.perf_counter() - started
            state.save(out_dir)

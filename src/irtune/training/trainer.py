"""`irtune train`: MNRL fine-tuning with honest splits, dev selection and interpolation.

`train_model` builds one `TrainingRun` (the request, in `run`) and hands it down the steps,
each in its own module: `plan` (which queries train, which are held out), `sources`
(positives and mined negatives per training set), `dev` (the selection queries), `loop` (the
epochs; `rows`, `losses`, `arguments` for each), `choose` (best epoch and interpolation
weight), `record` (the model folder). `state` keeps what an interrupted run has done.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from irtune.core import checks
from irtune.core.files import sha256_text
from irtune.core.locks import folder_lock
from irtune.errors import invalid
from irtune.models.loading import LoadedModel
from irtune.results.tracking import Tracking
from irtune.retrieval.settings import ModelOptions
from irtune.training import dev
from irtune.training.arguments import mixed_precision
from irtune.training.choose import BASE_WEIGHTS_SHIPPED, select_and_interpolate
from irtune.training.config import TrainConfig
from irtune.training.loop import fit
from irtune.training.plan import (
    TrainSet,
    drop_evaluated_positives,
    drop_text_duplicates,
    evaluated_documents,
    guard_leakage,
    resolve_train_sets,
)
from irtune.training.record import RunOutcome, write_model
from irtune.training.run import TrainingRun, WallClock
from irtune.training.selection import DevSet, selection_key
from irtune.training.sources import Source, prepare_sources
from irtune.training.state import WORK, TrainingState

__all__ = ["BASE_WEIGHTS_SHIPPED", "WORK", "train_model"]

log = logging.getLogger(__name__)


def train_model(
    base_spec: str,
    train_specs: Sequence[str],
    out_dir: Path,
    config: TrainConfig,
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    split_files: Sequence[Path] = (),
    resume: bool = False,
    model_options: ModelOptions | None = None,
    tracking: Tracking | None = None,
) -> Path:
    """Fine-tune `base_spec`; write a sentence-transformers model folder to `out_dir`.

    Under torchrun every rank trains (DDP; MNRL gathers in-batch negatives across
    ranks) and rank 0 alone scores dev queries and writes files.
    """
    checks.output_folder("out_dir", out_dir)
    checks.output_folder("cache_dir", cache_dir)
    check_apart_from_base(base_spec, out_dir)
    run = TrainingRun(
        base_spec,
        tuple(train_specs),
        out_dir,
        config,
        data_dir=data_dir,
        cache_dir=cache_dir,
        split_files=tuple(split_files),
        resume=resume,
        model_options=model_options or ModelOptions(),
        tracking=tracking or Tracking(),
    )
    run.tracking.check()
    with contextlib.ExitStack() as stack:
        if run.dist.main:  # under torchrun the other ranks share rank 0's folder
            stack.enter_context(folder_lock(out_dir, what="training run"))
        return _train(run)


def check_apart_from_base(base_spec: str, out_dir: Path) -> None:
    """The model folder is written in place: it must not be the base model's folder, lie
    inside it or hold it (the base's weights would be overwritten, and its record with them)."""
    base = Path(base_spec).expanduser()
    if not base.is_dir():
        return  # a hub id or an alias: not a folder of the user's
    base, out = base.resolve(), out_dir.resolve()
    if out == base:
        where = "is the base model's folder"
    elif out.is_relative_to(base):
        where = "is inside the base model's folder {base}"
    elif base.is_relative_to(out):
        where = "holds the base model's folder {base}"
    else:
        return
    raise invalid("out_dir", "{path}: " + where + "; choose a folder apart from it", path=out_dir, base=base)


def honest_train_sets(run: TrainingRun) -> tuple[list[TrainSet], dict[str, frozenset[str]]]:
    """The training sets, and per set the documents never to train on (evaluated queries);
    under the honest protocol without evaluated queries' text duplicates and positives."""
    config = run.config
    train_sets = resolve_train_sets(run.train_specs, config, run.data_dir, run.split_files)
    if config.protocol == "honest":
        train_sets = drop_text_duplicates(train_sets)
    forbidden = {t.key: evaluated_documents(t, train_sets) for t in train_sets}
    if config.protocol == "honest":
        train_sets = drop_evaluated_positives(train_sets, forbidden)
        for t in train_sets:
            if t.dropped_duplicates:
                log.warning(
                    "%s: left out %d training queries whose text is also an evaluated query",
                    t.dataset.name,
                    len(t.dropped_duplicates),
                )
            if t.excluded_positives:
                log.warning(
                    "%s: left out %d training positives that are evaluated queries",
                    t.dataset.name,
                    len(t.excluded_positives),
                )
    return train_sets, forbidden


def selection_dev_sets(
    run: TrainingRun, base: LoadedModel, sources: Sequence[Source], state: TrainingState
) -> list[DevSet]:
    """The dev sets that choose the shipped weights (rank 0 alone scores them), with the
    base's scores on them in `state`."""
    if not run.dist.main:
        return []
    dev_sets = dev.dev_sets(sources, run.config)
    key = selection_key(base.weights_sha256, dev_sets, run.config.precision)
    dev.check_selection_key(state, key, run.out_dir)
    dev.announce_selection(dev_sets, run.config)
    if dev_sets and state.base_dev is None:
        state.base_dev = dev.score(base, dev_sets, run.config, run.cache_dir)
        state.save(run.out_dir)  # a resumed run need not score the base again
    return dev_sets


# settings that move no number (checkpoint cadence, the memory policy's budget, the seed list
# a seed's own run belongs to, the encoding batch): a resumed run may change them
RESUMABLE_SETTINGS = frozenset({"save_steps", "memory_budget_gb", "seeds", "encode_batch_size"})


def run_settings(run: TrainingRun, base: LoadedModel, train_sets: Sequence[TrainSet]) -> dict[str, str]:
    """What a run's numbers depend on, by content: the base model (weights, prompts, max length,
    similarity), the training sets in order with their files and training queries, the number
    of processes (it sets the steps and the in-batch negatives), and every setting (mixed
    precision as resolved on this machine) but RESUMABLE_SETTINGS."""
    found = config_settings(run.config)
    found["train"] = json.dumps([train.key for train in train_sets])
    found["processes"] = str(run.dist.world)
    found["base_model"] = sha256_text(
        base.weights_sha256,
        json.dumps(asdict(base.prompts), sort_keys=True),
        str(base.max_seq_length),
        str(base.model.similarity_fn_name),
    )
    for train in train_sets:
        files = json.dumps(train.dataset.file_hashes(train.part.split), sort_keys=True)
        found[f"train:{train.key}"] = sha256_text(files, *sorted(train.queries()))
    return found


def config_settings(config: TrainConfig) -> dict[str, str]:
    dumped = config.model_dump(mode="json", exclude=set(RESUMABLE_SETTINGS))
    return {f"config.{name}": json.dumps(value, sort_keys=True) for name, value in dumped.items()}


def _train(run: TrainingRun) -> Path:
    started = time.perf_counter()
    state = TrainingState.load(run.out_dir, run.resume)
    clock = WallClock(state.wall_s, started)
    run.work.mkdir(parents=True, exist_ok=True)
    train_sets, forbidden = honest_train_sets(run)
    base = run.model_options.load(run.base_spec)
    # the record says what ran: `auto` resolved for this machine
    resolved = mixed_precision(run.config, base.model.device)
    run = replace(run, config=run.config.model_copy(update={"mixed_precision": resolved}))
    config = run.config
    # a setting a newer irtune added reads, in a state from before it, as its default
    state.continue_under(run_settings(run, base, train_sets), run.out_dir, config_settings(TrainConfig()))
    inherited = base.training.lineage_train_queries() if base.training else []
    leakage = guard_leakage(train_sets, config.allow_leakage, [queries for _, queries in inherited])
    base_state = {k: v.detach().clone() for k, v in base.model.state_dict().items()}
    base_description = base.describe()
    torch.manual_seed(config.seed)

    sources = prepare_sources(base, train_sets, forbidden, config, run.cache_dir)
    dev_sets = selection_dev_sets(run, base, sources, state)
    tracking = (
        run.tracking.training(run.out_dir, run.out_dir.name, run.tracked_params())
        if run.dist.main
        else contextlib.nullcontext()
    )
    with tracking as tracked:
        fit(run, base, sources, dev_sets, state, clock)
        if not run.dist.main:
            return run.out_dir
        selected = select_and_interpolate(run, base, base_state, state, dev_sets)
        dev.share_shipped_embeddings(base, dev_sets, config, run.work / "cache", run.cache_dir)
        if tracked is not None:
            tracked.log_selection(state, selected)
    contaminated = bool(leakage) or config.protocol == "seed" or base.contaminated  # inherited too
    outcome = RunOutcome(base_description, train_sets, leakage, contaminated, state, selected, clock.total())
    write_model(run, base, outcome)
    shutil.rmtree(run.work, ignore_errors=True)
    return run.out_dir

"""`irtune train`: MNRL fine-tuning with honest splits, dev selection and interpolation.

The steps, each in its own module: `plan` (which queries train, which are held out),
`sources` (positives and mined negatives per training set), `dev` (the selection
queries), `loop` (the epochs; `rows`, `losses`, `arguments` for each), `choose` (best
epoch and interpolation weight), `record` (the model folder). `state` keeps what an
interrupted run has done.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from irtune.core import checks
from irtune.core.locks import folder_lock
from irtune.errors import invalid
from irtune.results.tracking import Tracking
from irtune.retrieval.settings import ModelOptions
from irtune.training import dev
from irtune.training.arguments import mixed_precision
from irtune.training.choose import BASE_WEIGHTS_SHIPPED, select_and_interpolate
from irtune.training.config import TrainConfig
from irtune.training.distributed import Distributed
from irtune.training.loop import fit
from irtune.training.plan import (
    drop_evaluated_positives,
    drop_text_duplicates,
    evaluated_documents,
    guard_leakage,
    resolve_train_sets,
)
from irtune.training.record import write_model
from irtune.training.selection import selection_key
from irtune.training.sources import prepare_sources
from irtune.training.state import WORK, TrainingState

__all__ = ["BASE_WEIGHTS_SHIPPED", "WORK", "train_model"]

log = logging.getLogger(__name__)


def train_model(
    base_spec: str,
    train_specs: Sequence[str],
    out_dir: Path,
    config: TrainConfig,
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
    checks.output_folder("--out", out_dir)
    checks.output_folder("--cache-dir", cache_dir)
    check_apart_from_base(base_spec, out_dir)
    tracking = tracking or Tracking()
    tracking.check()
    dist = Distributed()
    with contextlib.ExitStack() as stack:
        if dist.main:  # under torchrun the other ranks share rank 0's folder
            stack.enter_context(folder_lock(out_dir, what="training run"))
        return _train(
            base_spec,
            train_specs,
            out_dir,
            config,
            data_dir,
            cache_dir,
            split_files,
            resume,
            model_options,
            dist,
            tracking,
        )


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


def _train(
    base_spec: str,
    train_specs: Sequence[str],
    out_dir: Path,
    config: TrainConfig,
    data_dir: Path | None,
    cache_dir: Path | None,
    split_files: Sequence[Path],
    resume: bool,
    model_options: ModelOptions | None,
    dist: Distributed,
    tracking: Tracking,
) -> Path:
    started = time.perf_counter()
    state = TrainingState.load(out_dir, resume)
    wall_before = state.wall_s
    (out_dir / WORK).mkdir(parents=True, exist_ok=True)
    train_sets = resolve_train_sets(train_specs, config, data_dir, split_files)
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
    base = (model_options or ModelOptions()).load(base_spec)
    # the record says what ran: `auto` resolved for this machine
    config = config.model_copy(update={"mixed_precision": mixed_precision(config, base.model.device)})
    inherited = base.training.lineage_train_queries() if base.training else []
    leakage = guard_leakage(train_sets, config.allow_leakage, [queries for _, queries in inherited])
    base_state = {k: v.detach().clone() for k, v in base.model.state_dict().items()}
    base_description = base.describe()
    torch.manual_seed(config.seed)

    sources = prepare_sources(base, train_sets, forbidden, config, cache_dir)
    dev_sets = dev.dev_sets(sources, config) if dist.main else []
    if dist.main:
        key = selection_key(base.weights_sha256, dev_sets, config.precision)
        dev.check_selection_key(state, key, out_dir)
        dev.announce_selection(dev_sets, config)
    if dev_sets and state.base_dev is None:
        state.base_dev = dev.score(base, dev_sets, config, cache_dir)
        state.save(out_dir)  # a resumed run need not score the base again
    params = {"base_model": base_spec, "train": ",".join(train_specs), **config.model_dump()}
    run = tracking.training(out_dir, out_dir.name, params) if dist.main else contextlib.nullcontext()
    with run as tracked:
        fit(base, sources, dev_sets, config, out_dir, state, dist, started, wall_before, tracking)
        if not dist.main:
            return out_dir
        selected = select_and_interpolate(base, base_state, state, dev_sets, config, out_dir)
        dev.share_shipped_embeddings(base, dev_sets, config, out_dir / WORK / "cache", cache_dir)
        if tracked is not None:
            tracked.log_selection(state, selected)
    contaminated = bool(leakage) or config.protocol == "seed" or base.contaminated  # inherited too
    write_model(
        out_dir,
        base,
        base_description,
        train_sets,
        leakage,
        contaminated,
        config,
        state,
        selected,
        wall_before + time.perf_counter() - started,
    )
    shutil.rmtree(out_dir / WORK, ignore_errors=True)
    return out_dir

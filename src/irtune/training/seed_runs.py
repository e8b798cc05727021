"""`seeds = [..]`: one training run per seed, each selected on dev as a single run is, and the
run that is best on dev shipped. `OUT/seeds/seed-N/` holds every run (all are kept: the report
measures the recipe over them); `OUT/` holds a copy of the shipped run, and `OUT/seeds.json`
says which seed ships and why."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from irtune.core.files import write_json_atomic
from irtune.core.locks import folder_lock
from irtune.errors import invalid
from irtune.models.lineage import TRAINING_METADATA, TrainingRecord
from irtune.results.seeds import shipped_by_dev_score, summary_dev_score
from irtune.training.config import TrainConfig
from irtune.training.distributed import Distributed
from irtune.training.state import WORK, check_new_folder, foreign_folder

log = logging.getLogger(__name__)

SEEDS_DIR = "seeds"
SEEDS_RECORD = "seeds.json"


def train_over_seeds(
    train_one: Callable[[TrainConfig, Path, bool], Path], config: TrainConfig, out_dir: Path, resume: bool
) -> Path:
    """Train `config` once per seed with `train_one(config, out_dir, resume)`; with `resume`, a
    run that finished is kept as it is. Returns `out_dir`, the shipped run's copy."""
    seeds = [run.seed for run in config.per_seed()]
    main = Distributed().main  # under torchrun every rank trains, rank 0 alone checks and ships
    if main:
        check_seeds_folder(out_dir, seeds, resume)
    with folder_lock(out_dir, what="training run") if main else contextlib.nullcontext():
        folders = {}
        for run in config.per_seed():
            folder = out_dir / SEEDS_DIR / f"seed-{run.seed}"
            if not (folder / TRAINING_METADATA).is_file():
                train_one(run, folder, (folder / WORK).is_dir())
            folders[run.seed] = folder
        if not main:
            return out_dir
        index, record = shipped_seed(seeds, list(folders.values()))
        log.info("ships %s", record["shipped"]["reason"])
        _ship(folders[seeds[index]], out_dir, record)
    return out_dir


def shipped_seed(seeds: Sequence[int], models: Sequence[Path]) -> tuple[int, dict[str, Any]]:
    """Which run of a recipe ships, one model folder per seed: the best on dev
    (irtune.results.seeds.shipped_by_dev_score), with the record of why:
    `{"shipped": {seed, model, reason}, "runs": [{seed, model, dev}, ...]}`."""
    scores = [summary_dev_score(TrainingRecord.read(model / TRAINING_METADATA).summary()) for model in models]
    index, reason = shipped_by_dev_score(seeds, scores)
    runs = [
        {"seed": seed, "model": str(model), "dev": score}
        for seed, model, score in zip(seeds, models, scores, strict=True)
    ]
    return index, {
        "shipped": {"seed": seeds[index], "model": str(models[index]), "reason": reason},
        "runs": runs,
    }


def check_seeds_folder(out_dir: Path, seeds: list[int], resume: bool) -> None:
    """`out_dir` is new, or holds a run over these `seeds` (continued only with `resume`):
    never a single run's model, another command's files or a run over other seeds."""
    if not (out_dir / SEEDS_DIR).is_dir():
        if (out_dir / TRAINING_METADATA).is_file():
            problem = (
                "{path}: already holds a finished trained model (not a run over seeds); use a new {out_dir}"
            )
            raise invalid("out_dir", problem, path=out_dir)
        check_new_folder(out_dir, resume)
        return
    found = _seeds_in(out_dir)
    shipped = (out_dir / SEEDS_RECORD).is_file()  # else interrupted: the seeds not trained yet are missing
    if not (found == sorted(seeds) if shipped else set(found) <= set(seeds)):
        problem = "{path}: holds a training run over seeds {found}, not {seeds}; use a new {out_dir}"
        raise invalid("out_dir", problem, path=out_dir, found=found, seeds=sorted(seeds))
    if not resume:
        state = "a finished" if (out_dir / TRAINING_METADATA).is_file() else "an unfinished"
        problem = (
            "{path}: already holds {state} training run over seeds; pass {resume} or use a new {out_dir}"
        )
        raise invalid("out_dir", problem, path=out_dir, state=state)


def _seeds_in(out_dir: Path) -> list[int]:
    """The seeds `seeds.json` lists once the run shipped; before, those of the run folders."""
    record = out_dir / SEEDS_RECORD
    if record.is_file():
        try:
            return sorted(int(run["seed"]) for run in json.loads(record.read_text(encoding="utf-8"))["runs"])
        except (ValueError, KeyError, TypeError) as exc:
            raise invalid(
                "out_dir", "{path}: not a seeds record ({exc}); use a new {out_dir}", path=record, exc=exc
            ) from None
    names = (p.name.removeprefix("seed-") for p in (out_dir / SEEDS_DIR).iterdir())
    try:
        return sorted(int(name) for name in names)
    except ValueError:
        raise foreign_folder(
            out_dir / SEEDS_DIR, sorted(p.name for p in (out_dir / SEEDS_DIR).iterdir())
        ) from None


def _ship(run: Path, out_dir: Path, seeds_record: dict[str, Any]) -> None:
    """Make `out_dir` a copy of `run`: staged in the work folder, then moved in over the earlier
    copy, whose other files go; `seeds.json`, then the training record last (it marks a
    finished model, so an interrupted ship leaves none)."""
    staging = out_dir / WORK / "ship"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(run, staging)
    (out_dir / TRAINING_METADATA).unlink(missing_ok=True)
    for item in sorted(out_dir.iterdir()):
        if item.name not in {SEEDS_DIR, SEEDS_RECORD, WORK} and not (staging / item.name).exists():
            _remove(item)
    for item in sorted(staging.iterdir()):
        if item.name != TRAINING_METADATA:
            _remove(out_dir / item.name)
            item.replace(out_dir / item.name)
    write_json_atomic(out_dir / SEEDS_RECORD, seeds_record)
    (staging / TRAINING_METADATA).replace(out_dir / TRAINING_METADATA)
    shutil.rmtree(out_dir / WORK)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)

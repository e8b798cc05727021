"""The trained model folder: sentence-transformers weights, the model card, the split plans
(`irtune eval` applies them) and `irtune_training.json`, the record of how the model was
made. A model tuned from an irtune model carries its base's record and split plans too: its
lineage. Everything is staged in the work folder and moved in place; the record is written
last, so its presence marks a finished run."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from irtune.core.files import give_usual_mode, sha256_file, write_json_atomic, write_text_atomic
from irtune.core.provenance import environment
from irtune.data.beir import content_sha256
from irtune.data.official import official_name
from irtune.data.splits import save_plan
from irtune.models.lineage import SPLITS_DIR, TRAINING_METADATA, TrainingRecord, TrainSetRecord
from irtune.models.loading import LoadedModel
from irtune.results.schema import ModelRecord
from irtune.training.card import model_card
from irtune.training.plan import TrainSet
from irtune.training.run import TrainingRun
from irtune.training.state import TrainingState


def _train_set_record(t: TrainSet) -> TrainSetRecord:
    return TrainSetRecord(
        spec=t.label,
        dataset=t.dataset.name,
        split=t.part.split,
        queries=len(t.queries()),
        subset_of_split=t.part.query_ids is not None,
        dropped_duplicates_of_evaluated=list(t.dropped_duplicates),
        positives_left_out_as_evaluated_queries=sorted(t.excluded_positives),
        data_files_sha256=t.dataset.file_hashes(t.part.split),
        public_dataset=official_name(t.dataset, t.part.split),
        plan={
            "method": t.plan.method,
            "seed": t.plan.seed,
            "dev": t.plan.dev.split,
            "eval": t.plan.eval.split,
        },
    )


def _remembered(t: TrainSet) -> dict[str, Any]:
    """The training queries, with the content hash of their queries file: the dataset's identity."""
    return replace(t.remembered(), queries_sha256=content_sha256(t.dataset.queries_path)).to_json()


def _inherited_plans(base: LoadedModel, staging: Path) -> None:
    """The base model's split plans (its own and its ancestors'), so that by default the new model
    is evaluated on the queries its whole lineage held out; its own plans are written over them."""
    if base.training is None or base.folder is None or not (base.folder / SPLITS_DIR).is_dir():
        return
    (staging / SPLITS_DIR).mkdir(parents=True, exist_ok=True)
    for plan in sorted((base.folder / SPLITS_DIR).glob("*.split.json")):
        shutil.copyfile(plan, staging / SPLITS_DIR / plan.name)


@dataclass(frozen=True)
class RunOutcome:
    """What a finished run found and chose, for its record: the base as it was described
    before training, the training sets and their leakage, the state (curve, loss) and the
    selected weights, and the run's wall time across interruptions."""

    base_description: dict[str, Any]
    train_sets: Sequence[TrainSet]
    leakage: list[dict]
    contaminated: bool
    state: TrainingState
    selected: dict[str, Any]
    wall_s: float


def write_model(run: TrainingRun, base: LoadedModel, outcome: RunOutcome) -> None:
    """The shipped weights (loaded in `base.model`), card, split plans and record, in `run.out_dir`."""
    model = base.model
    model.prompts = {
        k: v for k, v in (("query", base.prompts.query), ("document", base.prompts.document)) if v
    }
    out_dir, state, train_sets = run.out_dir, outcome.state, outcome.train_sets
    staging = run.work / "final"
    shutil.rmtree(staging, ignore_errors=True)
    model.save(str(staging))
    for written in staging.rglob("*"):  # safetensors writes its weights 0600
        if written.is_file():
            give_usual_mode(written)
    base.refresh_hash()
    record = TrainingRecord(
        base_model=ModelRecord.model_validate(outcome.base_description),
        weights_sha256=base.weights_sha256,
        train_sets=[_train_set_record(t) for t in train_sets],
        train_queries=[_remembered(t) for t in train_sets],
        protocol=run.config.protocol,
        contaminated=outcome.contaminated,
        leakage=outcome.leakage,
        config=run.config.model_dump(),
        selected=outcome.selected,
        curve=[point.to_json() for point in state.curve],
        loss=[point.to_json() for point in state.loss],
        wall_time_s=round(outcome.wall_s, 1),
        activation_checkpointing=state.activation_checkpointing,
        environment=environment(),
        base_training=base.training,
    )
    generated = staging / "README.md"  # sentence-transformers' own card: kept, irtune's facts added
    text = generated.read_text(encoding="utf-8") if generated.is_file() else None
    write_text_atomic(generated, model_card(record, text))
    _inherited_plans(base, staging)
    for t in train_sets:  # the plans travel with the model: `irtune eval` applies them
        save_plan(t.plan, staging / SPLITS_DIR / f"{t.dataset.name}.split.json")
    for item in staging.iterdir():
        target = out_dir / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
    record.files_sha256 = {p.name: sha256_file(p) for p in sorted(out_dir.glob("*.safetensors"))}
    write_json_atomic(out_dir / TRAINING_METADATA, record.to_json())  # written last: marks completion

"""`irtune train`: MNRL fine-tuning with honest splits, dev selection and interpolation."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, DatasetDict
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import MultiDatasetBatchSamplers
from sentence_transformers.sentence_transformer import losses
from transformers import TrainerCallback, get_linear_schedule_with_warmup

from irtune.data.splits import save_plan
from irtune.errors import IrtuneError
from irtune.evaluate import corpus_content_key
from irtune.fileio import atomic_path, sha256_file, write_json_atomic, write_text_atomic
from irtune.leakage import text_fingerprint
from irtune.models import SPLITS_DIR, TRAINING_METADATA, LoadedModel, ModelOptions
from irtune.progress import console
from irtune.provenance import environment
from irtune.retrieval.encode import encode_corpus_cached
from irtune.train.batching import InOrderBatchSampler, Row, conflict_free_order
from irtune.train.card import model_card
from irtune.train.config import TrainConfig
from irtune.train.negatives import MinedCandidates, mine_candidates, random_negative
from irtune.train.pairs import epoch_pairs, positives
from irtune.train.plan import (
    TrainSet,
    drop_evaluated_positives,
    drop_text_duplicates,
    evaluated_documents,
    evaluated_queries,
    guard_leakage,
    resolve_train_sets,
)
from irtune.train.selection import (
    SELECTION_KEY,
    DevSet,
    PoolSettings,
    build_dev_set,
    interpolated_state,
    score_dev,
    selection_key,
)

log = logging.getLogger(__name__)
WORK = "_irtune_work"
BASE_WEIGHTS_SHIPPED = (
    "note: the shipped weights are the base model's, unchanged: no fine-tuned candidate "
    "(epoch or interpolation) beat it on dev (alpha 0 chosen)"
)
STATE = "state.json"


@dataclass
class Source:
    """One training set with what is derived from it once per run."""

    train: TrainSet
    positives: dict[str, list[str]]
    doc_ids: list[str]
    mined: MinedCandidates | None = None
    # documents that are evaluated queries (by id where queries are documents, or by
    # normalised text in any dataset): never used as negatives
    forbidden: frozenset[str] = frozenset()


@dataclass
class LossLog(TrainerCallback):
    epoch: int = 0
    entries: list[dict[str, float]] = field(default_factory=list)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.entries.append({"epoch": self.epoch, "step": state.global_step, "loss": logs["loss"]})


def _state_path(out_dir: Path) -> Path:
    return out_dir / WORK / STATE


def _load_state(out_dir: Path, resume: bool) -> dict[str, Any]:
    path = _state_path(out_dir)
    if (out_dir / TRAINING_METADATA).is_file():
        raise IrtuneError(f"{out_dir}: already holds a finished trained model (use a new --out)")
    if path.is_file():
        if not resume:
            raise IrtuneError(
                f"{out_dir}: holds an unfinished training run; pass --resume or use a new --out"
            )
        return json.loads(path.read_text(encoding="utf-8"))
    return {"completed_epochs": 0, "curve": [], "loss": []}


def _epoch_dataset(source: Source, epoch: int, config: TrainConfig) -> tuple[Dataset, int]:
    """The epoch's rows in conflict-free batch order, and how many rows that left out."""
    dataset = source.train.dataset
    rng = random.Random(f"{config.seed}:negatives:{epoch}")
    pairs = epoch_pairs(
        source.positives, epoch, config.seed, config.max_positives_per_query, config.max_pairs_per_dataset
    )
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for pair in pairs:
        doc_ids = [pair.doc_id]
        if source.mined is not None:
            occurrence = seen.get(pair.query_id, 0)
            seen[pair.query_id] = occurrence + 1
            chosen = source.mined.negatives_for(
                pair.query_id, pair.doc_id, occurrence, config.num_negatives, config.relative_margin
            )
            excluded = set(source.positives[pair.query_id]) | source.forbidden | {pair.query_id, *chosen}
            while len(chosen) < config.num_negatives:  # too few safe hard negatives: random ones
                chosen.append(random_negative(rng, source.doc_ids, excluded))
                excluded.add(chosen[-1])
            doc_ids.extend(chosen)
        texts = (dataset.queries[pair.query_id], *(dataset.corpus[d].full_text() for d in doc_ids))
        rows.append(Row(pair.query_id, tuple(doc_ids), texts))
    relevant = {qid: set(docs) for qid, docs in source.positives.items()}
    order, left_out = conflict_free_order(rows, relevant, config.batch_size, rng)
    if left_out > len(rows) // 10:
        console.print(
            f"[yellow]{dataset.name}: {left_out} of {len(rows)} rows left out of epoch {epoch}: "
            "their documents are judged relevant to queries in every batch[/]"
        )
    names = ["anchor", "positive"]
    if source.mined is not None:
        names += (
            ["negative"]
            if config.num_negatives == 1
            else [f"negative_{i + 1}" for i in range(config.num_negatives)]
        )
    columns = {name: [rows[i].texts[k] for i in order] for k, name in enumerate(names)}
    return Dataset.from_dict(columns), left_out


def _prompts(base: LoadedModel, columns: Sequence[str]) -> dict[str, str] | None:
    prompts = {
        column: base.prompts.query if column == "anchor" else base.prompts.document for column in columns
    }
    prompts = {c: p for c, p in prompts.items() if p}
    return prompts or None


def _loss(model: LoadedModel, config: TrainConfig, gather: bool) -> torch.nn.Module:
    """MNRL (in-batch negatives); with several processes, negatives gathered from all ranks.

    The GIST variants use a frozen copy of the base model as guide: an in-batch candidate
    the guide scores above the pair's own positive is dropped from the softmax. On datasets
    whose queries share many relevant documents (NFCorpus: ~40 per query, each relevant to
    ~30 queries) plain MNRL would push those false negatives away.
    """
    if config.loss in ("gist", "cached_gist"):
        guide = copy.deepcopy(model.model).requires_grad_(False).eval()
        if config.loss == "cached_gist":
            return losses.CachedGISTEmbedLoss(
                model.model,
                guide,
                temperature=1 / config.scale,
                mini_batch_size=config.mini_batch_size,
                gather_across_devices=gather,
            )
        return losses.GISTEmbedLoss(
            model.model, guide, temperature=1 / config.scale, gather_across_devices=gather
        )
    if config.loss == "cached_mnrl":
        return losses.CachedMultipleNegativesRankingLoss(
            model.model,
            scale=config.scale,
            mini_batch_size=config.mini_batch_size,
            gather_across_devices=gather,
        )
    return losses.MultipleNegativesRankingLoss(model.model, scale=config.scale, gather_across_devices=gather)


def _steps_per_epoch(sizes: Sequence[int], config: TrainConfig) -> int:
    batches = [math.ceil(n / config.batch_size) for n in sizes]
    if config.multi_dataset_sampler == "round_robin" and len(batches) > 1:
        return min(batches) * len(batches)
    return sum(batches)


def _mixed_precision(config: TrainConfig, device: torch.device) -> dict[str, bool]:
    mode = config.mixed_precision
    if mode == "auto":
        mode = "fp16" if device.type == "cuda" else "none"
    if mode == "fp16" and device.type != "cuda":
        raise IrtuneError("mixed_precision=fp16 needs a GPU; use bf16 or none on CPU")
    return {"fp16": mode == "fp16", "bf16": mode == "bf16"}


def _latest_checkpoint(folder: Path) -> str | None:
    checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return str(checkpoints[-1]) if checkpoints else None


def _prepare_sources(
    base: LoadedModel,
    train_sets: Sequence[TrainSet],
    forbidden: Mapping[str, frozenset[str]],
    config: TrainConfig,
    cache_dir: Path | None,
) -> list[Source]:
    sources = []
    for train in train_sets:
        dataset = train.dataset
        doc_ids = list(dataset.corpus)
        texts = [dataset.corpus[d].full_text() for d in doc_ids]
        console.print(f"[dim]{dataset.name}: base-model corpus embeddings (cached after first use)[/]")
        shards = encode_corpus_cached(
            base, texts, corpus_content_key(dataset), cache_dir, config.encode_batch_size, config.precision
        )
        found = positives(dataset, train.part, train.excluded_positives)
        source = Source(train, found, doc_ids, forbidden=forbidden[train.key])
        if not source.positives:
            raise IrtuneError(f"{train.label}: no query with a relevant document to train on")
        if config.hard_negatives:
            source.mined = mine_candidates(
                base,
                dataset,
                shards,
                doc_ids,
                source.positives,
                config.negatives_range_min,
                config.negatives_range_max,
                config.precision,
                config.encode_batch_size,
                cache_dir,
            ).without(source.forbidden)
        sources.append(source)
    return sources


def _dev_sets(sources: Sequence[Source], config: TrainConfig) -> list[DevSet]:
    """One dev set per dataset (a dataset trained from two splits still has one plan),
    never holding a query any source trains on."""
    if not config.select_on_dev:
        return []
    pool = PoolSettings(
        config.selection_max_full_corpus, config.selection_bm25_k, config.selection_random_docs, config.seed
    )
    texts = frozenset(
        text_fingerprint(text)
        for source in sources
        for text in (*source.train.queries().values(), *evaluated_queries(source.train).values())
    )
    dev_sets: dict[str, DevSet] = {}
    for source in sources:
        dataset = source.train.dataset
        if dataset.name in dev_sets:
            continue
        trained = frozenset(q for s in sources if s.train.dataset.name == dataset.name for q in s.positives)
        dev = build_dev_set(
            dataset,
            source.train.plan.dev,
            pool,
            max_queries=config.max_dev_queries,
            exclude=trained,
            exclude_texts=texts,
        )
        if dev.qids:
            dev_sets[dataset.name] = dev
    return list(dev_sets.values())


def _check_selection_key(state: dict[str, Any], key: str, out_dir: Path) -> None:
    """Dev scores of an interrupted run are reused only when computed the same way."""
    started = state.get("completed_epochs") or "base_dev" in state
    if started and state.get("selection_key") != key:
        raise IrtuneError(
            f"{out_dir}: the interrupted run scored dev under another selection setup (dev queries, "
            "documents, precision or base model); use a new --out"
        )
    state["selection_key"] = key


def _announce_selection(dev_sets: Sequence[DevSet], config: TrainConfig) -> None:
    candidates = config.epochs + len({0.0, *config.interpolation_alphas} - {0.0, 1.0})
    for dev in dev_sets:
        docs = dev.documents
        console.print(
            f"[dim]{dev.dataset.name}: dev selection on {len(dev.qids)} queries over "
            f"{docs['documents']:,} documents ({docs['kind']}), the same for the base and up to "
            f"{candidates} candidates[/]"
        )


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun/accelerate launch (rank 0 of 1 when not launched)."""

    rank: int = field(default_factory=lambda: int(os.environ.get("RANK", "0")))
    world: int = field(default_factory=lambda: int(os.environ.get("WORLD_SIZE", "1")))

    @property
    def main(self) -> bool:
        return self.rank == 0


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
) -> Path:
    """Fine-tune `base_spec`; write a sentence-transformers model folder to `out_dir`.

    Under torchrun every rank trains (DDP; MNRL gathers in-batch negatives across
    ranks) and rank 0 alone scores dev queries and writes files.
    """
    started = time.perf_counter()
    dist = Distributed()
    state = _load_state(out_dir, resume)
    wall_before = state.get("wall_s", 0.0)
    (out_dir / WORK).mkdir(parents=True, exist_ok=True)
    train_sets = resolve_train_sets(train_specs, config, data_dir, split_files)
    if config.protocol == "honest":
        train_sets = drop_text_duplicates(train_sets)
    forbidden = {t.key: evaluated_documents(t, train_sets) for t in train_sets}
    if config.protocol == "honest":
        train_sets = drop_evaluated_positives(train_sets, forbidden)
        for t in train_sets:
            if t.dropped_duplicates:
                console.print(
                    f"[yellow]{t.dataset.name}: left out {len(t.dropped_duplicates)} training "
                    f"queries whose text is also an evaluated query[/]"
                )
            if t.excluded_positives:
                console.print(
                    f"[yellow]{t.dataset.name}: left out {len(t.excluded_positives)} training "
                    f"positives that are evaluated queries[/]"
                )
    leakage = guard_leakage(train_sets, config.allow_leakage)
    base = (model_options or ModelOptions()).load(base_spec)
    base_state = {k: v.detach().clone() for k, v in base.model.state_dict().items()}
    base_description = base.describe()
    torch.manual_seed(config.seed)

    sources = _prepare_sources(base, train_sets, forbidden, config, cache_dir)
    dev_sets = _dev_sets(sources, config) if dist.main else []
    if dist.main:
        _check_selection_key(state, selection_key(base.weights_sha256, dev_sets, config.precision), out_dir)
        _announce_selection(dev_sets, config)
    if dev_sets and "base_dev" not in state:
        state["base_dev"] = score_dev(base, dev_sets, config.precision, config.encode_batch_size, cache_dir)
        write_json_atomic(_state_path(out_dir), state)  # a resumed run need not score the base again
    _fit(base, sources, dev_sets, config, out_dir, state, dist, cache_dir, started, wall_before)
    if not dist.main:
        return out_dir
    selected = _select_and_interpolate(base, base_state, state, dev_sets, config, out_dir, cache_dir)
    contaminated = bool(leakage) or config.protocol == "seed"
    _write_model(
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


def _fit(
    base: LoadedModel,
    sources: Sequence[Source],
    dev_sets: list[DevSet],
    config: TrainConfig,
    out_dir: Path,
    state: dict[str, Any],
    dist: Distributed,
    cache_dir: Path | None,
    started: float,
    wall_before: float,
) -> None:
    """The epochs. One optimizer and one linear schedule span them all; each epoch is its
    own trainer so that positives are re-sampled per epoch and dev-scored in between."""
    work = out_dir / WORK
    sizes = [
        len(
            epoch_pairs(
                s.positives, 1, config.seed, config.max_positives_per_query, config.max_pairs_per_dataset
            )
        )
        for s in sources
    ]
    steps_per_epoch = math.ceil(_steps_per_epoch(sizes, config) / dist.world)
    total_steps = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    warmup = min(config.warmup_steps, max(1, total_steps // 10))
    state["effective_warmup_steps"] = warmup
    model = base.model
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    loss = _loss(base, config, gather=dist.world > 1)
    if state["completed_epochs"]:
        last = work / f"epoch-{state['completed_epochs']}"
        model.load_state_dict(torch.load(last / "weights.pt", weights_only=True))
        optim = torch.load(last / "optim.pt", weights_only=True)
        optimizer.load_state_dict(optim["optimizer"])
        scheduler.load_state_dict(optim["scheduler"])
        console.print(f"resuming after epoch {state['completed_epochs']}")
    loss_log = LossLog()
    for epoch in range(state["completed_epochs"] + 1, config.epochs + 1):
        remaining = total_steps - state.get("steps_done", 0)
        if remaining <= 0:
            break
        console.print(f"[bold]epoch {epoch}/{config.epochs}[/]")
        loss_log.epoch = epoch
        built = {s.train.key: _epoch_dataset(s, epoch, config) for s in sources}
        datasets = {name: data for name, (data, _) in built.items()}
        train_data = next(iter(datasets.values())) if len(datasets) == 1 else DatasetDict(datasets)
        epoch_dir = work / f"epoch-{epoch}"
        args = _arguments(
            base,
            config,
            epoch_dir,
            epoch,
            next(iter(datasets.values())).column_names,
            max_steps=remaining if remaining < steps_per_epoch else -1,
            logging_steps=max(1, min(10, steps_per_epoch // 4)),
            dist=dist,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=train_data,
            loss=loss,
            optimizers=(optimizer, scheduler),
            callbacks=[loss_log],
        )
        trainer.train(resume_from_checkpoint=_latest_checkpoint(epoch_dir))
        state["steps_done"] = state.get("steps_done", 0) + trainer.state.global_step
        state["completed_epochs"] = epoch
        if not dist.main:
            continue
        with atomic_path(epoch_dir / "weights.pt") as tmp:
            torch.save(model.state_dict(), tmp)
        with atomic_path(epoch_dir / "optim.pt") as tmp:
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp)
        for checkpoint in epoch_dir.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
        point: dict[str, Any] = {
            "epoch": epoch,
            "steps": state["steps_done"],
            "rows_left_out_for_false_negatives": {name: n for name, (_, n) in built.items()},
        }
        if dev_sets:
            base.refresh_hash()
            point["dev"] = score_dev(
                base, dev_sets, config.precision, config.encode_batch_size, work / "cache"
            )
            console.print(
                f"epoch {epoch}: dev {SELECTION_KEY} {point['dev'][SELECTION_KEY]:.4f} "
                f"(base {state['base_dev'][SELECTION_KEY]:.4f})"
            )
        state["curve"].append(point)
        state["loss"].extend(loss_log.entries)
        loss_log.entries = []
        state["wall_s"] = wall_before + time.perf_counter() - started
        write_json_atomic(_state_path(out_dir), state)


def _arguments(
    base: LoadedModel,
    config: TrainConfig,
    output_dir: Path,
    epoch: int,
    columns: Sequence[str],
    max_steps: int,
    logging_steps: int,
    dist: Distributed,
) -> SentenceTransformerTrainingArguments:
    on_gpu = base.model.device.type == "cuda"
    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=1,
        max_steps=max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed + epoch,
        batch_sampler=InOrderBatchSampler,  # rows arrive packed by conflict_free_order
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers(config.multi_dataset_sampler),
        prompts=_prompts(base, columns),
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        logging_steps=logging_steps,
        report_to="none",
        dataloader_pin_memory=on_gpu,
        use_cpu=not on_gpu,  # lets bf16 autocast train on CPU
        ddp_backend=None if on_gpu or dist.world == 1 else "gloo",
        # ranks must run the same number of equal-sized steps: the gathered negatives need it
        dataloader_drop_last=dist.world > 1,
        **_mixed_precision(config, base.model.device),
    )


def _select_and_interpolate(
    base: LoadedModel,
    base_state: dict[str, torch.Tensor],
    state: dict[str, Any],
    dev_sets: list[DevSet],
    config: TrainConfig,
    out_dir: Path,
    cache_dir: Path | None,
) -> dict[str, Any]:
    """Best epoch by dev NDCG@10, then the best base/tuned interpolation weight on dev."""
    work = out_dir / WORK
    curve = state["curve"]
    if not curve:
        raise IrtuneError("no epoch was trained (max_steps too small?)")
    if not dev_sets:
        epoch = curve[-1]["epoch"]
        base.model.load_state_dict(torch.load(work / f"epoch-{epoch}" / "weights.pt", weights_only=True))
        return {"epoch": epoch, "alpha": 1.0, "criterion": "last epoch (no dev queries)"}
    best = max(curve, key=lambda p: (p["dev"][SELECTION_KEY], -p["epoch"]))
    tuned_state = torch.load(work / f"epoch-{best['epoch']}" / "weights.pt", weights_only=True)
    grid: list[dict[str, Any]] = state.setdefault("interpolation", [])
    known = {g["alpha"] for g in grid}
    for alpha in sorted({0.0, *config.interpolation_alphas}):  # the base is always a candidate
        if alpha in known:
            continue
        if alpha == 0.0:
            dev = state["base_dev"]
        elif alpha == 1.0:
            dev = best["dev"]
        else:
            base.model.load_state_dict(interpolated_state(base_state, tuned_state, alpha))
            base.refresh_hash()
            dev = score_dev(base, dev_sets, config.precision, config.encode_batch_size, work / "cache")
        grid.append({"alpha": alpha, "dev": dev})
        console.print(f"interpolation alpha={alpha:.2f}: dev {SELECTION_KEY} {dev[SELECTION_KEY]:.4f}")
        write_json_atomic(_state_path(out_dir), state)
    chosen = max(grid, key=lambda g: (round(g["dev"][SELECTION_KEY], 12), -g["alpha"]))
    base.model.load_state_dict(interpolated_state(base_state, tuned_state, chosen["alpha"]))
    shipped = "fine-tuned" if chosen["alpha"] > 0 else "base"
    if chosen["alpha"] == 0:
        console.print(f"[bold yellow]{BASE_WEIGHTS_SHIPPED}[/]")
    return {
        "epoch": best["epoch"],
        "alpha": chosen["alpha"],
        "shipped": shipped,
        "dev": chosen["dev"],
        "base_dev": state["base_dev"],
        "criterion": f"dev {SELECTION_KEY}, every candidate and the base scored on the same documents",
        "dev_documents": {dev.dataset.name: dev.documents for dev in dev_sets},
        "interpolation": sorted(grid, key=lambda g: g["alpha"]),
    }


def _write_model(
    out_dir: Path,
    base: LoadedModel,
    base_description: dict[str, Any],
    train_sets: Sequence[TrainSet],
    leakage: list[dict],
    contaminated: bool,
    config: TrainConfig,
    state: dict[str, Any],
    selected: dict[str, Any],
    wall_s: float,
) -> None:
    model = base.model
    model.prompts = {
        k: v for k, v in (("query", base.prompts.query), ("document", base.prompts.document)) if v
    }
    staging = out_dir / WORK / "final"
    shutil.rmtree(staging, ignore_errors=True)
    model.save(str(staging))
    base.refresh_hash()
    metadata = {
        "format": "irtune-training-v1",
        "base_model": base_description,
        "weights_sha256": base.weights_sha256,
        "train_sets": [
            {
                "spec": t.label,
                "dataset": t.dataset.name,
                "split": t.part.split,
                "queries": len(t.queries()),
                "subset_of_split": t.part.query_ids is not None,
                "dropped_duplicates_of_evaluated": list(t.dropped_duplicates),
                "positives_left_out_as_evaluated_queries": sorted(t.excluded_positives),
                "data_files_sha256": t.dataset.file_hashes(t.part.split),
                "plan": {
                    "method": t.plan.method,
                    "seed": t.plan.seed,
                    "dev": t.plan.dev.split,
                    "eval": t.plan.eval.split,
                },
            }
            for t in train_sets
        ],
        "train_queries": [t.remembered().to_json() for t in train_sets],
        "protocol": config.protocol,
        "contaminated": contaminated,
        "leakage": leakage,
        "config": config.model_dump(),
        "selected": selected,
        "curve": state["curve"],
        "loss": state["loss"],
        "wall_time_s": round(wall_s, 1),
        "environment": environment(),
    }
    write_text_atomic(staging / "README.md", model_card(metadata))
    for t in train_sets:  # the plans travel with the model: `irtune eval` applies them
        save_plan(t.plan, staging / SPLITS_DIR / f"{t.dataset.name}.split.json")
    for item in staging.iterdir():
        target = out_dir / item.name
        if target.is_dir():
            shutil.rmtree(target)
        item.replace(target)
    metadata["files_sha256"] = {p.name: sha256_file(p) for p in sorted(out_dir.glob("*.safetensors"))}
    write_json_atomic(out_dir / TRAINING_METADATA, metadata)  # written last: marks completion

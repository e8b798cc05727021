"""How each epoch's Hugging Face trainer runs: batch size, schedule, seed, sampler,
checkpoints, mixed precision and devices, derived from the `TrainConfig`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from sentence_transformers import SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import MultiDatasetBatchSamplers

from irtune.core.provenance import native_bf16
from irtune.errors import IrtuneError
from irtune.models.loading import LoadedModel
from irtune.training.batching import InOrderBatchSampler
from irtune.training.config import TrainConfig
from irtune.training.rows import column_prompts
from irtune.training.run import TrainingRun


def training_arguments(
    run: TrainingRun,
    base: LoadedModel,
    epoch: int,
    columns: Sequence[str],
    max_steps: int,
    logging_steps: int,
) -> SentenceTransformerTrainingArguments:
    """`epoch`'s arguments: `columns` of its rows, `max_steps` (-1: the whole epoch)."""
    config, dist = run.config, run.dist
    on_gpu = base.model.device.type == "cuda"
    precision = mixed_precision(config, base.model.device)
    return SentenceTransformerTrainingArguments(
        output_dir=str(run.epoch_dir(epoch)),
        num_train_epochs=1,
        max_steps=max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed + epoch,
        batch_sampler=InOrderBatchSampler,  # rows arrive packed by conflict_free_order
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers(config.multi_dataset_sampler),
        prompts=column_prompts(base, columns),
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=1,
        logging_steps=logging_steps,
        # the Trainer's own tracker callbacks (irtune.results.tracking)
        report_to=list(run.tracking.report_to) or "none",
        run_name=f"epoch-{epoch}",
        dataloader_pin_memory=on_gpu,
        use_cpu=not on_gpu,  # lets bf16 autocast train on CPU
        ddp_backend=None if on_gpu or dist.world == 1 else "gloo",
        # ranks must run the same number of equal-sized steps: the gathered negatives need it
        dataloader_drop_last=dist.world > 1,
        fp16=precision == "fp16",
        bf16=precision == "bf16",
    )


def mixed_precision(config: TrainConfig, device: torch.device) -> str:
    """none, fp16 or bf16: `auto` is fp16 on a GPU, bf16 on a CPU that computes in bf16
    natively (AVX512-BF16, AMX: a step ~2x faster than fp32 there) and none elsewhere (where
    bf16 is emulated and slower than fp32)."""
    mode = config.mixed_precision
    if mode == "auto":
        if device.type == "cuda":
            mode = "fp16"
        else:
            mode = "bf16" if device.type == "cpu" and native_bf16() else "none"
    if mode == "fp16" and device.type != "cuda":
        raise IrtuneError("mixed_precision=fp16 needs a GPU; use bf16 or none on CPU")
    return mode

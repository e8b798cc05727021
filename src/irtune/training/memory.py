"""Training memory on CPU, where RAM is the limit. The README's quickstart (MiniLM, batch
32, query + positive + negative of up to 256 tokens, bf16 autocast) peaked at 8.9 GB RSS
without the measures below.

Activation checkpointing: each transformer layer keeps only its input in the forward and
is recomputed in the backward. Without it a step keeps the activations of 96 sequences in
all 6 layers, the attention matrices mostly (12 heads x 256 x 256 per document, with their
softmax and dropout): ~7 GB for a batch of long documents. The recompute replays the forward's
RNG and autocast state, so dropout masks, loss and gradients are unchanged; the price is the
recompute (a third of a step), so it is on only when a step's estimated activations exceed
the memory budget (`memory_budget_gb`, 4 GB by default).

The allocator: the CLI runs under mimalloc (`irtune.core.allocator`), which reuses freed memory
without faulting it in again. Under glibc (the Python API in a plain interpreter), glibc raises
its mmap threshold each time a large block is freed, so later activation tensors of up to
32 MB come from the heap, whose freed pages stay resident (~1.2 GB kept between steps); a
fixed threshold keeps blocks of 1 MiB and more mmap-ed, returned to the system when freed.
Placement only: no number changes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from irtune.core.allocator import active_allocator
from irtune.training.config import TrainConfig
from irtune.training.losses import CACHED

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 1 << 20  # blocks of 1 MiB and more are mmap-ed, and unmapped when freed


# Activations of one encoder layer per token, in units of hidden size x 2 bytes (16-bit):
# 34 for the dense parts and 5 x heads x sequence / hidden for attention (Korthikanti et al.,
# "Reducing Activation Recomputation in Large Transformer Models", 2022), times what CPU
# autocast and PyTorch's eager kernels keep beyond that, measured on the README's main job
# (`benchmarks/train_step.py`: peak RSS without and with checkpointing).
MEASURED_OVERHEAD = 1.0


def estimated_activations_gb(model: SentenceTransformer, config: TrainConfig, precision: str) -> float:
    """An upper bound of one step's activations: every text of the step padded to the model's
    max length, through every layer, kept for the backward."""
    from transformers import PreTrainedModel

    backbone = next((m for m in model.modules() if isinstance(m, PreTrainedModel)), None)
    if backbone is None:
        return 0.0
    shape: Any = backbone.config  # a BERT-like encoder's: layers, hidden size, heads
    sequence: int = model.max_seq_length or shape.max_position_embeddings
    texts = config.batch_size * (2 + (config.num_negatives if config.hard_negatives else 0))
    per_token = shape.hidden_size * (34 + 5 * shape.num_attention_heads * sequence / shape.hidden_size)
    element = 1.0 if precision in ("bf16", "fp16") else 2.0  # fp32 activations: twice the bytes
    return shape.num_hidden_layers * texts * sequence * per_token * element * MEASURED_OVERHEAD / 1e9


def activation_checkpointing(config: TrainConfig, model: SentenceTransformer, precision: str) -> bool:
    """On CPU, only when one step's estimated activations exceed `memory_budget_gb`: the
    recompute costs a third of a step. Not on a GPU (speed first), nor with a cached loss: it
    already holds one mini-batch of activations at a time."""
    if model.device.type != "cpu" or config.loss in CACHED:
        return False
    needed = estimated_activations_gb(model, config, precision)
    enabled = needed > config.memory_budget_gb
    log.info(
        "activation checkpointing %s: a step's activations estimated at %.1f GB, budget %.1f GB",
        "on" if enabled else "off",
        needed,
        config.memory_budget_gb,
    )
    return enabled


@contextmanager
def checkpointed_activations(model: SentenceTransformer, enabled: bool) -> Iterator[None]:
    """Within: the model's transformer layers are recomputed in the backward."""
    from transformers import PreTrainedModel

    backbones = [
        module
        for module in model.modules()
        if enabled and isinstance(module, PreTrainedModel) and module.supports_gradient_checkpointing
    ]
    for backbone in backbones:
        backbone.activation_checkpointing_enable({"use_reentrant": False})
    try:
        yield
    finally:
        for backbone in backbones:  # as loaded: nothing of it is saved with the model
            backbone.activation_checkpointing_disable()
            backbone.disable_input_require_grads()


def return_freed_memory(device: torch.device) -> None:
    """For CPU training under glibc: a fixed mmap threshold for this process (unless the
    environment sets one, `MALLOC_MMAP_THRESHOLD_`). Under mimalloc (the CLI's allocator,
    `irtune.core.allocator`) nothing: it keeps freed memory for reuse without faulting it in again,
    and glibc's setting would outlive training and slow every later encode of the process."""
    if device.type != "cpu" or not sys.platform.startswith("linux") or active_allocator() == "mimalloc":
        return
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        done = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    except (OSError, AttributeError):  # not glibc (musl, say): its own policy stands
        return
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused; freed training memory may stay resident")

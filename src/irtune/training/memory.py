"""Training memory on CPU, where RAM is the limit. The README's quickstart (MiniLM, batch
32, query + positive + negative of up to 256 tokens, bf16 autocast) peaked at 8.9 GB RSS;
with both measures below, at 2.4 GB, with the same weights bit for bit.

Activation checkpointing: each transformer layer keeps only its input in the forward and
is recomputed in the backward. Without it a step kept the activations of 96 sequences in
all 6 layers, the attention matrices mostly (12 heads x 256 x 256 per document, with their
softmax and dropout): ~7 GB for a batch of long documents. The recompute replays the forward's
RNG and autocast state, so dropout masks, loss and gradients are unchanged; the price is
the recompute (steps took 1.3-1.8x as long, measured on 2 busy cores).

The allocator: glibc raises its mmap threshold each time a large block is freed, so later
activation tensors of up to 32 MB come from the heap, whose freed pages stay resident
(~1.2 GB kept between steps). A fixed threshold keeps blocks of 1 MiB and more mmap-ed,
returned to the system when freed. Placement only: no number changes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from irtune.training.config import TrainConfig
from irtune.training.losses import CACHED

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD = 1 << 20  # blocks of 1 MiB and more are mmap-ed, and unmapped when freed


def activation_checkpointing(config: TrainConfig, device: torch.device) -> bool:
    """On CPU. Not on a GPU (speed first, as before), nor with a cached loss: it already
    holds one mini-batch of activations at a time."""
    return device.type == "cpu" and config.loss not in CACHED


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
    environment sets one, `MALLOC_MMAP_THRESHOLD_`)."""
    if device.type != "cpu" or not sys.platform.startswith("linux"):
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

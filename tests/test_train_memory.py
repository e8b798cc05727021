"""CPU training memory: activation checkpointing and the allocator save memory, not results."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from contextlib import contextmanager

import pytest

import irtune.training.loop as loop_module
from irtune.models.lineage import TRAINING_METADATA
from irtune.training.config import TrainConfig
from irtune.training.memory import MEASURED_OVERHEAD, activation_checkpointing, estimated_activations_gb
from irtune.training.trainer import train_model


def _checkpointing(model) -> bool:
    return any(getattr(m, "gradient_checkpointing", False) for m in model.modules())


def test_checkpointed_training_ships_the_same_weights_bit_for_bit(
    tiny_model, scifact_slice, cache_dir, tmp_path, monkeypatch
):
    """Dropout is active (p 0.1): the recompute must replay the forward's RNG and bf16 autocast."""
    real = loop_module.checkpointed_activations
    seen: list[tuple[bool, bool]] = []

    @contextmanager
    def recording(model, enabled):
        with real(model, enabled):
            seen.append((enabled, _checkpointing(model)))
            yield
        assert not _checkpointing(model)  # the model is left as it was loaded

    monkeypatch.setattr(loop_module, "checkpointed_activations", recording)
    config = TrainConfig(
        epochs=1,
        batch_size=8,
        learning_rate=5e-4,
        warmup_steps=1,
        hard_negatives=True,
        negatives_range_max=20,
        select_on_dev=False,
        mixed_precision="bf16",
    )
    metas = {}
    for enabled in (True, False):
        monkeypatch.setattr(
            loop_module, "activation_checkpointing", lambda config, model, precision, on=enabled: on
        )
        out = tmp_path / f"checkpointing-{enabled}"
        train_model(str(tiny_model), [str(scifact_slice)], out, config, cache_dir=cache_dir)
        metas[enabled] = json.loads((out / TRAINING_METADATA).read_text())
    assert seen == [(True, True), (False, False)]
    assert metas[True]["loss"] == metas[False]["loss"]
    assert metas[True]["weights_sha256"] == metas[False]["weights_sha256"]


def test_checkpointing_is_on_only_when_a_steps_activations_exceed_the_budget():
    """The README's main job (MiniLM, 32 x (query, positive, negative) of up to 256 tokens) does
    not fit 4 GB without recompute; at 64 tokens, or with a larger budget, it runs without."""
    from sentence_transformers import SentenceTransformer

    from irtune.models.loading import bundled_model_path

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    model.max_seq_length = 256
    main_job = TrainConfig(batch_size=32, hard_negatives=True, num_negatives=1)
    # 6 layers x 96 texts x 256 tokens x 384 x (34 + 5 x 12 x 256 / 384) x 2 bytes, / 2 in bf16
    assert estimated_activations_gb(model, main_job, "fp32") == pytest.approx(
        6 * 96 * 256 * 384 * 74 * 2 * MEASURED_OVERHEAD / 1e9
    )
    assert estimated_activations_gb(model, main_job, "bf16") == pytest.approx(
        estimated_activations_gb(model, main_job, "fp32") / 2
    )
    assert activation_checkpointing(main_job, model, "bf16")
    assert not activation_checkpointing(main_job.model_copy(update={"memory_budget_gb": 64.0}), model, "bf16")
    assert not activation_checkpointing(main_job.model_copy(update={"loss": "cached_mnrl"}), model, "bf16")
    model.max_seq_length = 64
    assert not activation_checkpointing(main_job, model, "bf16")


FRAGMENTING = """
import sys
import torch
from irtune.training.memory import return_freed_memory
torch.set_num_threads(1)
if sys.argv[1] == "fixed":
    return_freed_memory(torch.device("cpu"))
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) * 1024
base = rss()
torch.ones(5_000_000)  # a freed 20 MB block raises glibc's dynamic mmap threshold
blocks = [torch.ones(1_000_000) for _ in range(250)]  # 250 x 4 MB: from the heap now
blocks = blocks[::2]  # every other block freed: holes the heap cannot give back
small = [torch.ones(10) for _ in range(1000)]
del blocks
print(rss() - base)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's allocator"
)
def test_freed_training_memory_goes_back_to_the_system():
    def retained(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", FRAGMENTING, mode], capture_output=True, text=True, check=True, timeout=300
        )
        return int(done.stdout.split()[-1])

    # glibc's default keeps ~1 GB of it resident, in most runs (how the heap lies varies)
    assert any(retained("default") > 500e6 for _ in range(5))
    assert all(retained("fixed") < 100e6 for _ in range(2))

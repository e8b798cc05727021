"""Training configuration (validated with pydantic; unknown keys are errors)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DOMAIN_PRESETS: dict[str, tuple[str, ...]] = {
    "general": ("scifact", "nfcorpus", "scidocs", "quora"),
    "scientific": ("scifact", "nfcorpus", "scidocs"),
}


class TrainConfig(BaseModel):
    """Hyperparameters. Defaults follow the published study (5 epochs, batch 32, lr 1e-5,
    warmup 500, fp16 on GPU); CPU example configs use smaller values."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(5, ge=1)
    batch_size: int = Field(32, ge=2)
    learning_rate: float = Field(1e-5, gt=0)
    warmup_steps: int = Field(500, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    seed: int = 42
    max_steps: int | None = Field(None, ge=1)
    loss: Literal["mnrl", "cached_mnrl", "gist", "cached_gist"] = "mnrl"
    mini_batch_size: int = Field(32, ge=1)
    scale: float = Field(20.0, gt=0)
    max_positives_per_query: int | None = Field(None, ge=1)
    max_pairs_per_dataset: int | None = Field(None, ge=1)
    hard_negatives: bool = False
    num_negatives: int = Field(1, ge=1)
    negatives_range_min: int = Field(0, ge=0)
    negatives_range_max: int = Field(50, ge=1)
    relative_margin: float = Field(0.05, ge=0, lt=1)
    multi_dataset_sampler: Literal["round_robin", "proportional"] = "proportional"
    mixed_precision: Literal["auto", "none", "fp16", "bf16"] = "auto"
    select_on_dev: bool = True
    interpolation_alphas: list[float] = Field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    # dev selection scores the full corpus up to this size, else a model-free fixed pool
    selection_max_full_corpus: int = Field(100_000, ge=1)
    selection_bm25_k: int = Field(100, ge=1)
    selection_random_docs: int = Field(10_000, ge=0)
    max_dev_queries: int | None = Field(None, ge=1)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    encode_batch_size: int = Field(32, ge=1)
    split_seed: int = 13
    dev_fraction: float = Field(0.2, gt=0, lt=1)
    eval_fraction: float = Field(0.5, gt=0, lt=1)
    protocol: Literal["honest", "seed"] = "honest"
    allow_leakage: bool = False
    save_steps: int = Field(200, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _removed_options(cls, data: Any) -> Any:
        if isinstance(data, dict) and "selection_pool_k" in data:
            raise ValueError(
                "selection_pool_k was removed: a pool of the base model's top documents favoured "
                "the fine-tuned candidates; dev selection now scores the full corpus (or, above "
                "selection_max_full_corpus documents, a model-free pool: selection_bm25_k, "
                "selection_random_docs)"
            )
        return data

    @field_validator("interpolation_alphas")
    @classmethod
    def _alphas_in_unit_interval(cls, alphas: list[float]) -> list[float]:
        if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
            raise ValueError("interpolation_alphas must be a non-empty list of values in [0, 1]")
        return sorted(set(alphas))

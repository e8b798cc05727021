"""Training configuration (validated with pydantic; unknown keys are errors)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DOMAIN_PRESETS: dict[str, tuple[str, ...]] = {
    "general": ("scifact", "nfcorpus", "scidocs", "quora"),
    "scientific": ("scifact", "nfcorpus", "scidocs"),
}


# the losses training/losses.py builds (its table has exactly these keys: tests/test_losses.py)
LOSS_NAMES = ("mnrl", "cached_mnrl", "gist", "cached_gist", "mnrl+matryoshka", "gist+matryoshka")


def unknown_loss(name: str) -> str:
    return f"unknown loss {name!r}; choices: {', '.join(LOSS_NAMES)}"


class TrainConfig(BaseModel):
    """Hyperparameters. Defaults follow the published study (5 epochs, batch 32, lr 1e-5,
    warmup 500, fp16 on GPU); CPU example configs use smaller values."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(5, ge=1, description="Training epochs (each is dev-scored; the best is selected)")
    batch_size: int = Field(
        32, ge=2, description="Rows per batch: each query's in-batch negatives are the other rows' documents"
    )
    learning_rate: float = Field(1e-5, gt=0, description="AdamW learning rate (linear decay after warmup)")
    warmup_steps: int = Field(500, ge=0, description="Linear warmup steps, capped at 10% of all steps")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay")
    seed: int = Field(42, description="Random seed (pairs, negatives, batch order, dropout)")
    seeds: list[int] | None = Field(
        None,
        description="Train once per seed instead of once with seed: each run is selected on dev, the "
        "best on dev ships, and the gain is reported over the seeds",
    )
    max_steps: int | None = Field(None, ge=1, description="Stop after this many steps in total")
    loss: str = Field(
        "mnrl",
        description="Loss: mnrl, cached_mnrl (GradCache: bounded memory, but its dropout masks "
        "differ from mnrl's, so results differ too), gist or cached_gist (a frozen copy of the "
        "base drops in-batch false negatives), mnrl+matryoshka or gist+matryoshka (also on the "
        "first matryoshka_dims dimensions, for an evaluation truncated to them with dims)",
    )
    matryoshka_dims: list[int] | None = Field(
        None,
        description="Dimensions a +matryoshka loss trains (default: the model's and 512/256/128/64 below it)",
    )
    mini_batch_size: int = Field(32, ge=1, description="Sequences per forward pass of the cached losses")
    scale: float = Field(20.0, gt=0, description="Similarity scale of the softmax (1 / temperature)")
    max_positives_per_query: int | None = Field(
        None, ge=1, description="Per-epoch cap of positives per query (re-sampled each epoch)"
    )
    max_pairs_per_dataset: int | None = Field(
        None, ge=1, description="Per-epoch cap of (query, positive) pairs per dataset"
    )
    hard_negatives: bool = Field(False, description="Mine hard negatives with the base model")
    num_negatives: int = Field(1, ge=1, description="Hard negatives per (query, positive) row")
    negatives_range_min: int = Field(
        0, ge=0, description="Skip the base model's top ranks when mining (likely unjudged positives)"
    )
    negatives_range_max: int = Field(
        50, ge=1, description="Mine negatives from the base model's top ranks up to this one"
    )
    relative_margin: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="A mined negative must score at most its positive's score minus margin x |that score|",
    )
    multi_dataset_sampler: Literal["round_robin", "proportional"] = Field(
        "proportional", description="Batches across datasets: proportional or round_robin"
    )
    mixed_precision: Literal["auto", "none", "fp16", "bf16"] = Field(
        "auto",
        description="Training precision: auto (fp16 on GPU, bf16 on a CPU with native bf16, else none), "
        "none, fp16 or bf16",
    )
    memory_budget_gb: float = Field(
        4.0,
        gt=0,
        description="CPU training: activation checkpointing (recompute, ~1.3x a step) only when a step's "
        "estimated activations exceed this many GB",
    )
    select_on_dev: bool = Field(True, description="Select the epoch and interpolation weight on dev queries")
    interpolation_alphas: list[float] = Field(
        default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0],
        description="Base/tuned interpolation weights tried on dev (0 = the base model, always tried)",
    )
    selection_max_full_corpus: int = Field(
        100_000,
        ge=1,
        description="Dev selection scores the whole corpus up to this size, else a model-free pool",
    )
    selection_bm25_k: int = Field(
        100, ge=1, description="Above that size: BM25 top-k per dev query in the pool"
    )
    selection_random_docs: int = Field(
        10_000, ge=0, description="Above that size: seeded random documents in the pool"
    )
    max_dev_queries: int | None = Field(None, ge=1, description="Cap on dev queries used for selection")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="Encoding precision for mining and dev scoring: fp32, bf16 or fp16"
    )
    encode_batch_size: int = Field(32, ge=1, description="Encoding batch size for mining and dev scoring")
    split_seed: int = Field(13, description="Seed of the honest split plans")
    dev_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of training queries held out for selection"
    )
    eval_fraction: float = Field(
        0.5, gt=0, lt=1, description="Share of a test-only split kept for evaluation"
    )
    protocol: Literal["honest", "seed"] = Field(
        "honest", description="honest, or seed (the published study's splits; always marked contaminated)"
    )
    allow_leakage: bool = Field(
        False, description="Train even on evaluated queries (results marked contaminated)"
    )
    save_steps: int = Field(
        200, ge=1, description="Checkpoint every this many steps (an interrupted epoch resumes there)"
    )

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

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, loss: str) -> str:
        if loss not in LOSS_NAMES:
            raise ValueError(unknown_loss(loss))
        return loss

    @field_validator("matryoshka_dims")
    @classmethod
    def _positive_dims(cls, dims: list[int] | None) -> list[int] | None:
        if dims is not None and (not dims or min(dims) < 1):
            raise ValueError("matryoshka_dims must be a non-empty list of positive sizes")
        return dims

    @model_validator(mode="after")
    def _dims_need_matryoshka(self) -> TrainConfig:
        if self.matryoshka_dims is not None and not self.loss.endswith("+matryoshka"):
            raise ValueError(f"matryoshka_dims needs a +matryoshka loss (loss is {self.loss})")
        return self

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
            raise ValueError("seeds must be a non-empty list of distinct seeds")
        return seeds

    def per_seed(self) -> list[TrainConfig]:
        """One single-seed config per training run: each of `seeds`, or `seed` alone."""
        if self.seeds is None:
            return [self]
        return [self.model_copy(update={"seed": seed, "seeds": None}) for seed in self.seeds]

    @field_validator("interpolation_alphas")
    @classmethod
    def _alphas_in_unit_interval(cls, alphas: list[float]) -> list[float]:
        if not alphas or any(not 0.0 <= a <= 1.0 for a in alphas):
            raise ValueError("interpolation_alphas must be a non-empty list of values in [0, 1]")
        return sorted(set(alphas))

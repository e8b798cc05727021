"""The training losses by name: the one table `TrainConfig.loss` is checked against.

MNRL uses the other pairs of a batch as negatives; with several processes, negatives are
gathered from all ranks. The GIST variants use a frozen copy of the base model as guide:
an in-batch candidate the guide scores above the pair's own positive is dropped from the
softmax. On datasets whose queries share many relevant documents (NFCorpus: ~40 per query,
each relevant to ~30 queries) plain MNRL would push those false negatives away. The
cached variants (GradCache) hold one mini-batch of activations at a time.

sentence-transformers is imported inside the factories: the config validates names
without loading the ML stack.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING

from irtune.errors import IrtuneError
from irtune.training.config import TrainConfig, unknown_loss

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn

    from irtune.models.loading import LoadedModel

LossFactory = Callable[["LoadedModel", "TrainConfig", bool], "nn.Module"]


def _mnrl(model: LoadedModel, config: TrainConfig, gather: bool) -> nn.Module:
    from sentence_transformers.sentence_transformer import losses

    return losses.MultipleNegativesRankingLoss(model.model, scale=config.scale, gather_across_devices=gather)


def _cached_mnrl(model: LoadedModel, config: TrainConfig, gather: bool) -> nn.Module:
    from sentence_transformers.sentence_transformer import losses

    return losses.CachedMultipleNegativesRankingLoss(
        model.model,
        scale=config.scale,
        mini_batch_size=config.mini_batch_size,
        gather_across_devices=gather,
    )


def _guide(model: LoadedModel) -> SentenceTransformer:
    """A frozen copy of the base: training moves the model, never the guide."""
    guide = copy.deepcopy(model.model)
    guide.requires_grad_(False).eval()
    return guide


def _gist(model: LoadedModel, config: TrainConfig, gather: bool) -> nn.Module:
    from sentence_transformers.sentence_transformer import losses

    return losses.GISTEmbedLoss(
        model.model, _guide(model), temperature=1 / config.scale, gather_across_devices=gather
    )


def _cached_gist(model: LoadedModel, config: TrainConfig, gather: bool) -> nn.Module:
    from sentence_transformers.sentence_transformer import losses

    return losses.CachedGISTEmbedLoss(
        model.model,
        _guide(model),
        temperature=1 / config.scale,
        mini_batch_size=config.mini_batch_size,
        gather_across_devices=gather,
    )


MATRYOSHKA_STEPS = (512, 256, 128, 64)  # trained below the model's own size by default


def matryoshka_dims(model: LoadedModel, config: TrainConfig) -> list[int]:
    """`config.matryoshka_dims`, else the model's size and each of 512/256/128/64 below it."""
    full = model.model.get_embedding_dimension() or 0
    dims = config.matryoshka_dims or [full, *(d for d in MATRYOSHKA_STEPS if d < full)]
    if max(dims) > full:
        raise IrtuneError(f"matryoshka_dims {dims}: the model's embeddings have {full} dimensions")
    return sorted(set(dims), reverse=True)


def _matryoshka(inner: LossFactory) -> LossFactory:
    """The inner loss on the first d dimensions, for each configured d, summed
    (sentence-transformers' MatryoshkaLoss): the leading dimensions then work on their own."""

    def factory(model: LoadedModel, config: TrainConfig, gather: bool) -> nn.Module:
        from sentence_transformers.sentence_transformer import losses

        return losses.MatryoshkaLoss(
            model.model, inner(model, config, gather), matryoshka_dims(model, config)
        )

    return factory


LOSSES: dict[str, LossFactory] = {
    "mnrl": _mnrl,
    "cached_mnrl": _cached_mnrl,
    "gist": _gist,
    "cached_gist": _cached_gist,
    "mnrl+matryoshka": _matryoshka(_mnrl),
    "gist+matryoshka": _matryoshka(_gist),
}
CACHED = frozenset({"cached_mnrl", "cached_gist"})  # losses that hold one mini-batch at a time


def build_loss(model: LoadedModel, config: TrainConfig, gather: bool) -> nn.Module:
    """`config.loss` for `model`; `gather`: in-batch negatives from all ranks."""
    factory = LOSSES.get(config.loss)
    if factory is None:
        raise IrtuneError(unknown_loss(config.loss))
    return factory(model, config, gather)

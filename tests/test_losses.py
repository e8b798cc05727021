"""The loss table: the config's choices are its keys; an unknown name is one line."""

from __future__ import annotations

import re

import pytest

from irtune.core.configs import validated
from irtune.errors import IrtuneError
from irtune.training.config import LOSS_NAMES, TrainConfig, unknown_loss
from irtune.training.losses import LOSSES, build_loss


def test_every_loss_in_the_table_is_a_valid_config_choice():
    assert list(LOSSES) == [
        "mnrl",
        "cached_mnrl",
        "gist",
        "cached_gist",
        "mnrl+matryoshka",
        "gist+matryoshka",
    ]
    for name in LOSSES:
        assert TrainConfig(loss=name).loss == name


def test_the_config_knows_exactly_the_losses_that_are_built():
    assert list(LOSSES) == list(LOSS_NAMES)


def test_an_unknown_loss_is_one_line_listing_the_choices():
    with pytest.raises(IrtuneError) as exc:
        validated(TrainConfig, {"loss": "triplet"}, "train.toml")
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("train.toml: loss: ")
    assert message.endswith(f"unknown loss 'triplet'; choices: {', '.join(LOSSES)}")
    # a config built without validation is refused where the loss is made
    unchecked = TrainConfig.model_construct(loss="triplet")
    with pytest.raises(IrtuneError, match=f"^{re.escape(unknown_loss('triplet'))}$"):
        build_loss(None, unchecked, gather=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(LOSSES))
def test_each_loss_builds_for_a_model(tiny_model, name):
    from irtune.models.loading import load_model

    base = load_model(str(tiny_model), device="cpu")
    loss = build_loss(base, TrainConfig(loss=name, mini_batch_size=4), gather=False)
    assert loss.model is base.model


def test_matryoshka_is_the_inner_loss_summed_over_the_leading_dimensions(tiny_model):
    """An oracle: MNRL computed by hand on the first 32, 16 and 8 dimensions, summed."""
    import torch
    import torch.nn.functional as F

    from irtune.models.loading import load_model

    base = load_model(str(tiny_model), device="cpu")
    config = TrainConfig(loss="mnrl+matryoshka", matryoshka_dims=[8, 32, 16])
    loss = build_loss(base, config, gather=False)
    queries = ["aspirin and heart attacks", "vitamin d and fractures", "statins and cholesterol"]
    documents = [
        "Aspirin lowers heart attack risk.",
        "Vitamin D does not prevent fractures.",
        "Statins work.",
    ]
    features = [base.model.tokenize(queries), base.model.tokenize(documents)]
    torch.manual_seed(0)
    with torch.no_grad():
        value = loss(features, labels=None).item()
        anchors = base.model(base.model.tokenize(queries))["sentence_embedding"]
        positives = base.model(base.model.tokenize(documents))["sentence_embedding"]
    expected = 0.0
    for dims in (32, 16, 8):
        scores = F.normalize(anchors[:, :dims], dim=1) @ F.normalize(positives[:, :dims], dim=1).T
        expected += F.cross_entropy(scores * config.scale, torch.arange(3)).item()
    assert value == pytest.approx(expected, rel=1e-4)


def test_matryoshka_dims_are_checked():
    from irtune.training.losses import matryoshka_dims

    with pytest.raises(IrtuneError, match="matryoshka_dims needs a \\+matryoshka loss"):
        validated(TrainConfig, {"loss": "mnrl", "matryoshka_dims": [64]}, "t.toml")
    with pytest.raises(IrtuneError, match="matryoshka_dims must be a non-empty list"):
        validated(TrainConfig, {"loss": "mnrl+matryoshka", "matryoshka_dims": [0]}, "t.toml")

    class Model384:
        class model:
            @staticmethod
            def get_embedding_dimension() -> int:
                return 384

    default = TrainConfig(loss="mnrl+matryoshka")
    assert matryoshka_dims(Model384, default) == [384, 256, 128, 64]  # type: ignore[arg-type]
    too_big = TrainConfig(loss="gist+matryoshka", matryoshka_dims=[512, 64])
    with pytest.raises(IrtuneError, match="the model's embeddings have 384 dimensions"):
        matryoshka_dims(Model384, too_big)  # type: ignore[arg-type]

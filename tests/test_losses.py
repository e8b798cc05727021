"""The loss table: the config's choices are its keys; an unknown name is one line."""

from __future__ import annotations

import pytest

from irtune.config_errors import validated
from irtune.errors import IrtuneError
from irtune.training.config import TrainConfig
from irtune.training.losses import LOSSES, build_loss


def test_every_loss_in_the_table_is_a_valid_config_choice():
    assert list(LOSSES) == ["mnrl", "cached_mnrl", "gist", "cached_gist"]
    for name in LOSSES:
        assert TrainConfig(loss=name).loss == name


def test_an_unknown_loss_is_one_line_listing_the_choices():
    with pytest.raises(IrtuneError) as exc:
        validated(TrainConfig, {"loss": "triplet"}, "train.toml")
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("train.toml: loss: ")
    assert message.endswith("unknown loss 'triplet'; choices: mnrl, cached_mnrl, gist, cached_gist")
    # a config built without validation is refused where the loss is made
    unchecked = TrainConfig.model_construct(loss="triplet")
    with pytest.raises(
        IrtuneError, match=r"^unknown loss 'triplet'; choices: mnrl, cached_mnrl, gist, cached_gist$"
    ):
        build_loss(None, unchecked, gather=False)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(LOSSES))
def test_each_loss_builds_for_a_model(tiny_model, name):
    from irtune.models import load_model

    base = load_model(str(tiny_model), device="cpu")
    loss = build_loss(base, TrainConfig(loss=name, mini_batch_size=4), gather=False)
    assert loss.model is base.model

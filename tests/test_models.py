"""Model resolution and prompts: bundled model, family presets, config prompts, overrides."""

from __future__ import annotations

import pytest

from irtune.errors import IrtuneError
from irtune.models import BGE_QUERY, bundled_model_path, load_model, resolve_model_location, resolve_prompts


def test_bundled_aliases_resolve_to_the_installed_package():
    path = str(bundled_model_path())
    for alias in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        assert resolve_model_location(alias) == path
    assert (bundled_model_path() / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("name", "query", "document"),
    [
        ("intfloat/e5-base-v2", "query: ", "passage: "),
        ("intfloat/multilingual-e5-large", "query: ", "passage: "),
        ("BAAI/bge-base-en-v1.5", BGE_QUERY, ""),
        ("sentence-transformers/all-MiniLM-L6-v2", "", ""),
        ("sentence-transformers/all-mpnet-base-v2", "", ""),
    ],
)
def test_family_presets(name, query, document):
    prompts = resolve_prompts(name, {"query": "", "document": ""})
    assert (prompts.query, prompts.document) == (query, document)


def test_model_config_prompts_win_over_presets_and_overrides_win_over_both():
    own = resolve_prompts("intfloat/e5-base-v2", {"query": "Q: ", "passage": "P: "})
    assert (own.query, own.document, own.source) == ("Q: ", "P: ", "model config")
    forced = resolve_prompts("intfloat/e5-base-v2", {}, query_override="", document_override="D: ")
    assert (forced.query, forced.document, forced.source) == ("", "D: ", "override")


def test_local_folder_and_errors(tiny_model, tmp_path):
    model = load_model(str(tiny_model), device="cpu", max_seq_length=32, query_prompt="q: ")
    assert model.max_seq_length == 32 and model.prompts.query == "q: "
    assert len(model.weights_sha256) == 64 and model.normalize
    with pytest.raises(IrtuneError, match="not a sentence-transformers or transformers model folder"):
        resolve_model_location(str(tmp_path))
    with pytest.raises(IrtuneError, match="model folder not found"):
        resolve_model_location("./nowhere")

"""The data and generation rooms name the parameters a user set, never a command-line flag: the
API's words (`sample must be at least 1`), which the CLI turns into the flags typed (`--sample`)."""

from __future__ import annotations

import pytest

from irtune.data.beir import BeirDataset
from irtune.data.download import fetch_dataset, source_for
from irtune.data.importer import ImportRequest, import_dataset
from irtune.data.registry import resolve_dataset
from irtune.data.splits import make_plan, split_file_name
from irtune.errors import ParameterError
from irtune.generation.backends import (
    HFGenerator,
    HFSettings,
    OpenAIGenerator,
    OpenAISettings,
    make_generator,
)
from irtune.generation.filters import FilterSettings
from irtune.generation.prompts import build_prompt
from irtune.generation.synthetic import GenerationRequest, generate_synthetic

from conftest import assert_one_line_error, irtune, write_beir


def _names(raised: pytest.ExceptionInfo[ParameterError]) -> tuple[str, tuple[str, ...]]:
    return str(raised.value), raised.value.parameters


def test_split_files_are_named_after_their_dataset():
    assert split_file_name("scifact") == "scifact.split.json"


@pytest.mark.parametrize(
    ("request_fields", "message", "parameters"),
    [
        ({"sample": 0}, "sample must be at least 1, not 0", ("sample",)),
        ({"few_shot": -1}, "few_shot must be at least 0, not -1", ("few_shot",)),
        ({"round_trip_k": -2}, "round_trip_k must be at least 0, not -2", ("round_trip_k",)),
        ({"filters": FilterSettings(0, 40)}, "min_words must be at least 1, not 0", ("min_words",)),
        (
            {"filters": FilterSettings(9, 4)},
            "min_words must be at most max_words (9 > 4)",
            ("min_words", "max_words"),
        ),
    ],
)
def test_a_generation_request_names_its_fields(request_fields, message, parameters):
    with pytest.raises(ParameterError) as raised:
        GenerationRequest(**request_fields)
    assert _names(raised) == (message, parameters)


def test_generator_settings_name_their_fields():
    url = "http://127.0.0.1:9/v1"
    for settings, message in (
        ({"api": "edit"}, "api must be chat or completions, not 'edit'"),
        ({"concurrency": 0}, "concurrency must be at least 1, not 0"),
        ({"max_tokens": 0}, "max_tokens must be at least 1, not 0"),
        ({"max_retries": -1}, "max_retries must be at least 0, not -1"),
        ({"timeout_s": -1.0}, "timeout_s must be a positive number of seconds, not -1.0"),
    ):
        with pytest.raises(ParameterError) as raised:
            OpenAIGenerator(OpenAISettings(url, "m", **settings))
        assert str(raised.value) == message
    for hf, message in (
        ({"batch_size": 0}, "batch_size must be at least 1, not 0"),
        ({"max_new_tokens": 0}, "max_new_tokens must be at least 1, not 0"),
        ({"device": "banana"}, "device 'banana': not a device (cpu, cuda, cuda:N, mps)"),
    ):
        with pytest.raises(ParameterError) as raised:
            HFGenerator(HFSettings("x", **hf))
        assert str(raised.value) == message


def test_generator_specs_name_the_generator_and_its_model():
    cases = [
        (
            ("openai:http://h/v1",),
            {},
            "generator openai:URL needs generator_model NAME (the endpoint's model name)",
        ),
        (
            ("hf:x",),
            {"model": "m"},
            "generator_model names an endpoint's model; for hf: put the model in the spec",
        ),
        (("openai:ftp://h",), {"model": "m"}, "generator openai:ftp://h: the URL must start with http(s)://"),
    ]
    for args, options, message in cases:
        with pytest.raises(ParameterError) as raised:
            make_generator(*args, **options)
        assert str(raised.value) == message
    with pytest.raises(ParameterError) as raised:
        make_generator("gpt4")
    assert str(raised.value).startswith("generator 'gpt4': use openai:URL")
    with pytest.raises(ParameterError) as raised:
        build_prompt(domain="legal", examples=[], prompt_file=None)
    assert str(raised.value) == "domain must be one of general, scientific, not 'legal'"


@pytest.fixture()
def tiny(tmp_path):
    corpus = {f"d{i}": {"text": f"document number {i}"} for i in range(6)}
    queries = {f"q{i}": f"question {i}" for i in range(6)}
    return write_beir(tmp_path / "tiny", corpus, queries, {"test": {q: {f"d{q[1:]}": 1} for q in queries}})


def test_generation_names_the_round_trip_and_restart(tiny):
    with pytest.raises(ParameterError) as raised:
        generate_synthetic(BeirDataset(tiny), None, GenerationRequest())  # type: ignore[arg-type]
    assert _names(raised) == (
        "the round-trip filter needs a base model (base_model; or round_trip_k 0 to skip it)",
        ("base_model", "round_trip_k"),
    )


def test_split_fractions_are_named(tiny):
    for fractions, parameter in (
        ({"dev_fraction": 1.0}, "dev_fraction"),
        ({"eval_fraction": 0.0}, "eval_fraction"),
    ):
        with pytest.raises(ParameterError) as raised:
            make_plan(BeirDataset(tiny), **fractions)
        assert raised.value.parameters == (parameter,)


def test_datasets_and_downloads_name_their_parameters(tmp_path):
    with pytest.raises(ParameterError) as raised:
        resolve_dataset("nosuch", tmp_path)
    assert str(raised.value).endswith("or set data_dir / IRTUNE_DATA_DIR)")
    with pytest.raises(ParameterError) as raised:
        source_for("tiny", "nowhere")
    assert str(raised.value) == "mirror 'nowhere': neither a folder nor a URL (http://, https://, file://)"
    with pytest.raises(ParameterError) as raised:
        fetch_dataset("mystery", tmp_path / "data", show_progress=False)
    assert str(raised.value) == 'no checksum known for "mystery": pass md5 or sha256'


def test_imports_name_their_parameters(tmp_path):
    docs = tmp_path / "docs.csv"
    docs.write_text("id,words\nd1,one\n")
    cases = [
        (ImportRequest("x"), "nothing to import: give corpus FILE, pairs FILE or ir_datasets ID"),
        (
            ImportRequest("x", corpus=docs, qrels={"test": docs}),
            "qrels need queries FILE (the query texts their ids name)",
        ),
        (ImportRequest("x", corpus=docs), f"{docs}: no text column (looked for text, body"),
    ]
    for request, message in cases:
        with pytest.raises(ParameterError) as raised:
            import_dataset(request, tmp_path / "x")
        assert str(raised.value).startswith(message)
    assert str(raised.value).endswith(": name it with columns text=NAME")
    docs.write_text("id,text\nd1,one\n")
    import_dataset(ImportRequest("x", corpus=docs), tmp_path / "x")
    with pytest.raises(ParameterError) as raised:
        import_dataset(ImportRequest("x", corpus=docs), tmp_path / "x")
    assert str(raised.value) == f"{tmp_path / 'x'} already exists (pass force to replace it)"


def test_the_cli_names_the_flags_of_these_parameters(tmp_path):
    data = ["--data-dir", str(tmp_path / "data")]
    docs = tmp_path / "docs.csv"
    docs.write_text("id,text\nd1,one\n")
    assert irtune("data", "import", "own", "--corpus", str(docs), *data).returncode == 0
    for args, message in (
        (("data", "fetch", "mystery", *data), 'no checksum known for "mystery": pass --md5 or --sha256'),
        (("data", "fetch", "tiny", "--mirror", "nowhere", "--md5", "0" * 32, *data), "--mirror 'nowhere':"),
        (("data", "info", "nosuch", *data), "give a BEIR folder path, or set --data-dir / IRTUNE_DATA_DIR)"),
        (("data", "import", "own", "--corpus", str(docs), *data), "own already exists (pass --force to"),
    ):
        assert_one_line_error(irtune(*args), message)


class SilentGenerator:
    """Answers every prompt with nothing: every generation is filtered out."""

    batch_size = 4

    def describe(self) -> dict[str, str]:
        return {"backend": "silent"}

    def generate(self, prompts, on_reply=None) -> list[str]:
        return ["" for _ in prompts]


def test_a_generation_filtered_out_whole_names_restart(tiny):
    request = GenerationRequest(round_trip_k=0, few_shot=0)
    with pytest.raises(ParameterError) as raised:
        generate_synthetic(BeirDataset(tiny), SilentGenerator(), request)
    assert _names(raised) == (
        f"tiny: every generated query was filtered out (empty: 6); the raw generations are kept in "
        f"{tiny / '.irtune-generate'} (restart generates them again)",
        ("restart",),
    )

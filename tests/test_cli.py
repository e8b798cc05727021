"""The command line: one-line errors with exit code 2 and no traceback; data commands."""

from __future__ import annotations

import hashlib

import pytest
from typer.testing import CliRunner

from irtune.cli.app import app

from conftest import assert_one_line_error, irtune, write_beir
from test_download import GOOD

runner = CliRunner()


def test_malformed_corpus_line_is_reported_by_eval(tmp_path):
    root = write_beir(tmp_path / "bad", {"d1": {"text": "x"}}, {"q1": "y"}, {"test": {"q1": {"d1": 1}}})
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{"_id": "d2", "text": "y"\n')
    result = irtune("eval", "--retriever", "bm25", "-d", str(root))
    assert_one_line_error(result, f"{root / 'corpus.jsonl'}:2: malformed JSON")


def test_missing_split_and_unknown_options_fail_cleanly(tmp_path):
    root = write_beir(tmp_path / "ok", {"d1": {"text": "x"}}, {"q1": "y"}, {"test": {"q1": {"d1": 1}}})
    assert_one_line_error(
        irtune("eval", "--retriever", "bm25", "-d", str(root), "--split", "dev"),
        'split "dev" not found (available: test)',
    )
    assert_one_line_error(
        irtune("eval", "--retriever", "sparse", "-d", str(root)), "--retriever must be one of dense, bm25"
    )
    assert_one_line_error(
        irtune("eval", "-d", str(root)), "dense retrieval needs a --model: minilm, a hub id or a folder"
    )


def test_bad_training_config_names_the_key(tmp_path):
    config = tmp_path / "t.toml"
    config.write_text("epochs = 2\nlearning_rat = 1e-5\n")
    assert_one_line_error(
        irtune(
            "train",
            "-m",
            "minilm",
            "--train",
            "scifact",
            "--out",
            str(tmp_path / "o"),
            "--config",
            str(config),
        ),
        "learning_rat: unknown key",
    )


def test_data_info_and_fetch_from_a_local_mirror(tmp_path):
    root = write_beir(
        tmp_path / "d",
        {"d1": {"text": "a b c"}, "d2": {"title": "t", "text": "d"}},
        {"q1": "x y"},
        {"test": {"q1": {"d1": 2, "d2": 0}}},
    )
    result = runner.invoke(app, ["data", "info", str(root)])
    assert result.exit_code == 0, result.output
    assert "corpus: 2 docs" in result.output and "0: 1, 2: 1" in result.output
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.zip").write_bytes(GOOD)
    md5 = hashlib.md5(GOOD).hexdigest()
    result = runner.invoke(
        app,
        [
            "data",
            "fetch",
            "tiny",
            "--mirror",
            str(mirror),
            "--md5",
            md5,
            "--data-dir",
            str(tmp_path / "data"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "tiny" / "qrels" / "test.tsv").is_file()


@pytest.mark.parametrize("command", [["eval", "--help"], ["train", "--help"], ["run", "--help"]])
def test_help(command):
    result = runner.invoke(app, command)
    assert result.exit_code == 0 and "Usage" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["eval"], "Missing option '-d'"),
        (["--bogus"], "No such option: --bogus"),
        (["eval", "-d", "scifact", "--batch-size", "abc"], "Invalid value for '--batch-size'"),
        (["nosuchcmd"], "No such command 'nosuchcmd'"),
    ],
)
def test_usage_errors_print_usage_and_one_error_line_and_exit_2(args, expected):
    result = irtune(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.lstrip().startswith("Usage: ")
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and expected in errors[0], result.stderr


def test_every_training_option_is_a_flag_validated_by_the_config(tmp_path, monkeypatch):
    """Flags are generated from TrainConfig: nothing re-lists its fields, a flag overrides
    the TOML file, and a bad value is one line naming the option."""
    from irtune import api
    from irtune.training.config import TrainConfig

    help_text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    for name in TrainConfig.model_fields:
        assert "--" + name.replace("_", "-") in help_text
    seen = {}

    def fake_train(model, datasets, **kwargs):
        seen.update(kwargs, model=model, datasets=datasets)
        return tmp_path / "model"

    monkeypatch.setattr(api, "train", fake_train)
    config = tmp_path / "t.toml"
    config.write_text('epochs = 2\nloss = "gist"\n')
    common = [
        "train",
        "-m",
        "minilm",
        "--train",
        "scifact",
        "--out",
        str(tmp_path / "o"),
        "--config",
        str(config),
    ]
    flags = ["--epochs", "3", "--interpolation-alphas", "0,0.5", "--hard-negatives", "--max-steps", "7"]
    result = runner.invoke(app, [*common, *flags])
    assert result.exit_code == 0, result.output
    chosen = seen["config"]
    assert (chosen.epochs, chosen.loss, chosen.max_steps) == (3, "gist", 7)
    assert chosen.interpolation_alphas == [0.0, 0.5] and chosen.hard_negatives
    assert chosen.learning_rate == TrainConfig().learning_rate  # not given: the default
    bad = irtune(*common, "--epochs", "0")
    assert_one_line_error(bad, "epochs: Input should be greater than or equal to 1")
    assert_one_line_error(irtune(*common, "--loss", "triplet"), "loss:")


def test_an_error_message_keeps_its_square_brackets(tmp_path):
    """Errors print through rich: a path like `runs/[draft]` must not be read as markup."""
    missing = tmp_path / "[draft]" / "scifact"
    done = irtune("eval", "-m", "minilm", "-d", str(missing))
    assert_one_line_error(done, "[draft]")

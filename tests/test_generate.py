"""Synthetic queries: the OpenAI-compatible backend against a local server (faults included),
the in-process backend on a tiny model, filters, resumption, and the honest use of the
`synthetic` split (train and select: yes; evaluate: refused)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from openai_stub import Fault, answer_for, serve_openai

from irtune.data.beir import GENERATION_JOURNALS, BeirDataset
from irtune.errors import DataError, IrtuneError
from irtune.generation.backends import (
    HFGenerator,
    HFSettings,
    OpenAIGenerator,
    OpenAISettings,
    make_generator,
)
from irtune.generation.filters import FilterSettings, QueryFilter, clean_generation
from irtune.generation.prompts import TEMPLATES, build_prompt
from irtune.generation.synthetic import (
    SYNTHETIC_MANIFEST,
    GenerationRequest,
    few_shot_examples,
    generate_synthetic,
)

from conftest import assert_one_line_error, irtune

PROMPT = "Below is a passage.\n\nPassage: Vitamin D deficiency causes rickets in children\n\nQuestion:"


def _openai(server, **settings: Any) -> OpenAIGenerator:
    options = {"timeout_s": 1.0, "max_retries": 3, "concurrency": 2, **settings}
    return OpenAIGenerator(OpenAISettings(server.url, "stub-model", **options))


def test_openai_backend_answers_in_prompt_order_with_the_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    prompts = [f"Passage: topic{i} alpha beta gamma" for i in range(9)]
    with serve_openai() as server:
        generator = _openai(server, api_key_env="MY_KEY", concurrency=4)
        assert generator.generate(prompts) == [answer_for(p) for p in prompts]
        completions = _openai(server, api="completions", api_key_env="MY_KEY").generate(prompts[:2])
    assert completions == [answer_for(p) for p in prompts[:2]]
    assert {r["headers"]["authorization"] for r in server.requests} == {"Bearer sk-secret-123"}
    assert [r["path"] for r in server.requests][-2:] == ["/v1/completions"] * 2
    assert server.requests[0]["body"]["model"] == "stub-model"
    assert server.requests[0]["body"]["temperature"] == 0.0
    assert "sk-secret" not in json.dumps(generator.describe())


@pytest.mark.parametrize(
    ("faults", "requests"),
    [
        ([Fault(500, b'{"error": "boom"}')], 2),
        ([Fault(503, b"{}"), Fault(502, b"{}")], 3),
        ([Fault(429, b'{"error": "slow down"}', {"Retry-After": "1"})], 2),
        ([Fault(200, b'{"choices": [{"mess')], 2),  # malformed JSON
        ([Fault(200, b'{"choices": []}')], 2),  # valid JSON, no answer in it
        ([Fault(delay_s=2.5)], 2),  # a timeout
    ],
)
def test_openai_backend_retries_faults_then_succeeds(faults, requests):
    with serve_openai(faults) as server:
        assert _openai(server, concurrency=1).generate([PROMPT]) == [answer_for(PROMPT)]
    assert len(server.requests) == requests


def test_openai_backend_honours_retry_after():
    with serve_openai([Fault(429, b"{}", {"Retry-After": "2"})]) as server:
        import time

        started = time.perf_counter()
        _openai(server, concurrency=1).generate([PROMPT])
        assert time.perf_counter() - started >= 1.9


def test_openai_backend_gives_up_with_one_line():
    with serve_openai([Fault(500, b"{}")] * 10) as server:
        with pytest.raises(IrtuneError, match=r"HTTP 500 .*after 4 attempts"):
            _openai(server, concurrency=1).generate([PROMPT])
        assert len(server.requests) == 4
    with serve_openai([Fault(401, b'{"error": {"message": "bad key"}}')]) as server:
        with pytest.raises(IrtuneError, match="HTTP 401") as caught:
            _openai(server).generate([PROMPT])
        assert len(server.requests) == 1 and "\n" not in str(caught.value)


def test_generator_specs_are_checked():
    with pytest.raises(IrtuneError, match="needs generator_model NAME"):
        make_generator("openai:http://127.0.0.1:9/v1")
    for bad in ({"timeout_s": float("nan")}, {"timeout_s": -1.0}, {"max_tokens": 0}, {"concurrency": 0}):
        with pytest.raises(IrtuneError, match=r"^(timeout_s|max_tokens|concurrency) must be"):
            make_generator("openai:http://127.0.0.1:9/v1", model="m", openai_settings=bad)
    with pytest.raises(IrtuneError, match="use openai:URL"):
        make_generator("gpt4")
    with pytest.raises(IrtuneError, match=r"openai:localhost:8000/v1: the URL must start with http\(s\)://"):
        make_generator("openai:localhost:8000/v1", model="m")
    for url, problem in (
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://127.0.0.1:99999/v1", "Port out of range 0-65535"),
        ("http:///v1", "no host"),
    ):
        with pytest.raises(IrtuneError) as caught:
            make_generator(f"openai:{url}", model="m")
        assert str(caught.value) == f"generator openai:{url}: not a URL irtune can use ({problem})"


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory) -> Path:
    """A 2-layer random Llama (Gemma's family) with MiniLM's WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from irtune.models.loading import bundled_model_path

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_in_process_backend_batches_with_left_padding(tiny_causal_lm):
    generator = HFGenerator(HFSettings(str(tiny_causal_lm), batch_size=4, max_new_tokens=6, device="cpu"))
    prompts = ["a short prompt", "a much longer prompt about vitamin d and the bones of children", "x"]
    batched = generator.generate(prompts)
    alone = [generator.generate([p])[0] for p in prompts]
    assert batched == alone  # padding on the left: every row continues its own last token
    assert all(isinstance(t, str) and t for t in batched)
    described = generator.describe()
    assert described["backend"] == "hf" and described["weights"].startswith("folder weights sha256")


def test_clean_generation_and_filters():
    assert (
        clean_generation('\n\n  Question: "What causes rickets?"\nAbstract: more') == "What causes rickets?"
    )
    assert clean_generation("1. Relevant query: vitamin d and bones") == "vitamin d and bones"
    assert clean_generation("   \n") == ""
    document = "Vitamin D deficiency causes rickets in young children across the world."
    keep = QueryFilter(
        FilterSettings(3, 12), [TEMPLATES["scientific"], "an example query here"], ["A real query?"]
    )
    assert keep.reason_to_drop("does vitamin d prevent rickets", document) is None
    assert keep.reason_to_drop("Does vitamin D prevent rickets?", document) == "duplicate"
    assert keep.reason_to_drop("rickets", document) == "shorter than 3 words"
    assert keep.reason_to_drop(" ".join(["word"] * 13), document) == "longer than 12 words"
    assert (
        keep.reason_to_drop("a scientific abstract followed by a question", document) == "repeats the prompt"
    )
    assert keep.reason_to_drop("An example query here", document) == "repeats the prompt"
    assert (
        keep.reason_to_drop("deficiency causes rickets in young children", document) == "copies the document"
    )
    assert keep.reason_to_drop("a real query", document) == "equals a real query"


class ScriptedGenerator:
    """Answers with `answer_for(prompt)`; fails after `fail_after` prompts (an interruption)."""

    def __init__(self, batch_size: int = 4, fail_after: int | None = None) -> None:
        self.batch_size = batch_size
        self.fail_after = fail_after
        self.prompts: list[str] = []

    def describe(self) -> dict[str, Any]:
        return {"backend": "scripted"}

    def generate(self, prompts: Sequence[str], on_reply: Any = None) -> list[str]:
        if self.fail_after is not None and len(self.prompts) + len(prompts) > self.fail_after:
            raise KeyboardInterrupt
        self.prompts.extend(prompts)
        texts = [answer_for(p) for p in prompts]
        if on_reply is not None:
            for index, text in enumerate(texts):
                on_reply(index, text)
        return texts


@pytest.fixture()
def scifact_copy(scifact_slice, tmp_path) -> Path:
    return Path(shutil.copytree(scifact_slice, tmp_path / "scifact"))


def test_generation_resumes_where_it_stopped(scifact_copy):
    request = GenerationRequest(sample=30, round_trip_k=0, few_shot=0)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic(BeirDataset(scifact_copy), ScriptedGenerator(fail_after=10), request)
    journal = next((scifact_copy / GENERATION_JOURNALS).glob("*.jsonl"))
    assert len(journal.read_text().splitlines()) == 8  # two whole batches of 4 were kept
    with open(journal, "a") as handle:
        handle.write('{"doc": "cut short by a ki')  # a kill during a write
    assert not (scifact_copy / SYNTHETIC_MANIFEST).exists()
    rerun = ScriptedGenerator()
    manifest = generate_synthetic(BeirDataset(scifact_copy), rerun, request)
    assert len(rerun.prompts) == 22  # only the documents not yet generated
    assert manifest.documents == 30 and manifest.generation["generated_now"] == 22
    again = ScriptedGenerator()
    generate_synthetic(
        BeirDataset(scifact_copy),
        again,
        GenerationRequest(sample=30, round_trip_k=0, few_shot=0, restart=True),
    )
    assert len(again.prompts) == 30  # --restart forgets the journal
    bigger = ScriptedGenerator()
    generate_synthetic(
        BeirDataset(scifact_copy),
        bigger,
        GenerationRequest(sample=40, round_trip_k=0, few_shot=0, force=True),
    )
    assert len(bigger.prompts) == 10  # the 30 of the seeded sample are reused


def test_synthetic_split_is_written_filtered_and_recorded(scifact_copy):
    dataset = BeirDataset(scifact_copy)
    real = dataset.real_queries
    checked: dict[str, str] = {}

    def round_trip(queries: dict[str, str], k: int) -> dict[str, list[str]]:
        checked.update(queries)  # every second query "misses" its document
        return {q: (list(dataset.corpus)[:k] if i % 2 else []) for i, q in enumerate(queries)}

    request = GenerationRequest(sample=40, round_trip_k=len(dataset.corpus), few_shot=2, seed=3)
    manifest = generate_synthetic(
        dataset, ScriptedGenerator(), request, round_trip=round_trip, round_trip_model="m"
    )
    fresh = BeirDataset(scifact_copy)
    synthetic = fresh.qrels("synthetic")
    assert len(synthetic) == manifest.kept == len(checked) // 2
    assert manifest.round_trip is not None and manifest.round_trip["checked"] == len(checked)
    assert sum(manifest.dropped.values()) + manifest.kept == manifest.documents == 40
    assert manifest.keep_rate == round(manifest.kept / 40, 4)
    assert fresh.real_queries == real  # real queries untouched
    for qid, judged in synthetic.items():
        assert qid.startswith("syn-") and list(judged.values()) == [1]
        (doc,) = judged
        assert fresh.queries[qid] == clean_generation(
            answer_for("Document: " + fresh.corpus[doc].full_text())
        )
    # few-shot examples are real training queries of the honest plan, never evaluated ones
    assert manifest.prompt["source"] == "few-shot (2 real training pairs)"
    test_queries = set(dataset.qrels("test"))
    assert not set(manifest.prompt["example_query_ids"]) & test_queries
    assert set(manifest.prompt["example_query_ids"]) <= set(dataset.qrels("train"))


def test_few_shot_examples_come_from_the_plan_train_part_only(scifact_slice):
    from irtune.data.splits import make_plan

    dataset = BeirDataset(scifact_slice)
    plan = make_plan(dataset)
    examples = few_shot_examples(dataset, 100, seed=0)
    assert plan.train.query_ids is not None and {e.query_id for e in examples} == set(plan.train.query_ids)


def test_prompt_file_needs_a_document_slot(tmp_path):
    bad = tmp_path / "prompt.txt"
    bad.write_text("Write a question.")
    with pytest.raises(IrtuneError, match=r"prompt.txt: the prompt must contain \{document\}"):
        build_prompt(domain="general", prompt_file=bad)
    good = tmp_path / "good.txt"
    good.write_text("Doc {with braces}: {document}\nQ:")
    assert build_prompt(domain="general", prompt_file=good).render("x y") == "Doc {with braces}: x y\nQ:"


def test_evaluating_a_synthetic_split_is_refused(scifact_copy):
    generate_synthetic(
        BeirDataset(scifact_copy), ScriptedGenerator(), GenerationRequest(sample=20, round_trip_k=0)
    )
    result = irtune("eval", "-d", str(scifact_copy), "--retriever", "bm25", "--split", "synthetic")
    assert_one_line_error(result, "holds generated queries")


def test_train_on_synthetic_selects_on_real_dev_queries(scifact_copy, tiny_model, tmp_path, caplog):
    from irtune.training.config import TrainConfig
    from irtune.training.plan import resolve_train_sets

    generate_synthetic(
        BeirDataset(scifact_copy), ScriptedGenerator(), GenerationRequest(sample=60, round_trip_k=0)
    )
    (train,) = resolve_train_sets([f"{scifact_copy}:synthetic"], TrainConfig())
    assert train.part.split == "synthetic" and train.part.query_ids is None
    assert train.plan.dev.split == "train" and train.plan.eval.split == "test"  # real queries select, report
    assert "synthetic queries train" in train.plan.method


def test_unlabelled_corpus_trains_on_synthetic_and_selects_on_a_synthetic_slice(
    scifact_slice, tiny_model, tmp_path
):
    import irtune as irtune_api
    from irtune.api import import_data, train

    docs = tmp_path / "docs.jsonl"
    docs.write_text((scifact_slice / "corpus.jsonl").read_text())
    dataset = import_data("unlabelled", corpus=docs, data_dir=tmp_path / "data")
    assert dataset.queries == {}
    with serve_openai() as server:
        result = irtune(
            "generate", "-d", "unlabelled", "--generator", f"openai:{server.url}", "--model", "stub",
            "--sample", "80", "--base-model", str(tiny_model), "--round-trip-k", "200",
            "--data-dir", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "cache"),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stdout and "--train unlabelled:synthetic" in result.stdout
    manifest = json.loads((tmp_path / "data" / "unlabelled" / SYNTHETIC_MANIFEST).read_text())
    assert manifest["generator"]["backend"] == "openai" and manifest["round_trip"]["k"] == 200
    model_dir = train(
        str(tiny_model),
        ["unlabelled:synthetic"],
        out_dir=tmp_path / "model",
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        config={"epochs": 1, "batch_size": 8, "interpolation_alphas": [1.0]},
    )
    record = json.loads((Path(model_dir) / "irtune_training.json").read_text())
    (train_set,) = record["train_sets"]
    assert train_set["spec"].startswith("unlabelled:synthetic") and train_set["split"] == "synthetic"
    assert "dev is a held-out slice of them" in train_set["plan"]["method"]
    assert train_set["plan"]["dev"] == "synthetic"
    assert "synthetic/queries.jsonl" in train_set["data_files_sha256"]
    with pytest.raises(IrtuneError, match="reports no real queries"):  # nothing real to evaluate it on
        irtune_api.evaluate(
            str(model_dir), [str(tmp_path / "data" / "unlabelled")], cache_dir=tmp_path / "cache"
        )
    plan = json.loads((Path(model_dir) / "irtune_splits" / "unlabelled.split.json").read_text())
    dev, trained = set(plan["dev"]["query_ids"]), set(plan["train"]["query_ids"])
    assert dev and trained and not dev & trained and plan["eval"]["query_ids"] == []


def test_data_info_marks_the_generated_split(scifact_copy, tmp_path):
    from typer.testing import CliRunner

    from irtune.cli.app import app

    request = GenerationRequest(sample=12, round_trip_k=0)
    manifest = generate_synthetic(BeirDataset(scifact_copy), ScriptedGenerator(), request)
    result = CliRunner().invoke(app, ["data", "info", str(scifact_copy)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "synthetic (generated: train/select only)" in result.output
    assert f"(+ {manifest.kept} generated)" in result.output
    corpus_only = tmp_path / "docs"
    corpus_only.mkdir()
    (corpus_only / "corpus.jsonl").write_text('{"_id": "1", "text": "a"}\n')
    (corpus_only / "queries.jsonl").write_text("")
    result = CliRunner().invoke(app, ["data", "info", str(corpus_only)])
    assert result.exit_code == 0 and "queries: 0" in result.output, result.output
    assert "no qrels: nothing is judged yet" in result.output and "split" not in result.output


def test_real_and_generated_queries_are_judged_apart(scifact_copy):
    generate_synthetic(
        BeirDataset(scifact_copy), ScriptedGenerator(), GenerationRequest(sample=8, round_trip_k=0)
    )
    generated = next(iter(BeirDataset(scifact_copy).synthetic_queries))
    real_test = next(iter(BeirDataset(scifact_copy).qrels("test")))
    with open(scifact_copy / "qrels" / "test.tsv", "a") as handle:
        handle.write(f"{generated}\t{next(iter(BeirDataset(scifact_copy).corpus))}\t1\n")
    with pytest.raises(DataError, match=f'test.tsv: judges the generated query "{generated}"'):
        BeirDataset(scifact_copy).qrels("test")
    with open(scifact_copy / "synthetic" / "qrels.tsv", "a") as handle:
        handle.write(f"{real_test}\t{next(iter(BeirDataset(scifact_copy).corpus))}\t1\n")
    with pytest.raises(DataError, match=f'qrels.tsv: judges the real query "{real_test}"'):
        BeirDataset(scifact_copy).qrels("synthetic")


def test_generated_queries_do_not_change_whether_queries_are_documents(tmp_path):
    from irtune.data.splits import queries_are_documents

    from conftest import write_beir

    words = [a + b for a in "abcdefgh" for b in "xyz"]  # answer_for keeps letters only: distinct words
    corpus = {f"{i}": {"text": f"{words[i]} question about things"} for i in range(24)}
    queries = {f"{i}": f"{words[i]} question about things" for i in range(12)}
    root = write_beir(
        tmp_path / "quoraish", corpus, queries, {"test": {q: {str(int(q) + 12): 1} for q in queries}}
    )
    assert queries_are_documents(BeirDataset(root))
    generate_synthetic(
        BeirDataset(root),
        ScriptedGenerator(),
        GenerationRequest(round_trip_k=0, filters=FilterSettings(min_words=1)),
    )
    assert len(BeirDataset(root).synthetic_queries) > len(queries)
    assert queries_are_documents(BeirDataset(root))


def test_few_shot_examples_count_as_seen_by_training(scifact_copy, tmp_path):
    from irtune.data.splits import SplitPart, make_plan, save_plan
    from irtune.training.config import TrainConfig
    from irtune.training.plan import guard_leakage, resolve_train_sets

    request = GenerationRequest(sample=20, round_trip_k=0, few_shot=2)
    manifest = generate_synthetic(BeirDataset(scifact_copy), ScriptedGenerator(), request)
    examples = set(manifest.prompt["example_query_ids"])
    dataset = BeirDataset(scifact_copy)
    (train,) = resolve_train_sets([f"{scifact_copy}:synthetic"], TrainConfig())
    assert examples <= train.remembered().ids  # recorded with the model as seen
    assert guard_leakage([train], allow=False) == []  # the default plan never evaluates them
    # a plan that evaluates an example query is refused
    plan = make_plan(dataset)
    leaky = type(plan)(
        plan.dataset, "hand-made", plan.seed, plan.train, plan.dev, SplitPart("train", frozenset(examples))
    )
    save_plan(leaky, tmp_path / "leaky.split.json")
    (train,) = resolve_train_sets(
        [f"{scifact_copy}:synthetic"], TrainConfig(), split_files=[tmp_path / "leaky.split.json"]
    )
    with pytest.raises(IrtuneError, match="refusing to train"):
        guard_leakage([train], allow=False)


def test_endpoint_urls_are_recorded_without_credentials():
    from irtune.generation.backends import redacted

    assert (
        redacted("https://user:secret@api.example.com:8443/v1?key=abc") == "https://api.example.com:8443/v1"
    )
    assert redacted("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


# --- a misbehaving endpoint (issue 25)


def _finishes(call: Any, within_s: float) -> Any:
    """`call()`'s result or exception, run in a thread; fails the test if it is still running
    after `within_s` (a generous bound: the old client read a dripping reply for minutes)."""
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within_s)
    assert not thread.is_alive(), f"still running after {within_s} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_timeout_is_a_deadline_for_the_whole_request():
    with serve_openai([Fault(drip_s=0.3)]) as server:  # a byte every 0.3 s: the reply takes a minute
        generator = _openai(server, timeout_s=1.5, max_retries=0, concurrency=1)
        with pytest.raises(IrtuneError) as caught:
            _finishes(lambda: generator.generate([PROMPT]), within_s=15)
    assert str(caught.value) == (
        f"{server.url}: no complete reply within the 1.5 s deadline (timeout_s) after 1 attempt"
    )
    assert len(server.requests) == 1


@pytest.fixture(scope="module")
def tls_certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the OpenAI stub's address), and its key."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "irtune test stub")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / "cert.pem", folder / "key.pem"


def test_timeout_is_a_deadline_over_https_too(tls_certificate, monkeypatch):
    """TLS wraps the connected socket in another object (the first one is detached): the
    deadline must cut the connection whatever object reads from it."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_certificate[0]))  # trusted by this test's client only
    with serve_openai([Fault(), Fault(drip_s=0.3)], certificate=tls_certificate) as server:
        generator = _openai(server, timeout_s=1.5, max_retries=0, concurrency=1)
        assert generator.generate([PROMPT]) == [answer_for(PROMPT)]  # a normal reply, over HTTPS
        with pytest.raises(IrtuneError) as caught:
            _finishes(lambda: generator.generate([PROMPT]), within_s=15)
    assert server.url.startswith("https://") and str(caught.value) == (
        f"{server.url}: no complete reply within the 1.5 s deadline (timeout_s) after 1 attempt"
    )
    assert len(server.requests) == 2


def test_a_reply_over_the_size_cap_is_refused_and_not_retried():
    huge = json.dumps({"choices": [{"message": {"content": "x" * (1 << 20)}}]}).encode()
    with serve_openai([Fault(body=huge)] * 3) as server:
        with pytest.raises(IrtuneError) as caught:
            _openai(server, concurrency=1).generate([PROMPT])
        assert len(server.requests) == 1
    assert str(caught.value) == f"{server.url}: reply larger than 1 MiB (1,048,576 bytes); refused"
    with serve_openai() as server:  # the cap is a setting; a normal reply is well under it
        assert _openai(server, max_reply_bytes=4096).generate([PROMPT]) == [answer_for(PROMPT)]


def test_the_api_key_is_redacted_from_errors_and_logs(monkeypatch, caplog):
    monkeypatch.setenv("MY_KEY", "sk-hostile-7f3a")
    with serve_openai([Fault(401, echo_authorization=True)]) as server, pytest.raises(IrtuneError) as caught:
        _openai(server, api_key_env="MY_KEY").generate([PROMPT])
    assert "sk-hostile-7f3a" not in str(caught.value)
    assert "HTTP 401" in str(caught.value) and "Bearer [redacted]" in str(caught.value)
    caplog.set_level("DEBUG")
    with (
        serve_openai([Fault(500, echo_authorization=True)] * 2) as server,
        pytest.raises(IrtuneError, match=r"HTTP 500 .*after 2 attempts") as caught,
    ):
        _openai(server, api_key_env="MY_KEY", max_retries=1, concurrency=1).generate([PROMPT])
    assert "sk-hostile-7f3a" not in str(caught.value) + caplog.text
    assert "retrying" in caplog.text


@pytest.mark.parametrize(
    ("body", "api", "problem"),
    [
        (b'{"choices": [{"mess', "chat", 'not JSON: {"choices": [{"mess'),
        (b'{"choices": [{"message": {"content": "\xff\xfe bad"}}]}', "chat", "not UTF-8 text"),
        (b"[1, 2]", "chat", "a JSON array, not an object"),
        (b'{"choices": []}', "chat", "no choices in it"),
        (b'{"choices": {"text": "q"}}', "completions", "choices is a JSON object, not an array"),
        (
            b'{"error": {"message": "model not found"}}',
            "chat",
            "no choices; the server says: model not found",
        ),
        (b'{"error": "overloaded"}', "completions", "no choices; the server says: overloaded"),
        (b'{"choices": [{"message": {"content": null}}]}', "chat", "its first choice has no message.content"),
        (b'{"choices": [{"text": "q"}]}', "chat", "its first choice has no message.content"),
        (
            b'{"choices": [{"message": {"content": ["a"]}}]}',
            "chat",
            "message.content is a JSON array, not text",
        ),
        (b'{"choices": [{"text": 7}]}', "completions", "text is a JSON number, not text"),
    ],
)
def test_a_malformed_reply_is_described_in_words(body: bytes, api: str, problem: str):
    with serve_openai([Fault(body=body)]) as server, pytest.raises(IrtuneError) as caught:
        _openai(server, api=api, max_retries=0, concurrency=1).generate([PROMPT])
    assert str(caught.value) == f"{server.url}: malformed reply ({problem}) after 1 attempt"


def test_a_failed_connection_is_described_in_words():
    import socket

    with socket.socket() as closed:  # a port nothing listens on once this socket is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    generator = OpenAIGenerator(OpenAISettings(url, "m", max_retries=0, concurrency=1))
    with pytest.raises(IrtuneError) as caught:
        generator.generate([PROMPT])
    assert str(caught.value) == f"{url}: cannot connect ([Errno 111] Connection refused) after 1 attempt"


def test_the_error_a_server_sends_instead_of_a_reply_is_shown_redacted(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-hostile-7f3a")
    with serve_openai([Fault(echo_authorization=True)]) as server, pytest.raises(IrtuneError) as caught:
        _openai(server, api_key_env="MY_KEY", max_retries=0).generate([PROMPT])
    assert str(caught.value) == (
        f"{server.url}: malformed reply (no choices; the server says: invalid header Bearer [redacted]) "
        "after 1 attempt"
    )


def test_a_retry_after_beyond_the_longest_wait_fails_at_once_counting_the_requests_made():
    with serve_openai([Fault(429, b'{"error": "quota"}', {"Retry-After": "3600"})]) as server:
        with pytest.raises(IrtuneError) as caught:
            _finishes(lambda: _openai(server, max_retries=1, concurrency=1).generate([PROMPT]), 15)
        assert len(server.requests) == 1
    assert str(caught.value) == (
        f'{server.url}: HTTP 429 ({{"error": "quota"}}) after 1 attempt: the server asks to wait '
        "3600 s (Retry-After), longer than the 120 s irtune waits; try again later"
    )


def test_journals_of_paid_replies_are_deleted_only_with_force(scifact_copy):
    journals = scifact_copy / GENERATION_JOURNALS
    journals.mkdir()
    old_corpus = journals / "0123456789abcdef-0123456789abcdef.jsonl"
    old_corpus.write_text('{"doc": "1", "raw": "x"}\n')
    request = GenerationRequest(sample=6, round_trip_k=0, few_shot=0)
    generate_synthetic(BeirDataset(scifact_copy), ScriptedGenerator(), request)
    (first,) = set(journals.glob("*.jsonl")) - {old_corpus}
    assert old_corpus.is_file()  # another corpus content's replies: kept without force
    other = GenerationRequest(sample=6, round_trip_k=0, few_shot=0, domain="scientific", force=True)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic(BeirDataset(scifact_copy), ScriptedGenerator(fail_after=0), other)
    assert set(journals.glob("*.jsonl")) == {old_corpus, first}  # an interrupted run deletes none
    generate_synthetic(BeirDataset(scifact_copy), ScriptedGenerator(), other)
    (current,) = journals.glob("*.jsonl")  # replacing the split (force) deletes the others
    assert current != first and len(current.read_text().splitlines()) == 6


def test_a_split_of_other_settings_is_replaced_only_with_force(scifact_copy):
    """A run with other settings used to replace the split and delete the journal of its paid
    replies, saying so in an INFO line only: now it is refused before any request."""
    from irtune.errors import ParameterError

    generate_synthetic(
        BeirDataset(scifact_copy),
        ScriptedGenerator(),
        GenerationRequest(sample=6, round_trip_k=0, few_shot=0),
    )
    split = scifact_copy / "synthetic"
    kept = json.loads((split / "manifest.json").read_text())["kept"]
    before = {
        p: p.read_bytes() for p in [*split.iterdir(), *(scifact_copy / GENERATION_JOURNALS).glob("*.jsonl")]
    }
    refused = {
        "sample, seed": (GenerationRequest(sample=3, seed=5, round_trip_k=0, few_shot=0), ""),
        "prompt": (
            GenerationRequest(sample=6, round_trip_k=0, few_shot=0, domain="scientific"),
            " and delete 1 generation journal of other settings (6 paid replies)",
        ),
    }
    for differ, (request, journals) in refused.items():
        generator = ScriptedGenerator()
        with pytest.raises(ParameterError) as caught:
            generate_synthetic(BeirDataset(scifact_copy), generator, request)
        assert str(caught.value) == (
            f"{split}: holds {kept} generated queries made with other settings ({differ}); generating "
            f"now would replace them{journals}; pass force to do so, or copy the dataset folder to keep them"
        )
        assert generator.prompts == []
        assert {p: p.read_bytes() for p in before} == before
    same = ScriptedGenerator()  # the same settings again: nothing to lose, nothing asked
    generate_synthetic(
        BeirDataset(scifact_copy), same, GenerationRequest(sample=6, round_trip_k=0, few_shot=0)
    )
    assert same.prompts == []
    forced = GenerationRequest(sample=3, seed=5, round_trip_k=0, few_shot=0, force=True)
    assert generate_synthetic(BeirDataset(scifact_copy), ScriptedGenerator(), forced).documents == 3


def test_a_full_disk_names_the_file(scifact_copy, monkeypatch):
    import errno
    import os

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    request = GenerationRequest(sample=4, round_trip_k=0, few_shot=0)
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", full)
        with pytest.raises(OSError) as caught:
            generate_synthetic(BeirDataset(scifact_copy), ScriptedGenerator(), request)
    (journal,) = (scifact_copy / GENERATION_JOURNALS).glob("*.jsonl")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(journal)

    import irtune.data.beir_writer as beir_writer

    def full_qrels(file: Path, *args: Any, **kwargs: Any) -> Any:
        if Path(file).name.startswith(".qrels.tsv."):  # the temporary file it is written to
            raise OSError(errno.ENOSPC, "No space left on device")
        return open(file, *args, **kwargs)

    monkeypatch.setattr(beir_writer, "open", full_qrels, raising=False)
    with pytest.raises(OSError) as caught:
        generate_synthetic(BeirDataset(scifact_copy), ScriptedGenerator(), request)
    assert caught.value.filename == str(scifact_copy / "synthetic" / "qrels.tsv")
    assert not (scifact_copy / "synthetic").exists()

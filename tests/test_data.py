"""BEIR loading: real files, and one-line errors naming file, line and problem."""

from __future__ import annotations

import gzip
import logging

import pytest

from irtune.data.beir import BeirDataset, load_qrels
from irtune.data.info import dataset_info
from irtune.data.registry import resolve_dataset
from irtune.errors import DataError, IrtuneError

from conftest import shared_dataset, write_beir

DOCS = {"d1": {"title": "T1", "text": "first"}, "d2": {"title": "", "text": "second"}}
QUERIES = {"q1": "one", "q2": "two"}
QRELS = {"test": {"q1": {"d1": 1}, "q2": {"d2": 2, "d1": 0}}}


def test_shared_scifact_loads_with_the_documented_counts():
    ds = BeirDataset(shared_dataset("scifact"))
    assert len(ds.corpus) == 5183 and len(ds.queries) == 1109
    assert len(ds.qrels("test")) == 300 and sum(len(j) for j in ds.qrels("test").values()) == 339
    assert len(ds.qrels("train")) == 809
    assert ds.splits() == ["test", "train"]
    doc = next(iter(ds.corpus.values()))
    assert doc.full_text() == f"{doc.title} {doc.text}".strip()


def test_shared_nfcorpus_grades_and_info():
    info = dataset_info(BeirDataset(shared_dataset("nfcorpus")))
    assert info["splits"]["test"]["queries"] == 323
    assert set(info["splits"]["test"]["grades"]) == {1, 2}
    assert info["splits"]["test"]["relevant_per_query"] == pytest.approx(38.2, abs=0.1)


@pytest.mark.parametrize("gz", [False, True])
def test_plain_and_gzipped_jsonl_load_identically(tmp_path, gz):
    ds = BeirDataset(write_beir(tmp_path / "d", DOCS, QUERIES, QRELS, gzip_files=gz))
    assert ds.corpus["d1"].full_text() == "T1 first"
    assert ds.corpus["d2"].full_text() == "second"
    assert ds.qrels("test") == {"q1": {"d1": 1}, "q2": {"d2": 2, "d1": 0}}
    assert ds.relevant_queries("test") == ["q1", "q2"]


def _corrupt(tmp_path, name, content: bytes):
    root = write_beir(tmp_path / "d", DOCS, QUERIES, QRELS)
    (root / name).write_bytes(content)
    return BeirDataset(root)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": \n', r"corpus.jsonl:2: malformed JSON"),
        (b'{"_id": "d1", "text": "a"}\n{"text": "b"}\n', r"corpus.jsonl:2: missing \"_id\""),
        (b'{"_id": "d1"}\n', r"corpus.jsonl:1: missing \"text\""),
        (
            b'{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n',
            r"corpus.jsonl:2: duplicate id \"d1\" \(first at line 1\)",
        ),
        (b"", r"corpus.jsonl: empty file"),
        (b'{"_id": "d1", "text": "caf\xe9"}\n', r"corpus.jsonl:1: not valid UTF-8"),
        (b'["d1", "a"]\n', r"corpus.jsonl:1: expected a JSON object"),
        # ids holding whitespace would break a TREC run file: refused as `import` refuses them
        (
            b'{"_id": "d1", "text": "a"}\n{"_id": "d\\t2", "text": "b"}\n',
            r"""corpus.jsonl:2: "_id" 'd\\t2' holds whitespace""",
        ),
        (b'{"_id": "d1 ", "text": "a"}\n', r"""corpus.jsonl:1: "_id" 'd1 ' has surrounding spaces"""),
    ],
)
def test_bad_corpus_files_name_file_line_and_problem(tmp_path, content, message):
    ds = _corrupt(tmp_path, "corpus.jsonl", content)
    with pytest.raises(DataError, match=message):
        _ = ds.corpus


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"query-id\tcorpus-id\tscore\r\nq1\td1\r\n", r"test.tsv:2: expected 3 tab-separated columns"),
        (b"query-id\tcorpus-id\tscore\r\nq1\td1\thigh\r\n", r"test.tsv:2: relevance score \"high\""),
        (b"query-id\tcorpus-id\tscore\r\n", r"test.tsv: empty file"),
        (b"q1\td1\t1\nq1\td1\t2\n", r"test.tsv:2: conflicting scores"),
        (
            b"query-id\tcorpus-id\tscore\r\nq1 \td1\t1\r\n",
            r"""test.tsv:2: "query-id" 'q1 ' has surrounding""",
        ),
        (b"q1\td 1\t1\n", r"""test.tsv:1: "corpus-id" 'd 1' holds whitespace"""),
        (b"q1\td1\t1\n\td2\t1\n", r'test.tsv:2: "query-id" is empty'),
        # trec_eval holds grades in a C int
        (b"q1\td1\t1e20\n", r'test.tsv:1: relevance score "1e20" is outside a 32-bit integer'),
        (b"q1\td1\t-2147483649\n", r'test.tsv:1: relevance score "-2147483649" is outside a 32-bit'),
    ],
)
def test_bad_qrels_name_file_line_and_problem(tmp_path, content, message):
    ds = _corrupt(tmp_path, "qrels/test.tsv", content)
    with pytest.raises(DataError, match=message):
        ds.qrels("test")


def test_qrels_accept_lf_crlf_headerless_and_trec_four_columns(tmp_path):
    for i, content in enumerate(
        [b"q1\td1\t1\n", b"query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\n", b"q1 0 d1 1\n", b"  q1  0 d1 1 \n"]
    ):
        path = tmp_path / f"{i}.tsv"
        path.write_bytes(content)
        assert load_qrels(path) == {"q1": {"d1": 1}}
    (tmp_path / "wide.tsv").write_bytes(b"q1\td1\t2147483647\nq1\td2\t-2147483648\n")
    assert load_qrels(tmp_path / "wide.tsv") == {"q1": {"d1": 2**31 - 1, "d2": -(2**31)}}


def test_query_ids_holding_whitespace_are_refused(tmp_path):
    ds = _corrupt(tmp_path, "queries.jsonl", b'{"_id": "q1", "text": "one"}\n{"_id": "q 2", "text": "two"}\n')
    with pytest.raises(DataError, match=r"""queries.jsonl:2: "_id" 'q 2' holds whitespace"""):
        _ = ds.queries


def test_unknown_ids_warn_with_counts_or_fail_in_strict_mode(tmp_path, caplog):
    qrels = {"test": {"q1": {"d1": 1, "ghost-doc": 1}, "ghost-q": {"d1": 1}}}
    root = write_beir(tmp_path / "d", DOCS, QUERIES, qrels)
    with caplog.at_level(logging.WARNING):
        loaded = BeirDataset(root).qrels("test")
    assert "1 unknown query ids and 1 rows with unknown document ids" in caplog.text
    assert loaded == {"q1": {"d1": 1, "ghost-doc": 1}}  # unknown query dropped, unknown doc kept in R
    with pytest.raises(DataError, match="1 unknown query ids"):
        BeirDataset(root, strict=True).qrels("test")


def test_missing_split_and_missing_dataset_are_clear(tmp_path):
    ds = BeirDataset(write_beir(tmp_path / "d", DOCS, QUERIES, QRELS))
    with pytest.raises(DataError, match=r'split "dev" not found \(available: test\)'):
        ds.qrels("dev")
    with pytest.raises(IrtuneError, match=r'dataset "scifact" not found .*irtune data fetch scifact'):
        resolve_dataset("scifact", tmp_path / "nowhere")


def test_gzip_corruption_is_reported(tmp_path):
    root = write_beir(tmp_path / "d", DOCS, QUERIES, QRELS, gzip_files=True)
    data = (root / "corpus.jsonl.gz").read_bytes()
    (root / "corpus.jsonl.gz").write_bytes(data[:20])
    with pytest.raises(DataError, match=r"corpus\.jsonl\.gz"):
        _ = BeirDataset(root).corpus
    assert gzip.decompress(data)  # the fixture itself was fine


def test_a_folder_with_an_unreadable_import_manifest_is_refused(tmp_path):
    """Whether an import into it finished cannot be told: refused in one line, not loaded."""
    root = write_beir(tmp_path / "d", DOCS, QUERIES, QRELS)
    (root / "irtune-import.json").write_text('{"dataset": "d", "complete": ')
    with pytest.raises(DataError, match=r"irtune-import.json: unreadable import manifest \(Expecting value"):
        BeirDataset(root)
    (root / "irtune-import.json").write_text('{"dataset": "d"}')  # written before `complete` existed
    assert BeirDataset(root).qrels("test") == QRELS["test"]


def test_a_name_that_is_both_a_folder_here_and_a_dataset_in_the_data_dir_is_refused(tmp_path, monkeypatch):
    """`-d docs` run in a folder holding a docs/ folder (a repository's, say) must not quietly
    read it instead of the data dir's `docs` dataset, nor the other way round."""
    data = tmp_path / "data"
    write_beir(
        data / "docs", {"d1": {"text": "in the data dir"}}, {"q1": "query"}, {"test": {"q1": {"d1": 1}}}
    )
    here = tmp_path / "work"
    write_beir(here / "docs", {"x1": {"text": "a folder here"}}, {"q1": "query"}, {"test": {"q1": {"x1": 1}}})
    monkeypatch.chdir(here)
    with pytest.raises(IrtuneError) as raised:
        resolve_dataset("docs", data)
    assert str(raised.value) == (
        f'dataset "docs" names both the folder ./docs and the dataset {data / "docs"}: '
        "write ./docs for the folder, or the dataset's full path"
    )
    assert resolve_dataset("./docs", data).doc_ids == ["x1"]  # a path is a path
    assert resolve_dataset(str(data / "docs"), data).doc_ids == ["d1"]
    monkeypatch.chdir(tmp_path)  # no folder of that name here: the name is the data dir's
    assert resolve_dataset("docs", data).doc_ids == ["d1"]
    (tmp_path / "docs").mkdir()  # a folder of that name that is no dataset (a repository's docs/)
    assert resolve_dataset("docs", data).doc_ids == ["d1"]

"""`irtune data import`: every format round-trips to the same BEIR folder, pairs files get
content ids, and bad rows give one line naming file and line (or row) with nothing written."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from irtune.cli.app import app
from irtune.data.beir import BeirDataset
from irtune.data.import_readers import content_id
from irtune.data.importer import IMPORT_MANIFEST, ImportRequest, import_dataset
from irtune.errors import DataError, InvalidValueError, IrtuneError

from conftest import assert_one_line_error, irtune


def _rows(dataset: BeirDataset) -> tuple[list[dict], list[dict], list[dict]]:
    corpus = [{"_id": d, "title": doc.title, "text": doc.text} for d, doc in dataset.corpus.items()]
    queries = [{"_id": q, "text": t} for q, t in dataset.queries.items()]
    qrels = [
        {"query-id": q, "corpus-id": d, "score": g}
        for q, judged in dataset.qrels("test").items()
        for d, g in judged.items()
    ]
    return corpus, queries, qrels


def write_table(path: Path, rows: list[dict]) -> Path:
    """Write rows in the format the suffix names, with pyarrow/datasets (not by hand)."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == "" or name.endswith(".hf"):
        from datasets import Dataset

        Dataset.from_list(rows).save_to_disk(str(path))
    elif name.endswith(".jsonl"):
        text = "".join(json.dumps(r) + "\n" for r in rows)
        path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    elif name.endswith(".json"):
        path.write_text(json.dumps(rows))
    elif name.endswith(".tsv"):  # TSV as IR collections write it: no quoting, no tabs or newlines in fields
        lines = ["\t".join(rows[0])] + ["\t".join(str(r[k]) for k in rows[0]) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def _same_dataset(imported: BeirDataset, original: BeirDataset) -> None:
    assert imported.corpus == original.corpus
    assert imported.queries == original.queries
    assert imported.qrels("test") == original.qrels("test")
    assert list(imported.corpus) == list(original.corpus)  # corpus order kept (cache keys, ties)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".jsonl.gz", ".json", ".parquet", ".hf"])
def test_every_format_round_trips_to_the_same_beir_folder(scifact_slice, tmp_path, suffix):
    original = BeirDataset(scifact_slice)
    corpus, queries, qrels = _rows(original)
    # a document with quotes, commas, newlines (not in TSV) and non-ASCII survives every format
    assert any("," in r["text"] for r in corpus)
    corpus[0]["text"] = 'He said "p < 0.05",' + (" " if suffix == ".tsv" else "\n") + "then left — café"
    request = ImportRequest(
        "mine",
        corpus=write_table(tmp_path / f"corpus{suffix}", corpus),
        queries=write_table(tmp_path / f"queries{suffix}", queries),
        qrels={"test": write_table(tmp_path / f"qrels{suffix}", qrels)},
    )
    manifest = import_dataset(request, tmp_path / "out" / "mine")
    imported = BeirDataset(tmp_path / "out" / "mine")
    expected = BeirDataset(scifact_slice)
    expected.corpus[next(iter(expected.corpus))] = type(expected.corpus[corpus[0]["_id"]])(
        corpus[0]["title"], corpus[0]["text"]
    )
    _same_dataset(imported, expected)
    assert manifest.corpus == len(corpus) and manifest.qrels["test"]["judgements"] == len(qrels)
    written = json.loads((tmp_path / "out" / "mine" / IMPORT_MANIFEST).read_text())
    assert [s["role"] for s in written["sources"]] == ["corpus", "queries", "qrels:test"]
    assert written["sources"][0]["columns"] == {"id": "_id", "text": "text", "title": "title"}
    assert all(len(s["sha256"]) == 64 for s in written["sources"])


def test_beir_and_trec_qrels_files_import(scifact_slice, tmp_path):
    original = BeirDataset(scifact_slice)
    corpus, queries, qrels = _rows(original)
    trec = tmp_path / "test.qrels"
    trec.write_text("".join(f"{r['query-id']} 0 {r['corpus-id']} {r['score']}\n" for r in qrels))
    request = ImportRequest(
        "trec",
        corpus=write_table(tmp_path / "c.parquet", corpus),
        queries=write_table(tmp_path / "q.jsonl", queries),
        qrels={"test": trec, "train": scifact_slice / "qrels" / "train.tsv"},
    )
    import_dataset(request, tmp_path / "trec")
    imported = BeirDataset(tmp_path / "trec")
    assert imported.qrels("test") == original.qrels("test")
    assert imported.qrels("train") == original.qrels("train")


def test_a_document_judged_relevant_to_the_query_of_its_own_id_is_counted_and_warned(tmp_path, caplog):
    """Evaluation drops a retrieved document whose id is the query's (BEIR's default), so a
    query whose relevant document is d1 under id d1 can only score 0: the import says so."""
    docs = write_table(
        tmp_path / "docs.jsonl", [{"_id": "d1", "text": "alpha"}, {"_id": "d2", "text": "beta"}]
    )
    queries = write_table(
        tmp_path / "q.jsonl", [{"_id": "d1", "text": "alpha?"}, {"_id": "q2", "text": "b?"}]
    )
    qrels = tmp_path / "test.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nd1\td1\t1\nd1\td2\t0\nq2\td2\t1\n")
    with caplog.at_level("WARNING", logger="irtune"):
        manifest = import_dataset(
            ImportRequest("own", corpus=docs, queries=queries, qrels={"test": qrels}), tmp_path / "own"
        )
    assert manifest.qrels["test"] == {"queries": 2, "judgements": 3, "relevant": 2, "relevant_with_own_id": 1}
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        "split 'test': 1 query is judged relevant to the document of its own id (e.g. 'd1'); evaluation "
        "ignores a retrieved document whose id is the query's (as BEIR does), so such a judgement "
        "is never met"
    ]


def test_column_mapping_and_defaults(tmp_path):
    docs = write_table(
        tmp_path / "docs.csv",
        [
            {"doc_no": "7", "body": "alpha text", "heading": "A"},
            {"doc_no": "8", "body": "beta", "heading": ""},
        ],
    )
    import_dataset(
        ImportRequest("m", corpus=docs, columns={"id": "doc_no", "title": "heading"}), tmp_path / "m"
    )
    imported = BeirDataset(tmp_path / "m")
    assert imported.corpus["7"].full_text() == "A alpha text"  # "body" found by default, ids stay strings
    assert imported.queries == {} and imported.splits() == []
    with pytest.raises(DataError, match=r"docs.csv: no column \"nope\""):
        import_dataset(ImportRequest("x", corpus=docs, columns={"id": "nope"}), tmp_path / "x")
    no_text = write_table(tmp_path / "t.csv", [{"id": "1", "words": "a"}])
    with pytest.raises(InvalidValueError, match=r"t.csv: no text column .*: name it with columns text=NAME$"):
        import_dataset(ImportRequest("x", corpus=no_text), tmp_path / "x")


def test_pairs_file_dedups_documents_and_merges_multi_positive_queries(tmp_path):
    rows = [
        {"query": "What is BM25?", "positive": "BM25 is a ranking function.", "negative": "Cats purr."},
        {"query": "what is  bm25?", "positive": "Okapi BM25 ranks documents.", "negative": ""},
        {"query": "Why do cats purr?", "positive": "Cats purr.", "negative": "bm25 is a ranking  function."},
        {"query": "What is BM25?", "positive": "BM25 is a ranking function.", "negative": ""},
        {"query": "C++ tutorial", "positive": "Learn C++ here.", "negative": "Learn C here."},
        {"query": "C tutorial", "positive": "Learn C here.", "negative": ""},
    ]
    pairs = write_table(tmp_path / "pairs.jsonl", rows)
    manifest = import_dataset(ImportRequest("p", pairs={"test": pairs}), tmp_path / "p")
    dataset = BeirDataset(tmp_path / "p")
    # texts equal but for case and spacing are one; punctuation counts ("C++" is not "C")
    assert len(dataset.corpus) == 5 and len(dataset.queries) == 4
    bm25, cats = content_id("q", "What is BM25?"), content_id("q", "Why do cats purr?")
    ranking, okapi = (
        content_id("d", "BM25 is a ranking function."),
        content_id("d", "Okapi BM25 ranks documents."),
    )
    cats_doc = content_id("d", "Cats purr.")
    assert dataset.qrels("test")[bm25] == {ranking: 1, cats_doc: 0, okapi: 1}
    assert dataset.qrels("test")[cats] == {cats_doc: 1, ranking: 0}
    assert dataset.qrels("test")[content_id("q", "C tutorial")] == {content_id("d", "Learn C here."): 1}
    assert dataset.queries[bm25] == "What is BM25?"  # the first spelling is kept
    assert manifest.sources[0].merged == {
        "query texts equal but for case or spacing": 1,
        "document texts equal but for case or spacing": 1,
        "repeated (query, document) judgement": 1,
    }
    # ids are stable: a second import of the same rows gives the same ids
    import_dataset(ImportRequest("p2", pairs={"test": pairs}), tmp_path / "p2")
    assert BeirDataset(tmp_path / "p2").qrels("test") == dataset.qrels("test")


def test_a_query_in_two_splits_is_refused(tmp_path):
    train = write_table(tmp_path / "train.csv", [{"query": "what is bm25", "positive": "a ranking function"}])
    test = write_table(tmp_path / "test.csv", [{"query": "What is BM25", "positive": "Okapi"}])
    with pytest.raises(DataError, match=r"test.csv:2: the query is also judged in split 'train'"):
        import_dataset(ImportRequest("x", pairs={"train": train, "test": test}), tmp_path / "x")


@pytest.mark.parametrize("split", ["synthetic", "../up", "a b", ""])
def test_split_names_are_checked(tmp_path, split):
    pairs = write_table(tmp_path / "p.csv", [{"query": "q", "positive": "d"}])
    with pytest.raises(IrtuneError, match="split name"):
        import_dataset(ImportRequest("x", pairs={split: pairs}), tmp_path / "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


def test_pairs_reuse_corpus_ids_for_the_same_text(tmp_path):
    corpus = write_table(
        tmp_path / "c.csv",
        [
            {"id": "doc-1", "title": "", "text": "BM25 is a ranking function."},
            {"id": "doc-2", "title": "Cats", "text": "Cats purr when content."},
        ],
    )
    pairs = write_table(
        tmp_path / "p.csv",
        [
            {"question": "what is bm25", "answer": "bm25 is a  ranking function."},
            {"question": "why do cats purr", "answer": "Cats purr when content."},  # the body of doc-2
        ],
    )
    import_dataset(ImportRequest("c", corpus=corpus, pairs={"test": pairs}), tmp_path / "c")
    dataset = BeirDataset(tmp_path / "c")
    assert list(dataset.corpus) == ["doc-1", "doc-2"]
    assert list(dataset.qrels("test").values()) == [{"doc-1": 1}, {"doc-2": 1}]


BAD_ROWS = [
    # (file name, content, expected message)
    ("c.csv", "_id,text\n1,fine\n2,bad,extra\n", r"c.csv:3: expected 2 fields \(as in the header\), found 3"),
    ("c.csv", '_id,text\n1,"unclosed\n', r"c.csv:2: malformed CSV"),
    ("c.csv", "_id,text\n1,a\n1,b\n", r'c.csv:3: duplicate id "1" \(first at line 2\)'),
    ("c.csv", "_id,text\n,a\n", r'c.csv:2: "_id" must be a non-empty'),
    ("c.tsv", "_id\ttext\n1\ta\tb\n", r"c.tsv:2: expected 2 fields"),
    ("c.csv", "_id,_id\n1,2\n", r'c.csv:1: header names column "_id" twice'),
    ("c.csv", "", r"c.csv: empty file"),
    ("c.jsonl", '{"_id": "1", "text": "a"}\n{"_id": "2", "text": \n', r"c.jsonl:2: malformed JSON"),
    ("c.jsonl", '{"_id": "1", "text": "a"}\n[1, 2]\n', r"c.jsonl:2: expected a JSON object"),
    ("c.jsonl", '{"_id": "1", "text": 5}\n', r'c.jsonl:1: "text" must be text, not int'),
    ("c.jsonl", '{"_id": true, "text": "a"}\n', r'c.jsonl:1: "_id" must be a non-empty string or int'),
    ("c.json", '{"_id": "1"}', r"c.json: expected a JSON array of objects"),
    ("c.json", '[{"_id": "1", "text": "a"}, 3]', r"c.json: row 2: expected a JSON object"),
    ("c.json", '[{"_id": "1", "text": "a"},', r"c.json:1: malformed JSON"),
    ("c.parquet", b"PAR1 not really", r"c.parquet: not a readable parquet file"),
    ("c.xlsx", "x", r"c.xlsx: unknown file type"),
    ("c.csv", b"_id,text\n1,caf\xe9\n", r"c.csv:2: not valid UTF-8"),
    ("c.csv", b"_id,text\n1,a\n2,b\n3,caf\xe9\n", r"c.csv:4: not valid UTF-8"),
    ("c.jsonl", '{"_id": "1", "text": "a\\ud800b"}\n', r'c.jsonl:1: "text" holds an unpaired surrogate'),
    (
        "c.jsonl",
        '{"_id": "' + "x" * 500 + ' ", "text": "a"}\n',
        r'c.jsonl:1: "_id" \'x{56}\.\.\. has surrounding',
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_ROWS)
def test_malformed_rows_give_one_line_and_write_nothing(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as caught:
        import_dataset(ImportRequest("bad", corpus=path), tmp_path / "data" / "bad")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "data").exists()


def test_bad_parquet_and_saved_dataset_rows_are_named_by_row(tmp_path):
    rows = [{"_id": 1, "text": "a"}, {"_id": 1, "text": "b"}]
    with pytest.raises(DataError, match=r"c2.parquet: row 2: duplicate id \"1\" \(first at row 1\)"):
        import_dataset(ImportRequest("b", corpus=write_table(tmp_path / "c2.parquet", rows)), tmp_path / "b")
    rows = [{"id": "1", "text": "a"}, {"id": "2", "text": "b"}]
    saved = write_table(tmp_path / "saved.hf", rows)
    queries = write_table(tmp_path / "q.csv", [{"qid": "q1", "query": "a?"}])
    qrels = write_table(
        tmp_path / "qrels.parquet", [{"qid": "q1", "doc_id": "1"}, {"qid": "q9", "doc_id": "2"}]
    )
    with pytest.raises(DataError, match=r"qrels.parquet: row 2: unknown query id \"q9\""):
        import_dataset(
            ImportRequest("b", corpus=saved, queries=queries, qrels={"test": qrels}), tmp_path / "b"
        )
    assert not (tmp_path / "b").exists()


def test_empty_documents_are_dropped_and_recorded_with_their_judgements(tmp_path):
    corpus = write_table(
        tmp_path / "c.csv", [{"id": "1", "text": "a"}, {"id": "2", "text": "  "}, {"id": "3", "text": "c"}]
    )
    queries = write_table(tmp_path / "q.csv", [{"id": "q1", "text": "what?"}])
    qrels = tmp_path / "test.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\t1\t1\nq1\t2\t1\n")
    manifest = import_dataset(
        ImportRequest("e", corpus=corpus, queries=queries, qrels={"test": qrels}), tmp_path / "e"
    )
    assert manifest.sources[0].dropped == {"empty title and text": 1}
    assert manifest.sources[2].dropped == {"names an empty query or document": 1}
    assert BeirDataset(tmp_path / "e").qrels("test") == {"q1": {"1": 1}}


def test_trec_qrels_with_an_unknown_id_names_the_line(tmp_path):
    corpus = write_table(tmp_path / "c.csv", [{"id": "1", "text": "a"}])
    queries = write_table(tmp_path / "q.csv", [{"id": "q1", "text": "what?"}])
    qrels = tmp_path / "run.qrels"
    qrels.write_text("q1 0 1 1\nq2 0 1 1\n")
    with pytest.raises(DataError, match=r"run.qrels:2: unknown query id \"q2\""):
        import_dataset(
            ImportRequest("t", corpus=corpus, queries=queries, qrels={"test": qrels}), tmp_path / "t"
        )


@pytest.mark.parametrize("grade", ["nan", "inf", "1e400", "1.5", "x", "true"])
@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_bad_grades_name_the_line(tmp_path, grade, suffix):
    corpus = write_table(tmp_path / "c.csv", [{"id": "1", "text": "a"}])
    queries = write_table(tmp_path / "q.csv", [{"id": "q1", "text": "what?"}])
    qrels = tmp_path / f"qrels{suffix}"
    sep = "," if suffix == ".csv" else "\t"
    qrels.write_text(f"query_id{sep}doc_id{sep}score\nq1{sep}1{sep}{grade}\n")
    request = ImportRequest("g", corpus=corpus, queries=queries, qrels={"test": qrels})
    with pytest.raises(DataError, match=rf"qrels{suffix}:2: .*(not an integer|not a number)"):
        import_dataset(request, tmp_path / "g")


@pytest.mark.parametrize("grade", ["1e20", "2147483648", "-2147483649"])
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".pairs.csv"])
def test_grades_beyond_what_trec_eval_holds_are_refused(tmp_path, grade, suffix):
    """trec_eval (and pytrec_eval) keep a grade in a C int: a larger one would be cut, not judged."""
    corpus = write_table(tmp_path / "c.csv", [{"id": "1", "text": "a"}])
    queries = write_table(tmp_path / "q.csv", [{"id": "q1", "text": "what?"}])
    path = tmp_path / f"qrels{suffix}"
    sep = "\t" if suffix == ".tsv" else ","
    if suffix == ".pairs.csv":
        path.write_text(f"query,positive,score\nwhat?,a,{grade}\n")
        request = ImportRequest("g", pairs={"test": path})
    else:
        path.write_text(f"query_id{sep}doc_id{sep}score\nq1{sep}1{sep}{grade}\n")
        request = ImportRequest("g", corpus=corpus, queries=queries, qrels={"test": path})
    with pytest.raises(DataError, match=rf"qrels{suffix}:2: .*{grade}.* is outside a 32-bit integer"):
        import_dataset(request, tmp_path / "g")
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_negative_grades_are_judged_not_relevant_and_counted(tmp_path, suffix):
    corpus = write_table(tmp_path / "c.csv", [{"id": "1", "text": "a"}, {"id": "2", "text": "b"}])
    queries = write_table(tmp_path / "q.csv", [{"id": "q1", "text": "what?"}])
    qrels = tmp_path / f"qrels{suffix}"
    sep = "," if suffix == ".csv" else "\t"
    qrels.write_text(f"\ufeffquery-id{sep}corpus-id{sep}score\nq1{sep}1{sep}1\nq1{sep}2{sep}-1\n")
    request = ImportRequest("n", corpus=corpus, queries=queries, qrels={"test": qrels})
    manifest = import_dataset(request, tmp_path / "n")
    assert BeirDataset(tmp_path / "n").qrels("test") == {"q1": {"1": 1, "2": 0}}
    assert manifest.sources[2].changed == {"negative grade stored as 0": 1}


def test_a_query_judged_in_two_qrels_splits_is_refused(tmp_path):
    corpus = write_table(tmp_path / "c.csv", [{"id": "1", "text": "a"}])
    queries = write_table(tmp_path / "q.csv", [{"id": "q1", "text": "what?"}])
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\t1\t1\n")
    request = ImportRequest("x", corpus=corpus, queries=queries, qrels={"test": qrels, "train": qrels})
    with pytest.raises(IrtuneError, match="splits 'test' and 'train' both judge 1 queries"):
        import_dataset(request, tmp_path / "x")


def test_an_output_folder_that_cannot_be_created_is_one_line(tmp_path):
    corpus = write_table(tmp_path / "c.csv", [{"id": "1", "text": "a"}])
    (tmp_path / "afile").write_text("x")
    with pytest.raises(IrtuneError, match="afile is a file, not a folder"):
        import_dataset(ImportRequest("x", corpus=corpus), tmp_path / "afile" / "sub")


def test_tsv_fields_are_not_quoted(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text('_id\ttext\n1\t"quoted" at the start\n2\t"x"\n')
    import_dataset(ImportRequest("t", corpus=path), tmp_path / "t")
    corpus = BeirDataset(tmp_path / "t").corpus
    assert [corpus["1"].text, corpus["2"].text] == ['"quoted" at the start', '"x"']


def test_an_existing_dataset_is_kept_unless_forced(tmp_path):
    corpus = write_table(tmp_path / "c.csv", [{"id": "1", "text": "a"}])
    import_dataset(ImportRequest("d", corpus=corpus), tmp_path / "d")
    with pytest.raises(IrtuneError, match="already exists"):
        import_dataset(ImportRequest("d", corpus=corpus), tmp_path / "d")
    write_table(corpus, [{"id": "1", "text": "a"}, {"id": "2", "text": "b"}])
    import_dataset(ImportRequest("d", corpus=corpus), tmp_path / "d", force=True)
    assert list(BeirDataset(tmp_path / "d").corpus) == ["1", "2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "d"]  # no temp folders left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(IrtuneError, match="is not a dataset irtune imported: refusing to replace it"):
        import_dataset(ImportRequest("mine", corpus=corpus), tmp_path / "mine", force=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_cli_import_and_its_errors(tmp_path):
    runner = CliRunner()  # in-process for the good run; errors go through `main` in a subprocess
    docs = write_table(
        tmp_path / "docs.csv", [{"doc_no": "1", "body": "alpha"}, {"doc_no": "2", "body": "beta"}]
    )
    pairs = write_table(tmp_path / "pairs.csv", [{"query": "alpha?", "positive": "alpha"}])
    result = runner.invoke(
        app,
        [
            "data",
            "import",
            "own",
            "--corpus",
            str(docs),
            "--id-col",
            "doc_no",
            "--pairs",
            str(pairs),
            "--data-dir",
            str(tmp_path / "data"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "own: 2 documents, 1 queries; test: 1 queries, 1 relevant" in result.output
    assert BeirDataset(tmp_path / "data" / "own").qrels("test") == {content_id("q", "alpha?"): {"1": 1}}
    bad = tmp_path / "bad.csv"
    bad.write_text("doc_no,body\n1,a\n2,b,c\n")
    no_text = tmp_path / "no_text.csv"
    no_text.write_text("id,words\n1,a\n")
    for args, message in (
        (
            ["--corpus", str(no_text)],
            "no_text.csv: no text column (looked for text, body, content, contents, "
            "passage, document; columns: id, words): name it with --col text=NAME",
        ),
        (["--corpus", str(bad), "--id-col", "doc_no"], "bad.csv:3: expected 2 fields"),
        (["--corpus", str(docs), "--col", "bogus=x"], "unknown column role 'bogus'"),
        (["--corpus", str(docs), "--col", "id"], "--col 'id': expected KEY=VALUE"),
        (["--queries", str(docs)], "nothing to import: give --corpus FILE, --pairs FILE or --ir-datasets ID"),
    ):
        result = irtune("data", "import", "x", *args, "--data-dir", str(tmp_path / "data"))
        assert_one_line_error(result, message)
        assert not (tmp_path / "data" / "x").exists()


def test_an_ir_datasets_dataset_built_from_local_files_imports(tmp_path, monkeypatch):
    import ir_datasets  # the [ir-datasets] extra, part of [dev]
    from ir_datasets.formats import TrecQrels, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "home"))
    (tmp_path / "docs.tsv").write_text("d1\tVitamin D and bones\nd2\tCats purr\nd3\tBM25 ranks text\n")
    (tmp_path / "queries.tsv").write_text("q1\twhat about vitamin d\nq2\twhy do cats purr\n")
    (tmp_path / "qrels").write_text("q1 0 d1 1\nq1 0 d3 0\nq2 0 d2 2\nq2 0 d3 -1\n")
    name = f"irtune-test/local-{tmp_path.name}/test"
    ir_datasets.registry.register(
        name,
        ir_datasets.Dataset(
            TsvDocs(LocalDownload(tmp_path / "docs.tsv")),
            TsvQueries(LocalDownload(tmp_path / "queries.tsv")),
            TrecQrels(LocalDownload(tmp_path / "qrels"), {0: "not", 1: "relevant", 2: "very"}),
        ),
    )
    runner = CliRunner()
    result = runner.invoke(
        app, ["data", "import", "local", "--ir-datasets", name, "--data-dir", str(tmp_path / "data")]
    )
    assert result.exit_code == 0, result.output
    dataset = BeirDataset(tmp_path / "data" / "local")
    assert {d: doc.text for d, doc in dataset.corpus.items()} == {
        "d1": "Vitamin D and bones",
        "d2": "Cats purr",
        "d3": "BM25 ranks text",
    }
    assert dataset.queries == {"q1": "what about vitamin d", "q2": "why do cats purr"}
    assert dataset.qrels("test") == {"q1": {"d1": 1, "d3": 0}, "q2": {"d2": 2, "d3": 0}}
    manifest = json.loads((tmp_path / "data" / "local" / IMPORT_MANIFEST).read_text())
    assert manifest["sources"][0]["changed"] == {"negative grade stored as 0": 1}
    assert (
        manifest["sources"][0]["origin"] == f"ir_datasets:{name}"
        and len(manifest["sources"][0]["sha256"]) == 64
    )
    with pytest.raises(IrtuneError, match="knows no dataset 'no/such/thing'"):
        import_dataset(ImportRequest("x", ir_datasets={"test": "no/such/thing"}), tmp_path / "x")


def test_files_of_a_hub_dataset_repo_import_and_are_recorded_with_their_commit(scifact_slice, tmp_path):
    """`hf:OWNER/NAME/FILE` through the real huggingface_hub client, against a local stub Hub."""
    from hub_stub import hub_env, serve_repos

    corpus_repo, qrels_repo = tmp_path / "repo-corpus", tmp_path / "repo-qrels"
    corpus_repo.mkdir()
    (qrels_repo / "data").mkdir(parents=True)
    (corpus_repo / "corpus.jsonl.gz").write_bytes(
        gzip.compress((scifact_slice / "corpus.jsonl").read_bytes())
    )
    shutil.copy(scifact_slice / "queries.jsonl", corpus_repo / "queries.jsonl")
    shutil.copy(scifact_slice / "qrels" / "test.tsv", qrels_repo / "data" / "test.tsv")
    hf_home, data = tmp_path / "hf-home", tmp_path / "data"
    args = [
        "data", "import", "hubbed", "--data-dir", str(data),
        "--corpus", "hf:acme/scifact/corpus.jsonl.gz",
        "--queries", "hf:acme/scifact/queries.jsonl",
        "--qrels", "test=hf:acme/scifact-qrels/data/test.tsv",
    ]  # fmt: skip
    with serve_repos({}, datasets={"acme/scifact": corpus_repo, "acme/scifact-qrels": qrels_repo}) as hub:
        result = irtune(*args, env=hub_env(hub.url, hf_home, offline=False))
        missing = irtune(
            "data", "import", "x", "--data-dir", str(data), "--corpus", "hf:acme/scifact/nope.csv",
            env=hub_env(hub.url, hf_home, offline=False),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not hub.unexpected, "the stub hub was asked for something it does not implement"
    _same_dataset(BeirDataset(data / "hubbed"), BeirDataset(scifact_slice))
    sources = json.loads((data / "hubbed" / IMPORT_MANIFEST).read_text())["sources"]
    commit = hub.repos["datasets/acme/scifact"].sha
    assert sources[0]["origin"] == f"hf:acme/scifact/corpus.jsonl.gz@{commit}"
    assert sources[2]["origin"].startswith("hf:acme/scifact-qrels/data/test.tsv@")
    assert_one_line_error(missing, "no file 'nope.csv' in the dataset repo acme/scifact")
    # offline, the files come from the cache
    again = [*args[:2], "again", *args[3:]]
    offline = irtune(*again, env=hub_env("http://127.0.0.1:9", hf_home, offline=True))
    assert offline.returncode == 0, offline.stderr
    assert BeirDataset(data / "again").corpus == BeirDataset(data / "hubbed").corpus
    offline_missing = irtune(
        "data", "import", "y", "--data-dir", str(data), "--corpus", "hf:acme/scifact/other.csv",
        env=hub_env("http://127.0.0.1:9", hf_home, offline=True),
    )  # fmt: skip
    assert_one_line_error(offline_missing, "not in the local cache and the Hub cannot be reached")

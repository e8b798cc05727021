"""`irtune data import` against hostile-but-fair input: nothing the user or `generate` wrote is
lost, one import (or generation) at a time per dataset, and every failure is one line.

The table runs the real command line through `test_hostile_input`'s case runner (one line on
stderr, exit 2, nothing in the workspace written or changed); the tests after it need a
dataset imported first, a second process, or a file system that fails.
"""

from __future__ import annotations

import json
import logging
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import pytrec_eval
import test_hostile_input as table

from irtune.core.files import sha256_file
from irtune.data.beir import BeirDataset
from irtune.data.importer import IMPORT_MANIFEST, ImportRequest, import_dataset
from irtune.data.registry import resolve_dataset
from irtune.errors import DataError, IrtuneError
from irtune.results.metrics import evaluate_run

from conftest import assert_one_line_error, irtune

case = table.case
IMPORT = ("data", "import", "new")
QUERIES_CSV = "id,text\nq1,one?\nq2,two?\n"


def _files(**contents: str):
    """A setup writing these files into the workspace (`__` in a name stands for `.`)."""

    def setup(tmp: Path) -> None:
        for name, text in contents.items():
            (tmp / name.replace("__", ".")).write_text(text, encoding="utf-8")

    return setup


def _imported_own(*, changed_corpus: bool = False, extra: tuple[str, ...] = ()):
    """A setup: dataset `own` imported from docs.csv with a split generated from its corpus;
    then docs.csv changed, or the user's own `extra` files put into the dataset folder."""

    def setup(tmp: Path) -> None:
        root = tmp / "data" / "own"
        import_dataset(ImportRequest("own", corpus=tmp / "docs.csv"), root)
        _generated_split(root)
        if changed_corpus:
            (tmp / "docs.csv").write_text("id,text\nd1,one\nd2,two changed\n")
        for relative in extra:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text("mine\n")
        (tmp / "pairs.csv").write_text("query,positive\nwhat?,one\n")

    return setup


CASES = [
    # a qrels line of five columns is no header: it is named, with what was expected
    case(
        *IMPORT,
        *("--corpus", "{tmp}/docs.csv", "--queries", "{tmp}/q.csv", "--qrels", "test={tmp}/five.qrels"),
        message=("five.qrels:1: expected 3 whitespace-separated columns", "or 4", "found 5"),
        setup=_files(q__csv=QUERIES_CSV, five__qrels="q1 0 d1 1 extra\n"),
    ),
    # one row whose positive and negative are the same text
    case(
        *IMPORT,
        *("--pairs", "{tmp}/pairs.csv"),
        message="pairs.csv:2: the positive and the negative are the same document",
        setup=_files(pairs__csv="query,positive,negative\nwhat?,same text,same text\n"),
    ),
    # two rows judging one pair differently: both rows named
    case(
        *IMPORT,
        *("--pairs", "{tmp}/pairs.csv"),
        message="pairs.csv:3: the same query and document are judged 1 at line 2 and 0 here",
        setup=_files(pairs__csv="query,positive,score\nwhat?,a text,1\nwhat?,a text,0\n"),
    ),
    case(*IMPORT, "--corpus", "/dev/null", message="/dev/null: not a regular file"),
    # ids holding whitespace would break a TREC run file (fields split on whitespace)
    case(
        *IMPORT,
        *("--corpus", "{tmp}/spaced.csv"),
        message="""spaced.csv:3: "id" 'd 2' holds whitespace""",
        setup=_files(spaced__csv="id,text\nd1,one\nd 2,two\n"),
    ),
    case(
        *IMPORT,
        *("--corpus", "{tmp}/docs.csv", "--queries", "{tmp}/q.csv", "--qrels", "test={tmp}/q.tsv"),
        message="""q.tsv:3: "corpus-id" 'd 2' holds whitespace""",
        setup=_files(q__csv=QUERIES_CSV, q__tsv="query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td 2\t1\n"),
    ),
    # a generated split made from the corpus being replaced is not silently orphaned
    case(
        "data",
        "import",
        "own",
        *("--corpus", "{tmp}/docs.csv", "--force"),
        message=("own/synthetic: 1 generated queries", "another corpus", "delete", "yourself"),
        setup=_imported_own(changed_corpus=True),
    ),
    # a file irtune did not write is never replaced
    case(
        "data",
        "import",
        "own",
        *("--corpus", "{tmp}/docs.csv", "--pairs", "dev={tmp}/pairs.csv", "--force"),
        message=("own/qrels/dev.tsv", "not written by an import", "move it away"),
        setup=_imported_own(extra=("qrels/dev.tsv",)),
    ),
    # study groups naming each other: the cycle, not a dataset "not found"
    case(
        "run",
        "{tmp}/study.toml",
        message="group cycle: a → b → a",
        setup=lambda tmp: table._study(tmp, train='"a"', variant='[groups]\na = ["b"]\nb = ["a", "ds"]'),
    ),
]


@pytest.mark.parametrize("hostile", CASES, ids=[table._case_id(c) for c in CASES])
def test_hostile_import_is_one_line_and_leaves_nothing_behind(hostile, tmp_path):
    table.test_hostile_input_is_one_line_and_leaves_nothing_behind(hostile, tmp_path)


# --- a dataset imported before, re-imported with force


def _generated_split(root: Path) -> dict[str, str]:
    """A generated split as `irtune generate` leaves it, with its journal; returns its files."""
    files = {
        "synthetic/queries.jsonl": '{"_id": "syn-1", "text": "which one?"}\n',
        "synthetic/qrels.tsv": "query-id\tcorpus-id\tscore\nsyn-1\td1\t1\n",
        "synthetic/manifest.json": json.dumps({"corpus_sha256": sha256_file(root / "corpus.jsonl")}),
        ".irtune-generate/abc.jsonl": '{"doc": "d1", "raw": "which one?"}\n',
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return files


def _contents(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_force_replaces_only_what_the_import_wrote(tmp_path):
    """The user's own files inside the dataset folder (even the source being imported), the
    generated split of the same corpus and its journals survive a forced re-import."""
    root = tmp_path / "own"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("query,positive\nwhat?,one\n")
    import_dataset(ImportRequest("own", pairs={"dev": pairs}), root)
    raw = root / "raw" / "docs.csv"  # the user keeps the sources in the dataset's folder
    raw.parent.mkdir()
    raw.write_text("id,text\nd1,one\nd2,two\n")
    import_dataset(ImportRequest("own", corpus=raw, pairs={"dev": pairs}), root, force=True)
    kept = {"raw/docs.csv": raw.read_text(), "notes.txt": "mine\n", **_generated_split(root)}
    (root / "notes.txt").write_text("mine\n")
    manifest = import_dataset(ImportRequest("own", corpus=raw, pairs={"test": pairs}), root, force=True)
    after = _contents(root)
    assert {k: after[k] for k in kept} == kept
    assert not (root / "qrels" / "dev.tsv").exists()  # the import's own file of a split gone
    assert BeirDataset(root).splits() == ["synthetic", "test"]
    assert sorted(manifest.files) == ["corpus.jsonl", "qrels/test.tsv", "queries.jsonl"]
    assert set(after) == set(kept) | {*manifest.files, IMPORT_MANIFEST}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_changed_corpus_with_a_generated_split_is_refused_and_nothing_changes(tmp_path):
    docs = tmp_path / "docs.csv"
    docs.write_text("id,text\nd1,one\nd2,two\n")
    root = tmp_path / "own"
    import_dataset(ImportRequest("own", corpus=docs), root)
    _generated_split(root)
    before = _contents(root)
    docs.write_text("id,text\nd1,one\nd2,two changed\n")
    with pytest.raises(IrtuneError, match=r"synthetic: 1 generated queries .* another corpus .* delete"):
        import_dataset(ImportRequest("own", corpus=docs), root, force=True)
    assert _contents(root) == before
    (tmp_path / "moved").mkdir()
    (root / "synthetic").rename(tmp_path / "moved" / "synthetic")  # the user's call: then it goes
    import_dataset(ImportRequest("own", corpus=docs), root, force=True)
    assert BeirDataset(root).corpus["d2"].text == "two changed"
    assert (root / ".irtune-generate" / "abc.jsonl").is_file()  # journals are keyed by corpus: kept


def test_stale_temporary_folders_of_a_killed_import_are_removed_by_the_next(tmp_path):
    docs = tmp_path / "docs.csv"
    docs.write_text("id,text\nd1,one\n")
    for stale in (".own.k2x_9abc.importing", ".own.zz00zz00.importing"):  # kill -9 left these
        (tmp_path / stale).mkdir()
        (tmp_path / stale / "corpus.jsonl").write_text("half")
    for other in (".own.x.y.importing", ".own2.k2x_9abc.importing", ".own.k2x_9abc.importing.mine"):
        (tmp_path / other).mkdir()  # not a temporary folder of an import of "own"
    import_dataset(ImportRequest("own", corpus=docs), tmp_path / "own")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["docs.csv", "own", ".own.x.y.importing", ".own2.k2x_9abc.importing", ".own.k2x_9abc.importing.mine"]
    )


# --- one process at a time per dataset (import, generate)

TRY_GENERATE = """
import sys
from pathlib import Path
from irtune.data.beir import BeirDataset
from irtune.errors import IrtuneError
from irtune.generation.synthetic import GenerationRequest, generate_synthetic
try:
    generate_synthetic(BeirDataset(Path(sys.argv[1])), None, GenerationRequest())
except IrtuneError as exc:
    print(exc)
"""


def test_an_import_holds_the_dataset_against_generate_and_a_second_import(tmp_path, monkeypatch):
    """While one import reads its sources, `generate` on the dataset and a second import of
    it are refused in one line (not last-writer-wins); the first then completes."""
    import irtune.data.importer as importer

    docs = tmp_path / "docs.csv"
    docs.write_text("id,text\nd1,one\n")
    root = tmp_path / "data" / "own"
    import_dataset(ImportRequest("own", corpus=docs), root)
    env = {**os.environ, "IRTUNE_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"}
    seen: dict[str, subprocess.CompletedProcess] = {}
    assemble = importer.assemble

    def assemble_while_others_try(request: ImportRequest):
        seen["generate"] = subprocess.run(
            [sys.executable, "-c", TRY_GENERATE, str(root)], capture_output=True, text=True, timeout=300
        )
        seen["import"] = irtune("data", "import", "own", "--corpus", str(docs), "--force", env=env)
        return assemble(request)

    monkeypatch.setattr(importer, "assemble", assemble_while_others_try)
    docs.write_text("id,text\nd1,one\nd2,two\n")
    import_dataset(ImportRequest("own", corpus=docs), root, force=True)
    assert "another irtune process is writing this" in seen["generate"].stdout, seen["generate"].stderr
    assert_one_line_error(seen["import"], "another irtune process is writing this dataset")
    assert list(BeirDataset(root).corpus) == ["d1", "d2"]
    assert not (root / ".irtune-generate").exists()  # the lock's folder goes when import made it


def test_an_import_while_generate_runs_is_refused_and_the_journal_kept(tmp_path):
    docs = tmp_path / "docs.csv"
    docs.write_text("id,text\nd1,one\n")
    root = tmp_path / "data" / "own"
    import_dataset(ImportRequest("own", corpus=docs), root)
    (root / ".irtune-generate").mkdir()
    (root / ".irtune-generate" / "abc.jsonl").write_text("journal\n")
    before = _contents(root)
    generating = table._holder(root / ".irtune-generate", 600)  # as generate_synthetic holds it
    try:
        env = {**os.environ, "IRTUNE_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"}
        busy = irtune("data", "import", "own", "--corpus", str(docs), "--force", env=env)
    finally:
        generating.kill()
        generating.wait()
    assert_one_line_error(busy, "another irtune process is writing this dataset")
    assert _contents(root) == before


# --- judgements of documents absent from the corpus (ArguAna's official qrels name 5)

ABSENT = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tgone-1\t1\nq2\td2\t2\nq2\tgone-2\t0\nq2\tgone-3\t1\n"


def _with_absent_documents(tmp_path: Path) -> ImportRequest:
    corpus = tmp_path / "c.csv"
    corpus.write_text("id,text\nd1,one\nd2,two\nd3,three\n")
    queries = tmp_path / "q.csv"
    queries.write_text(QUERIES_CSV)
    (tmp_path / "test.tsv").write_text(ABSENT)
    return ImportRequest("a", corpus=corpus, queries=queries, qrels={"test": tmp_path / "test.tsv"})


def test_judgements_of_absent_documents_are_kept_counted_and_warned(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="irtune"):
        manifest = import_dataset(_with_absent_documents(tmp_path), tmp_path / "a")
    assert manifest.sources[2].kept == {"names a document not in the corpus": 3}
    warned = [r.getMessage() for r in caplog.records if "not in the corpus" in r.getMessage()]
    assert len(warned) == 1 and re.search(
        r"test.tsv: 3 judgements name documents not in the corpus", warned[0]
    )
    assert "drop_unknown_judgements" in warned[0]
    dataset = BeirDataset(tmp_path / "a")
    qrels = dataset.qrels("test")
    assert qrels == {"q1": {"d1": 1, "gone-1": 1}, "q2": {"d2": 2, "gone-2": 0, "gone-3": 1}}
    # they count in R exactly as trec_eval counts them: a run can only hold corpus documents
    run = {"q1": {"d1": 2.0, "d3": 1.0}, "q2": {"d3": 2.0, "d2": 1.0}}
    ours = evaluate_run(qrels, run, ["ndcg@10", "map@10", "recall@10", "p@1"])
    measures = {"ndcg_cut_10", "map_cut_10", "recall_10", "P_1"}
    oracle = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    for qid, values in oracle.items():
        assert ours[qid] == pytest.approx(
            {"ndcg@10": values["ndcg_cut_10"], "map@10": values["map_cut_10"],
             "recall@10": values["recall_10"], "p@1": values["P_1"]},
            abs=1e-12,
        )  # fmt: skip
    assert ours["q1"]["recall@10"] == 0.5 and ours["q2"]["map@10"] == 0.25


def test_judgements_of_absent_documents_can_be_dropped(tmp_path):
    request = _with_absent_documents(tmp_path)
    dropping = ImportRequest(
        "a", corpus=request.corpus, queries=request.queries, qrels=request.qrels, drop_unknown_judgements=True
    )
    manifest = import_dataset(dropping, tmp_path / "a")
    assert manifest.sources[2].dropped == {"names a document not in the corpus": 3}
    assert manifest.sources[2].kept == {}
    assert BeirDataset(tmp_path / "a").qrels("test") == {"q1": {"d1": 1}, "q2": {"d2": 2}}


def test_the_cli_drops_judgements_of_absent_documents_on_request(tmp_path):
    request = _with_absent_documents(tmp_path)
    args = ["--corpus", str(request.corpus), "--queries", str(request.queries)]
    args += ["--qrels", f"test={tmp_path / 'test.tsv'}", "--data-dir", str(tmp_path / "data")]
    kept = irtune("data", "import", "kept", *args)
    assert kept.returncode == 0, kept.stderr
    assert "3 judgements name documents not in the corpus" in kept.stderr
    # one fact, one warning: the summary after the import does not warn of it again
    assert [line.split()[0] for line in kept.stderr.splitlines() if "WARNING" in line] == ["WARNING"]
    dropped = irtune("data", "import", "dropped", *args, "--drop-unknown-judgements")
    assert dropped.returncode == 0, dropped.stderr
    assert BeirDataset(tmp_path / "data" / "dropped").qrels("test") == {"q1": {"d1": 1}, "q2": {"d2": 2}}


# --- files that are not files, disks that fill up


def test_a_fifo_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "docs.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"docs.csv: not a regular file"):
        import_dataset(ImportRequest("f", corpus=fifo), tmp_path / "f")
    qrels = tmp_path / "test.tsv"
    os.mkfifo(qrels)
    queries = tmp_path / "q.csv"
    queries.write_text(QUERIES_CSV)
    (tmp_path / "c.csv").write_text("id,text\nd1,one\n")
    request = ImportRequest("f", corpus=tmp_path / "c.csv", queries=queries, qrels={"test": qrels})
    with pytest.raises(DataError, match=r"test.tsv: not a regular file"):
        import_dataset(request, tmp_path / "f")
    assert not (tmp_path / "f").exists()


def test_a_full_disk_names_the_file_and_changes_nothing(tmp_path, monkeypatch):
    import irtune.data.beir_writer as beir_writer

    docs = tmp_path / "docs.csv"
    docs.write_text("id,text\nd1,one\n")
    root = tmp_path / "own"
    import_dataset(ImportRequest("own", corpus=docs), root)
    before = _contents(root)

    class FullDisk:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")  # as a real write: no file name

    monkeypatch.setattr(beir_writer, "open", FullDisk, raising=False)
    with pytest.raises(OSError) as caught:
        import_dataset(ImportRequest("own", corpus=docs), root, force=True)
    assert (caught.value.errno, caught.value.filename) == (28, str(root / "corpus.jsonl"))
    assert _contents(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.csv", "own"]


def test_a_full_disk_is_one_line_from_the_cli(tmp_path):
    """The file-size limit makes writes fail like a full disk (EFBIG instead of ENOSPC)."""
    docs = tmp_path / "docs.csv"
    docs.write_text("id,text\n" + "".join(f"d{i},{'a long document text ' * 5}\n" for i in range(40)))
    done = subprocess.run(
        [sys.executable, "-m", "irtune", "data", "import", "own", "--corpus", str(docs)],
        capture_output=True,
        text=True,
        env={**os.environ, "IRTUNE_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"},
        timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000)),
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert f"{tmp_path / 'data' / 'own' / 'corpus.jsonl'}: File too large" in line and "re-run" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.csv"]


def test_groups_may_name_groups_and_a_cycle_is_named():
    from irtune.training.plan import expand_presets

    groups = {"mine": ["ds", "more"], "more": ["x", "ds"], "loop": ["ds", "back"], "back": ["loop"]}
    assert expand_presets(["mine", "y"], groups) == ["ds", "x", "y"]
    with pytest.raises(IrtuneError, match=r"^group cycle: loop → back → loop$"):
        expand_presets(["mine", "loop"], groups)


# --- a forced re-import killed half-way, a dataset folder that is a symbolic link


class Killed(BaseException):
    """What a kill -9 between two moves looks like to the code after it: nothing runs."""


def _three_files(tmp_path: Path, version: str) -> ImportRequest:
    (tmp_path / "c.csv").write_text(f"id,text\nd1,one {version}\nd2,two {version}\n")
    (tmp_path / "q.csv").write_text(QUERIES_CSV)
    (tmp_path / "test.tsv").write_text(f"query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td{version}\t1\n")
    return ImportRequest(
        "own", corpus=tmp_path / "c.csv", queries=tmp_path / "q.csv", qrels={"test": tmp_path / "test.tsv"}
    )


def test_an_import_killed_between_moves_is_refused_until_it_is_re_run(tmp_path, monkeypatch):
    """New corpus, old qrels: a mixed folder is never evaluated; the next --force finishes it."""
    root = tmp_path / "data" / "own"
    import_dataset(_three_files(tmp_path, "1"), root)
    replace = os.replace

    def replace_then_die(source, destination):
        if ".importing" in str(source) and (root / "corpus.jsonl").read_text().count("one 2"):
            raise Killed  # the corpus went in; the queries and the qrels did not
        replace(source, destination)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(Killed):
        import_dataset(_three_files(tmp_path, "2"), root, force=True)
    monkeypatch.setattr(os, "replace", replace)
    interrupted = rf"^{re.escape(str(root))}: an import into this folder was interrupted; re-run it$"
    with pytest.raises(DataError, match=interrupted):
        BeirDataset(root)
    with pytest.raises(DataError, match=interrupted):
        resolve_dataset("own", tmp_path / "data")
    env = {**os.environ, "IRTUNE_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"}
    assert_one_line_error(
        irtune("data", "info", "own", env=env), "an import into this folder was interrupted"
    )
    import_dataset(_three_files(tmp_path, "2"), root, force=True)
    dataset = BeirDataset(root)
    assert dataset.corpus["d2"].text == "two 2"
    assert dataset.qrels("test") == {"q1": {"d1": 1}, "q2": {"d2": 1}}


def test_a_first_import_killed_between_moves_is_finished_by_running_it_again(tmp_path, monkeypatch):
    """The interrupted folder is no dataset to protect: the same command (no --force) replaces it."""
    root = tmp_path / "own"
    replace = os.replace

    def replace_then_die(source, destination):
        if ".importing" in str(source) and (root / "corpus.jsonl").exists():
            raise Killed
        replace(source, destination)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(Killed):
        import_dataset(_three_files(tmp_path, "1"), root)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(DataError, match="an import into this folder was interrupted"):
        BeirDataset(root)
    import_dataset(_three_files(tmp_path, "1"), root)
    assert BeirDataset(root).qrels("test") == {"q1": {"d1": 1}, "q2": {"d1": 1}}
    with pytest.raises(IrtuneError, match=r"own already exists \(pass force"):
        import_dataset(_three_files(tmp_path, "1"), root)


def test_an_import_through_a_symlinked_dataset_folder_is_refused(tmp_path):
    request = _three_files(tmp_path, "1")
    base = tmp_path / "data" / "base"
    import_dataset(ImportRequest("base", corpus=request.corpus), base)
    before = _contents(base)
    (tmp_path / "data" / "alias").symlink_to(base)
    with pytest.raises(IrtuneError, match=r"alias is a symbolic link to .*base: import into .*base itself"):
        import_dataset(ImportRequest("alias", corpus=request.corpus), tmp_path / "data" / "alias", force=True)
    assert _contents(base) == before
    assert json.loads((base / IMPORT_MANIFEST).read_text())["dataset"] == "base"


def test_a_loop_of_symbolic_links_is_named_as_one(tmp_path):
    (tmp_path / "loop1.csv").symlink_to(tmp_path / "loop2.csv")
    (tmp_path / "loop2.csv").symlink_to(tmp_path / "loop1.csv")
    with pytest.raises(
        DataError, match=r"loop1.csv: cannot be opened \(too many levels of symbolic links\)$"
    ):
        import_dataset(ImportRequest("l", corpus=tmp_path / "loop1.csv"), tmp_path / "l")
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(DataError, match=r"dangling.csv: file not found \(a symbolic link to .*gone.csv\)$"):
        import_dataset(ImportRequest("l", corpus=tmp_path / "dangling.csv"), tmp_path / "l")
    assert not (tmp_path / "l").exists()

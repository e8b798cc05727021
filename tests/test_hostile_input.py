"""Hostile-but-fair input across every command, as a new user would try it.

Each case of the table runs the real command line in a child process against a small
workspace (a dataset, results files, configs) and asserts the exit code, one message line
without a traceback (or click's usage line plus one `Error:` line), and that nothing in the
workspace was written, changed or left behind (no empty output folders, no cache entries).
After the table: real processes that are interrupted (Ctrl-C), run twice at once, or run
out of disk space.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import shared_dataset, write_beir
from results_fixtures import LEVELS, results_doc, write

CORPUS = {
    "d1": {"title": "Aspirin", "text": "Aspirin lowers the risk of heart attacks in adults."},
    "d2": {"title": "Statins", "text": "Statins reduce cholesterol and cardiovascular events."},
    "d3": {"title": "Vitamin D", "text": "Vitamin D supplements do not prevent fractures."},
    "d4": {"title": "Exercise", "text": "Regular exercise improves sleep quality in older people."},
}
QUERIES = {"q1": "does aspirin prevent heart attacks", "q2": "vitamin d and bone fractures"}
STUDY = """
name = "hostile"
out_dir = "{tmp}/study"

[model]
base = "minilm"
{model}

[evaluation]
datasets = [{datasets}]
{evaluation}

[[variants]]
name = "v"
train = [{train}]
{variant}
"""


def _study(tmp: Path, name: str = "study.toml", **parts: str) -> None:
    fields = {"model": "", "datasets": '"ds"', "evaluation": "", "train": '"ds"', "variant": "", **parts}
    (tmp / name).write_text(STUDY.format(tmp=tmp, **fields), encoding="utf-8")


def _results(tmp: Path, edit: Callable[[dict], object]) -> None:
    doc = results_doc("edited", LEVELS)
    replaced = edit(doc)
    write(tmp / "edited.json", doc if replaced is None else replaced)


def _corrupt(relative: str, text: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / "data" / "ds" / relative).write_text(text, encoding="utf-8")

    return setup


def _without_key(doc: dict) -> None:
    del doc["datasets"][0]["metrics"]


def _null_label(doc: dict) -> None:
    doc["label"] = None


def _drop_one_query(doc: dict) -> None:
    per_query = doc["datasets"][0]["per_query"]
    del per_query[sorted(per_query)[0]]


@dataclass(frozen=True)
class Case:
    command: str  # the table is grouped by command for the per-command counts
    args: tuple[str, ...]  # {tmp}: the workspace, {ds}: the dataset folder
    message: str | tuple[str, ...]  # expected in the message line (or click's `Error:` line), in order
    code: int = 2
    setup: Callable[[Path], None] | None = None
    usage: bool = False  # a click usage error: usage line + one `Error:` line


COMMANDS = ("eval", "split", "train", "run", "compare", "report", "data", "generate", "export", "push")


def case(*args: str, message: str | tuple[str, ...], **kw) -> Case:
    """A case of the command its arguments start with (`cli`: the command line itself)."""
    return Case(args[0] if args[0] in COMMANDS else "cli", args, message, **kw)


EVAL = ("eval", "-d", "ds", "-m", "minilm")
BM25_OUT = ("eval", "--retriever", "bm25", "-d", "ds", "--out", "{tmp}/out")
SPLIT = ("split", "-d", "ds", "--out", "{tmp}/s")
TRAIN = ("train", "-m", "minilm", "--train", "ds", "--out", "{tmp}/t")
RUN_STUDY = ("run", "{tmp}/study.toml")
EDITED = ("compare", "{tmp}/base.json", "{tmp}/edited.json")
GENERATE = ("generate", "-d", "ds", "--generator", "hf:x")
CORRUPT_CORPUS = _corrupt("corpus.jsonl", '{"_id": "d1", "text": "x"}\n{"_id": "d2", "text": \n')
SHORT_QRELS_ROW = _corrupt("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\n")
BAD_GRADE = _corrupt("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\tmany\n")
CASES = [
    # --- eval: flags checked before the model or the corpus is touched
    case("eval", message="Missing option '-d'", usage=True),
    case(*EVAL, "--batch-size", "abc", message="Invalid value for '--batch-size'", usage=True),
    case(*EVAL, "--batch-size", "0", message="--batch-size must be at least 1"),
    case(*EVAL, "--batch-size", "-5", message="--batch-size must be at least 1"),
    case(*EVAL, "--top-k", "0", message="--top-k must be at least 1"),
    case(*EVAL, "--top-k", "-3", message="--top-k must be at least 1"),
    case(*EVAL, "--top-k", "10", message="--top-k 10 is below the deepest metric cutoff"),
    case(*EVAL, "--max-seq-length", "0", message="--max-seq-length must be at least 1"),
    case(*EVAL, "--device", "banana", message="--device 'banana': not a device"),
    case(*EVAL, "--device", "cuda:99", message="--device cuda:99:"),
    case(*EVAL, "--devices", "cpu,banana", message="--devices 'banana': not a device"),
    case(*EVAL, "--retriever", "sparse", message="--retriever must be one of dense, bm25"),
    case(*EVAL, "--precision", "fp8", message="--precision must be one of fp32, bf16, fp16"),
    case(*EVAL, "--store-dtype", "int8", message="--store-dtype must be one of"),
    case(*EVAL, "--index", "annoy", message="--index must be one of exact, flat, ivf, hnsw"),
    case(*EVAL, "--index", "ivf", "--index-param", "bogus=3", message="bogus: not a parameter"),
    case(*EVAL, "--index", "ivf", "--index-param", "nlist=-1", message="at least 1"),
    case(*EVAL, "--index", "ivf", "--index-param", "nlist=abc", message="nlist=abc: must be a whole number"),
    case(*EVAL, "--index", "hnsw", "--index-param", "m=2.5", message="m=2.5: must be a whole"),
    case(*EVAL, "--index-param", "nprobe=3", message="not a parameter of --index exact (none)"),
    case(*EVAL, "--index-param", "nprobe", message="expected KEY=VALUE"),
    case(*EVAL, "--out", "{tmp}/file.txt", message="file.txt: is a file, not a folder"),
    case(*EVAL, "--out", "{tmp}/file.txt/sub", message="file.txt is a file, not a folder"),
    case("eval", "-m", "minilm", "-d", "nosuch", message='dataset "nosuch" not found'),
    case(*EVAL, "--cache-dir", "{tmp}/file.txt", message="--cache-dir {tmp}/file.txt: is a file"),
    # a relative path outside the data dir, resolved from the working directory (named so that
    # nothing beside a checkout can match it)
    case(
        "eval",
        "-m",
        "minilm",
        "-d",
        "../no-such-irtune-dataset",
        message="../no-such-irtune-dataset: dataset folder not found",
    ),
    case("eval", "-m", "minilm", "-d", "x/../../ds", message="must be a name inside the data"),
    case(*EVAL, "--split", "dev", message='split "dev" not found (available: test)'),
    case(*EVAL, "--split-file", "{tmp}/nosuch.json", message="nosuch.json: cannot read split file"),
    case(*EVAL, "--split-file", "{tmp}/file.txt", message="file.txt: cannot read split file"),
    case("eval", "-d", "ds", message="dense retrieval needs a --model: minilm, a hub id or a folder"),
    case("eval", "-d", "ds", "-m", "{tmp}/nosuch-model", message="model folder not found"),
    case(*BM25_OUT, message="corpus.jsonl:2: malformed JSON", setup=CORRUPT_CORPUS),
    case(*BM25_OUT, message="test.tsv:2: ", setup=SHORT_QRELS_ROW),
    # --- split
    case("split", "-d", "ds", message="Missing option '--out'", usage=True),
    case(*SPLIT, "--dev-fraction", "1.5", message="between 0"),
    case(*SPLIT, "--dev-fraction", "0", message="between 0"),
    case(*SPLIT, "--eval-fraction", "-0.5", message="between 0"),
    case(*SPLIT, "--eval-fraction", "1.0", message="between 0"),
    case("split", "-d", "ds", "--out", "{tmp}/file.txt", message="is a file, not a folder"),
    case("split", "-d", "nosuch", "--out", "{tmp}/s", message='dataset "nosuch" not found'),
    # --- train
    case("train", "-m", "minilm", "--train", "ds", message="Missing option '--out'", usage=True),
    case(*TRAIN, "--epochs", "0", message="epochs: Input should be greater than or equal to 1"),
    case(*TRAIN, "--batch-size", "1", message="batch_size: Input should be greater than or equal to 2"),
    case(*TRAIN, "--learning-rate", "-1", message="learning_rate"),
    case(*TRAIN, "--loss", "triplet", message="unknown loss 'triplet'"),
    case(*TRAIN, "--config", "{tmp}/configdir", message="is a folder, not a TOML file"),
    case(*TRAIN, "--config", "{tmp}/binary.toml", message="not a text file"),
    case(*TRAIN, "--config", "{tmp}/syntax.toml", message="invalid TOML"),
    case(*TRAIN, "--config", "{tmp}/typo.toml", message="learning_rat: unknown key"),
    case(
        "train", "-m", "minilm", "--train", "ds", "--out", "{tmp}/file.txt", message="is a file, not a folder"
    ),
    case(
        "train", "-m", "minilm", "--train", "nosuch", "--out", "{tmp}/t", message='dataset "nosuch" not found'
    ),
    case("train", "-m", "minilm", "--train", "ds:dev", "--out", "{tmp}/t", message='split "dev" not found'),
    case(*TRAIN, "--device", "banana", message="not a device"),
    case("train", "-m", "minilm", "--out", "{tmp}/t", message="no training data"),
    case(*TRAIN, "--cache-dir", "{tmp}/file.txt", message="--cache-dir {tmp}/file.txt: is a file"),
    # --- run: everything the config names is resolved when it is read
    case("run", "{tmp}/nosuch.toml", message="nosuch.toml: file not found"),
    case("run", "{tmp}/configdir", message="is a folder, not a TOML file"),
    case("run", "{tmp}/binary.toml", message="not a text file"),
    case("run", "{tmp}/syntax.toml", message="invalid TOML"),
    case(
        *RUN_STUDY,
        message='evaluation.datasets: dataset "nosuch" not found',
        setup=lambda t: _study(t, datasets='"nosuch"'),
    ),
    case(
        *RUN_STUDY,
        message='variants.v.train: dataset "other" not found',
        setup=lambda t: _study(t, train='"other"'),
    ),
    case(
        *RUN_STUDY,
        message=("variants.v.train: ", 'split "dev" not found'),
        setup=lambda t: _study(t, train='"ds:dev"'),
    ),
    case(
        *RUN_STUDY,
        message="evaluate_on names 'other'",
        setup=lambda t: _study(t, variant='evaluate_on = ["other"]'),
    ),
    case(
        *RUN_STUDY, message="evaluation.precision", setup=lambda t: _study(t, evaluation='precision = "fp8"')
    ),
    case(*RUN_STUDY, message="model.device", setup=lambda t: _study(t, model='device = "banana"')),
    case(
        *RUN_STUDY,
        message="training.epochs",
        setup=lambda t: _study(t, evaluation="\n[training]\nepochs = 0"),
    ),
    case(
        *RUN_STUDY,
        message="variants.v.training: batch_size",
        setup=lambda t: _study(t, variant="training = { batch_size = 0 }"),
    ),
    case(*RUN_STUDY, "--force", "nosuchstage", message="--force: unknown stage", setup=_study),
    case(
        *RUN_STUDY,
        message="study: is a file, not a folder",
        setup=lambda t: (_study(t), (t / "study").write_text("a file")),
    ),
    # --- compare and report: results files are input too
    case("compare", "{tmp}/nosuch.json", message="results file not found"),
    case("compare", "{tmp}/file.txt", "{tmp}/base.json", message="file.txt:1: malformed JSON"),
    case(*EDITED, message="metrics", setup=lambda t: _results(t, _without_key)),
    case(*EDITED, message="label", setup=lambda t: _results(t, _null_label)),
    case(*EDITED, message="not an irtune results file", setup=lambda t: _results(t, lambda doc: [doc])),
    case(*EDITED, message="per_query holds", setup=lambda t: _results(t, _drop_one_query)),
    case(
        *("compare", "{tmp}/base.json", "{tmp}/base.json", "--json", "{tmp}/configdir"),
        message="--json {tmp}/configdir: is a folder, not a file",
    ),
    case(
        *("report", "{tmp}/base.json", "{tmp}/base.json", "--out", "{tmp}/configdir"),
        message="is a folder, not a file",
    ),
    case("report", "{tmp}/base.json", "--out", "{tmp}/r.md", message="another name"),
    case("report", "{tmp}/nosuch.json", "--out", "{tmp}/r.html", message="results file not found"),
    # --- export, push and trackers
    case("export", "{tmp}/nosuch.json", "--out", "{tmp}/m", message="results file not found"),
    case(
        "export", "{tmp}/base.json", "--format", "csv", "--out", "{tmp}/m", message="--format csv: only mteb"
    ),
    case("export", "{tmp}/base.json", "--out", "{tmp}/file.txt", message="is a file, not a folder"),
    case("push", "{tmp}", "--repo-id", "me/m", message="not an irtune model folder"),
    case("push", "{tmp}", message="Missing option '--repo-id'", usage=True),
    case(*TRAIN, "--report-to", "neptune", message="unknown tracker 'neptune'"),
    # --- data
    case("data", "info", "nosuch", message='dataset "nosuch" not found'),
    case("data", "info", "ds", message="test.tsv:3: ", setup=BAD_GRADE),
    case("data", "fetch", "../x", "--md5", "0" * 32, message='dataset name "../x": must be a folder'),
    case("data", "fetch", "mystery", message='no checksum known for "mystery"'),
    case("data", "fetch", "scifact", "--data-dir", "{tmp}/file.txt", message="--data-dir {tmp}/file.txt"),
    case("data", "fetch", "scifact", "--mirror", "{tmp}/configdir", "--force", message="scifact.zip"),
    case("data", "import", "../x", "--corpus", "{tmp}/docs.csv", message="must be a folder name"),
    case("data", "import", "new", "--corpus", "{tmp}/nosuch.csv", message="nosuch.csv"),
    case(
        *("data", "import", "new", "--corpus", "{tmp}/docs.csv", "--out", "{tmp}/file.txt"),
        message="is a file, not a folder",
    ),
    case("data", "import", "new", "--corpus", "{tmp}/bad.csv", message="bad.csv:3"),
    # --- generate
    case("generate", "-d", "ds", "--generator", "bogus:x", message="--generator"),
    case("generate", "-d", "ds", "--generator", "openai:http://127.0.0.1:9", message="--model"),
    case(*GENERATE, "--sample", "0", message="--sample"),
    case(*GENERATE, "--min-words", "0", message="--min-words"),
    case("generate", "-d", "nosuch", "--generator", "hf:x", message='dataset "nosuch" not found'),
    case(*GENERATE, "--cache-dir", "{tmp}/file.txt", message="--cache-dir {tmp}/file.txt: is a file"),
    # --- the command line itself
    case("nosuchcmd", message="No such command 'nosuchcmd'", usage=True),
    case("--bogus", message="No such option: --bogus", usage=True),
]


def _workspace(tmp: Path) -> dict[str, str]:
    write_beir(tmp / "data" / "ds", CORPUS, QUERIES, {"test": {"q1": {"d1": 1}, "q2": {"d3": 2}}})
    write(tmp / "base.json", results_doc("base", LEVELS))
    (tmp / "file.txt").write_text("not a folder\n")
    (tmp / "configdir").mkdir()
    (tmp / "binary.toml").write_bytes(b"\xff\xfe\x00binary\x00")
    (tmp / "syntax.toml").write_text("epochs = = 2\n")
    (tmp / "typo.toml").write_text("epochs = 1\nlearning_rat = 1e-5\n")
    (tmp / "docs.csv").write_text("id,text\nd1,one\nd2,two\n")
    (tmp / "bad.csv").write_text('id,text\nd1,one\nd2,"unterminated\n')
    env = dict(os.environ)
    env.update(
        IRTUNE_DATA_DIR=str(tmp / "data"),
        IRTUNE_CACHE_DIR=str(tmp / "cache"),
        HF_HUB_OFFLINE="1",
        NO_COLOR="1",
    )
    return env


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under `root` with a digest of its bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        found[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _says(line: str, expected: str | tuple[str, ...], tmp: Path) -> bool:
    """Every expected part is in the line, in order ({tmp}: the workspace)."""
    position = 0
    for part in (expected,) if isinstance(expected, str) else expected:
        position = line.find(part.format(tmp=tmp), position)
        if position < 0:
            return False
    return True


def _case_id(c: Case) -> str:
    return f"{c.command}:{' '.join(c.args)[:60]}"


@pytest.mark.parametrize("hostile", CASES, ids=[_case_id(c) for c in CASES])
def test_hostile_input_is_one_line_and_leaves_nothing_behind(hostile: Case, tmp_path: Path):
    env = _workspace(tmp_path)
    if hostile.setup:
        hostile.setup(tmp_path)
    before = _snapshot(tmp_path)
    args = [a.format(tmp=tmp_path, ds=tmp_path / "data" / "ds") for a in hostile.args]
    done = subprocess.run(
        [sys.executable, "-m", "irtune", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == hostile.code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    if hostile.usage:
        assert lines[0].lstrip().startswith("Usage: "), done.stderr
        errors = [line for line in lines if line.startswith("Error: ")]
        assert len(errors) == 1 and _says(errors[0], hostile.message, tmp_path), done.stderr
    else:
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("error: ") and _says(lines[0], hostile.message, tmp_path), done.stderr
    assert _snapshot(tmp_path) == before


def test_the_table_covers_every_command_with_sixty_cases():
    commands = {c.command for c in CASES}
    assert {
        "eval",
        "split",
        "train",
        "run",
        "compare",
        "report",
        "data",
        "generate",
        "export",
        "push",
        "cli",
    } <= commands
    assert len(CASES) >= 60


# --- real processes: interrupted, run twice at once, out of disk space


def _sigint_when(args: list[str], started: Callable[[], bool], env: dict | None = None) -> tuple[int, str]:
    """Run irtune, send SIGINT (a terminal's Ctrl-C) once `started()` holds; (exit code, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "irtune", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # a runner started in the background (`cmd &`) ignores SIGINT, and the child would inherit
        # that; a terminal's Ctrl-C reaches a process with the default disposition
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300  # a cold start on a busy machine can take minutes
    while not started() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    return process.returncode, stderr


def test_ctrl_c_during_eval_says_what_was_kept_and_exits_130(tmp_path):
    """SIGINT while the corpus is being encoded."""
    dataset = shared_dataset("scifact")
    args = ["eval", "-m", "minilm", "-d", str(dataset), "--cache-dir", str(tmp_path)]
    code, stderr = _sigint_when(args, lambda: bool(list(tmp_path.glob("embeddings/*"))))
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr.strip().splitlines()[-1]


def test_ctrl_c_during_a_study_keeps_finished_stages_and_exits_130(tmp_path):
    """SIGINT in `irtune run` while the baseline encodes: one line, exit 130, the stage is not
    marked done (a re-run redoes it) and the splits stage that finished is."""
    dataset = shared_dataset("scifact")
    study = tmp_path / "study.toml"
    study.write_text(
        f'name = "ctrl-c"\nout_dir = "{tmp_path / "run"}"\n[evaluation]\ndatasets = ["{dataset.name}"]\n',
        encoding="utf-8",
    )
    env = {**os.environ, "IRTUNE_DATA_DIR": str(dataset.parent), "IRTUNE_CACHE_DIR": str(tmp_path / "cache")}
    code, stderr = _sigint_when(
        ["run", str(study)], lambda: bool(list(tmp_path.glob("cache/embeddings/*"))), env
    )
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr.strip().splitlines()[-1]
    stages = {p.parent.name.split("-")[0] for p in (tmp_path / "run" / "stages").glob("*/done.json")}
    assert stages == {"splits"}


HOLD_LOCK = """
import sys, time
from pathlib import Path
from irtune.core.locks import folder_lock
folder = Path(sys.argv[1])
try:
    with folder_lock(folder, what="test"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
        if sys.argv[3] == "fail":  # like a command that fails: its empty folder goes
            raise RuntimeError("failed")
        (folder / "released").write_text("")  # the last thing before the lock goes
except RuntimeError:
    pass
"""


def _holder(folder: Path, seconds: float, end: str = "release") -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(folder), str(seconds), end], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_process_on_a_busy_folder_is_refused_and_the_lock_dies_with_its_holder(tmp_path):
    """Another process writing the same --out (or study): the second says so in one line and
    writes nothing; a holder killed with -9 leaves no stale lock."""
    env = _workspace(tmp_path)
    out = tmp_path / "out"
    holder = _holder(out, 600)
    try:
        args = ["eval", "--retriever", "bm25", "-d", "ds", "--out", str(out)]
        busy = subprocess.run(
            [sys.executable, "-m", "irtune", *args], capture_output=True, text=True, env=env, timeout=300
        )
        assert busy.returncode == 2 and "Traceback" not in busy.stderr
        [line] = [line for line in busy.stderr.splitlines() if line.strip()]
        assert "another irtune process is writing this results folder" in line
        assert list(out.iterdir()) == []
        _study(tmp_path, variant="")
        (tmp_path / "study").mkdir()
        study_holder = _holder(tmp_path / "study", 600)
        try:
            second = subprocess.run(
                [sys.executable, "-m", "irtune", "run", str(tmp_path / "study.toml")],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            assert second.returncode == 2 and "another irtune process is writing this study" in second.stderr
        finally:
            study_holder.kill()
        generating = _holder(tmp_path / "data" / "ds" / ".irtune-generate", 600)
        try:
            endpoint = ["--generator", "openai:http://127.0.0.1:9/v1", "--model", "m", "--round-trip-k", "0"]
            third = subprocess.run(
                [sys.executable, "-m", "irtune", "generate", "-d", "ds", *endpoint],
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            assert third.returncode == 2, third.stderr
            assert "another irtune process is writing this dataset's query generation" in third.stderr
        finally:
            generating.kill()
    finally:
        holder.kill()
        holder.wait()
    after = subprocess.run(
        [sys.executable, "-m", "irtune", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert after.returncode == 0, after.stderr
    assert (out / "results.json").is_file()


def test_a_second_process_encoding_the_same_cache_entry_waits_for_the_first(tmp_path):
    from irtune.core.locks import folder_lock

    entry = tmp_path / "embeddings" / "key"
    holder = _holder(entry, 1.5)
    with folder_lock(entry, what="embedding cache entry", wait=True):
        assert (entry / "released").is_file()  # got the lock only once the holder let go
    holder.wait(timeout=60)


def test_a_waiter_whose_holder_failed_and_removed_the_folder_locks_the_new_one(tmp_path):
    """The holder fails, so it removes the empty folder it created: the waiter must not end up
    holding a lock on the removed folder while a third process locks the recreated one."""
    from irtune.core.locks import folder_lock

    entry = tmp_path / "embeddings" / "key"
    holder = _holder(entry, 1.5, end="fail")
    with folder_lock(entry, what="embedding cache entry", wait=True):
        holder.wait(timeout=60)
        assert entry.is_dir() and not (entry / "released").exists()
        third = subprocess.run(
            [sys.executable, "-c", HOLD_LOCK, str(entry), "0", "release"], capture_output=True, text=True
        )
        assert third.returncode != 0 and "another irtune process is writing this test" in third.stderr


def test_a_file_system_without_locks_runs_unlocked_with_a_warning(tmp_path, monkeypatch, caplog):
    import errno
    import fcntl

    from irtune.core.locks import folder_lock

    def no_locks(fd, operation):
        raise OSError(errno.EBADF, "Bad file descriptor")  # what NFS says to flock on a folder

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with folder_lock(tmp_path / "out", what="results folder"):
        (tmp_path / "out" / "results.json").write_text("{}")
    assert "this file system has no locks" in caplog.text


def test_a_full_disk_is_one_line_naming_the_file_and_nothing_half_written(tmp_path):
    """The file-size limit makes writes fail like a full disk (EFBIG instead of ENOSPC)."""
    env = _workspace(tmp_path)
    out = tmp_path / "out"

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    done = subprocess.run(
        [sys.executable, "-m", "irtune", "eval", "--retriever", "bm25", "-d", "ds", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        preexec_fn=small_files,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.strip()]
    assert f"{out / 'results.json'}: File too large" in line and "re-run" in line
    assert not (out / "results.json").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no partial file kept


def test_a_failed_block_removes_only_the_empty_folders_it_created(tmp_path):
    """Inside a held lock, every empty folder the block created goes (nothing else writes there);
    files and the folders holding them stay, and so does what existed before."""
    from irtune.core.files import tidy_on_failure
    from irtune.core.locks import folder_lock

    out = tmp_path / "out"
    (out / "mine-before").mkdir(parents=True)
    with pytest.raises(RuntimeError), folder_lock(out, what="results folder"):
        (out / "_work" / "empty").mkdir(parents=True)
        (out / "checkpoint").mkdir()
        (out / "checkpoint" / "weights").write_text("kept: a run resumes from it")
        raise RuntimeError("failed")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "mine-before"]
    fresh = tmp_path / "a" / "b" / "c"
    with pytest.raises(RuntimeError), folder_lock(fresh, what="results folder"):
        (fresh / "runs").mkdir()
        raise RuntimeError("failed")
    assert list(tmp_path.iterdir()) == [out]
    # unlocked: only the folder and the parents it created, never anything inside a folder
    # that existed (another process may be working there)
    with pytest.raises(RuntimeError), tidy_on_failure(fresh):
        fresh.mkdir(parents=True)
        raise RuntimeError("failed")
    assert list(tmp_path.iterdir()) == [out]
    with pytest.raises(RuntimeError), tidy_on_failure(out):
        (out / "made-meanwhile").mkdir()
        raise RuntimeError("failed")
    assert (out / "made-meanwhile").is_dir()
    with tidy_on_failure(fresh):  # success: nothing removed
        fresh.mkdir(parents=True)
    assert fresh.is_dir()

"""`irtune compare` and `irtune report` read JSON: they must start without the ML stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from results_fixtures import LEVELS, results_doc, write

HEAVY = ("torch", "transformers", "sentence_transformers", "faiss", "bm25s")

PROBE = """
import json, sys
from irtune.cli.app import main
sys.argv = ["irtune", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
""".replace("HEAVY", repr(HEAVY))


def _run_cli(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=False, timeout=300
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_compare_and_report_do_not_import_the_ml_stack(tmp_path: Path):
    base = write(tmp_path / "base" / "results.json", results_doc("base", LEVELS))
    tuned = write(tmp_path / "tuned" / "results.json", results_doc("tuned", LEVELS, shift=0.05, seed=1))
    compared = _run_cli("compare", str(base), str(tuned))
    assert compared == {"code": 0, "heavy": []}
    reported = _run_cli("report", str(base), str(tuned), "--out", str(tmp_path / "report.html"))
    assert reported == {"code": 0, "heavy": []}
    assert (tmp_path / "report.html").is_file()


def test_bad_eval_and_train_flags_fail_before_the_ml_stack_loads(tmp_path: Path):
    """Every check that needs no model runs first: a typo costs half a second, not a model load."""
    from conftest import write_beir

    data = write_beir(tmp_path / "ds", {"d1": {"text": "x"}}, {"q1": "y"}, {"test": {"q1": {"d1": 1}}})
    for args in (
        ["eval", "-m", "minilm", "-d", str(data), "--top-k", "0"],
        ["eval", "-m", "minilm", "-d", str(data), "--index", "ivf", "--index-param", "nlist=-1"],
        ["eval", "-m", "minilm", "-d", str(data), "--split", "dev"],
        ["eval", "-m", "minilm", "-d", str(data), "--out", str(data / "corpus.jsonl")],
        ["split", "-d", str(data), "--out", str(tmp_path / "s"), "--dev-fraction", "0"],
    ):
        assert _run_cli(*args) == {"code": 2, "heavy": []}, args


def test_the_probe_sees_a_heavy_import_when_there_is_one(tmp_path: Path):
    """The check above can fail: the probe does see torch once something imports it."""
    probe = PROBE.replace("main()", "import irtune.models.loading; main()")
    done = subprocess.run(
        [sys.executable, "-c", probe, "--help"], capture_output=True, text=True, check=False, timeout=300
    )
    assert "torch" in json.loads(done.stdout.strip().splitlines()[-1])["heavy"]


def test_dense_exact_evaluation_loads_neither_faiss_nor_bm25(tmp_path: Path, tiny_model: Path):
    """A GPU machine's image (benchmarks/gpu_check.py) has no FAISS: exact search must not need it."""
    from conftest import write_beir

    data = write_beir(tmp_path / "ds", {"d1": {"text": "x"}}, {"q1": "y"}, {"test": {"q1": {"d1": 1}}})
    args = ["eval", "-m", str(tiny_model), "-d", str(data), "--cache-dir", str(tmp_path / "c")]
    assert _run_cli(*args) == {"code": 0, "heavy": ["sentence_transformers", "torch", "transformers"]}
    probe_ann = [*args, "--index", "flat", "--out", str(tmp_path / "flat")]
    assert "faiss" in _run_cli(*probe_ann)["heavy"]


def test_the_api_names_stay_functions_after_their_modules_are_imported():
    """`irtune.train` is the function even once `irtune.training` (a package) is loaded:
    no submodule shares a name with the API."""
    import irtune
    import irtune.evaluation.runner
    import irtune.evaluation.sweep
    import irtune.reporting.files
    import irtune.results.compare
    import irtune.training.trainer

    for name in ("load_dataset", "load_model", "evaluate", "frontier", "train", "compare", "report"):
        assert callable(getattr(irtune, name)) and getattr(irtune, name).__module__ == "irtune.api"

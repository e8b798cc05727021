"""Several sizes in one call: every dims x quantize setting from one encoding, each its own
results file equal to the single-setting run, all compared with full precision as one family."""

from __future__ import annotations

import json
import re

import pytest

from irtune.errors import IrtuneError
from irtune.evaluation.sweep import FULL, Setting, grid

from conftest import assert_one_line_error, irtune


def test_the_grid_starts_at_full_precision_and_drops_repeats():
    points = grid([256, 128, 256], ["none", "int8", "ubinary"], rescore=4)
    assert points[0] == Setting(None) and points[0].name == FULL
    assert [p.name for p in points[1:]] == [
        "dall-int8",  # every dimension, int8: named by the model's size in a sweep
        "dall-ubinary-rescore4",
        "d256-float",
        "d256-int8",
        "d256-ubinary-rescore4",
        "d128-float",
        "d128-int8",
        "d128-ubinary-rescore4",
    ]
    assert [p.name for p in grid([], ["none", "int8"])] == [FULL, "dall-int8"]
    assert Setting(None, "int8").named(384) == "d384-int8" and Setting(384).named(384) == FULL
    assert Setting(384, "int8").resolved(384) == Setting(None, "int8")  # one run, one name


@pytest.mark.parametrize(
    ("dims", "quantize", "rescore", "message"),
    [
        ([128, 0], ["none"], 1, "dims must be at least 1"),
        ([128], ["none", "int4"], 1, "quantize must be among none, int8, ubinary, not 'int4'"),
        ([128, 64], ["none", "int8"], 4, "rescore applies to quantize ubinary"),
    ],
)
def test_a_bad_grid_is_one_line(dims, quantize, rescore, message):
    with pytest.raises(IrtuneError, match=message):
        grid(dims, quantize, rescore)


def test_one_call_evaluates_every_setting_from_one_encoding(tiny_model, scifact_slice, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "sizes"
    done = irtune(
        "eval", "-m", str(tiny_model), "-d", str(scifact_slice), "--dims", "32,16", "--quantize",
        "none,int8", "--cache-dir", str(cache), "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # 32 is the tiny model's own size: "d32-float" is the full run, not a second one
    assert sorted(p.name for p in out.iterdir()) == [
        "d16-float",
        "d16-int8",
        "d32-int8",
        "frontier.json",
        "full",
    ]
    assert len(list(cache.glob("embeddings/*/manifest.json"))) == 1  # encoded once
    assert "efficiency frontier" in done.stdout and "d16-int8" in done.stdout
    # the printed p-values are kept, with the family they were corrected over
    frontier = json.loads((out / "frontier.json").read_text())
    assert frontier["correction"].startswith("Holm-corrected over all 12 tests (3 comparisons")
    assert sorted(frontier["comparisons"]) == ["d16-float", "d16-int8", "d32-int8"]
    assert len(frontier["rows"]) == 4 and frontier["settings"]["full"] == "full/results.json"
    swept = json.loads((out / "d16-int8" / "results.json").read_text())
    assert swept["retriever"]["params"]["dims"] == 16 and swept["retriever"]["params"]["quantize"] == "int8"
    # the same numbers as the single-setting command
    single = irtune(
        "eval", "-m", str(tiny_model), "-d", str(scifact_slice), "--dims", "16", "--quantize", "int8",
        "--cache-dir", str(cache), "--out", str(tmp_path / "single"),
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    alone = json.loads((tmp_path / "single" / "results.json").read_text())
    assert swept["datasets"][0]["metrics"] == alone["datasets"][0]["metrics"]
    assert swept["datasets"][0]["per_query"] == alone["datasets"][0]["per_query"]


def test_every_setting_is_compared_with_full_precision_as_one_family(tiny_model, scifact_slice, tmp_path):
    import irtune as api

    swept = api.frontier(
        str(tiny_model), str(scifact_slice), dims=[16, 8], quantize=["none", "ubinary"],
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    names = list(swept.runs)
    assert names == [FULL, "d32-ubinary", "d16-float", "d16-ubinary", "d8-float", "d8-ubinary"]
    assert sorted(swept.comparisons) == sorted(names[1:])
    tests = {c.correction.tests for c in swept.comparisons.values() if c.correction}
    assert tests == {5 * 1 * 4}  # 5 settings x 1 dataset x 4 metrics: one Holm family
    rows = swept.rows()
    assert [r["setting"] for r in rows] == names
    assert rows[0]["bytes_per_document"] == 128 and "delta" not in rows[0]
    by_name = {r["setting"]: r for r in rows}
    assert by_name["d8-ubinary"]["bytes_per_document"] == 1
    assert by_name["d16-float"]["delta"] == pytest.approx(
        by_name["d16-float"]["ndcg@10"] - by_name[FULL]["ndcg@10"]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dims", "128,abc"], "--dims must be whole numbers separated by commas, not '128,abc'"),
        (["--dims", "128,64", "--index", "hnsw"], "apply to --retriever dense with --index exact"),
        (["--quantize", "none,int4"], "--quantize must be among none, int8, ubinary"),
        (["--dims", "128,64", "--retriever", "hybrid"], "apply to --retriever dense with --index exact"),
    ],
)
def test_bad_sweeps_are_one_line_before_the_model_loads(extra, message, tmp_path):
    from conftest import write_beir

    data = write_beir(tmp_path / "ds", {"d1": {"text": "x"}}, {"q1": "y"}, {"test": {"q1": {"d1": 1}}})
    assert_one_line_error(irtune("eval", "-m", "minilm", "-d", str(data), *extra), message)


def _small_dataset(tmp_path):
    from conftest import write_beir

    corpus = {f"d{i}": {"title": f"T{i}", "text": f"document {i} about topic {i % 3}"} for i in range(12)}
    queries = {"q1": "topic 1", "q2": "topic 2"}
    return str(write_beir(tmp_path / "ds", corpus, queries, {"test": {"q1": {"d1": 1}, "q2": {"d2": 1}}}))


def test_each_setting_folder_is_checked_before_the_model_loads_and_force_replaces(tiny_model, tmp_path):
    """A setting's folder holding another evaluation is refused before anything is encoded or
    written; a results.json at the sweep's root, which a sweep never writes, is no obstacle."""
    import irtune as api

    data, out, cache = _small_dataset(tmp_path), tmp_path / "sizes", tmp_path / "cache"
    api.evaluate(None, data, retriever="bm25", out_dir=out)  # the user's own run, at the root
    api.evaluate(None, data, retriever="bm25", out_dir=out / "d16-int8")
    with pytest.raises(IrtuneError) as refused:
        api.frontier(
            str(tiny_model), data, dims=[16], quantize=["none", "int8"], out_dir=out, cache_dir=cache
        )
    assert str(refused.value) == (
        f"out_dir {out / 'd16-int8'}: holds the results of another evaluation (other retriever); "
        "choose another folder, or force replacing them"
    )
    assert (
        sorted(p.name for p in out.iterdir()) == ["d16-int8", "results.json", "runs"] and not cache.exists()
    )
    root = (out / "results.json").read_bytes()
    api.frontier(
        str(tiny_model), data, dims=[16], quantize=["none", "int8"], out_dir=out, cache_dir=cache, force=True
    )
    assert json.loads((out / "d16-int8" / "results.json").read_text())["retriever"]["name"] == "dense"
    assert (out / "results.json").read_bytes() == root


@pytest.mark.parametrize(
    ("held", "problem"),
    [
        ("my notes\n", "holds a frontier.json irtune did not write"),
        (json.dumps({"baseline": "full", "settings": {"full": "full/results.json"}}), "(settings full)"),
    ],
)
def test_a_frontier_file_of_another_sweep_is_not_replaced_without_force(tiny_model, tmp_path, held, problem):
    import irtune as api

    data, out, cache = _small_dataset(tmp_path), tmp_path / "sizes", tmp_path / "cache"
    out.mkdir()
    (out / "frontier.json").write_text(held)
    with pytest.raises(IrtuneError, match=re.escape(problem)):
        api.frontier(str(tiny_model), data, dims=[16], out_dir=out, cache_dir=cache)
    assert sorted(p.name for p in out.iterdir()) == ["frontier.json"] and not cache.exists()
    assert (out / "frontier.json").read_text() == held
    api.frontier(str(tiny_model), data, dims=[16], out_dir=out, cache_dir=cache, force=True)
    assert sorted(json.loads((out / "frontier.json").read_text())["settings"]) == ["d16-float", "full"]
    api.frontier(str(tiny_model), data, dims=[16], out_dir=out, cache_dir=cache)  # a re-run replaces its own
    assert sorted(json.loads((out / "frontier.json").read_text())["settings"]) == ["d16-float", "full"]

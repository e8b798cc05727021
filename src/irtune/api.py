"""irtune's Python API: the same jobs as the command line, as functions.

    >>> import irtune
    >>> baseline = irtune.evaluate("minilm", ["scifact"], out_dir=Path("runs/base"))
    >>> bm25 = irtune.evaluate(None, ["scifact"], retriever="bm25", out_dir=Path("runs/bm25"))
    >>> for comparison in irtune.compare(baseline, bm25):
    ...     print(comparison.datasets[0].metric("ndcg@10").delta)

Every function takes keyword-only options after its subject; the CLI is a thin layer
over these. Heavy libraries (torch, transformers) are imported only by the functions
that need them, so `compare` and `report` stay fast.

Arguments are checked as they come in (`irtune.core.inputs`): a path may be a `str` or a
`pathlib.Path`; one dataset, path or metric may stand for a list of one; an empty
required list, a blank name or a wrong type (a switch such as `force` or `strict` given as
anything but `True`/`False`: `"no"` is truthy) is refused with an `InvalidValueError`
(a `ValueError`) or `InvalidTypeError` (a `TypeError`) naming the parameter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irtune.core import inputs
from irtune.core.inputs import PathArg
from irtune.errors import InvalidTypeError, invalid

if TYPE_CHECKING:
    from irtune.data.beir import BeirDataset
    from irtune.data.splits import SplitPlan
    from irtune.evaluation.job import EvaluationJob
    from irtune.evaluation.sweep import Frontier
    from irtune.models.loading import LoadedModel
    from irtune.reporting.queries import QueryAnalysis
    from irtune.results.compare import Comparison
    from irtune.results.schema import ResultsFile
    from irtune.results.tracking import Tracking
    from irtune.retrieval.settings import ModelOptions, RetrievalSettings
    from irtune.training.config import TrainConfig


def load_dataset(
    name_or_path: PathArg, *, data_dir: PathArg | None = None, strict: bool = False
) -> BeirDataset:
    """A BEIR dataset by name (under `data_dir` or $IRTUNE_DATA_DIR) or by folder.

    >>> scifact = irtune.load_dataset("scifact", data_dir=Path("../shared/data/beir"))
    >>> len(scifact.doc_ids), len(scifact.relevant_queries("test"))
    (5183, 300)
    """
    return _dataset("name_or_path", name_or_path, data_dir, strict)


def _dataset(parameter: str, value: object, data_dir: object, strict: object) -> BeirDataset:
    """A dataset by name under `data_dir` (or $IRTUNE_DATA_DIR) or by folder, given as `parameter`."""
    from irtune.data.registry import resolve_dataset

    return resolve_dataset(
        inputs.dataset(parameter, value),
        inputs.optional_path("data_dir", data_dir),
        inputs.flag("strict", strict),
    )


def fetch_dataset(
    name: str,
    *,
    data_dir: PathArg | None = None,
    mirror: str | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    force: bool = False,
) -> Path:
    """Download an official BEIR zip (from `mirror`, a base URL or a folder holding
    `<name>.zip`, if given), verify its checksum (`md5` or `sha256`, else the known one) and
    extract it safely to `data_dir/name` (default: $IRTUNE_DATA_DIR or the user's cache);
    a dataset already there is kept unless `force`. Returns its folder.

    >>> irtune.fetch_dataset("scifact")
    PosixPath('/home/me/.cache/irtune/beir/scifact')
    """
    from irtune.data import download
    from irtune.data.registry import default_data_dir

    return download.fetch_dataset(
        inputs.text("name", name),
        inputs.optional_path("data_dir", data_dir) or default_data_dir(),
        mirror=inputs.optional_text("mirror", mirror),
        md5=inputs.optional_text("md5", md5),
        sha256=inputs.optional_text("sha256", sha256),
        force=inputs.flag("force", force),
    )


def dataset_info(
    dataset: PathArg, *, data_dir: PathArg | None = None, strict: bool = False
) -> dict[str, Any]:
    """Counts per split, relevance grades and text lengths of a dataset (by name or folder).

    >>> irtune.dataset_info("scifact")["splits"]["test"]["queries"]
    300
    """
    from irtune.data.info import dataset_info as describe

    return describe(_dataset("dataset", dataset, data_dir, strict))


@dataclass(frozen=True)
class WrittenSplit:
    """A dataset's split plan and the file it was written to."""

    dataset: str
    plan: SplitPlan
    path: Path


def split(
    datasets: PathArg | Sequence[PathArg],
    *,
    out_dir: PathArg,
    data_dir: PathArg | None = None,
    seed: int = 13,
    dev_fraction: float = 0.2,
    eval_fraction: float = 0.5,
    force: bool = False,
) -> list[WrittenSplit]:
    """Write each dataset's deterministic, query-level train/dev/eval split plan to
    `out_dir/<dataset>.split.json`. Every file is checked before any is written: a file there
    that holds another plan is replaced only with `force`.

    >>> [written] = irtune.split("scidocs", out_dir=Path("splits"))
    >>> written.path, sorted(written.plan.stats["queries"].items())
    (PosixPath('splits/scidocs.split.json'), [('dev', 100), ('eval', 500), ('train', 400)])
    """
    from irtune.core import checks
    from irtune.data.splits import check_plan_file, make_plan, save_plan, split_file_name

    folder = inputs.path("out_dir", out_dir)
    names = inputs.datasets("datasets", datasets)
    seed = inputs.whole_number("seed", seed)
    fractions = _fraction("dev_fraction", dev_fraction), _fraction("eval_fraction", eval_fraction)
    force = inputs.flag("force", force)
    checks.output_folder("out_dir", folder)
    planned = []
    for name in names:
        found = _dataset("datasets", name, data_dir, False)
        plan = make_plan(found, seed, *fractions)
        path = folder / split_file_name(found.name)
        check_plan_file(plan, path, force=force)
        planned.append(WrittenSplit(found.name, plan, path))
    for written in planned:
        save_plan(written.plan, written.path)
    return planned


def _fraction(parameter: str, value: object) -> float:
    """A share given as a number (an int or a float, not text or a switch)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise inputs.wrong_type(parameter, "a number", value)
    return float(value)


def load_model(
    spec: str,
    *,
    device: str | None = None,
    max_seq_length: int | None = None,
    query_prompt: str | None = None,
    doc_prompt: str | None = None,
) -> LoadedModel:
    """`minilm` (bundled), a Hugging Face id or a folder, with its prompts resolved (the
    model's own, else its family's; an override wins) and its training record if any.

    >>> model = irtune.load_model("intfloat/e5-base-v2")
    >>> model.prompts.query
    'query: '
    """
    from irtune.retrieval.settings import ModelOptions

    return ModelOptions(device, max_seq_length, query_prompt, doc_prompt).load(inputs.text("spec", spec))


def evaluate(
    model: str | LoadedModel | None,
    datasets: PathArg | Sequence[PathArg],
    *,
    out_dir: PathArg | None = None,
    split_files: PathArg | Sequence[PathArg] = (),
    data_dir: PathArg | None = None,
    label: str | None = None,
    strict: bool = False,
    device: str | None = None,
    max_seq_length: int | None = None,
    query_prompt: str | None = None,
    doc_prompt: str | None = None,
    force: bool = False,
    **settings: Any,
) -> ResultsFile:
    """Evaluate a model (or a model-free retriever: `model=None, retriever="bm25"`) on
    datasets; returns the results and, with `out_dir`, writes results.json and run files
    (results of another setup already there are replaced only with `force`).

    `settings` are those of `irtune.retrieval.settings.RetrievalSettings`: retriever ("dense", "bm25",
    ...), split, precision, batch_size, top_k, metrics, cache_dir, index, ... `device`,
    `max_seq_length` and the prompts apply when `model` is given by name. A fine-tuned
    model is evaluated on the held-out queries of the split plans saved with it.

    >>> results = irtune.evaluate("minilm", "scifact", precision="bf16")
    >>> round(results.datasets[0].metrics["ndcg@10"], 4)
    0.6451
    """
    from irtune.evaluation.job import run_evaluation
    from irtune.retrieval.settings import ModelOptions

    return run_evaluation(
        _evaluation_job(
            "evaluate",
            _model("model", model, required=False),
            datasets,
            settings,
            model_options=ModelOptions(device, max_seq_length, query_prompt, doc_prompt),
            out_dir=out_dir,
            split_files=split_files,
            data_dir=data_dir,
            strict=strict,
            label=label,
            force=force,
        )
    )


def _evaluation_job(
    function: str,
    model: str | LoadedModel | None,
    datasets: object,
    settings: Mapping[str, Any],
    *,
    model_options: ModelOptions,
    out_dir: object,
    split_files: object,
    data_dir: object,
    strict: object,
    label: object,
    force: object,
) -> EvaluationJob:
    """The evaluation `function` (evaluate, frontier) was asked for, its arguments checked."""
    from irtune.evaluation.job import EvaluationJob

    return EvaluationJob(
        model,
        inputs.datasets("datasets", datasets),
        _retrieval_settings(function, settings),
        model_options,
        out_dir=inputs.optional_path("out_dir", out_dir),
        split_files=inputs.paths("split_files", split_files),
        data_dir=inputs.optional_path("data_dir", data_dir),
        strict=inputs.flag("strict", strict),
        label=inputs.optional_text("label", label),
        force=inputs.flag("force", force),
    )


def _retrieval_settings(function: str, settings: Mapping[str, Any]) -> RetrievalSettings:
    """The evaluation settings among a function's keyword arguments; an unknown one is refused."""
    from irtune.retrieval.settings import RetrievalSettings

    known = {f.name for f in dataclasses.fields(RetrievalSettings)}
    for name in settings:
        if name not in known:
            raise InvalidTypeError(
                "{"
                + name
                + "} is not a parameter of {function}() (see irtune.retrieval.settings.RetrievalSettings)",
                function=function,
            )
    return RetrievalSettings(**settings)


def _model(parameter: str, value: object, *, required: bool = True) -> Any:
    """A model given by name, hub id or folder (text), or loaded (`load_model`)."""
    if value is None and not required:
        return None
    if isinstance(value, str):
        return inputs.text(parameter, value)
    inputs.instance(
        parameter, value, "irtune.models.loading", "LoadedModel", "a model name or a loaded model"
    )
    return value


def train(
    model: str,
    datasets: str | Sequence[str],
    *,
    out_dir: PathArg,
    config: TrainConfig | Mapping[str, Any] | None = None,
    split_files: PathArg | Sequence[PathArg] = (),
    data_dir: PathArg | None = None,
    cache_dir: PathArg | None = None,
    resume: bool = False,
    device: str | None = None,
    query_prompt: str | None = None,
    doc_prompt: str | None = None,
    tracking: Tracking | Mapping[str, Any] | None = None,
) -> Path:
    """Fine-tune `model` on the training part of each dataset's honest plan (or of
    `split_files`), select the epoch and base/tuned interpolation on dev queries, and write
    the model folder (with its training record and split plans) to `out_dir`.

    `datasets` are names, DATASET:SPLIT specs, or a preset (general, scientific);
    `config` holds the options of `irtune.training.config.TrainConfig`; `tracking` those of
    `irtune.results.tracking.Tracking` (report_to: tensorboard, mlflow, wandb; mlflow: a tracking URI).

    >>> folder = irtune.train("minilm", "scifact", out_dir=Path("runs/tuned"), config={"epochs": 1})
    >>> tuned = irtune.evaluate(str(folder), "scifact")  # on its held-out queries
    """
    from irtune.core.configs import validated
    from irtune.results.tracking import Tracking
    from irtune.retrieval.settings import ModelOptions
    from irtune.training.config import TrainConfig
    from irtune.training.plan import expand_presets
    from irtune.training.seed_runs import train_over_seeds
    from irtune.training.trainer import train_model

    resume = inputs.flag("resume", resume)
    if not isinstance(config, TrainConfig):
        config = validated(TrainConfig, inputs.mapping("config", config), "training config")
    specs = expand_presets(inputs.names("datasets", datasets, required=False))  # none: says what to give
    options = ModelOptions(device, None, query_prompt, doc_prompt)
    if not isinstance(tracking, Tracking):
        tracking = validated(Tracking, inputs.mapping("tracking", tracking), "tracking")
    tracked = tracking

    def train_one(run: TrainConfig, folder: Path, again: bool) -> Path:
        return train_model(
            inputs.text("model", model),
            specs,
            folder,
            run,
            data_dir=inputs.optional_path("data_dir", data_dir),
            cache_dir=inputs.optional_path("cache_dir", cache_dir),
            split_files=inputs.paths("split_files", split_files),
            resume=again,
            model_options=options,
            tracking=tracked,
        )

    if config.seeds is None:
        return train_one(config, inputs.path("out_dir", out_dir), resume)
    return train_over_seeds(train_one, config, inputs.path("out_dir", out_dir), resume)


def compare(
    baseline: ResultsFile | PathArg,
    *candidates: ResultsFile | PathArg,
    metrics: str | Sequence[str] | None = None,
) -> list[Comparison]:
    """Each candidate against the baseline, per dataset and metric: change, 95% bootstrap
    CI, paired randomization test with Holm over every (candidate, dataset, metric) test
    as one family, W/T/L.
    Runs that measure different things (another query set, top-k, approximate search)
    are refused; differences that only move the numbers come back as caveats.

    >>> [comparison] = irtune.compare(Path("runs/base"), Path("runs/tuned"))
    >>> comparison.datasets[0].metric("ndcg@10").p_holm < 0.05
    True
    """
    from irtune.results.compare import compare_study, distinct_labels
    from irtune.results.metrics import HEADLINE_METRICS

    runs = [_loaded("baseline", baseline), *(_loaded("candidates", c) for c in candidates)]
    base, *others = distinct_labels(runs)
    chosen = HEADLINE_METRICS if metrics is None else tuple(inputs.names("metrics", metrics))
    return compare_study(base, others, chosen)


def _loaded(parameter: str, item: object) -> ResultsFile:
    """A results file given as itself or by path."""
    from irtune.results.schema import ResultsFile, read_results

    return item if isinstance(item, ResultsFile) else read_results(_results_path(parameter, item))


def _results_path(parameter: str, value: object, at: object = inputs.NOWHERE) -> Path:
    if not isinstance(value, str | PathLike):
        raise inputs.wrong_type(parameter, "a results file (path) or ResultsFile", value, at)
    return inputs.path(parameter, value, at)


def frontier(
    model: str | LoadedModel,
    datasets: PathArg | Sequence[PathArg],
    *,
    dims: int | Sequence[int] = (),
    quantize: str | Sequence[str] = ("none",),
    rescore: int = 1,
    out_dir: PathArg | None = None,
    split_files: PathArg | Sequence[PathArg] = (),
    data_dir: PathArg | None = None,
    label: str | None = None,
    strict: bool = False,
    device: str | None = None,
    max_seq_length: int | None = None,
    query_prompt: str | None = None,
    doc_prompt: str | None = None,
    force: bool = False,
    **settings: Any,
) -> Frontier:
    """The model's embeddings at every `dims` x `quantize` setting (and at full precision),
    all from one encoding of each corpus; each setting is compared with full precision
    (paired tests, Holm over every setting x dataset x metric). With `out_dir`, each
    setting's results go to `out_dir/SETTING` (`full`, `d128-int8`, ...).

    >>> sizes = irtune.frontier("minilm", "scifact", dims=[256, 128], quantize=["none", "int8"])
    >>> [(row["setting"], round(row["ndcg@10"], 4)) for row in sizes.rows()][:2]
    [('full', 0.6451), ('d256-float', 0.6351)]
    """
    from irtune.evaluation.sweep import grid, sweep
    from irtune.retrieval.settings import ModelOptions

    job = _evaluation_job(
        "frontier",
        _model("model", model),
        datasets,
        settings,
        model_options=ModelOptions(device, max_seq_length, query_prompt, doc_prompt),
        out_dir=out_dir,
        split_files=split_files,
        data_dir=data_dir,
        strict=strict,
        label=label,
        force=force,
    )
    return sweep(job, grid(dims, quantize, rescore))


def report(
    results: PathArg | Sequence[PathArg],
    *,
    out: PathArg,
    baseline: PathArg | None = None,
    data_dir: PathArg | None = None,
    force: bool = False,
) -> Path:
    """A self-contained HTML report (tables, charts, provenance) of results files compared
    with the baseline (default: the sweep's own baseline, `frontier.json`'s, when `results` are the
    settings of one frontier sweep, else the first), and report.md next to it; returns the HTML path.
    Its per-query analysis reads the evaluated datasets under `data_dir` (or $IRTUNE_DATA_DIR).
    An existing file is replaced only if it is a report irtune wrote, or with `force`.

    >>> irtune.report([Path("runs/base"), Path("runs/tuned")], out=Path("report.html"))
    PosixPath('report.html')
    """
    from irtune.reporting.files import write_report

    html_path, _, _ = write_report(
        inputs.paths("results", results, required=True),
        inputs.path("out", out),
        inputs.optional_path("baseline", baseline),
        inputs.optional_path("data_dir", data_dir),
        inputs.flag("force", force),
    )
    return html_path


def inspect(
    baseline: ResultsFile | PathArg,
    candidate: ResultsFile | PathArg,
    *,
    query: str | None = None,
    data_dir: PathArg | None = None,
) -> QueryAnalysis:
    """Which queries the candidate moved against the baseline: every query's change in NDCG@10,
    the rankings of those that gained and lost most (or of `query` alone) from the runs' TREC
    files, and slices by query length, relevant documents and dataset with their paired tests
    (Holm within the slices). Texts and titles come from the datasets under `data_dir` (or
    $IRTUNE_DATA_DIR) whose files match the results' hashes; what is missing is said.

    >>> moved = irtune.inspect(Path("runs/base"), Path("runs/tuned"))
    >>> [row.qid for row in moved.datasets[0].gained][:2]
    ['70', '742']
    """
    from irtune.reporting.queries import analyse
    from irtune.results.compare import compare as compare_runs
    from irtune.results.compare import distinct_labels

    base, cand = distinct_labels([_loaded("baseline", baseline), _loaded("candidate", candidate)])
    return analyse(
        compare_runs(base, cand),
        base,
        cand,
        inputs.optional_path("data_dir", data_dir),
        inputs.optional_text("query", query),
    )


def export(
    results: PathArg,
    *,
    out_dir: PathArg,
    format: str = "mteb",
    model_name: str | None = None,
    force: bool = False,
) -> list[Path]:
    """Write a results file (or its folder) in another tool's `format` (mteb: MTEB task
    results, `out_dir/MODEL/REVISION/TASK.json`, MODEL being `model_name` or the results'
    model) to sit beside its numbers; returns the files written. A task file there is
    replaced only if it is irtune's export of the same data, or with `force`.

    >>> irtune.export(Path("runs/tuned"), out_dir=Path("mteb-results"))
    """
    from irtune.core import checks
    from irtune.results.mteb import export_mteb

    if inputs.text("format", format) != "mteb":
        raise invalid("format", "{value}: only mteb is supported", value=format)
    folder = inputs.path("out_dir", out_dir)
    checks.output_folder("out_dir", folder)
    return export_mteb(
        _results_path("results", results),
        folder,
        inputs.optional_text("model_name", model_name),
        force=inputs.flag("force", force),
    )


def push(
    model_dir: PathArg,
    *,
    repo_id: str,
    results: PathArg | Sequence[PathArg] = (),
    private: bool = False,
) -> str:
    """Upload a fine-tuned model folder to the Hugging Face Hub as `repo_id` (OWNER/NAME,
    created if missing; the token from HF_TOKEN), its card's model-index holding the test
    `results`; returns the commit URL.

    >>> irtune.push(Path("runs/tuned"), repo_id="me/minilm-scifact", results=[Path("runs/tuned-eval")])
    """
    from irtune.training.push import push_model

    return push_model(
        inputs.path("model_dir", model_dir),
        inputs.text("repo_id", repo_id),
        results=inputs.paths("results", results),
        private=inputs.flag("private", private),
    )


@dataclass(frozen=True)
class StudyOutcome:
    """What a study run shows: its report (HTML; report.md beside it) and its comparisons."""

    report: Path
    comparisons: list[Comparison]


def run(
    study: PathArg,
    *,
    data_dir: PathArg | None = None,
    cache_dir: PathArg | None = None,
    force: str | Sequence[str] = (),
) -> StudyOutcome:
    """Run (or resume) the study a TOML file describes: baselines, fine-tuning, evaluation,
    comparison and report. A stage already done is kept unless named in `force` (`baseline`,
    `train:scientific`, ...).

    >>> outcome = irtune.run(Path("study.toml"))
    >>> outcome.report
    PosixPath('runs/study/report.html')
    """
    from irtune.study.config import load_study
    from irtune.study.runner import run_study

    path, data = inputs.path("study", study), inputs.optional_path("data_dir", data_dir)
    cache, stages = inputs.optional_path("cache_dir", cache_dir), inputs.names("force", force, required=False)
    report, comparisons = run_study(load_study(path, data), data_dir=data, cache_dir=cache, force=stages)
    return StudyOutcome(report, comparisons)


def import_data(
    name: str,
    *,
    corpus: PathArg | None = None,
    queries: PathArg | None = None,
    qrels: Mapping[str, PathArg] | None = None,
    pairs: Mapping[str, PathArg] | None = None,
    columns: Mapping[str, str] | None = None,
    ir_datasets: Mapping[str, str] | None = None,
    data_dir: PathArg | None = None,
    out: PathArg | None = None,
    force: bool = False,
    drop_unknown_judgements: bool = False,
) -> BeirDataset:
    """Import CSV, TSV, JSONL, JSON, parquet or saved Hugging Face datasets into a validated
    BEIR folder (`out`, else `data_dir/name`) with an import manifest; returns the dataset.
    `force` replaces only the files an earlier import wrote; judgements of documents absent
    from the corpus are kept (they count in R, as in trec_eval) unless `drop_unknown_judgements`.

    >>> docs = irtune.import_data("mydocs", corpus=Path("docs.csv"), columns={"text": "body"})
    >>> faq = irtune.import_data("faq", pairs={"test": Path("faq_pairs.parquet")})
    >>> nfc = irtune.import_data("nfc", ir_datasets={"test": "beir/nfcorpus/test"})
    """
    from irtune.data.beir import BeirDataset
    from irtune.data.importer import ImportRequest, import_dataset
    from irtune.data.registry import default_data_dir

    name = inputs.text("name", name)
    force = inputs.flag("force", force)
    request = ImportRequest(
        name,
        corpus=inputs.optional_path("corpus", corpus),
        queries=inputs.optional_path("queries", queries),
        qrels=inputs.mapping("qrels", qrels, inputs.path),
        pairs=inputs.mapping("pairs", pairs, inputs.path),
        columns=inputs.mapping("columns", columns, inputs.text),
        ir_datasets=inputs.mapping("ir_datasets", ir_datasets, inputs.text),
        drop_unknown_judgements=inputs.flag("drop_unknown_judgements", drop_unknown_judgements),
    )
    target = (
        inputs.optional_path("out", out)
        or (inputs.optional_path("data_dir", data_dir) or default_data_dir()) / name
    )
    import_dataset(request, target, force=force)
    return BeirDataset(target, name=name)


def generate_queries(
    dataset: str | BeirDataset,
    generator: str,
    *,
    generator_model: str | None = None,
    base_model: str | LoadedModel | None = "minilm",
    data_dir: PathArg | None = None,
    cache_dir: PathArg | None = None,
    precision: str = "fp32",
    openai_settings: Mapping[str, Any] | None = None,
    hf_settings: Mapping[str, Any] | None = None,
    **request: Any,
) -> Any:
    """Write the `synthetic` split of a dataset: a query per (sampled) document from
    `generator` (`openai:URL` with `generator_model`, or `hf:ID_OR_PATH`, `hf:gemma3-270m`),
    filtered (length, copies, duplicates, real-query texts, and the round trip through
    `base_model`: its top `round_trip_k` over the corpus must hold the source document).
    `request`: the fields of `irtune.generation.synthetic.GenerationRequest` (sample, seed,
    few_shot, domain, prompt_file, round_trip_k, filters). Returns the split's manifest.

    >>> irtune.generate_queries("mydocs", "hf:gemma3-270m", sample=1000)
    >>> irtune.train("minilm", ["mydocs:synthetic"], out_dir=Path("runs/synthetic"))
    """
    from irtune.core import checks
    from irtune.data.beir import BeirDataset
    from irtune.generation.backends import make_generator
    from irtune.generation.synthetic import GenerationRequest, generate_synthetic

    if isinstance(dataset, BeirDataset):
        found = dataset
    else:
        found = load_dataset(inputs.dataset("dataset", dataset), data_dir=data_dir)
    cache_dir = inputs.optional_path("cache_dir", cache_dir)
    checks.output_folder("dataset", found.root)  # the synthetic split is written into it
    checks.output_folder("cache_dir", cache_dir)
    settings = GenerationRequest(**request)
    inputs.flag("restart", settings.restart)
    hf = {"cache_dir": cache_dir, **inputs.mapping("hf_settings", hf_settings)}
    backend = make_generator(
        inputs.text("generator", generator),
        model=inputs.optional_text("generator_model", generator_model),
        openai_settings=inputs.mapping("openai_settings", openai_settings),
        hf_settings=hf,
    )
    round_trip = None
    model_name = None
    base_model = _model("base_model", base_model, required=False)
    if settings.round_trip_k and base_model is not None:
        model = base_model if not isinstance(base_model, str) else load_model(base_model)
        round_trip = _dense_top_k(model, found, precision=precision, cache_dir=cache_dir)
        model_name = model.name
    return generate_synthetic(found, backend, settings, round_trip=round_trip, round_trip_model=model_name)


def _dense_top_k(model: LoadedModel, dataset: BeirDataset, *, precision: str, cache_dir: Path | None) -> Any:
    """queries, k -> each query's top-k document ids over the whole corpus (cached embeddings)."""
    from irtune.retrieval.base import Corpus
    from irtune.retrieval.dense import DenseRetriever

    def top_k(queries: dict[str, str], k: int) -> dict[str, list[str]]:
        index = DenseRetriever(model, precision=precision, cache_dir=cache_dir).index(Corpus.of(dataset))
        return {q: list(docs) for q, docs in index.search(queries, k).run.items()}

    return top_k

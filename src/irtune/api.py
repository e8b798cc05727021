"""irtune's Python API: the same jobs as the command line, as functions.

    >>> import irtune
    >>> baseline = irtune.evaluate("minilm", ["scifact"], out_dir=Path("runs/base"))
    >>> bm25 = irtune.evaluate(None, ["scifact"], retriever="bm25", out_dir=Path("runs/bm25"))
    >>> for comparison in irtune.compare(baseline, bm25):
    ...     print(comparison.datasets[0].metric("ndcg@10").delta)

Every function takes keyword-only options after its subject; the CLI is a thin layer
over these. Heavy libraries (torch, transformers) are imported only by the functions
that need them, so `compare` and `report` stay fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from irtune.comparison import Comparison
    from irtune.data.beir import BeirDataset
    from irtune.models import LoadedModel
    from irtune.results import ResultsFile
    from irtune.sweeps import Frontier
    from irtune.tracking import Tracking
    from irtune.training.config import TrainConfig


def load_dataset(name_or_path: str, *, data_dir: Path | None = None, strict: bool = False) -> BeirDataset:
    """A BEIR dataset by name (under `data_dir` or $IRTUNE_DATA_DIR) or by folder.

    >>> scifact = irtune.load_dataset("scifact", data_dir=Path("../shared/data/beir"))
    >>> len(scifact.doc_ids), len(scifact.relevant_queries("test"))
    (5183, 300)
    """
    from irtune.data.registry import resolve_dataset

    return resolve_dataset(name_or_path, data_dir, strict)


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
    from irtune.settings import ModelOptions

    return ModelOptions(device, max_seq_length, query_prompt, doc_prompt).load(spec)


def evaluate(
    model: str | LoadedModel | None,
    datasets: str | Sequence[str],
    *,
    out_dir: Path | None = None,
    split_files: Sequence[Path] = (),
    data_dir: Path | None = None,
    label: str | None = None,
    strict: bool = False,
    device: str | None = None,
    max_seq_length: int | None = None,
    query_prompt: str | None = None,
    doc_prompt: str | None = None,
    **settings: Any,
) -> ResultsFile:
    """Evaluate a model (or a model-free retriever: `model=None, retriever="bm25"`) on
    datasets; returns the results and, with `out_dir`, writes results.json and run files.

    `settings` are those of `irtune.settings.EvalSettings`: retriever ("dense", "bm25",
    ...), split, precision, batch_size, top_k, metrics, cache_dir, index, ... `device`,
    `max_seq_length` and the prompts apply when `model` is given by name. A fine-tuned
    model is evaluated on the held-out queries of the split plans saved with it.

    >>> results = irtune.evaluate("minilm", "scifact", precision="bf16")
    >>> round(results.datasets[0].metrics["ndcg@10"], 4)
    0.6451
    """
    from irtune.settings import EvalSettings, ModelOptions
    from irtune.workflows import run_evaluation

    try:
        chosen = EvalSettings(**settings)
    except TypeError as exc:
        raise TypeError(f"evaluate(): {exc} (see irtune.settings.EvalSettings)") from None
    names = [datasets] if isinstance(datasets, str) else list(datasets)
    return run_evaluation(
        model,
        names,
        chosen,
        model_options=ModelOptions(device, max_seq_length, query_prompt, doc_prompt),
        out_dir=out_dir,
        split_files=split_files,
        data_dir=data_dir,
        strict=strict,
        label=label,
    )


def train(
    model: str,
    datasets: str | Sequence[str],
    *,
    out_dir: Path,
    config: TrainConfig | Mapping[str, Any] | None = None,
    split_files: Sequence[Path] = (),
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
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
    `irtune.tracking.Tracking` (report_to: tensorboard, mlflow, wandb; mlflow: a tracking URI).

    >>> folder = irtune.train("minilm", "scifact", out_dir=Path("runs/tuned"), config={"epochs": 1})
    >>> tuned = irtune.evaluate(str(folder), "scifact")  # on its held-out queries
    """
    from irtune.config_errors import validated
    from irtune.settings import ModelOptions
    from irtune.tracking import Tracking
    from irtune.training.config import TrainConfig
    from irtune.training.plan import expand_presets
    from irtune.training.trainer import train_model

    if not isinstance(config, TrainConfig):
        config = validated(TrainConfig, dict(config or {}), "training config")
    specs = expand_presets([datasets] if isinstance(datasets, str) else list(datasets))
    options = ModelOptions(device, None, query_prompt, doc_prompt)
    if not isinstance(tracking, Tracking):
        tracking = validated(Tracking, dict(tracking or {}), "tracking")
    return train_model(
        model, specs, out_dir, config, data_dir, cache_dir, split_files, resume, options, tracking=tracking
    )


def compare(
    baseline: ResultsFile | Path, *candidates: ResultsFile | Path, metrics: Sequence[str] | None = None
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
    from irtune.comparison import compare_study, distinct_labels
    from irtune.metrics import HEADLINE_METRICS
    from irtune.results import ResultsFile, read_results

    def loaded(item: ResultsFile | Path) -> ResultsFile:
        return item if isinstance(item, ResultsFile) else read_results(Path(item))

    base, *others = distinct_labels([loaded(baseline), *(loaded(c) for c in candidates)])
    return compare_study(base, others, tuple(metrics) if metrics else HEADLINE_METRICS)


def frontier(
    model: str | LoadedModel,
    datasets: str | Sequence[str],
    *,
    dims: Sequence[int] = (),
    quantize: Sequence[str] = ("none",),
    rescore: int = 1,
    out_dir: Path | None = None,
    split_files: Sequence[Path] = (),
    data_dir: Path | None = None,
    label: str | None = None,
    strict: bool = False,
    device: str | None = None,
    max_seq_length: int | None = None,
    query_prompt: str | None = None,
    doc_prompt: str | None = None,
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
    from irtune.settings import EvalSettings, ModelOptions
    from irtune.sweeps import grid, sweep

    try:
        chosen = EvalSettings(**settings)
    except TypeError as exc:
        raise TypeError(f"frontier(): {exc} (see irtune.settings.EvalSettings)") from None
    return sweep(
        model,
        [datasets] if isinstance(datasets, str) else list(datasets),
        chosen,
        grid(dims, quantize, rescore),
        model_options=ModelOptions(device, max_seq_length, query_prompt, doc_prompt),
        out_dir=out_dir,
        split_files=split_files,
        data_dir=data_dir,
        strict=strict,
        label=label,
    )


def report(results: Sequence[Path], *, out: Path, baseline: Path | None = None) -> Path:
    """A self-contained HTML report (tables, charts, provenance) of results files compared
    with the baseline (default: the sweep's own baseline, `frontier.json`'s, when `results` are the
    settings of one frontier sweep, else the first), and report.md next to it; returns the HTML path.

    >>> irtune.report([Path("runs/base"), Path("runs/tuned")], out=Path("report.html"))
    PosixPath('report.html')
    """
    from irtune.reporting.files import write_report

    html_path, _, _ = write_report(results, out, baseline)
    return html_path


def import_data(
    name: str,
    *,
    corpus: Path | None = None,
    queries: Path | None = None,
    qrels: Mapping[str, Path] | None = None,
    pairs: Mapping[str, Path] | None = None,
    columns: Mapping[str, str] | None = None,
    ir_datasets: Mapping[str, str] | None = None,
    data_dir: Path | None = None,
    out: Path | None = None,
    force: bool = False,
) -> BeirDataset:
    """Import CSV, TSV, JSONL, JSON, parquet or saved Hugging Face datasets into a validated
    BEIR folder (`out`, else `data_dir/name`) with an import manifest; returns the dataset.

    >>> docs = irtune.import_data("mydocs", corpus=Path("docs.csv"), columns={"text": "body"})
    >>> faq = irtune.import_data("faq", pairs={"test": Path("faq_pairs.parquet")})
    >>> nfc = irtune.import_data("nfc", ir_datasets={"test": "beir/nfcorpus/test"})
    """
    from irtune.data.beir import BeirDataset
    from irtune.data.importer import ImportRequest, import_dataset
    from irtune.data.registry import default_data_dir

    request = ImportRequest(
        name,
        corpus=corpus,
        queries=queries,
        qrels=dict(qrels or {}),
        pairs=dict(pairs or {}),
        columns=dict(columns or {}),
        ir_datasets=dict(ir_datasets or {}),
    )
    target = out or (data_dir or default_data_dir()) / name
    import_dataset(request, target, force=force)
    return BeirDataset(target, name=name)


def generate_queries(
    dataset: str | BeirDataset,
    generator: str,
    *,
    generator_model: str | None = None,
    base_model: str | LoadedModel | None = "minilm",
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
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
    from irtune import checks
    from irtune.data.beir import BeirDataset
    from irtune.generation.backends import make_generator
    from irtune.generation.synthetic import GenerationRequest, generate_synthetic

    found = dataset if isinstance(dataset, BeirDataset) else load_dataset(dataset, data_dir=data_dir)
    checks.output_folder("--dataset", found.root)  # the synthetic split is written into it
    checks.output_folder("--cache-dir", cache_dir)
    settings = GenerationRequest(**request)
    hf = {"cache_dir": cache_dir, **(hf_settings or {})}
    backend = make_generator(
        generator, model=generator_model, openai_settings=dict(openai_settings or {}), hf_settings=hf
    )
    round_trip = None
    model_name = None
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

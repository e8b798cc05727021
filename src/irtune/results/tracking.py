"""Experiment trackers users already run: training reports through Hugging Face's `report_to`
(tensorboard, mlflow, wandb: the Trainer's own callbacks), and `irtune eval`, `compare` and
`run` log their metrics to MLflow when a tracking URI is given.

Tracking never changes what is trained or measured, so it is kept out of the training config
and out of `irtune run`'s stage keys: turning it on does not redo a finished stage."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from irtune.errors import IrtuneError, ParameterError

if TYPE_CHECKING:
    from irtune.results.compare import Comparison
    from irtune.results.schema import ResultsFile

# tracker name -> (module the Trainer's callback imports, what to pip install)
TRACKERS = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "mlflow": ("mlflow", "mlflow-skinny"),
    "wandb": ("wandb", "wandb"),
}


class Tracking(BaseModel):
    """`[tracking]` of a study; `--report-to` / `--mlflow` on the command line."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    report_to: list[str] = Field(
        default_factory=list, description="Training trackers: tensorboard, mlflow, wandb"
    )
    mlflow: str | None = Field(
        None,
        description="MLflow tracking URI or folder: training (report_to mlflow), eval and compare log there",
    )
    experiment: str = Field("irtune", min_length=1, description="MLflow experiment name")

    @model_validator(mode="after")
    def _mlflow_uri_means_mlflow(self) -> Tracking:
        """An MLflow URI given for a training means: report to it (not silently nothing)."""
        if self.mlflow and "mlflow" not in self.report_to:
            object.__setattr__(self, "report_to", [*self.report_to, "mlflow"])
        return self

    @field_validator("report_to")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in TRACKERS:
                raise ValueError(f"unknown tracker {name!r} (choices: {', '.join(TRACKERS)})")
        return list(dict.fromkeys(names))

    def check(self) -> None:
        """Each tracker's package is installed (one line naming it, before anything runs)."""
        wanted = [*self.report_to, *(["mlflow"] if self.mlflow else [])]
        for name in dict.fromkeys(wanted):
            module, package = TRACKERS[name]
            if importlib.util.find_spec(module) is None:
                raise IrtuneError(
                    f"tracking with {name} needs {package}: pip install {package} (or 'irtune[tracking]')"
                )

    def mlflow_uri(self) -> str | None:
        """A plain folder is a file store URI."""
        if self.mlflow is None:
            return None
        if "://" in self.mlflow or self.mlflow.startswith(("file:", "databricks", "sqlite:")):
            return self.mlflow
        return Path(self.mlflow).expanduser().resolve().as_uri()

    def _mlflow_env(self) -> dict[str, str]:
        """MLflow 3 refuses file stores unless told: a user who names a folder asked for one."""
        uri = self.mlflow_uri()
        values = {"MLFLOW_EXPERIMENT_NAME": self.experiment}
        if uri is not None:
            values["MLFLOW_TRACKING_URI"] = uri
            if uri.startswith("file:"):
                values["MLFLOW_ALLOW_FILE_STORE"] = "true"
        return values

    @contextlib.contextmanager
    def training(
        self, model_dir: Path, run_name: str, params: dict[str, Any]
    ) -> Iterator[TrackedTraining | None]:
        """Around a whole training: one MLflow run, params logged; each epoch's Trainer logs
        into a run nested in it. Yields where to log dev scores (None without mlflow)."""
        if "mlflow" not in self.report_to:
            yield None
            return
        import mlflow

        with scoped_environment(self._mlflow_env()):
            with mlflow_errors(self):
                mlflow.set_experiment(self.experiment)
                run_id = mlflow.start_run(run_name=run_name).info.run_id
                client = mlflow.MlflowClient()
                for key, value in params.items():
                    client.log_param(run_id, key, str(value)[:500])
                client.set_tag(run_id, "irtune.model_dir", str(model_dir))
            status = "FAILED"
            try:
                yield TrackedTraining(client, run_id)
                status = "FINISHED"
            finally:
                # the Trainer's callback may have ended the fluent run stack: end ours by id
                active = mlflow.active_run()
                if active is not None and active.info.run_id == run_id:
                    mlflow.end_run(status)
                else:
                    client.set_terminated(run_id, status)

    @contextlib.contextmanager
    def epoch(self, model_dir: Path, epoch: int) -> Iterator[None]:
        """The environment the Trainer's callbacks read when an epoch's Trainer is made:
        TensorBoard writes under MODEL_DIR/runs/epoch-N (where the Hub shows training
        metrics), MLflow logs into a run nested in the training's."""
        values = {"TENSORBOARD_LOGGING_DIR": str(model_dir / "runs" / f"epoch-{epoch}")}
        if "mlflow" in self.report_to:
            values |= {"MLFLOW_NESTED_RUN": "true", **self._mlflow_env()}
        with scoped_environment(values):
            yield


@contextlib.contextmanager
def scoped_environment(values: dict[str, str]) -> Iterator[None]:
    """Environment variables set for a block and restored after it (the Trainer's callbacks
    and MLflow read their settings from the environment)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def mlflow_errors(tracking: Tracking) -> Iterator[None]:
    """An unreachable or refusing tracking server is one line naming the URI, not a traceback."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ParameterError("{mlflow} {uri}: {problem}", uri=tracking.mlflow, problem=first) from None


@contextlib.contextmanager
def _mlflow_run(tracking: Tracking, run_name: str) -> Iterator[Any]:
    """A fluent MLflow run at the tracking URI, with the environment it needs scoped to it."""
    import mlflow

    # the URI travels in the scoped environment, never as MLflow's process-wide default
    with scoped_environment(tracking._mlflow_env()), mlflow_errors(tracking):
        mlflow.set_experiment(tracking.experiment)
        with mlflow.start_run(run_name=run_name) as run:
            yield run


def release_trainer_run(trainer: Any) -> None:
    """After an epoch's Trainer has ended its nested MLflow run: its callback would also end
    whichever run is active when the Trainer is garbage-collected (`__del__`), which is the
    training's run or the next epoch's. Disarm it."""
    for callback in trainer.callback_handler.callbacks:
        if type(callback).__name__ == "MLflowCallback":
            callback._auto_end_run = False


def _dataset_key(dataset: str, split: str) -> str:
    """scifact (test, the usual split) or scifact.dev: two splits of one dataset never collide."""
    return dataset if split == "test" else f"{dataset}.{split}"


def _metric_key(name: str) -> str:
    return name.replace("@", "_at_")  # MLflow metric names take no "@"


def log_results(tracking: Tracking, result: ResultsFile, path: Path | None = None) -> str | None:
    """One MLflow run per results file: what was run (params) and its metrics per dataset."""
    if tracking.mlflow is None:
        return None
    import mlflow

    with _mlflow_run(tracking, result.label) as run:
        params: dict[str, Any] = {
            "label": result.label,
            "retriever": result.retriever.label(),
            "model": result.model.name if result.model else None,
            "weights_sha256": result.model.weights_sha256 if result.model else None,
            "top_k": result.settings.top_k,
            "contaminated": result.contaminated,
        }
        mlflow.log_params({k: str(v) for k, v in params.items() if v is not None})
        for entry in result.datasets:
            mlflow.log_param(f"{entry.dataset}.queries", f"{entry.queries.count} ({entry.queries.selection})")
            mlflow.log_metrics(
                {f"{entry.dataset}.{_metric_key(m)}": float(v) for m, v in entry.metrics.items()}
            )
        if path is not None:
            mlflow.log_artifact(str(path))
        return str(run.info.run_id)


def log_comparisons(
    tracking: Tracking, comparisons: Sequence[Comparison], path: Path | None = None
) -> str | None:
    """One MLflow run for a comparison: per candidate, dataset and metric the change, its CI and
    the Holm-corrected p (over the family the report states)."""
    if tracking.mlflow is None:
        return None
    import mlflow

    with _mlflow_run(tracking, f"compare vs {comparisons[0].baseline_label}") as run:
        mlflow.log_param("baseline", comparisons[0].baseline_label)
        if comparisons[0].correction:
            mlflow.log_param("correction", comparisons[0].correction.describe())
        metrics: dict[str, float] = {}
        for i, c in enumerate(comparisons):
            mlflow.log_param(f"candidate.{i}", f"{c.candidate_label} ({c.kind}, baseline {c.baseline_label})")
            for d in c.datasets:
                for m in d.metrics:
                    key = f"{i}.{_dataset_key(d.dataset, d.split)}.{_metric_key(m.metric)}"
                    metrics |= {
                        f"{key}.delta": m.delta,
                        f"{key}.p_holm": m.p_holm,
                        f"{key}.ci_low": m.ci_low,
                        f"{key}.ci_high": m.ci_high,
                    }
        mlflow.log_metrics(metrics)
        if path is not None:
            mlflow.log_artifact(str(path))
        return str(run.info.run_id)


class TrackedTraining:
    """The training's MLflow run, logged to by id (the fluent API's active run is the
    Trainer's nested one while an epoch runs)."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_selection(self, state: Any, selected: dict[str, Any]) -> None:
        """Dev scores per epoch (0 = the base model) and what selection shipped. `state` is
        the training's TrainingState."""
        points = [(0, state.base_dev)] + [(p.epoch, p.to_json().get("dev")) for p in state.curve]
        for epoch, scores in points:
            for metric in ("ndcg@10", "recall@100"):
                if scores and metric in scores:
                    key = f"dev.{_metric_key(metric)}"
                    self.client.log_metric(self.run_id, key, float(scores[metric]), step=epoch)
        chosen = {"selected.epoch": selected.get("epoch"), "selected.alpha": selected.get("alpha")}
        chosen["selected.dev.ndcg_at_10"] = (selected.get("dev") or {}).get("ndcg@10")
        for key, value in chosen.items():
            if value is not None:
                self.client.log_metric(self.run_id, key, float(value))

"""ModelRegistry on the Azure ML model registry (MLflow models), and the best model of an AutoML run.

Metrics are `metric.*` tags of a version, as in the local registry; aliases (champion, previous)
are `alias.<name>` tags, moved with a tag update (Azure ML model versions take tag updates).
`register_from_run` turns a finished AutoML job into a version: the best child run (tag
`automl_best_child_run_id` of the parent, read through the workspace's MLflow endpoint), its
MLflow model output `outputs/mlflow-model/`, and its metrics. `decision_of_run` reads the gate
decision the pipeline's evaluate step tagged on the pipeline run (`bankops_decision`, ...), so
the function app never loads an AutoML model to judge it.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from shared import schema
from shared.adapters.azure.run_lookup import AzureRunLookup
from shared.errors import BackendUnavailable, NotFound
from shared.model import BankMarketingModel
from shared.ports import ModelVersion, RunDecision, RunLookup

METRIC_TAG = "metric."
ALIAS_TAG = "alias."
MLFLOW_OUTPUT = "outputs/artifacts/outputs/mlflow-model/"


class AutoMLClassifier:
    """An AutoML (sklearn-flavour MLflow) model behind the BankMarketingModel calls the gate and deployer make."""

    threshold = 0.5

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self._yes = list(pipeline.classes_).index(schema.POSITIVE)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline.predict_proba(frame[list(schema.FEATURES)]))[:, self._yes]

    def predict_proba_records(self, records: Any) -> np.ndarray:
        from shared.mlflow_model import example_frame

        return self.predict_proba(example_frame(list(records)))

    def label(self, p_yes: np.ndarray) -> np.ndarray:
        return np.where(p_yes >= self.threshold, schema.POSITIVE, schema.NEGATIVE)


def save_pyfunc(model: BankMarketingModel, input_example: pd.DataFrame, path: Path) -> None:
    """The same MLflow pyfunc the local registry logs (code and pinned requirements inside), saved to a folder for upload."""
    from shared import mlflow_model

    mlflow_model.save_pyfunc(model, input_example, path)


def load_mlflow_folder(folder: Path) -> Any:
    """A downloaded model version: our pyfunc (the pickled BankMarketingModel) or an AutoML sklearn model."""
    from shared.mlflow_model import ARTIFACT

    mlmodel = next(folder.rglob("MLmodel"), None)
    if mlmodel is None:
        raise NotFound(f"no MLflow model (MLmodel file) in the downloaded version at {folder}")
    ours = next(mlmodel.parent.rglob(ARTIFACT), None)
    if ours is not None:
        return joblib.load(ours)
    import mlflow.sklearn

    try:
        return AutoMLClassifier(mlflow.sklearn.load_model(str(mlmodel.parent)))
    except ImportError as exc:
        raise BackendUnavailable(f"this AutoML model needs its training runtime to load here ({exc}); install the packages of its "
                                 "conda.yaml, or judge it on Azure ML") from exc


class AzureModelRegistry:
    def __init__(self, ml_client: Any, model_name: str, *, runs: Any = None, cache_dir: Path | None = None,
                 lookup: RunLookup | None = None) -> None:
        """`runs`: an MlflowClient on the workspace's tracking URI (read only), for AutoML runs' tags and metrics;
        `lookup` finds a pipeline run's AutoML best child (default: AzureRunLookup on the same clients)."""
        self.ml, self.name, self.runs, self.lookup = ml_client, model_name, runs, lookup
        self.cache_dir = cache_dir or Path(tempfile.mkdtemp(prefix="bankops-models-"))
        self._cache: dict[str, Any] = {}

    def _version(self, model: Any) -> ModelVersion:
        tags = dict(model.tags or {})
        created = getattr(getattr(model, "creation_context", None), "created_at", None)
        return ModelVersion(
            name=self.name, version=str(model.version), run_id=tags.get("pipeline_run") or tags.get("run_id", ""),
            created_at=created.isoformat(timespec="seconds") if created is not None and hasattr(created, "isoformat")
            else str(created or ""),
            metrics={k[len(METRIC_TAG):]: float(v) for k, v in tags.items() if k.startswith(METRIC_TAG)},
            tags={k: v for k, v in tags.items() if not k.startswith((METRIC_TAG, ALIAS_TAG))},
            aliases=tuple(sorted(k[len(ALIAS_TAG):] for k in tags if k.startswith(ALIAS_TAG))),
        )

    def _models(self) -> list[Any]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return sorted(self.ml.models.list(name=self.name), key=lambda m: int(m.version))
        except ResourceNotFoundError:
            return []

    def _create(self, path: str, tags: Mapping[str, str], description: str) -> ModelVersion:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        model = Model(name=self.name, path=path, type=AssetTypes.MLFLOW_MODEL, description=description, tags=dict(tags))
        return self._version(self.ml.models.create_or_update(model))

    def register(self, model: BankMarketingModel, *, run_id: str, metrics: Mapping[str, float],
                 tags: Mapping[str, str], input_example: Any) -> ModelVersion:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "mlflow-model"
            save_pyfunc(model, input_example, folder)
            all_tags = {**{f"{METRIC_TAG}{k}": f"{v:.6g}" for k, v in metrics.items()}, **tags, "run_id": run_id}
            return self._create(str(folder), all_tags, f"bankops blend {model.describe()} from run {run_id}")

    def register_from_run(self, run_id: str) -> ModelVersion:
        done = [m for m in self._models() if (m.tags or {}).get("pipeline_run") == run_id]
        if done:
            return self._version(done[0])
        from shared.evaluation.decision_tags import SMOKE_LABELS_TAG, SMOKE_P_YES_TAG

        found = (self.lookup or AzureRunLookup(self.ml, self.runs)).best_child(run_id)
        judged = dict(self._pipeline_job(run_id).tags or {})  # the evaluate step's answers for the smoke test
        tags = {**{f"{METRIC_TAG}{k}": f"{v:.6g}" for k, v in sorted(found.metrics.items())}, "pipeline_run": run_id,
                "automl_run": found.automl_run, "best_child_run": found.best_child_run, "dataset": found.dataset,
                **{k: judged[k] for k in (SMOKE_LABELS_TAG, SMOKE_P_YES_TAG) if k in judged}}
        return self._create(f"azureml://jobs/{found.best_child_run}/{MLFLOW_OUTPUT}", tags,
                            f"best model of AutoML job {found.automl_run}")

    def _pipeline_job(self, run_id: str) -> Any:
        """The pipeline job `run_id` names, or the pipeline an AutoML step `run_id` ran in (its MLflow root run)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            job = self.ml.jobs.get(run_id)
            if job.type != "pipeline" and self.runs is not None:
                tags = self.runs.get_run(run_id).data.tags
                parent = tags.get("mlflow.rootRunId") or tags.get("mlflow.parentRunId")
                if parent and parent != run_id:
                    job = self.ml.jobs.get(parent)
        except ResourceNotFoundError as exc:
            raise NotFound(f"no Azure ML job named {run_id!r} (or its pipeline) in this workspace") from exc
        return job

    def decision_of_run(self, run_id: str, *, challenger: str, champion: str | None) -> RunDecision:
        """The evaluate step's decision on the pipeline run's tags. It judged against the champion of submit time:
        if the champion has moved since, or the challenger already is the champion, the answer is keep."""
        from shared.evaluation.decision_tags import CHAMPION_TAG, DECISION_TAG, METRIC_TAG, NO_CHAMPION, PROMOTE, REASON_TAG

        job = self._pipeline_job(run_id)
        tags = dict(job.tags or {})
        decision = tags.get(DECISION_TAG)
        if decision is None:
            raise NotFound(f"pipeline job {job.name} carries no {DECISION_TAG} tag: its evaluate step did not finish; "
                           "see the job in the Azure ML studio, then retrain")
        metrics = {}
        for key, value in tags.items():
            if key.startswith(METRIC_TAG):
                with contextlib.suppress(ValueError):
                    metrics[key[len(METRIC_TAG):]] = float(value)
        reason = tags.get(REASON_TAG, "")
        judged = tags.get(CHAMPION_TAG, NO_CHAMPION)
        if champion == challenger:
            return RunDecision(False, f"v{challenger} is already the champion", metrics)
        if judged != (champion or NO_CHAMPION):
            return RunDecision(False, f"kept champion v{champion}: v{challenger} was judged against "
                                      f"{'v' + judged if judged != NO_CHAMPION else 'no champion'}; retrain to judge it again", metrics)
        return RunDecision(decision == PROMOTE, f"{reason} (judged in Azure ML by {job.name})", metrics)

    def get(self, version: str | None = None) -> ModelVersion:
        from azure.core.exceptions import ResourceNotFoundError

        if version is None:
            models = self._models()
            if not models:
                raise NotFound(f"no version of model {self.name!r} is registered yet; run `bankops train` first")
            return self._version(models[-1])
        try:
            return self._version(self.ml.models.get(self.name, version=str(version)))
        except ResourceNotFoundError as exc:
            raise NotFound(f"model {self.name!r} has no version {version}; see `bankops models`") from exc

    def list(self) -> list[ModelVersion]:
        return [self._version(m) for m in self._models()]

    def load(self, version: str) -> Any:
        if version not in self._cache:
            self.get(version)
            target = self.cache_dir / f"v{version}"
            if not target.exists():
                self.ml.models.download(self.name, str(version), download_path=str(target))
            self._cache[version] = load_mlflow_folder(target)
        return self._cache[version]

    def set_alias(self, alias: str, version: str) -> None:
        """Tag the new holder first, then untag the others: the alias is never missing in between."""
        self.get(version)
        key = f"{ALIAS_TAG}{alias}"
        models = self._models()
        for model in sorted(models, key=lambda m: str(m.version) != str(version)):
            tags = dict(model.tags or {})
            if (key in tags) == (str(model.version) == str(version)):
                continue
            if key in tags:
                tags.pop(key)
            else:
                tags[key] = "true"
            model.tags = tags
            self.ml.models.create_or_update(model)

    def alias(self, alias: str) -> ModelVersion | None:
        holders = [m for m in self._models() if f"{ALIAS_TAG}{alias}" in (m.tags or {})]
        return self._version(holders[-1]) if holders else None  # mid-move two hold it for a moment

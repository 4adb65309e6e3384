"""Typed settings, read once: environment variables first, then `local.settings.json` `Values`.

The names are the Azure Functions app-setting names, so the same file configures the function
app and the local host. Secrets are `SecretStr`: they never print in a repr or a log line.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

METRICS = ("AUC_weighted", "accuracy", "average_precision_score_weighted", "log_loss", "f1_score_weighted")


class _LocalSettingsJson(PydanticBaseSettingsSource):
    """`Values` of `local.settings.json` (the Functions convention), below the environment."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = Path(os.environ.get("BANKOPS_SETTINGS_FILE", "local.settings.json"))
        self._values: dict[str, Any] = {}
        if path.is_file():
            self._values = dict(json.loads(path.read_text(encoding="utf-8")).get("Values", {}))

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        alias = field.validation_alias if isinstance(field.validation_alias, str) else field_name
        return self._values.get(alias), alias, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value not in (None, ""):
                found[key] = value
        return found


class Settings(BaseSettings):
    """Every setting bankops reads; `local.settings.sample.json` lists them with placeholders."""

    # Only the app-setting names count: a field called `home` must not read $HOME.
    model_config = SettingsConfigDict(extra="ignore")

    backend: Literal["local", "azure"] = Field("local", validation_alias="BANKOPS_BACKEND")
    home: Path = Field(Path(".bankops"), validation_alias="BANKOPS_HOME")
    dataset_name: str = Field("bankmarketing", validation_alias="BANKOPS_DATASET_NAME")
    model_name: str = Field("bankmarketing-classifier", validation_alias="BANKOPS_MODEL_NAME")
    experiment_name: str = Field("bankmarketing", validation_alias="BANKOPS_EXPERIMENT_NAME")

    automl_budget_s: float = Field(60.0, gt=0, validation_alias="BANKOPS_AUTOML_BUDGET")
    # On an empty home `bankops up` first serves a model trained for this many seconds (0: none), then the full
    # budget's, which replaces it through the gate (shared/automation/first_model.py).
    quick_budget_s: float = Field(5.0, ge=0, validation_alias="BANKOPS_QUICK_BUDGET_S")
    # How long registering a version waits for its trees' machine code (compiled in a detached child), so the
    # first batch run and the serving workers find it cached; 0: never wait (the host's retrains). `bankops train`
    # waits up to 120 s unless told --no-native-wait.
    native_registration_wait_s: float = Field(0.0, ge=0, validation_alias="BANKOPS_NATIVE_REGISTRATION_WAIT_S")
    primary_metric: str = Field("AUC_weighted", validation_alias="BANKOPS_PRIMARY_METRIC")
    holdout_fraction: float = Field(0.1, gt=0, lt=0.5, validation_alias="BANKOPS_HOLDOUT_FRACTION")
    cv_folds: int = Field(5, ge=2, le=10, validation_alias="BANKOPS_CV_FOLDS")
    seed: int = Field(42, validation_alias="BANKOPS_SEED")
    min_rows: int = Field(100, ge=10, validation_alias="BANKOPS_MIN_ROWS")
    min_rows_per_class: int = Field(10, ge=2, validation_alias="BANKOPS_MIN_ROWS_PER_CLASS")
    exclude_columns: str = Field("", validation_alias="BANKOPS_EXCLUDE_COLUMNS")
    retrain_schedule: str = Field("0 0 2 * * *", validation_alias="RETRAIN_SCHEDULE")
    data_arrival_mode: Literal["append", "replace"] = Field("append", validation_alias="BANKOPS_DATA_ARRIVAL_MODE")
    max_data_mb: float = Field(64.0, gt=0, validation_alias="BANKOPS_MAX_DATA_MB")  # a bigger dropped file is quarantined unread
    gate_tolerance: float = Field(0.002, ge=0, validation_alias="BANKOPS_GATE_TOLERANCE")
    gate_min_recall_yes: float = Field(0.0, ge=0, le=1, validation_alias="BANKOPS_GATE_MIN_RECALL_YES")
    control_port: int = Field(7071, validation_alias="BANKOPS_CONTROL_PORT")
    scoring_port: int = Field(5001, validation_alias="BANKOPS_SCORING_PORT")
    scoring_max_records: int = Field(10_000, ge=1, validation_alias="BANKOPS_SCORING_MAX_RECORDS")
    scoring_max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, validation_alias="BANKOPS_SCORING_MAX_BODY_BYTES")
    # Both HTTP services (shared/serving/connection_limits.py): slow clients are cut off, connections capped per process.
    http_header_timeout_s: float = Field(10.0, gt=0, le=300, validation_alias="BANKOPS_HTTP_HEADER_TIMEOUT_SECONDS")
    http_max_connections: int = Field(256, ge=1, validation_alias="BANKOPS_HTTP_MAX_CONNECTIONS")
    availability_probe_s: float = Field(30.0, gt=0, validation_alias="BANKOPS_AVAILABILITY_PROBE_SECONDS")
    # Batch scoring runs the LightGBM and XGBoost members compiled to native code when lleaves is installed
    # (shared/serving/native_trees.py); false: always the libraries' own predictors (bench/batch_bench.py's peer).
    native_trees: bool = Field(True, validation_alias="BANKOPS_NATIVE_TREES")
    # Registering a version starts compiling its trees in a detached low-priority child, so its first large batch
    # finds them cached; false: compiled on the first large batch instead (the tests, the benchmark's cold runs).
    native_at_registration: bool = Field(True, validation_alias="BANKOPS_NATIVE_AT_REGISTRATION")
    # Alerts (shared/monitoring/alerts.py): which rules run, their thresholds, and how much data they need.
    alert_rules: str = Field("failure_rate,latency_p95,availability,prediction_drift,retrain_failed,retrain_stuck,"
                             "model_stale,data_stale,metric_out_of_range", validation_alias="BANKOPS_ALERT_RULES")
    alert_interval_s: float = Field(60.0, gt=0, validation_alias="BANKOPS_ALERT_INTERVAL_SECONDS")
    alert_window: str = Field("15m", validation_alias="BANKOPS_ALERT_WINDOW")
    alert_min_requests: int = Field(20, ge=1, validation_alias="BANKOPS_ALERT_MIN_REQUESTS")
    alert_failure_rate: float = Field(0.05, ge=0, le=1, validation_alias="BANKOPS_ALERT_FAILURE_RATE")
    alert_p95_ms: float = Field(500.0, gt=0, validation_alias="BANKOPS_ALERT_P95_MS")
    alert_availability: float = Field(0.99, ge=0, le=1, validation_alias="BANKOPS_ALERT_AVAILABILITY")
    alert_min_probes: int = Field(3, ge=1, validation_alias="BANKOPS_ALERT_MIN_PROBES")
    alert_drift_min_records: int = Field(200, ge=1, validation_alias="BANKOPS_ALERT_DRIFT_MIN_RECORDS")
    # Pipeline rules: a run in progress longer than STUCK_FACTOR x its budget + its usual step time is stuck; no
    # successful retrain (or no new data) for STALE_FACTOR x the RETRAIN_SCHEDULE interval is stale.
    alert_stuck_factor: float = Field(3.0, gt=0, validation_alias="BANKOPS_ALERT_STUCK_FACTOR")
    alert_stale_factor: float = Field(2.0, gt=0, validation_alias="BANKOPS_ALERT_STALE_FACTOR")
    # Floors and ceilings of holdout metrics for the gate and the metric_out_of_range rule (shared/monitoring/ranges.py),
    # e.g. AUC_weighted>=0.93,recall_yes>=0.45,log_loss<=0.30; BANKOPS_GATE_MIN_RECALL_YES is an alias for recall_yes>=.
    metric_ranges: str = Field("", validation_alias="BANKOPS_METRIC_RANGES")
    # Firing and resolved alerts are POSTed here as {"text": ...} (Teams and Slack incoming webhooks); never logged.
    alert_webhook_url: SecretStr | None = Field(None, validation_alias="BANKOPS_ALERT_WEBHOOK_URL")

    primary_key: SecretStr | None = Field(None, validation_alias="BANKOPS_PRIMARY_KEY")
    secondary_key: SecretStr | None = Field(None, validation_alias="BANKOPS_SECONDARY_KEY")
    function_key: SecretStr | None = Field(None, validation_alias="BANKOPS_FUNCTION_KEY")

    azure_subscription_id: str | None = Field(None, validation_alias="AZURE_SUBSCRIPTION_ID")
    azure_resource_group: str | None = Field(None, validation_alias="AZURE_RESOURCE_GROUP")
    azureml_workspace_name: str | None = Field(None, validation_alias="AZUREML_WORKSPACE_NAME")
    applicationinsights_connection_string: SecretStr | None = Field(
        None, validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )
    azure_web_jobs_storage: SecretStr | None = Field(None, validation_alias="AzureWebJobsStorage")
    # identity-based AzureWebJobsStorage (decision 3): service URIs with DefaultAzureCredential instead of a connection string
    web_jobs_queue_uri: str | None = Field(None, validation_alias="AzureWebJobsStorage__queueServiceUri")
    web_jobs_table_uri: str | None = Field(None, validation_alias="AzureWebJobsStorage__tableServiceUri")
    web_jobs_blob_uri: str | None = Field(None, validation_alias="AzureWebJobsStorage__blobServiceUri")
    web_jobs_credential: str | None = Field(None, validation_alias="AzureWebJobsStorage__credential")
    work_queue: str = Field("bankops-work", validation_alias="BANKOPS_WORK_QUEUE")

    # The azure backend (shared/adapters/azure): where data lives, and how Azure ML trains and serves.
    datastore: Literal["local", "azurite", "azure"] = Field("local", validation_alias="BANKOPS_DATASTORE")
    storage_connection_string: SecretStr | None = Field(None, validation_alias="BANKOPS_STORAGE_CONNECTION_STRING")
    storage_account_url: str | None = Field(None, validation_alias="BANKOPS_STORAGE_ACCOUNT_URL")
    azureml_config: Path | None = Field(None, validation_alias="AZUREML_CONFIG")
    azureml_compute: str = Field("cpu-cluster", validation_alias="AZUREML_COMPUTE")
    azureml_max_nodes: int = Field(4, ge=1, validation_alias="AZUREML_MAX_NODES")
    azureml_datastore: str = Field("bankops", validation_alias="AZUREML_DATASTORE")
    automl_timeout_minutes: int = Field(30, ge=15, validation_alias="AZUREML_AUTOML_TIMEOUT_MINUTES")
    automl_onnx_compatible: bool = Field(False, validation_alias="AZUREML_ONNX_COMPATIBLE")
    endpoint_name: str = Field("bankops-scoring", validation_alias="AZUREML_ENDPOINT_NAME")
    instance_type: str = Field("Standard_DS2_V2", validation_alias="AZUREML_INSTANCE_TYPE")
    instance_count: int = Field(1, ge=1, validation_alias="AZUREML_INSTANCE_COUNT")
    deploy_grace_minutes: float = Field(60.0, ge=0, validation_alias="BANKOPS_DEPLOY_GRACE_MINUTES")
    pipeline_rest_url: str | None = Field(None, validation_alias="BANKOPS_PIPELINE_REST_URL")
    # Batch scoring on Azure ML (shared/adapters/azure/batch.py): a batch endpoint, or a pipeline job with one command step.
    batch_mode: Literal["endpoint", "pipeline"] = Field("endpoint", validation_alias="AZUREML_BATCH_MODE")
    batch_endpoint_name: str = Field("bankops-batch", validation_alias="AZUREML_BATCH_ENDPOINT_NAME")
    batch_compute: str = Field("cpu-cluster", validation_alias="AZUREML_BATCH_COMPUTE")
    batch_instance_count: int = Field(1, ge=1, validation_alias="AZUREML_BATCH_INSTANCE_COUNT")
    batch_mini_batch_size: int = Field(1, ge=1, validation_alias="AZUREML_BATCH_MINI_BATCH_SIZE")
    batch_max_retries: int = Field(2, ge=0, validation_alias="AZUREML_BATCH_MAX_RETRIES")
    batch_timeout_s: int = Field(3600, ge=30, validation_alias="AZUREML_BATCH_TIMEOUT_SECONDS")
    predictions_datastore: str = Field("bankops_predictions", validation_alias="AZUREML_PREDICTIONS_DATASTORE")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _LocalSettingsJson(settings_cls))

    @cached_property
    def paths(self) -> HomePaths:
        return HomePaths(self.home.expanduser().resolve())


class HomePaths:
    """Where everything lives under `$BANKOPS_HOME`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.datastore = root / "datastore"
        self.datasets = self.datastore / "datasets"
        self.incoming = self.datastore / "incoming"
        self.quarantine = self.datastore / "quarantine"
        self.catalog = root / "catalog.db"
        self.mlflow_db = root / "mlflow.db"
        self.artifacts = root / "mlartifacts"
        self.keys = root / "keys"
        self.logs = root / "logs"
        self.serving = root / "serving"
        self.bench = root / "bench"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"


def split_columns(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Turn "a,b" or ["a", "b"] into a clean list of column names."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `local.settings.json`, with explicit overrides on top."""
    fields = Settings.model_fields
    by_alias = {str(fields[k].validation_alias): v for k, v in overrides.items() if v is not None}
    return Settings(**by_alias)

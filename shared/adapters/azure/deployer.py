"""Deployer on an Azure ML managed online endpoint (key auth): blue/green, one step per call.

A version is served by deployment `model-v<version>` (App Insights on). `deploy` never waits
for Azure ML to provision anything: each call does the next step and raises InProgress while
Azure ML works, and the worker calls again later (a chain of steps through the durable queue,
so no function outlives its timeout):

1. create the endpoint (`auth_mode="key"`) if missing;
2. create the new deployment; it gets 0% traffic;
3. once it has succeeded, smoke-test it through the `azureml-model-deployment` header;
4. shift 100% of the traffic to it (the one short wait: an endpoint traffic update);
5. old deployments stay at 0% for BANKOPS_DEPLOY_GRACE_MINUTES (instant rollback), then
   `retire_expired` deletes them.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shared import schema
from shared.adapters.azure.provisioning import FAILED, raise_unless_ready, raise_while_busy, state
from shared.errors import BackendUnavailable, BankopsError, InProgress
from shared.ports import ModelRegistry, SmokeResult

PREFIX = "model-v"
RETIRED_TAG = "retired."
SMOKE_TOLERANCE = 1e-4


def deployment_name(version: str) -> str:
    return f"{PREFIX}{version}"


def version_of(deployment: str) -> str | None:
    return deployment[len(PREFIX):] if deployment.startswith(PREFIX) else None


def mlflow_payload(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The managed-endpoint MLflow request shape (pandas split orientation)."""
    columns = list(schema.FEATURES)
    return {"input_data": {"columns": columns, "index": list(range(len(records))), "data": [[r[c] for c in columns] for r in records]}}


def parse_answer(raw: str | bytes) -> tuple[list[str], list[float] | None]:
    """Labels (and P(yes) when the model returns it) from an MLflow endpoint's answer."""
    body = json.loads(raw)
    if isinstance(body, str):  # AutoML v1 scoring scripts double-encode
        body = json.loads(body)
    if isinstance(body, dict):
        body = body.get("predictions", body.get("result", body.get("Results", [])))
    labels = [str(item.get("prediction")) if isinstance(item, dict) else str(item) for item in body]
    probabilities = [float(item["probability_yes"]) for item in body if isinstance(item, dict) and "probability_yes" in item]
    return labels, probabilities if len(probabilities) == len(labels) else None


class AzureDeployer:
    def __init__(self, ml_client: Any, registry: ModelRegistry, *, endpoint_name: str, instance_type: str = "Standard_DS2_V2",
                 instance_count: int = 1, grace_minutes: float = 60.0, retry_after_s: float = 30.0,
                 clock: Any = time.time) -> None:
        self.ml, self.registry, self.endpoint_name = ml_client, registry, endpoint_name
        self.instance_type, self.instance_count = instance_type, instance_count
        self.grace_s, self.retry_after_s, self.clock = grace_minutes * 60, retry_after_s, clock

    # --- reading the endpoint ------------------------------------------------------------
    def _endpoint(self) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.ml.online_endpoints.get(self.endpoint_name)
        except ResourceNotFoundError:
            return None

    def _deployment(self, name: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.ml.online_deployments.get(name, self.endpoint_name)
        except ResourceNotFoundError:
            return None

    def current(self) -> str | None:
        endpoint = self._endpoint()
        if endpoint is None:
            return None
        live = [name for name, share in (endpoint.traffic or {}).items() if share >= 100]
        return version_of(live[0]) if live else None

    # --- the steps -------------------------------------------------------------------------
    def _ensure_endpoint(self) -> Any:
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        endpoint = self._endpoint()
        if endpoint is None:
            self.ml.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(
                name=self.endpoint_name, auth_mode="key", description="bankops: bank marketing scoring",
                tags={"bankops.kind": "endpoint"}))
            raise InProgress(f"creating endpoint {self.endpoint_name}", retry_after_s=self.retry_after_s)
        raise_unless_ready(endpoint, f"endpoint {self.endpoint_name}", self.retry_after_s, if_failed="see the Azure ML studio")
        return endpoint

    def _create_deployment(self, version: str) -> None:
        from azure.ai.ml.entities import ManagedOnlineDeployment

        model = self.registry.get(version)
        self.ml.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
            name=deployment_name(version), endpoint_name=self.endpoint_name, model=f"azureml:{model.name}:{model.version}",
            instance_type=self.instance_type, instance_count=self.instance_count, app_insights_enabled=True,
            tags={"model_version": str(version), "bankops.kind": "deployment"}))

    def deploy(self, version: str) -> None:
        version = self.registry.get(str(version)).version
        endpoint = self._ensure_endpoint()
        self.retire_expired(endpoint)
        name = deployment_name(version)
        if (endpoint.traffic or {}).get(name, 0) >= 100:
            return
        deployment = self._deployment(name)
        if deployment is None:
            self._create_deployment(version)
            raise InProgress(f"creating deployment {name} (0% traffic)", retry_after_s=self.retry_after_s)
        raise_while_busy(deployment, f"deployment {name}", self.retry_after_s)
        if state(deployment) in FAILED:
            logs = self.logs(version, lines=40)
            self.ml.online_deployments.begin_delete(name=name, endpoint_name=self.endpoint_name)
            raise BankopsError(f"deployment {name} failed ({deployment.provisioning_state}); it was deleted, the endpoint keeps "
                               f"serving v{self.current()}. Last log lines:\n{logs}")
        smoke = self._smoke(version, name)
        if not smoke.ok:
            self.ml.online_deployments.begin_delete(name=name, endpoint_name=self.endpoint_name)
            raise BankopsError(f"v{version} failed its smoke test before taking traffic ({smoke.detail}); its deployment was "
                               f"deleted and v{self.current()} keeps serving")
        self._shift_traffic(endpoint, name)

    def _shift_traffic(self, endpoint: Any, name: str) -> None:
        existing = {d.name for d in self.ml.online_deployments.list(self.endpoint_name)}
        now = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="seconds")
        tags = {k: v for k, v in (endpoint.tags or {}).items()
                if not k.startswith(RETIRED_TAG) or (k[len(RETIRED_TAG):] in existing and k[len(RETIRED_TAG):] != name)}
        for old, share in (endpoint.traffic or {}).items():
            if share > 0 and old != name:
                tags[f"{RETIRED_TAG}{old}"] = now
        endpoint.traffic = {d: (100 if d == name else 0) for d in existing | {name}}
        endpoint.tags = tags
        self.ml.online_endpoints.begin_create_or_update(endpoint).result()

    def retire_expired(self, endpoint: Any | None = None) -> list[str]:
        """Delete deployments that have had no traffic for the grace period; answers their names."""
        from azure.core.exceptions import ResourceNotFoundError

        endpoint = endpoint or self._endpoint()
        if endpoint is None:
            return []
        deleted = []
        for key, when in (endpoint.tags or {}).items():
            name = key[len(RETIRED_TAG):]
            if not key.startswith(RETIRED_TAG) or (endpoint.traffic or {}).get(name, 0) > 0:
                continue
            if datetime.fromisoformat(when).timestamp() + self.grace_s <= self.clock():
                try:
                    self.ml.online_deployments.begin_delete(name=name, endpoint_name=self.endpoint_name)
                    deleted.append(name)
                except ResourceNotFoundError:
                    pass
        return deleted

    # --- smoke tests -----------------------------------------------------------------------
    def _smoke(self, version: str, deployment: str) -> SmokeResult:
        from shared.serving.contract import EXAMPLE_RECORDS

        records = list(EXAMPLE_RECORDS)
        with tempfile.TemporaryDirectory() as tmp:
            request = Path(tmp) / "request.json"
            request.write_text(json.dumps(mlflow_payload(records)))
            try:
                raw = self.ml.online_endpoints.invoke(self.endpoint_name, request_file=str(request), deployment_name=deployment)
                labels, probabilities = parse_answer(raw)
            except Exception as exc:  # any failure to answer is a failed smoke test, never a crash
                return SmokeResult(False, f"scoring through {deployment} failed: {exc}")
        if len(labels) != len(records) or not set(labels) <= {schema.POSITIVE, schema.NEGATIVE}:
            return SmokeResult(False, f"{deployment} answered {labels!r} for {len(records)} records")
        expected, expected_p = self._expected(version, records)
        if expected is None:
            return SmokeResult(True, f"{deployment} answered {labels} (not compared with the registered model: {expected_p})")
        if labels != expected:
            return SmokeResult(False, f"{deployment} answered {labels}, the registered model predicts {expected}")
        if probabilities is not None and float(np.max(np.abs(np.asarray(probabilities) - expected_p))) > SMOKE_TOLERANCE:
            return SmokeResult(False, f"{deployment}: probabilities differ from the registered model's")
        return SmokeResult(True, f"v{version} answered {labels} for the example records through {deployment}")

    def _expected(self, version: str, records: list[dict[str, Any]]) -> tuple[list[str] | None, Any]:
        """What the version should answer: recorded by the pipeline's evaluate step (an AutoML model, never
        loaded here), else the registered model's own answer; (None, why) when neither is available."""
        from shared.evaluation.decision_tags import SMOKE_LABELS_TAG, SMOKE_P_YES_TAG

        tags = self.registry.get(version).tags
        if SMOKE_LABELS_TAG in tags and SMOKE_P_YES_TAG in tags:
            return tags[SMOKE_LABELS_TAG].split(","), np.asarray([float(p) for p in tags[SMOKE_P_YES_TAG].split(",")])
        try:
            model = self.registry.load(version)
        except BackendUnavailable as exc:
            return None, exc.message
        p_yes = model.predict_proba_records(records)
        return [str(x) for x in model.label(p_yes)], p_yes

    def smoke_test(self, version: str) -> SmokeResult:
        return self._smoke(version, deployment_name(version))

    # --- operations --------------------------------------------------------------------------
    def logs(self, version: str, lines: int = 100, container_type: str | None = None) -> str:
        return str(self.ml.online_deployments.get_logs(deployment_name(version), self.endpoint_name, lines,
                                                       container_type=container_type))

    def keys(self) -> dict[str, str]:
        keys = self.ml.online_endpoints.get_keys(self.endpoint_name)
        return {"primary": keys.primary_key, "secondary": keys.secondary_key}

    def regenerate_key(self, key_type: str = "primary") -> None:
        if key_type not in ("primary", "secondary"):
            raise BankopsError(f"key_type must be primary or secondary, not {key_type!r}")
        self.ml.online_endpoints.begin_regenerate_keys(self.endpoint_name, key_type=key_type).result()

    def scoring_uri(self) -> str | None:
        endpoint = self._endpoint()
        return getattr(endpoint, "scoring_uri", None) if endpoint else None

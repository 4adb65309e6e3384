"""The Azure ML workspace client (`MLClient`) from settings or a `config.json`, with DefaultAzureCredential.

DefaultAzureCredential uses the function app's managed identity on Azure and `az login` (or
environment credentials) on a workstation; no secret is read from settings here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.errors import ConfigurationError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

WORKSPACE_SETTINGS = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME")
ML_SCOPE = "https://ml.azure.com/.default"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"


def missing_workspace_settings(settings: Settings) -> list[str]:
    """The workspace settings that are not set (empty when a config.json is given instead)."""
    if settings.azureml_config is not None:
        return [] if settings.azureml_config.is_file() else [f"AZUREML_CONFIG (no file at {settings.azureml_config})"]
    values = (settings.azure_subscription_id, settings.azure_resource_group, settings.azureml_workspace_name)
    missing = [name for name, value in zip(WORKSPACE_SETTINGS, values, strict=True) if not value]
    if missing and Path("config.json").is_file():
        return []
    return missing


def credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def ml_client(settings: Settings, cred: Any = None) -> MLClient:
    """MLClient for the workspace named by the three settings, else by AZUREML_CONFIG or ./config.json."""
    missing = missing_workspace_settings(settings)
    if missing:
        raise ConfigurationError(
            f"the azure backend needs the Azure ML workspace; missing: {', '.join(missing)} "
            "(or set AZUREML_CONFIG to a config.json downloaded from the workspace's overview page)"
        )
    try:
        from azure.ai.ml import MLClient
    except ImportError as exc:
        raise ConfigurationError("the azure backend needs the Azure packages: pip install '.[azure]'") from exc
    cred = cred or credential()
    if settings.azure_subscription_id and settings.azure_resource_group and settings.azureml_workspace_name:
        return MLClient(cred, subscription_id=settings.azure_subscription_id, resource_group_name=settings.azure_resource_group,
                        workspace_name=settings.azureml_workspace_name)
    path = settings.azureml_config or Path("config.json")
    return MLClient.from_config(cred, path=str(path))


def mlflow_tracking_uri(client: MLClient, cred: Any = None) -> str:
    """The workspace's MLflow tracking URI as plain HTTPS, with a bearer token in MLFLOW_TRACKING_TOKEN.

    Azure ML hands out an `azureml://` URI that only the `azureml-mlflow` plugin understands; that
    plugin pins an older mlflow-skinny than this project, so MLflow's REST client is used directly.
    The token lasts about an hour: call this again for a long-lived process.
    """
    uri = client.workspaces.get(client.workspace_name).mlflow_tracking_uri
    cred = cred or credential()
    os.environ["MLFLOW_TRACKING_TOKEN"] = cred.get_token(MANAGEMENT_SCOPE).token
    return str(uri).replace("azureml://", "https://", 1)

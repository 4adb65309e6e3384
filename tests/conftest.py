"""Shared fixtures: isolated settings, sample CSV files of the shipped data, the endpoint records."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shared.config import Settings, load_settings
from shared.openmp import apply_openmp_environment
from tests import samples
from tests.azurite import AzuritePorts, AzuriteUnavailable, running_azurite_services
from tests.environment import NATIVE_AT_REGISTRATION

WriteCsv = Callable[..., Path]

apply_openmp_environment()  # the test session is an entry point too: before any test loads a booster


# Every registration would start a detached compiler of the model's trees (seconds of CPU each, outliving the
# test): off in tests, and in the subprocesses they start (they inherit os.environ); the tests of that
# behaviour switch it on themselves.


@pytest.fixture(autouse=True, scope="session")
def _no_compilers_at_registration() -> Iterator[None]:
    """Also for the module and session fixtures that register models, which run before `_isolated_environment`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(NATIVE_AT_REGISTRATION, "0")
        yield


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No BANKOPS_* variable or local.settings.json of the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.upper().startswith("BANKOPS_") or key.upper() == "RETRAIN_SCHEDULE":
            monkeypatch.delenv(key)
    monkeypatch.setenv("BANKOPS_SETTINGS_FILE", str(tmp_path / "absent.local.settings.json"))
    monkeypatch.setenv(NATIVE_AT_REGISTRATION, "0")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty $BANKOPS_HOME for this test."""
    return tmp_path / "bankops-home"


@pytest.fixture
def settings(home: Path) -> Settings:
    """Default settings with their home in tmp_path."""
    return load_settings(home=home)


@pytest.fixture
def write_csv(tmp_path: Path) -> WriteCsv:
    """Write a frame (or raw text/bytes) to tmp_path/<name> and return the path."""

    def write(content: pd.DataFrame | str | bytes, name: str = "data.csv") -> Path:
        path = tmp_path / name
        if isinstance(content, pd.DataFrame):
            path.write_bytes(samples.csv_bytes(content))
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    return write


@pytest.fixture
def valid_frame() -> pd.DataFrame:
    """300 rows of the shipped data (about 11% yes), as strings; a test may change it."""
    return samples.stratified_sample(300, seed=1)


@pytest.fixture
def endpoint_records() -> list[dict[str, Any]]:
    return samples.endpoint_records()


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuritePorts]:
    """Azurite's blob, queue and table services for the whole session (in memory, free loopback ports)."""
    try:
        with running_azurite_services() as ports:
            yield ports
    except AzuriteUnavailable as exc:
        pytest.fail(f"Azurite could not start: {exc}")


@pytest.fixture(scope="session")
def azurite_port(azurite: AzuritePorts) -> int:
    """The session Azurite's blob port."""
    return azurite.blob


@pytest.fixture
def blob_service(azurite_port: int) -> Any:
    """A BlobServiceClient on the session's Azurite, every container emptied first."""
    from azure.storage.blob import BlobServiceClient

    from shared.adapters.azure.datastore import azurite_connection_string

    service = BlobServiceClient.from_connection_string(azurite_connection_string(azurite_port))
    for container in service.list_containers():
        client = service.get_container_client(container.name)
        for blob in client.list_blobs():
            client.delete_blob(blob.name)
    return service

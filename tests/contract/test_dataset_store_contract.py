"""DatasetStore contract: local files + SQLite and Azure ML data assets (fake MLClient, Azurite) behave the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.adapters.azure.datasets import AzureDatasetStore
from shared.adapters.local.datasets import LocalDatasetStore
from shared.dataset_registration import register_dataset
from shared.errors import InvalidDataset, NotFound
from shared.ports import DatasetStore
from tests import samples
from tests.contract.conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> DatasetStore:
    if request.param == "local":
        return LocalDatasetStore(tmp_path / "datasets", tmp_path / "catalog.db")
    service: Any = request.getfixturevalue("blob_service")
    return AzureDatasetStore(request.getfixturevalue("fake_ml"), service, datastore_name="bankops")


def test_a_registered_version_keeps_content_stats_and_holdout(store: DatasetStore, contract_frame: pd.DataFrame) -> None:
    content = samples.csv_bytes(contract_frame)
    reg = register_dataset(store, content, name="bank", source_name="first.csv")
    v = reg.dataset
    assert reg.created and (v.name, v.version, v.rows, v.source) == ("bank", 1, 400, "first.csv")
    assert v.positive_share == pytest.approx((contract_frame["y"] == "yes").mean(), abs=1e-6)
    assert store.read(v) == content
    holdout = store.holdout(v)
    assert holdout.dtype == np.int64 and len(holdout) == 40 and holdout.min() >= 0 and holdout.max() < 400
    assert store.get("bank") == v == store.get("bank", 1)
    assert store.find("bank", v.content_hash) == v


def test_the_same_content_is_the_same_version(store: DatasetStore, contract_frame: pd.DataFrame) -> None:
    content = samples.csv_bytes(contract_frame)
    first = register_dataset(store, content, name="bank").dataset
    again = register_dataset(store, content, name="bank")
    assert not again.created and again.dataset == first
    assert len(store.list("bank")) == 1


def test_versions_count_up_and_list_oldest_first(store: DatasetStore, contract_frame: pd.DataFrame) -> None:
    register_dataset(store, samples.csv_bytes(contract_frame), name="bank")
    register_dataset(store, samples.csv_bytes(contract_frame.head(300)), name="bank")
    register_dataset(store, samples.csv_bytes(contract_frame.head(200)), name="other")
    assert [(v.name, v.version, v.rows) for v in store.list("bank")] == [("bank", 1, 400), ("bank", 2, 300)]
    assert [(v.name, v.version) for v in store.list()] == [("bank", 1), ("bank", 2), ("other", 1)]
    assert store.get("bank").version == 2


def test_unknown_versions_are_not_found_and_bad_data_is_never_stored(store: DatasetStore, contract_frame: pd.DataFrame) -> None:
    with pytest.raises(NotFound, match="bankops data list"):
        store.get("bank")
    register_dataset(store, samples.csv_bytes(contract_frame), name="bank")
    with pytest.raises(NotFound):
        store.get("bank", 7)
    assert store.find("bank", "0" * 64) is None
    with pytest.raises(InvalidDataset):
        register_dataset(store, samples.csv_bytes(contract_frame.drop(columns=["age"])), name="bank")
    assert len(store.list("bank")) == 1

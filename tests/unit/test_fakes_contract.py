"""The fakes keep the ports' contract, so tests written against them say something about the real adapters."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from shared.adapters.local.datasets import LocalDatasetStore
from shared.adapters.local.registry import MlflowModelRegistry
from shared.adapters.local.tracking import MlflowTracker
from shared.errors import NotFound
from shared.ports import DatasetStore, ModelRegistry, RunTracker
from tests.fakes import InMemoryDatasetStore, InMemoryModelRegistry, InMemoryRunTracker

PAIRS = [
    (DatasetStore, InMemoryDatasetStore, LocalDatasetStore),
    (ModelRegistry, InMemoryModelRegistry, MlflowModelRegistry),
    (RunTracker, InMemoryRunTracker, MlflowTracker),
]


def _port_methods(port: type) -> list[str]:
    return [name for name, value in vars(port).items() if callable(value) and not name.startswith("_")]


def _parameters(fn) -> list[tuple[str, inspect._ParameterKind]]:
    return [(p.name, p.kind) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize(("port", "fake", "real"), PAIRS, ids=lambda c: c.__name__)
def test_fake_and_adapter_have_the_ports_methods(port: type, fake: type, real: type) -> None:
    methods = _port_methods(port)
    assert methods, port
    for name in methods:
        expected = _parameters(getattr(port, name))
        for impl in (fake, real):
            assert hasattr(impl, name), f"{impl.__name__} lacks {name}"
            assert _parameters(getattr(impl, name)) == expected, f"{impl.__name__}.{name} differs from {port.__name__}.{name}"


@pytest.fixture(params=["in-memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "in-memory":
        return InMemoryDatasetStore()
    return LocalDatasetStore(tmp_path / "datasets", tmp_path / "catalog.db")


def _add(store, content: bytes, digest: str, name: str = "bank"):
    return store.add(name, content, content_hash=digest, rows=3, positive_share=1 / 3, holdout=np.array([2]), source="s.csv")


def test_dataset_store_contract(store) -> None:
    assert store.list() == [] and store.find("bank", "h1") is None
    with pytest.raises(NotFound):
        store.get("bank")
    v1 = _add(store, b"one", "h1")
    assert (v1.name, v1.version, v1.content_hash, v1.rows, v1.source, v1.ref) == ("bank", 1, "h1", 3, "s.csv", "bank:1")
    assert _add(store, b"one", "h1") == v1, "the same content added again is the same version"
    v2 = _add(store, b"two", "h2")
    other = _add(store, b"one", "h1", name="other")
    assert (v2.version, other.version) == (2, 1)
    assert store.find("bank", "h2") == v2
    assert store.get("bank") == v2 and store.get("bank", 1) == v1
    with pytest.raises(NotFound):
        store.get("bank", 3)
    assert store.list("bank") == [v1, v2]
    assert store.list() == [v1, v2, other]
    assert store.read(v2) == b"two"
    assert store.holdout(v1).tolist() == [2]
    assert store.holdout(v1).dtype == np.int64

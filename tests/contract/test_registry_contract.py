"""ModelRegistry contract: the local MLflow registry and the Azure ML model registry (fake MLClient) behave the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared import schema
from shared.adapters.azure.registry import AzureModelRegistry
from shared.adapters.local.registry import MlflowModelRegistry
from shared.adapters.local.tracking import MlflowTracker
from shared.errors import NotFound
from shared.mlflow_model import example_frame
from shared.ports import CHAMPION, PREVIOUS, ModelRegistry, ModelVersion, chosen_version
from tests.contract.conftest import BACKENDS, tiny_model


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path, tracker: MlflowTracker, mlflow_uri: str,
             model_name: str) -> ModelRegistry:
    if request.param == "local":
        return MlflowModelRegistry(mlflow_uri, model_name, compile_at_registration=False)
    return AzureModelRegistry(request.getfixturevalue("fake_ml"), model_name, cache_dir=tmp_path / "cache")


def _register(registry: ModelRegistry, tracker: MlflowTracker, frame: pd.DataFrame, c: float, auc: float) -> ModelVersion:
    model = tiny_model(frame, c)
    example = example_frame(frame.drop(columns=[schema.TARGET]).head(2).to_dict("records"))
    with tracker.run("pipeline") as run_id:
        return registry.register(model, run_id=run_id, metrics={"AUC_weighted": auc}, tags={"dataset": "bank:1"},
                                 input_example=example)


def test_versions_keep_their_metrics_tags_and_run(registry: ModelRegistry, tracker: MlflowTracker,
                                                  contract_frame: pd.DataFrame) -> None:
    first = _register(registry, tracker, contract_frame, 1.0, 0.9123456)
    second = _register(registry, tracker, contract_frame, 0.1, 0.8)
    assert (first.version, second.version) == ("1", "2")
    assert first.metrics == {"AUC_weighted": pytest.approx(0.912346, abs=1e-6)}
    assert first.tags["dataset"] == "bank:1" and first.run_id
    assert [v.version for v in registry.list()] == ["1", "2"]
    assert registry.get().version == "2" and registry.get("1").metrics == first.metrics


def test_a_loaded_version_predicts_as_the_registered_model(registry: ModelRegistry, tracker: MlflowTracker,
                                                           contract_frame: pd.DataFrame) -> None:
    version = _register(registry, tracker, contract_frame, 1.0, 0.9).version
    features = contract_frame.drop(columns=[schema.TARGET])
    expected = tiny_model(contract_frame, 1.0).predict_proba(features)
    np.testing.assert_allclose(registry.load(version).predict_proba(features), expected, atol=1e-9)


def test_aliases_point_at_one_version_and_move(registry: ModelRegistry, tracker: MlflowTracker, contract_frame: pd.DataFrame) -> None:
    _register(registry, tracker, contract_frame, 1.0, 0.9)
    _register(registry, tracker, contract_frame, 0.1, 0.8)
    assert registry.alias("champion") is None
    registry.set_alias("champion", "1")
    assert registry.alias("champion").version == "1"  # type: ignore[union-attr]
    registry.set_alias("champion", "2")
    registry.set_alias("previous", "1")
    assert registry.alias("champion").version == "2"  # type: ignore[union-attr]
    assert registry.alias("previous").version == "1"  # type: ignore[union-attr]
    assert registry.get("2").aliases == ("champion",)


def test_unknown_versions_are_not_found(registry: ModelRegistry, tracker: MlflowTracker, contract_frame: pd.DataFrame) -> None:
    assert registry.list() == []
    with pytest.raises(NotFound, match="bankops train"):
        registry.get()
    _register(registry, tracker, contract_frame, 1.0, 0.9)
    with pytest.raises(NotFound, match="bankops models"):
        registry.get("9")


def test_the_version_a_command_uses_by_default_is_the_champion_else_the_newest(registry: ModelRegistry, tracker: MlflowTracker,
                                                                               contract_frame: pd.DataFrame) -> None:
    """What `bankops serve` and `bankops batch-score` (and the Azure batch commands) pick when no version is named."""
    with pytest.raises(NotFound, match="bankops train"):
        chosen_version(registry)
    _register(registry, tracker, contract_frame, 1.0, 0.9)
    _register(registry, tracker, contract_frame, 0.1, 0.8)
    assert chosen_version(registry) == "2"  # no champion yet: the newest
    registry.set_alias(CHAMPION, "1")
    assert chosen_version(registry) == "1" and chosen_version(registry, "2") == "2"
    with pytest.raises(NotFound, match="bankops models"):
        chosen_version(registry, "9")


def test_what_another_registry_on_the_same_store_writes_is_read_at_once(request: pytest.FixtureRequest, tmp_path: Path,
                                                                         registry: ModelRegistry, tracker: MlflowTracker,
                                                                         mlflow_uri: str, model_name: str,
                                                                         contract_frame: pd.DataFrame) -> None:
    """`bankops train` or `bankops deploy` beside a running host: the host's registry (which keeps the answers
    of unchanged reads, locally) answers the new versions and aliases on its next read, never an older one."""
    if isinstance(registry, MlflowModelRegistry):
        other: ModelRegistry = MlflowModelRegistry(mlflow_uri, model_name, compile_at_registration=False)
    else:
        other = AzureModelRegistry(request.getfixturevalue("fake_ml"), model_name, cache_dir=tmp_path / "other-cache")
    _register(registry, tracker, contract_frame, 1.0, 0.9)
    registry.set_alias(CHAMPION, "1")
    assert [v.version for v in registry.list()] == ["1"] and registry.alias(CHAMPION).version == "1"  # type: ignore[union-attr]
    assert registry.alias(PREVIOUS) is None
    _register(other, tracker, contract_frame, 0.1, 0.8)
    other.set_alias(CHAMPION, "2")
    other.set_alias(PREVIOUS, "1")
    assert [v.version for v in registry.list()] == ["1", "2"]
    assert registry.alias(CHAMPION).version == "2" and registry.alias(PREVIOUS).version == "1"  # type: ignore[union-attr]
    assert registry.get().version == "2" and chosen_version(registry) == "2"

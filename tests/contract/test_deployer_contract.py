"""Deployer contract: the local scoring service and the Azure ML managed online endpoint (fake MLClient) behave the same.

A deploy may take several steps (Azure ML provisions for minutes): `deploy_fully` calls again on
InProgress after `settle` (Azure ML finishing its work), as the worker does on its next firing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
import pytest

from shared import schema
from shared.adapters.azure.deployer import AzureDeployer
from shared.adapters.azure.registry import AzureModelRegistry
from shared.adapters.local.tracking import MlflowTracker
from shared.bootstrap import bootstrap
from shared.config import load_settings
from shared.errors import InProgress, NotFound
from shared.mlflow_model import example_frame
from shared.ports import Deployer, ModelRegistry
from tests import samples
from tests.azure_fakes import FakeMLClient
from tests.contract.conftest import BACKENDS, tiny_model


@dataclass
class Rig:
    deployer: Deployer
    settle: Callable[[], None]


def deploy_fully(rig: Rig, version: str, max_steps: int = 8) -> int:
    """Deploy `version` step by step; answers how many InProgress steps it took."""
    for step in range(max_steps):
        try:
            rig.deployer.deploy(version)
            return step
        except InProgress:
            rig.settle()
    raise AssertionError(f"v{version} was not deployed in {max_steps} steps")


def _register_two(registry: ModelRegistry, tracker: MlflowTracker, frame: pd.DataFrame) -> None:
    example = example_frame(frame.drop(columns=[schema.TARGET]).head(2).to_dict("records"))
    for c in (1.0, 0.05):
        with tracker.run("pipeline") as run_id:
            registry.register(tiny_model(frame, c), run_id=run_id, metrics={"AUC_weighted": 0.9}, tags={}, input_example=example)


@pytest.fixture(scope="module", params=BACKENDS)
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """One rig per backend for the module (starting a service costs seconds): every test leaves v1 serving."""
    frame = samples.stratified_sample(400, seed=5)
    root = tmp_path_factory.mktemp(f"deployer-{request.param}")
    if request.param == "local":
        from tests.integration.scoring_fixtures import start_service

        backend = bootstrap(load_settings(home=root / "home"))
        _register_two(backend.registry, backend.tracker, frame)  # type: ignore[arg-type]
        service = start_service(backend.settings.paths.root, "--model-version", "1")
        try:
            yield Rig(backend.deployer, lambda: None)
        finally:
            service.stop()
        return
    fake = FakeMLClient(store=root / "workspace")
    tracker = MlflowTracker(f"sqlite:///{root / 'mlflow.db'}", "contract", root / "artifacts")
    registry = AzureModelRegistry(fake, "bank-model", cache_dir=root / "cache")
    _register_two(registry, tracker, frame)
    azure = Rig(AzureDeployer(fake, registry, endpoint_name="bankops-contract", retry_after_s=0), fake.settle)
    deploy_fully(azure, "1")
    yield azure


def test_the_first_version_serves_and_passes_its_smoke_test(rig: Rig) -> None:
    assert rig.deployer.current() == "1"
    smoke = rig.deployer.smoke_test("1")
    assert smoke.ok, smoke.detail


def test_a_new_version_takes_over_and_an_old_one_comes_back(rig: Rig) -> None:
    deploy_fully(rig, "2")
    assert rig.deployer.current() == "2"
    assert rig.deployer.smoke_test("2").ok
    deploy_fully(rig, "1")
    assert rig.deployer.current() == "1"
    assert rig.deployer.smoke_test("1").ok


def test_deploying_the_serving_version_again_changes_nothing(rig: Rig) -> None:
    assert deploy_fully(rig, "1") == 0
    assert rig.deployer.current() == "1"


def test_an_unknown_version_is_not_found(rig: Rig) -> None:
    with pytest.raises(NotFound):
        rig.deployer.deploy("42")
    assert rig.deployer.current() == "1"

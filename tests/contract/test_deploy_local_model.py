"""`bankops azure deploy-model VERSION`: a version of the local MLflow registry registered in the
workspace and rolled out to the managed online endpoint by the same handler as an Azure-trained
version (new deployment at 0%, smoke test through the endpoint, traffic swap, champion alias).

The workspace is tests/azure_fakes.FakeMLClient as it is on main (used unchanged): what it stands
for and cannot check is said there. Its deployments answer through `mlflow.pyfunc.load_model` of
the uploaded folder, so the smoke test scores the MLflow model that was registered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared import schema
from shared.adapters.azure.deployer import AzureDeployer
from shared.adapters.azure.registry import AzureModelRegistry
from shared.automation.handlers import Automation
from shared.automation.local_to_azure import deploy_local_version
from shared.automation.work_queue import WorkQueue
from shared.bootstrap import Backend, bootstrap
from shared.config import load_settings
from shared.errors import InProgress
from shared.mlflow_model import example_frame
from tests import samples
from tests.automation_fakes import make_automation
from tests.azure_fakes import FakeMLClient
from tests.contract.conftest import tiny_model


@pytest.fixture
def local(tmp_path: Path) -> Backend:
    """A local home with two registered versions (the second with another regularisation)."""
    backend = bootstrap(load_settings(home=tmp_path / "local"))
    frame = samples.stratified_sample(400, seed=5)
    example = example_frame(frame.drop(columns=[schema.TARGET]).head(2).to_dict("records"))
    for c in (1.0, 0.05):
        with backend.tracker.run("pipeline") as run_id:
            backend.registry.register(tiny_model(frame, c), run_id=run_id, metrics={"AUC_weighted": 0.9},
                                      tags={"dataset": "bankmarketing:1"}, input_example=example)
    return backend


@pytest.fixture
def workspace(tmp_path: Path, local: Backend) -> tuple[FakeMLClient, Automation]:
    fake = FakeMLClient(store=tmp_path / "workspace")
    registry = AzureModelRegistry(fake, "bank-model", cache_dir=tmp_path / "cache")
    deployer = AzureDeployer(fake, registry, endpoint_name="bankops-contract", retry_after_s=0)
    auto = make_automation(settings=local.settings, datasets=local.datasets, registry=registry, tracker=local.tracker,
                           datastore=local.datastore, deployer=deployer, queue=WorkQueue(tmp_path / "queue.db"))
    return fake, auto


def test_a_local_version_is_registered_in_the_workspace_and_serves_on_the_endpoint(
        local: Backend, workspace: tuple[FakeMLClient, Automation]) -> None:
    fake, auto = workspace
    settles: list[float] = []
    result = deploy_local_version(local.registry, auto, "1", wait_s=60, sleep=lambda s: (settles.append(s), fake.settle())[1])
    assert result["outcome"] == "deployed" and result["registered_now"] is True
    remote = result["workspace_version"]
    assert settles, "the endpoint and the deployment are provisioned step by step, as for an Azure-trained version"
    assert auto.deployer.current() == remote
    champion = auto.registry.alias("champion")
    assert champion is not None and champion.version == remote
    registered = auto.registry.get(remote)
    assert registered.tags["bankops_source"] == "local" and registered.tags["bankops_local_version"] == "1"
    assert registered.metrics["AUC_weighted"] == pytest.approx(0.9)
    records = samples.endpoint_records()
    np.testing.assert_allclose(auto.registry.load(remote).predict_proba_records(records),
                               local.registry.load("1").predict_proba_records(records), rtol=0, atol=1e-9)
    assert auto.deployer.smoke_test(remote).ok


def test_deploying_again_registers_nothing_new_and_a_second_version_takes_over(local: Backend,
                                                                                workspace: tuple[FakeMLClient, Automation]) -> None:
    fake, auto = workspace
    first = deploy_local_version(local.registry, auto, "1", wait_s=60, sleep=lambda _: fake.settle())
    again = deploy_local_version(local.registry, auto, "1", wait_s=60, sleep=lambda _: fake.settle())
    assert again["registered_now"] is False and again["workspace_version"] == first["workspace_version"]
    assert len(auto.registry.list()) == 1
    second = deploy_local_version(local.registry, auto, "2", wait_s=60, sleep=lambda _: fake.settle())
    assert second["outcome"] == "deployed" and second["workspace_version"] != first["workspace_version"]
    assert auto.deployer.current() == second["workspace_version"]
    previous = auto.registry.alias("previous")
    assert previous is not None and previous.version == first["workspace_version"]


def test_a_rollout_still_provisioning_says_to_run_the_command_again(local: Backend,
                                                                     workspace: tuple[FakeMLClient, Automation]) -> None:
    fake, auto = workspace
    with pytest.raises(InProgress, match="run the same command again"):
        deploy_local_version(local.registry, auto, "1", wait_s=0, sleep=lambda _: fake.settle())
    assert auto.deployer.current() is None
    fake.settle()
    done = deploy_local_version(local.registry, auto, "1", wait_s=60, sleep=lambda _: fake.settle())
    assert done["outcome"] == "deployed" and done["registered_now"] is False

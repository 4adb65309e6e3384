"""The Deployer port on the local scoring service: swap versions with no downtime, smoke-test them.

`deploy` writes the deployment file, then waits until every worker of the running service
reports the new version (each loads and warms it beside the old one first). A worker that
cannot load it keeps the old version; the deployment is then put back and the error raised.
"""

from __future__ import annotations

import time

import numpy as np

from shared.errors import BackendUnavailable, BankopsError
from shared.ports import ModelRegistry, SmokeResult
from shared.serving.client import ScoringClient
from shared.serving.contract import EXAMPLE_RECORDS
from shared.serving.deployment import ServingState
from shared.serving.keys import KeyStore

SMOKE_TOLERANCE = 1e-6


class LocalDeployer:
    def __init__(self, state: ServingState, registry: ModelRegistry, keys: KeyStore, *, timeout_s: float = 120.0) -> None:
        self.state, self.registry, self.keys, self.timeout_s = state, registry, keys, timeout_s

    def current(self) -> str | None:
        deployment = self.state.deployment()
        return deployment.model_version if deployment else None

    def deploy(self, version: str, reason: str = "deploy") -> bool:
        """Serve `version`; True once every running worker serves it, False when no service runs."""
        version = self.registry.get(str(version)).version
        before = self.state.deployment()
        self.state.write_deployment(version, reason=reason)
        server = self.state.server()
        if server is None:
            return False
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            reports = self.state.reports()
            failed = [r for r in reports if r.failed_version == version]
            if failed:
                if before is not None:
                    self.state.write_deployment(before.model_version, reason=f"restored: v{version} failed to load")
                raise BankopsError(f"v{version} was not deployed, the service keeps serving the previous version: {failed[0].error}")
            if len(reports) >= server.workers and all(r.model_version == version for r in reports):
                return True
            time.sleep(0.05)
        raise BackendUnavailable(f"the service did not report v{version} within {self.timeout_s:.0f}s; see its log")

    def smoke_test(self, version: str) -> SmokeResult:
        """Score the two example records through the endpoint; compare with the registered model."""
        server = self.state.server()
        if server is None:
            return SmokeResult(False, "no scoring service is running")
        try:
            answer = ScoringClient(server.url, self.keys.get("primary").get_secret_value()).score(EXAMPLE_RECORDS)
        except BankopsError as exc:
            return SmokeResult(False, str(exc))
        if answer.get("model_version") != str(version):
            return SmokeResult(False, f"the endpoint answered with v{answer.get('model_version')}, not v{version}")
        expected = self.registry.load(str(version)).predict_proba_records(EXAMPLE_RECORDS)
        gap = float(np.max(np.abs(np.asarray(answer["probabilities"]) - expected)))
        if gap > SMOKE_TOLERANCE:
            return SmokeResult(False, f"probabilities differ from the registered model by {gap:.2e}")
        return SmokeResult(True, f"v{version} answered {answer['result']} for the example records")

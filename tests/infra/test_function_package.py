"""The function app's package, built as Azure's remote build builds it, holds no trainer and indexes every function.

Real: a fresh venv (pip only), `pip install -r requirements.txt --target .python_packages/lib/site-packages` from the
package registry (pip's cache makes a second run quick), then function_app imported from that folder alone and indexed
as the Functions Python worker does. Not checked here: the worker's gRPC host itself (not on PyPI for 3.11 builds).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("functions_package", ROOT / "infra" / "functions_package.py")
assert _spec and _spec.loader
package = importlib.util.module_from_spec(_spec)
sys.modules["functions_package"] = package
_spec.loader.exec_module(package)

# CONTRACTS decision 1: every function and its trigger
EXPECTED = {
    "on_data_arrived": "eventGridTrigger", "on_run_completed": "eventGridTrigger", "daily_retrain": "timerTrigger",
    "retrain": "httpTrigger", "redeploy": "httpTrigger", "rollback": "httpTrigger",
    "status": "httpTrigger", "run": "httpTrigger", "events": "httpTrigger",
}
TRAINERS = {"flaml", "lightgbm", "xgboost", "catboost", "onnxruntime", "lleaves", "llvmlite", "matplotlib", "pyarrow",
            "scikit-learn", "scipy"}
# What the azure backend imports when it builds its adapters at the first invocation (not at indexing)
RUNTIME_IMPORTS = """
import shared.bootstrap, shared.automation.control, shared.automation.worker, shared.monitoring.telemetry
import shared.adapters.azure.workspace, shared.adapters.azure.datasets, shared.adapters.azure.datastore
import shared.adapters.azure.registry, shared.adapters.azure.tracking, shared.adapters.azure.trainer
import shared.adapters.azure.deployer, shared.adapters.azure.batch
import azure.ai.ml, azure.identity, azure.storage.blob, azure.storage.queue, azure.data.tables
"""


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_the_function_package_installs_only_the_app_and_indexes_every_function(tmp_path: Path) -> None:
    python = package.fresh_python(ROOT / ".cache" / "functions-build-venv")
    app = package.stage(tmp_path / "app")
    site = package.install(app, python)

    installed = set(package.distributions(site))
    assert not installed & TRAINERS, f"the function package installs trainers: {sorted(installed & TRAINERS)}"
    version = next(p.name for p in site.glob("azure_functions-*.dist-info"))
    assert version.split("-")[1].startswith("1."), f"azure-functions must stay below 2 ({version})"

    functions = package.index(app, python, extra_code=RUNTIME_IMPORTS)
    triggers = {name: next(b for b in bindings if b["type"].endswith("Trigger")) for name, bindings in functions.items()}
    worker = triggers.pop("process_work")  # CONTRACTS decision 1: a queue trigger on bankops-work 
    assert {name: t["type"] for name, t in triggers.items()} == EXPECTED
    assert worker["type"] == "queueTrigger", worker  # CONTRACTS decision 1
    assert worker["queueName"] in ("bankops-work", "%BANKOPS_WORK_QUEUE%") and worker["connection"] == "AzureWebJobsStorage"
    route = next(b for b in functions["run"] if b["type"] == "httpTrigger")
    assert route["route"] == "runs/{job_id}" and route["authLevel"] == "FUNCTION"
    print(f"\nfunction package: {package.size_mb(site):.0f} MB installed, {len(installed)} distributions")

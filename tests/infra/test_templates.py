"""The Bicep templates, checked offline: they parse, checkov finds nothing unsuppressed, and they match the code.

Real: pycep-parser (a Bicep grammar) and checkov's Bicep checks on the files in infra/; the settings the code reads
(shared/config.py), the functions function_app.py indexes and the README's role table. Not checked here: what Azure
Resource Manager itself validates at deployment (API versions' schemas, name availability, region support).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from tests.infra.tools import checkov

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEMPLATES = sorted(INFRA.rglob("*.bicep"))

# Settings of shared/config.py the function app does not read on Azure, and why (everything else must be set)
NOT_ON_AZURE = {
    "BANKOPS_CONTROL_PORT": "the local control service's port; on Azure the Functions host serves the routes",
    "BANKOPS_SCORING_PORT": "the local scoring service; Azure ML's managed online endpoint serves on Azure",
    "BANKOPS_SCORING_MAX_RECORDS": "the local scoring service's limit",
    "BANKOPS_SCORING_MAX_BODY_BYTES": "the local scoring service's limit",
    "BANKOPS_AVAILABILITY_PROBE_SECONDS": "the local host's probe of its scoring service",
    "BANKOPS_PRIMARY_KEY": "the local scoring keys; the endpoint's keys stay in Azure ML (bankops azure keys)",
    "BANKOPS_SECONDARY_KEY": "as BANKOPS_PRIMARY_KEY",
    "BANKOPS_FUNCTION_KEY": "the local control service's key; the Functions host keeps its own keys",
    "AzureWebJobsStorage": "the connection-string form; Azure uses the identity form AzureWebJobsStorage__*",
    "BANKOPS_STORAGE_CONNECTION_STRING": "the key-based alternative to BANKOPS_STORAGE_ACCOUNT_URL",
    "AZUREML_CONFIG": "the config.json alternative to the three workspace settings",
    "BANKOPS_PIPELINE_REST_URL": "optional: fire a published pipeline instead of submitting the job",
    "BANKOPS_HTTP_HEADER_TIMEOUT_SECONDS": "the local services' uvicorn servers; on Azure the Functions host serves HTTP",
    "BANKOPS_HTTP_MAX_CONNECTIONS": "as BANKOPS_HTTP_HEADER_TIMEOUT_SECONDS",
    "BANKOPS_QUICK_BUDGET_S": "`bankops up`'s quick first model on an empty home; on Azure `azd up` deploys, AutoML trains",
    "BANKOPS_NATIVE_TREES": "the local batch scoring and scoring workers; Azure ML's batch script runs them regardless",
    "BANKOPS_NATIVE_AT_REGISTRATION": "the local registry compiles new versions' trees; Azure ML's registry does not",
    "BANKOPS_NATIVE_REGISTRATION_WAIT_S": "as BANKOPS_NATIVE_AT_REGISTRATION",
}
# CONTRACTS decisions 3 and 5: settings added this round (some on other branches' config.py)
DECIDED = {
    "BANKOPS_ALERT_STUCK_FACTOR", "BANKOPS_ALERT_STALE_FACTOR", "BANKOPS_METRIC_RANGES", "BANKOPS_ALERT_WEBHOOK_URL",
    "BANKOPS_WORK_QUEUE", "AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__credential",
}
SECRET_NAMES = re.compile(r"KEY|SECRET|PASSWORD|CONNECTION_?STRING|WEBHOOK|TOKEN", re.IGNORECASE)


def secret_named(name: str) -> bool:
    return bool(SECRET_NAMES.search(name)) and not name.endswith(("Name", "_NAME"))
# CONTRACTS decision 2
SUBSCRIPTIONS = {
    "bankops-data-arrived": "on_data_arrived", "bankops-batch-arrived": "on_data_arrived",
    "bankops-run-completed": "on_run_completed", "bankops-run-failed": "on_run_completed",
}


def parsed(path: Path) -> dict[str, Any]:
    return dict(BicepParser().parse(file_path=path))


def code_settings() -> set[str]:
    """Every app setting shared/config.py reads, plus the %NAME% references of function_app's bindings."""
    config = (ROOT / "shared" / "config.py").read_text()
    names = set(re.findall(r'validation_alias="([A-Za-z0-9_]+)"', config))
    functions = "\n".join(p.read_text() for p in (ROOT / "functions").glob("*.py"))
    return names | set(re.findall(r'"%([A-Za-z0-9_]+)%"', functions)) | DECIDED


def app_settings() -> dict[str, Any]:
    return parsed(INFRA / "app" / "function.bicep")["variables"]["settings"]["value"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_template_parses(template: Path) -> None:
    tree = parsed(template)
    assert tree.get("resources") or tree.get("modules"), f"{template.name} declares nothing"


def test_checkov_finds_no_failed_check_that_is_not_suppressed_with_a_reason() -> None:
    done = subprocess.run([str(checkov()), "-d", str(INFRA), "--framework", "bicep", "--skip-download", "-o", "json"],
                          capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] > 30, "checkov did not see the templates' resources"
    failed = [f"{c['check_id']} {c['file_path']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert not failed, "\n".join(failed)
    for check in report["results"]["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason.split()) >= 4, f"{check['check_id']} on {check['resource']} is suppressed without a reason"


def test_every_setting_the_code_reads_on_azure_is_set() -> None:
    wanted = code_settings() - NOT_ON_AZURE.keys()
    missing = sorted(wanted - app_settings().keys())
    assert not missing, f"infra/app/function.bicep does not set: {missing}"
    # Flex Consumption takes the runtime from functionAppConfig and rejects these as app settings
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & app_settings().keys()


def test_no_template_holds_a_secret() -> None:
    for template in TEMPLATES:
        text = template.read_text()
        for name, value in re.findall(r"^\s*([A-Za-z0-9_]+):\s*'([^']*)'", text, re.MULTILINE):
            assert not (secret_named(name) and value), f"{template.name}: {name} is a literal"
        assert not re.search(r"AccountKey=|SharedAccessSignature=|sig=|listKeys\(", text), f"{template.name} reads or holds a key"
        for name, param in parsed(template).get("parameters", {}).items():
            if secret_named(name) or {"type": "secure"} in param["decorators"]:
                assert {"type": "secure"} in param["decorators"] and param["default"] is None, f"{template.name}: {name}"


def test_every_event_subscription_targets_a_function_of_the_app() -> None:
    from tests.function_index import indexed_functions

    indexed = set(indexed_functions())
    text = (INFRA / "app" / "events.bicep").read_text()
    names = set(re.findall(r"name: '(bankops-[a-z-]+)'", text))
    assert names == set(SUBSCRIPTIONS)
    targets = set(re.findall(r"/functions/([A-Za-z0-9_]+)'", text))
    assert targets == set(SUBSCRIPTIONS.values()) and targets <= indexed
    for fragment in ("containers/${sub.container}/", "'incoming'", "'batch'", "'PutBlob', 'PutBlockList', 'CopyBlob', 'FlushWithClose'",
                     "key: 'data.runType', values: ['azureml.PipelineRun']", "key: 'data.runStatus', values: ['Failed', 'Canceled']",
                     "Microsoft.MachineLearningServices.RunStatusChanged", "Microsoft.MachineLearningServices.RunCompleted",
                     "blobContainerName: deadLetterContainer", "'eventgrid-deadletter'"):
        assert fragment in text, fragment
    assert text.count("deadLetterWithResourceIdentity: deadLetter") == 3  # the loop's two and the two run subscriptions
    main = parsed(INFRA / "main.bicep")
    containers = json.dumps(main["modules"]["data"]["config"]["params"]["containers"])
    assert "eventgrid-deadletter" in containers and "incoming" in containers and "batch" in containers


def readme_roles() -> list[tuple[str, str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Role assignments", 1)[1].split("\n### ", 1)[0]
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in section.splitlines() if line.startswith("|")]
    return [(who, role, scope) for who, role, scope, *_ in rows[2:]]


PRINCIPALS = {"function app": "functionPrincipalId", "compute cluster": "computePrincipalId", "workspace": "workspace.identity",
              "Event Grid system topics": "Topic.identity", "you": "userPrincipalId"}
SCOPES = {"the workspace": "workspace", "the data storage account": "dataStorage", "the function app's storage account": "hostStorage",
          "Application Insights": "applicationInsights"}


def test_every_role_of_the_readme_is_assigned() -> None:
    rows = readme_roles()
    assert len(rows) >= 8
    blocks = [block for template in (INFRA / "app" / "rbac.bicep", INFRA / "app" / "events.bicep")
              for block in template.read_text().split("\nresource ") if "Microsoft.Authorization/roleAssignments" in block]
    for who, role, scope in rows:
        principal = next(v for k, v in PRINCIPALS.items() if who.startswith(k))
        where = SCOPES[scope]
        hits = [b for b in blocks if f"roles['{role}']" in b and principal in b and f"scope: {where}" in b]
        assert hits, f"README role '{role}' for {who} on {scope} is not assigned in infra/app/rbac.bicep or events.bicep"

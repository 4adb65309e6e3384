"""A pre-call model (`bankops train --pre-call`: trained without `duration`, which is known only
once a call has ended) takes what a bank has before calling: client lists and records without
`duration`, end to end through `bankops batch-score` and `bankops serve`; its Swagger document
and its MLflow signature ask for no `duration`. The other known fields are still accepted and
ignored; a field nobody knows is still refused.
"""

from __future__ import annotations

import json
import re
import tempfile
from functools import cache
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from shared import schema
from shared.bootstrap import bootstrap
from shared.config import load_settings
from shared.dataset_registration import register_dataset
from shared.resources import shipped_data
from tests.integration.scoring_fixtures import Service, endpoint_records, run_cli, start_service

pytestmark = pytest.mark.integration

SAMPLE_ROWS = 3000


@cache
def pre_call_home() -> tuple[Path, str]:
    """A home whose only model came from `bankops train --pre-call` on a small sample (budget 3 s)."""
    home = Path(tempfile.mkdtemp(prefix="bankops-precall-"))
    settings = load_settings(home=home)
    frame = pd.read_csv(shipped_data(), dtype=str, keep_default_na=False).sample(SAMPLE_ROWS, random_state=5)
    csv = home / "sample.csv"
    frame.to_csv(csv, index=False)
    register_dataset(bootstrap(settings).datasets, csv, name=settings.dataset_name, seed=settings.seed)
    done = run_cli(home, "train", "--pre-call", "--budget", "3", timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    version = bootstrap(settings).registry.get().version
    return home, version


@pytest.fixture(scope="module")
def service() -> Service:
    home, version = pre_call_home()
    svc = start_service(home, "--model-version", version)
    yield svc  # type: ignore[misc]
    svc.stop()


def without_duration(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "duration"} for r in records]


def test_pre_call_training_leaves_duration_out_of_the_model_and_its_signature() -> None:
    home, version = pre_call_home()
    settings = load_settings(home=home)
    model = bootstrap(settings).registry.load(version)
    assert "duration" not in model.encoder.columns
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{settings.model_name}/{version}", tracking_uri=settings.paths.tracking_uri))
    signature = (local / "MLmodel").read_text()
    assert '"name": "age"' in signature and '"name": "duration"' not in signature


def test_a_client_list_without_duration_is_scored_by_batch_score(tmp_path: Path) -> None:
    home, version = pre_call_home()
    clients = pd.read_csv(shipped_data(), dtype=str, keep_default_na=False).sample(200, random_state=11)
    clients = clients.drop(columns=["duration", schema.TARGET])
    source, output = tmp_path / "to_call.csv", tmp_path / "ranked.csv"
    clients.to_csv(source, index=False)
    done = run_cli(home, "batch-score", str(source), "-o", str(output), "--top", "20")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ranked = pd.read_csv(output)
    assert len(ranked) == 20 and "duration" not in ranked.columns
    assert ranked["probability_yes"].is_monotonic_decreasing
    model = bootstrap(load_settings(home=home)).registry.load(version)
    expected = np.sort(model.predict_proba(clients))[::-1][:20]
    np.testing.assert_allclose(ranked["probability_yes"], expected, rtol=0, atol=1e-6)


def test_score_takes_records_without_duration_and_ignores_it_when_sent(service: Service) -> None:
    records = endpoint_records()
    bare = service.score({"data": without_duration(records)})
    assert bare.status_code == 200, bare.text
    full = service.score({"data": records})
    assert full.status_code == 200, full.text
    assert full.json()["probabilities"] == bare.json()["probabilities"]
    columns = [c for c in schema.FEATURES if c != "duration"]
    split = service.score({"input_data": {"columns": columns, "data": [[r[c] for c in columns] for r in records]}})
    assert split.status_code == 200 and split.json()["probabilities"] == bare.json()["probabilities"]


def test_score_still_refuses_an_unknown_field_and_a_missing_used_one(service: Service) -> None:
    record = without_duration(endpoint_records())[0]
    unknown = service.score({"data": [{**record, "favourite_colour": "blue"}]})
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [{"record": 0, "field": "favourite_colour", "message": "unknown field"}]
    missing = service.score({"data": [{k: v for k, v in record.items() if k != "age"}]})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "age"


def test_the_swagger_of_a_pre_call_model_has_no_duration(service: Service) -> None:
    document = httpx.get(f"{service.url}/swagger.json", timeout=10).json()
    assert not re.search(r"\bduration\b", json.dumps(document))
    record = document["components"]["schemas"]["Record"]
    assert "age" in record["properties"] and "duration" not in record["required"]

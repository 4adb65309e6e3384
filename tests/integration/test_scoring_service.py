"""The scoring service as a client sees it: a real `bankops serve` on loopback, real models."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import stat
import threading
import time
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest

from shared import schema
from shared.config import load_settings
from shared.errors import NotFound
from shared.mlflow_model import example_frame
from shared.serving.deployer import LocalDeployer
from shared.serving.deployment import ServingState
from shared.serving.keys import KeyStore
from tests.integration.scoring_fixtures import (
    MAX_BODY,
    MAX_RECORDS,
    Service,
    endpoint_records,
    run_cli,
    shared_service,
    start_service,
    trained_home,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def svc() -> Service:
    return shared_service()


def pyfunc_predictions(home: Path, version: str, records: list[dict[str, object]]) -> tuple[list[str], np.ndarray]:
    """What the registered MLflow pyfunc model says: labels and P(yes)."""
    settings = load_settings(home=home)
    mlflow.set_tracking_uri(settings.paths.tracking_uri)
    mlflow.set_registry_uri(settings.paths.tracking_uri)  # an earlier test's tracker may have pointed it at its own home
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    answer = model.predict(example_frame(records))
    return answer["prediction"].tolist(), answer["probability_yes"].to_numpy()


def test_health_names_the_served_version(svc: Service) -> None:
    answer = httpx.get(f"{svc.url}/", timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"status": "Healthy", "model_version": "2"}


def test_the_two_fixture_records_score_in_one_call_as_the_registered_pyfunc_does(svc: Service) -> None:
    records = endpoint_records()
    answer = svc.score({"data": records})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"result", "probabilities", "model_version"}
    assert len(body["result"]) == len(body["probabilities"]) == 2
    assert set(body["result"]) <= {"yes", "no"}
    labels, expected = pyfunc_predictions(svc.home, body["model_version"], records)
    np.testing.assert_allclose(body["probabilities"], expected, rtol=0, atol=1e-6)
    assert body["result"] == labels


def test_columns_and_rows_shape_answers_like_records(svc: Service) -> None:
    records = endpoint_records()
    columns = list(reversed(schema.FEATURES))  # any column order
    by_columns = svc.score({"input_data": {"columns": columns, "data": [[r[c] for c in columns] for r in records]}})
    by_records = svc.score({"data": records})
    assert by_columns.status_code == 200, by_columns.text
    assert by_columns.json() == by_records.json()


def test_a_batch_of_mixed_records_matches_the_pyfunc(svc: Service) -> None:
    from shared.serving.served import verification_records

    records = verification_records(MAX_RECORDS)
    body = svc.score({"data": records}).json()
    labels, expected = pyfunc_predictions(svc.home, body["model_version"], records)
    np.testing.assert_allclose(body["probabilities"], expected, rtol=0, atol=1e-6)
    assert body["result"] == labels


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-key", "Basic abc", "bearer x"])
def test_no_or_wrong_key_is_401_and_names_no_key(svc: Service, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    answer = httpx.post(f"{svc.url}/score", json={"data": endpoint_records()}, headers=headers, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    for name in ("primary", "secondary", "function"):
        assert svc.key(name) not in answer.text


def test_secondary_key_works_and_function_key_does_not_score(svc: Service) -> None:
    assert svc.score({"data": endpoint_records()}, key="secondary").status_code == 200
    assert svc.score({"data": endpoint_records()}, key="function").status_code == 401


def test_keys_file_is_private(svc: Service) -> None:
    path = load_settings(home=svc.home).paths.keys / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _problems(answer: httpx.Response) -> list[tuple[int | None, str]]:
    return [(e["record"], e["field"]) for e in answer.json().get("errors", [])]


def test_bad_records_are_422_naming_record_and_field(svc: Service) -> None:
    good, other = endpoint_records()
    missing = {k: v for k, v in other.items() if k != "euribor3m"}
    answer = svc.score({"data": [good, missing, {**good, "age": "43"}, {**good, "colour": "red"}, {**good, "pdays": 1.5}]})
    assert answer.status_code == 422
    assert _problems(answer) == [(1, "euribor3m"), (2, "age"), (3, "colour"), (4, "pdays")]
    assert "43" not in json.dumps(answer.json()["errors"])  # values are not echoed back


@pytest.mark.parametrize("body", [{"data": []}, {"input_data": {"columns": list(schema.FEATURES), "data": []}}, {}, [], {"data": None},
                                  {"data": [1]}, {"data": [], "extra": 1}, {"data": [], "input_data": {}}])
def test_empty_or_malformed_bodies_are_422(svc: Service, body: object) -> None:
    answer = svc.score(body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"]


def test_invalid_json_is_422(svc: Service) -> None:
    answer = httpx.post(f"{svc.url}/score", content=b'{"data": [', headers=svc.headers() | {"Content-Type": "application/json"})
    assert answer.status_code == 422


def test_too_many_records_or_too_big_a_body_is_413(svc: Service) -> None:
    record = endpoint_records()[0]
    assert svc.score({"data": [record] * (MAX_RECORDS + 1)}).status_code == 413
    padded = {"data": [{**record, "job": "x" * 200}] * 1}
    big = json.dumps(padded).encode() + b" " * MAX_BODY
    answer = httpx.post(f"{svc.url}/score", content=big, headers=svc.headers() | {"Content-Type": "application/json"})
    assert answer.status_code == 413


def test_wrong_content_type_is_415(svc: Service) -> None:
    answer = httpx.post(f"{svc.url}/score", content=json.dumps({"data": endpoint_records()}),
                        headers=svc.headers() | {"Content-Type": "text/plain"})
    assert answer.status_code == 415


def test_unseen_categories_are_scored_and_counted(svc: Service) -> None:
    def unseen() -> dict[str, int]:
        return httpx.get(f"{svc.url}/stats", headers=svc.headers(), timeout=10).json()["unseen_categories"]

    assert httpx.get(f"{svc.url}/stats", timeout=10).status_code == 401
    before, settled = -1, unseen().get("job", 0)
    while before != settled:  # workers report their counters about once a second: let earlier tests' counts land
        time.sleep(1.2)
        before, settled = settled, unseen().get("job", 0)
    record = {**endpoint_records()[0], "job": "astronaut"}
    answer = svc.score({"data": [record, record]})
    assert answer.status_code == 200
    deadline = time.monotonic() + 10
    while unseen().get("job", 0) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert unseen().get("job", 0) == before + 2


def test_swagger_json_and_docs_without_a_cdn(svc: Service) -> None:
    doc = httpx.get(f"{svc.url}/swagger.json", timeout=10).json()
    assert doc["openapi"].startswith("3.0")
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"]}
    request_body = doc["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    assert request_body["examples"]["records"]["value"]["data"] == endpoint_records()
    assert set(doc["components"]["schemas"]["Record"]["required"]) == set(schema.FEATURES)
    page = httpx.get(f"{svc.url}/docs", timeout=10)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert httpx.get(f"{svc.url}/docs/assets/swagger-ui-bundle.js", timeout=10).status_code == 200


def test_cli_test_endpoint_prints_the_answer(svc: Service) -> None:
    done = run_cli(svc.home, "test-endpoint", "--port", str(svc.port))
    assert done.returncode == 0, done.stderr
    assert '"model_version"' in done.stdout and '"probabilities"' in done.stdout
    assert svc.key() not in done.stdout + done.stderr


def test_cli_bench_reports_and_saves_a_histogram(svc: Service, tmp_path: Path) -> None:
    png = tmp_path / "latency.png"
    done = run_cli(svc.home, "bench", "--requests", "60", "--concurrency", "2", "--records", "5", "--port", str(svc.port), "-o", str(png))
    assert done.returncode == 0, done.stderr
    assert re.search(r"[\d,]+ req/s · p50 [\d.]+ ms · p95 [\d.]+ ms · p99 [\d.]+ ms · max [\d.]+ ms · failed 0", done.stdout), done.stdout
    assert png.stat().st_size > 1000


def _post_on_a_new_connection(svc: Service, key: str) -> int:
    """POST /score on a fresh TCP connection, so that any worker may answer."""
    connection = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30)
    try:
        connection.request("POST", "/score", json.dumps({"data": endpoint_records()}),
                           {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_key_rotation_never_fails_the_other_key_and_takes_effect_in_every_worker(svc: Service) -> None:
    old_primary, secondary = svc.key("primary"), svc.key("secondary")
    codes: list[int] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            codes.append(_post_on_a_new_connection(svc, secondary))

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 60
        while len(codes) < n and time.monotonic() < deadline:
            time.sleep(0.02)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    wait_for(10)
    sent_before = len(codes)
    KeyStore.from_settings(load_settings(home=svc.home)).regenerate("primary")  # what `bankops keys regenerate` does
    wait_for(sent_before + 20)
    stop.set()
    for t in threads:
        t.join()
    assert len(codes) >= sent_before + 20 and set(codes) == {200}
    new_primary = svc.key("primary")
    assert new_primary != old_primary
    for _ in range(12):  # fresh connections land on both workers
        assert _post_on_a_new_connection(svc, new_primary) == 200
        assert _post_on_a_new_connection(svc, old_primary) == 401


def test_deploy_swaps_versions_under_load_with_no_failed_request(svc: Service) -> None:
    answers: list[tuple[float, int, str | None]] = []
    stop = threading.Event()
    headers = svc.headers()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                started = time.monotonic()
                r = http.post(f"{svc.url}/score", json={"data": endpoint_records()}, headers=headers)
                answers.append((started, r.status_code, r.json().get("model_version") if r.status_code == 200 else None))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    done = run_cli(svc.home, "deploy", "--model-version", "1")
    deployed_at = time.monotonic()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every worker serves it" in " ".join(done.stdout.split())
    codes = [code for _, code, _ in answers]
    assert len(codes) > 20 and set(codes) == {200}
    assert {version for _, _, version in answers} == {"1", "2"}
    assert {version for started, _, version in answers if started > deployed_at} == {"1"}
    reports = ServingState(load_settings(home=svc.home).paths.serving).reports()
    assert len(reports) == 2 and {r.model_version for r in reports} == {"1"}
    from shared.bootstrap import bootstrap

    registry = bootstrap(load_settings(home=svc.home)).registry
    assert registry.alias("champion").version == "1"
    assert registry.alias("previous").version == "2"


def test_deploying_an_unknown_version_is_refused_and_changes_nothing(svc: Service) -> None:
    from shared.bootstrap import bootstrap

    settings = load_settings(home=svc.home)
    deployer = LocalDeployer(ServingState(settings.paths.serving), bootstrap(settings).registry, KeyStore.from_settings(settings))
    served = httpx.get(f"{svc.url}/", timeout=10).json()["model_version"]
    with pytest.raises(NotFound, match="no version 99"):
        deployer.deploy("99")
    assert deployer.current() == served
    assert httpx.get(f"{svc.url}/", timeout=10).json()["model_version"] == served
    assert deployer.smoke_test(served).ok


def test_a_stopped_service_cleans_up_its_files(tmp_path: Path) -> None:
    home = tmp_path / "home"  # a copy: this service must not touch the shared one's files
    shutil.copytree(trained_home(), home, ignore=shutil.ignore_patterns("serving", "keys", "*.log"))
    service = start_service(home)
    state = ServingState(load_settings(home=service.home).paths.serving)
    assert state.server() is not None
    service.stop()
    assert service.process.returncode == 0
    assert state.server() is None
    assert all(r.pid != service.process.pid for r in state.reports())
    shared = shared_service()  # the shared service still runs, on its own port
    assert httpx.get(f"{shared.url}/", timeout=10).status_code == 200

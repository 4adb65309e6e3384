"""The scoring service in-process (FastAPI TestClient) on a tiny real model: contract, auth, swaps, keys."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostClassifier
from fastapi.testclient import TestClient
from lightgbm import LGBMClassifier
from pydantic import SecretStr
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, VotingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from shared import schema
from shared.errors import BankopsError, Conflict
from shared.features import FeatureEncoder
from shared.model import BankMarketingModel, Member
from shared.resources import shipped_data
from shared.serving.app import ServiceConfig, create_app, decode_records
from shared.serving.bench import check_loopback
from shared.serving.contract import EXAMPLE_RECORDS, ContractError, parse_records, quick_records
from shared.serving.deployer import LocalDeployer
from shared.serving.deployment import ServerInfo, ServingState, WorkerReport
from shared.serving.keys import KeyChecker, KeyStore
from shared.serving.predictor import compile_model
from shared.serving.served import ColumnEncoder, RowEncoder, load_served, verification_records
from shared.serving.watcher import ModelSlot, WorkerStats

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPO = Path(__file__).resolve().parents[2]


@cache
def tiny_model() -> BankMarketingModel:
    """A blend of every learner kind, fitted in about a second on 1,500 rows of the shipped data."""
    frame = pd.read_csv(shipped_data(), dtype=str, keep_default_na=False).sample(1500, random_state=0)
    y = (frame[schema.TARGET] == schema.POSITIVE).to_numpy(dtype=np.int64)
    encoder = FeatureEncoder.fit(frame, y)
    x = encoder.transform(frame)
    estimators = {
        "lgbm": LGBMClassifier(n_estimators=8, verbose=-1, n_jobs=-1),
        "xgboost": XGBClassifier(n_estimators=8, n_jobs=-1),
        "extra_tree": ExtraTreesClassifier(n_estimators=6, n_jobs=-1, random_state=0),
        "rf": RandomForestClassifier(n_estimators=6, n_jobs=-1, random_state=0),
        "lrl1": make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=200)),
        "catboost": CatBoostClassifier(iterations=10, thread_count=-1, verbose=0, allow_writing_files=False),
    }
    members = [Member(name, weight, est.fit(x, y)) for (name, est), weight in zip(estimators.items(), (0.3, 0.2, 0.1, 0.1, 0.1, 0.1),
                                                                                  strict=True)]
    folds = [LGBMClassifier(n_estimators=5, verbose=-1, random_state=i).fit(x[i::3], y[i::3]) for i in range(3)]
    bagged = VotingClassifier([(f"fold{i}", FrozenEstimator(m)) for i, m in enumerate(folds)], voting="soft").fit(x, y)
    return BankMarketingModel(encoder=encoder, members=[*members, Member("lgbm-bagged", 0.1, bagged)])


class FakeRegistry:
    """Versions "1" and "2" of the tiny model; anything else is not registered."""

    def load(self, version: str) -> BankMarketingModel:
        if version not in ("1", "2"):
            raise KeyError(f"no version {version}")
        return tiny_model()

    def get(self, version: str | None = None) -> Any:
        from shared.errors import NotFound

        if version not in (None, "1", "2"):
            raise NotFound(f"no version {version}")
        return type("V", (), {"version": version or "2"})()


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    keys = KeyStore(tmp_path / "keys")
    keys.ensure()
    return keys


@pytest.fixture
def state(tmp_path: Path) -> ServingState:
    return ServingState(tmp_path / "serving")


@pytest.fixture
def slot(state: ServingState) -> Iterator[ModelSlot]:
    registry = FakeRegistry()
    # no polling: each test calls check() itself, so no background swap races with its assertions
    model_slot = ModelSlot(state, lambda v: load_served(registry, v, warm_rounds=1), WorkerStats(), poll_s=3600)
    yield model_slot
    model_slot.stop()


def make_client(slot: ModelSlot, store: KeyStore, state: ServingState, *, max_records: int = 10, max_body: int = 64 * 1024) -> TestClient:
    app = create_app(slot, KeyChecker(store), ServiceConfig(max_records, max_body), state=state,
                     on_startup=lambda: slot.start(lambda: "2"), on_shutdown=slot.stop)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(slot: ModelSlot, store: KeyStore, state: ServingState) -> Iterator[TestClient]:
    with make_client(slot, store, state) as test_client:
        yield test_client


@pytest.fixture
def auth(store: KeyStore) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.get('primary').get_secret_value()}"}


# --- the compiled model --------------------------------------------------------------------
def test_compiled_model_equals_the_model_and_uses_the_fast_calls() -> None:
    model = tiny_model()
    records = verification_records(200, seed=11)
    compiled = compile_model(model, verification_records())
    # the linear pipeline keeps its predict_proba; every tree model, fold-bagged or not, gets its direct call
    assert set(compiled.fast_members) == {"lgbm", "xgboost", "extra_tree", "rf", "catboost", "lgbm-bagged"}
    exact = compile_model(model, verification_records(), exact=True)
    assert exact.fast_members == compiled.fast_members
    for batch in (records[:1], records[:10], records[:100], records):
        x = model.encoder.transform_records(batch)
        # small batches reach XGBoost's trees through ONNX Runtime, which adds float32 leaves in another order
        np.testing.assert_allclose(compiled.proba(x), model.proba_from_matrix(x), rtol=0, atol=1e-6)
        np.testing.assert_allclose(exact.proba(x), model.proba_from_matrix(x), rtol=0, atol=1e-12)
    for member in model.members:
        parts = [step for _, step in member.estimator.steps] if hasattr(member.estimator, "steps") else [member.estimator]
        assert all(getattr(part, "n_jobs", 1) in (1, None) for part in parts)
    assert all(fold.estimator.n_jobs == 1 for fold in model.members[-1].estimator.estimators_)


def test_column_encoder_equals_the_model_encoder() -> None:
    encoder = tiny_model().encoder
    records = parse_records({"data": verification_records(200, seed=5)}, max_records=1000)
    fast = ColumnEncoder(encoder)(records)
    assert fast.flags["C_CONTIGUOUS"] and fast.dtype == np.float64
    np.testing.assert_array_equal(fast, encoder.transform_records(records))
    assert np.isnan(fast).any()  # unseen categories are in the sample
    by_row = RowEncoder(encoder)
    for i in range(len(records)):  # the encoder of one and two records
        np.testing.assert_array_equal(by_row(records[i:i + 2]), encoder.transform_records(records[i:i + 2]))


def test_served_model_labels_and_counts_unseen_categories() -> None:
    served = load_served(FakeRegistry(), "1", warm_rounds=1)
    records = [EXAMPLE_RECORDS[0], {**EXAMPLE_RECORDS[1], "job": "astronaut", "month": "smarch"}]
    scored = served.score(records)
    expected = tiny_model().predict_proba_records(records)
    np.testing.assert_allclose(scored.probabilities, expected, rtol=0, atol=1e-6)  # ONNX Runtime's float32 sums
    assert scored.labels == ["yes" if p >= 0.5 else "no" for p in expected]
    assert scored.unseen == {"job": 1, "month": 1}


# --- the contract -----------------------------------------------------------------------------
def test_fixture_records_are_the_documented_examples() -> None:
    assert json.loads((FIXTURES / "endpoint_records.json").read_text())["data"] == EXAMPLE_RECORDS


@pytest.mark.parametrize(("body", "status", "problems"), [
    ({"data": []}, 422, [(None, "data")]),
    ({"data": [EXAMPLE_RECORDS[0]] * 11}, 413, []),
    ({"data": [{**EXAMPLE_RECORDS[0], "age": 43.0}]}, 422, [(0, "age")]),
    ({"data": [{**EXAMPLE_RECORDS[0], "age": True}]}, 422, [(0, "age")]),
    ({"data": [EXAMPLE_RECORDS[0], {**EXAMPLE_RECORDS[0], "job": 7, "x": 1}]}, 422, [(1, "job"), (1, "x")]),
    ({"data": [{k: v for k, v in EXAMPLE_RECORDS[0].items() if k != "nr.employed"}]}, 422, [(0, "nr.employed")]),
    ({"data": [{**EXAMPLE_RECORDS[0], "euribor3m": 1e300}]}, 422, [(0, "euribor3m")]),
    ({"data": [{**EXAMPLE_RECORDS[0], "job": "j" * 201}]}, 422, [(0, "job")]),
    ({"input_data": {"columns": ["age", "age"], "data": [[1, 2]]}}, 422, [(None, "input_data.columns")]),
    ({"input_data": {"columns": list(schema.FEATURES), "data": [[1]]}}, 422, [(0, "input_data.data")]),
    ({"input_data": [1]}, 422, [(None, "input_data")]),
    ({"data": [], "other": 1}, 422, [(None, "other")]),
    ("records", 422, []),
])
def test_parse_records_rejects_with_record_and_field(body: Any, status: int, problems: list[tuple[int | None, str]]) -> None:
    with pytest.raises(ContractError) as caught:
        parse_records(body, max_records=10)
    assert caught.value.status == status
    assert [(p.record, p.field) for p in caught.value.problems] == problems


_RECORD = json.dumps(EXAMPLE_RECORDS[0])
WITHOUT_MARITAL = tuple(c for c in schema.FEATURES if c != "marital")  # a model that left `marital` out as noise


@pytest.mark.parametrize("text", [
    f'{{"data": [{_RECORD}]}}',
    '{{"data": [{}, {}]}}'.format(_RECORD, _RECORD.replace('"age": 43', '"age": 44')),
    '{{"data": [{}]}}'.format(_RECORD.replace('"marital": "single"', '"marital": NaN')),  # NaN in a field the model ignores
    '{{"data": [{}]}}'.format(_RECORD.replace('"marital": "single"', '"marital": Infinity')),
    '{{"data": [{}]}}'.format(_RECORD.replace('"marital": "single"', '"marital": [[[[1]]]]')),
    '{{"data": [{}]}}'.format(_RECORD.replace('"age": 43', '"age": 43, "age": "x"')),  # duplicate keys: the last one counts
    '{{"data": [{}]}}'.format(_RECORD.replace('"age": 43', '"age": "x", "age": 43')),
    f'{{"data": "x", "data": [{_RECORD}]}}',
    f'{{"data": [{_RECORD}], "data": []}}',
    '{{"data": [{}]}}'.format(_RECORD.replace('"blue-collar"', '"\\ud800"')),  # a lone surrogate
    '{{"data": [{}]}}'.format(_RECORD.replace('"blue-collar"', '"\\ud83d\\ude00"')),
    '{{"data": [{}]}}'.format(_RECORD.replace('"age": 43', '"age": 4.3e1')),
    '{{"data": [{}]}}'.format(_RECORD.replace('1.4', '1e400')),
    '{{"data": [{}]}}'.format(_RECORD.replace('1.4', '1')),
    f'{{"data": [{_RECORD}]}} x',
    f'{{"data": [{_RECORD}]}}\n ',
    f'{{"data": [{_RECORD}]',
    f'{{"data": [{_RECORD}], "extra": 1}}',
    '{"data": []}',
    '{{"data": [{}]}}'.format(", ".join([_RECORD] * 11)),
    '{"input_data": {"columns": ["age"], "data": [[43]]}}',
    f'[{_RECORD}]',
])
@pytest.mark.parametrize("columns", [schema.FEATURES, WITHOUT_MARITAL])
def test_the_one_pass_parse_accepts_only_what_the_full_path_accepts(text: str, columns: tuple[str, ...]) -> None:
    """The service tries `quick_records` first and falls back to the full path: it must never accept a
    body the full path refuses, nor read an accepted one differently."""
    raw = text.encode("utf-8", "surrogatepass")
    quick = quick_records(raw, 10, columns)
    try:
        full = decode_records(raw, 10, columns)
    except ContractError:
        assert quick is None
    else:
        assert quick is None or quick == full


@pytest.mark.parametrize("columns", [schema.FEATURES, WITHOUT_MARITAL])
def test_the_one_pass_parse_reads_plain_bodies_as_the_full_path_does(columns: tuple[str, ...]) -> None:
    raw = json.dumps({"data": [*EXAMPLE_RECORDS, {**EXAMPLE_RECORDS[0], "job": "astronaut", "euribor3m": 4}]}).encode()
    quick = quick_records(raw, 10, columns)
    assert quick is not None and quick == decode_records(raw, 10, columns)


def test_parse_records_accepts_ints_for_floats_and_any_column_order() -> None:
    columns = sorted(schema.FEATURES)
    rows = [[{**r, "euribor3m": 4}[c] for c in columns] for r in EXAMPLE_RECORDS]
    records = parse_records({"input_data": {"columns": columns, "data": rows}}, max_records=10)
    assert records[0]["euribor3m"] == 4.0 and records[1]["job"] == "technician"


# --- the app ----------------------------------------------------------------------------------
def test_score_answers_both_shapes_with_the_version(client: TestClient, auth: dict[str, str]) -> None:
    by_records = client.post("/score", json={"data": EXAMPLE_RECORDS}, headers=auth)
    assert by_records.status_code == 200
    body = by_records.json()
    assert body["model_version"] == "2" and len(body["result"]) == 2
    np.testing.assert_allclose(body["probabilities"], tiny_model().predict_proba_records(EXAMPLE_RECORDS), atol=1e-6)
    columns = list(schema.FEATURES)
    rows = [[r[c] for c in columns] for r in EXAMPLE_RECORDS]
    by_columns = client.post("/score", json={"input_data": {"columns": columns, "data": rows}}, headers=auth)
    assert by_columns.json() == body
    assert client.get("/").json() == {"status": "Healthy", "model_version": "2"}


def test_auth_type_and_size_are_checked_in_that_order(client: TestClient, auth: dict[str, str], store: KeyStore) -> None:
    assert client.post("/score", content=b"not json", headers={"Content-Type": "text/plain"}).status_code == 401
    secondary = {"Authorization": f"Bearer {store.get('secondary').get_secret_value()}"}
    assert client.post("/score", json={"data": EXAMPLE_RECORDS}, headers=secondary).status_code == 200
    assert client.post("/score", content=b"{}", headers=auth | {"Content-Type": "text/csv"}).status_code == 415
    assert client.post("/score", content=b"{}", headers=auth).status_code == 415  # no content type
    ok_type = auth | {"Content-Type": "application/json; charset=utf-8"}
    assert client.post("/score", content=b" " * (64 * 1024 + 1), headers=ok_type).status_code == 413
    assert client.post("/score", content=b"{bad", headers=ok_type).status_code == 422
    assert client.post("/score", content=b'{"data": [NaN]}', headers=ok_type).status_code == 422


def test_errors_never_echo_keys(client: TestClient, store: KeyStore) -> None:
    wrong = client.post("/score", json={"data": EXAMPLE_RECORDS}, headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401 and "guess" not in wrong.text
    for info in store.entries():
        assert info.value.get_secret_value() not in wrong.text


def test_unexpected_failure_is_500_with_a_request_id_and_no_traceback(client: TestClient, slot: ModelSlot,
                                                                       auth: dict[str, str]) -> None:
    class Broken:
        version = "2"

        def score(self, records: Any) -> Any:
            raise RuntimeError("secret internals /path/to/file.py line 3")

    slot.current = Broken()  # type: ignore[assignment]
    answer = client.post("/score", json={"data": EXAMPLE_RECORDS}, headers=auth)
    assert answer.status_code == 500
    body = answer.json()
    assert set(body) == {"message", "request_id"} and answer.headers["x-request-id"] == body["request_id"]
    assert "Traceback" not in answer.text and "secret internals" not in answer.text


def test_health_is_503_without_a_model(slot: ModelSlot, store: KeyStore, state: ServingState, auth: dict[str, str]) -> None:
    app = create_app(slot, KeyChecker(store), ServiceConfig(10, 65536), state=state)
    with TestClient(app) as test_client:
        assert test_client.get("/").status_code == 503
        assert test_client.post("/score", json={"data": EXAMPLE_RECORDS}, headers=auth).status_code == 503


def test_stats_count_unseen_categories(client: TestClient, auth: dict[str, str]) -> None:
    client.post("/score", json={"data": [{**EXAMPLE_RECORDS[0], "education": "phd.in.astrology"}] * 3}, headers=auth)
    stats = client.get("/stats", headers=auth).json()
    assert stats["unseen_categories"] == {"education": 3}
    assert stats["records"] == 3 and stats["model_version"] == "2"
    assert client.get("/stats").status_code == 401


def test_docs_are_served_from_local_assets(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in page and "https://" not in page
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    doc = client.get("/swagger.json").json()
    assert doc["openapi"] == "3.0.3" and doc["security"] == [{"bearerAuth": []}]
    assert doc["paths"]["/"]["get"]["security"] == []


# --- swaps ------------------------------------------------------------------------------------
def test_slot_swaps_on_a_new_deployment_and_keeps_serving_on_a_failed_one(client: TestClient, slot: ModelSlot,
                                                                           state: ServingState, auth: dict[str, str]) -> None:
    assert slot.current is not None and slot.current.version == "2"
    state.write_deployment("1")
    slot.check()
    assert client.post("/score", json={"data": EXAMPLE_RECORDS}, headers=auth).json()["model_version"] == "1"
    state.write_deployment("7")
    slot.check()
    report = state.reports()[0]
    assert report.model_version == "1" and report.failed_version == "7" and "v7" in (report.error or "")
    assert client.post("/score", json={"data": EXAMPLE_RECORDS}, headers=auth).json()["model_version"] == "1"
    assert state.deployment() is not None and state.deployment().previous == "1"  # type: ignore[union-attr]


def test_deployer_without_a_service_only_marks_the_version(state: ServingState, store: KeyStore) -> None:
    deployer = LocalDeployer(state, FakeRegistry(), store)  # type: ignore[arg-type]
    assert deployer.current() is None
    assert deployer.deploy("1") is False
    assert deployer.current() == "1"
    assert not deployer.smoke_test("1").ok


def test_deployer_restores_the_previous_version_when_a_worker_cannot_load(state: ServingState, store: KeyStore) -> None:
    deployer = LocalDeployer(state, FakeRegistry(), store, timeout_s=5)  # type: ignore[arg-type]
    state.write_deployment("1")
    state.write_server(ServerInfo.of_this_process(host="127.0.0.1", port=1, workers=1, home=state.folder))
    state.write_report(WorkerReport(pid=os.getpid(), model_version="1", error="could not load model v2: boom", failed_version="2"))
    with pytest.raises(BankopsError, match="boom"):
        deployer.deploy("2")
    assert deployer.current() == "1"


# --- keys -------------------------------------------------------------------------------------
def test_keys_are_generated_once_private_and_rotate_one_at_a_time(store: KeyStore) -> None:
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    before = {k.name: k.value.get_secret_value() for k in store.entries()}
    assert len(set(before.values())) == 3 and all(len(v) >= 40 for v in before.values())
    store.ensure()
    assert {k.name: k.value.get_secret_value() for k in store.entries()} == before
    checker = KeyChecker(store)
    assert checker.check(f"Bearer {before['primary']}") and checker.check(f"bearer {before['secondary']}")
    assert not checker.check(f"Bearer {before['function']}") and not checker.check(before["primary"])
    # the request log's name for what a request presented (never the key itself)
    assert checker.key_name(f"Bearer {before['primary']}") == "primary" and checker.key_name(f"bearer {before['secondary']}") == "secondary"
    assert checker.key_name(f"Bearer {before['function']}") == checker.key_name(before["primary"]) == "invalid"
    assert checker.key_name(None) == checker.key_name("") == "none"
    store.regenerate("primary")
    after = {k.name: k.value.get_secret_value() for k in store.entries()}
    assert after["primary"] != before["primary"] and after["secondary"] == before["secondary"]
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert not checker.check(f"Bearer {before['primary']}") and checker.check(f"Bearer {after['primary']}")
    assert checker.key_name(f"Bearer {before['primary']}") == "invalid" and checker.key_name(f"Bearer {after['primary']}") == "primary"


def test_environment_keys_win_and_cannot_be_regenerated(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys", {"primary": SecretStr("from-env"), "secondary": None})
    assert store.get("primary").get_secret_value() == "from-env"
    assert KeyChecker(store).check("Bearer from-env")
    with pytest.raises(Conflict, match="BANKOPS_PRIMARY_KEY"):
        store.regenerate("primary")
    store.regenerate("secondary")


def test_bench_targets_loopback_only() -> None:
    check_loopback("http://127.0.0.1:5001")
    with pytest.raises(BankopsError, match="loopback"):
        check_loopback("http://example.com:5001")


# --- CLI --------------------------------------------------------------------------------------
def test_cli_keys_and_swagger_export(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shared.cli.main import app

    runner = CliRunner()
    home = tmp_path / "home"
    shown = runner.invoke(app, ["keys", "show", "--home", str(home)])
    assert shown.exit_code == 0, shown.output
    store = KeyStore(home / "keys")
    primary = store.get("primary").get_secret_value()
    assert primary in shown.output and "function" in shown.output
    regenerated = runner.invoke(app, ["keys", "regenerate", "primary", "--home", str(home)])
    assert regenerated.exit_code == 0 and primary not in regenerated.output
    assert store.get("primary").get_secret_value() != primary
    out = tmp_path / "swagger.json"
    exported = runner.invoke(app, ["swagger", "-o", str(out), "--home", str(home)])
    assert exported.exit_code == 0, exported.output
    assert json.loads(out.read_text()) == json.loads((REPO / "swagger" / "swagger.json").read_text()), \
        "swagger/swagger.json is stale: run `bankops swagger -o swagger/swagger.json`"


# --- inputs are what the model uses ----------------------------------------------------------
PRE_CALL = tuple(c for c in schema.FEATURES if c != "duration")


def test_a_model_without_duration_takes_records_with_or_without_it() -> None:
    bare = [{k: v for k, v in r.items() if k != "duration"} for r in EXAMPLE_RECORDS]
    assert len(parse_records({"data": bare}, 10, PRE_CALL)) == 2
    assert len(parse_records({"data": EXAMPLE_RECORDS}, 10, PRE_CALL)) == 2  # all 20 still work: duration ignored
    columns = list(PRE_CALL)
    split = {"input_data": {"columns": columns, "data": [[r[c] for c in columns] for r in bare]}}
    assert len(parse_records(split, 10, PRE_CALL)) == 2


def test_a_model_without_duration_still_refuses_unknown_fields_and_missing_or_mistyped_used_ones() -> None:
    record = {k: v for k, v in EXAMPLE_RECORDS[0].items() if k != "duration"}
    cases = [({**record, "shoe_size": 42}, "shoe_size", "unknown field"), ({k: v for k, v in record.items() if k != "age"}, "age", None),
             ({**record, "campaign": "one"}, "campaign", None)]
    for body, field, message in cases:
        with pytest.raises(ContractError) as caught:
            parse_records({"data": [body]}, 10, PRE_CALL)
        assert caught.value.status == 422
        assert [p.field for p in caught.value.problems] == [field]
        if message:
            assert caught.value.problems[0].message == message


def test_the_full_model_still_requires_duration() -> None:
    bare = {k: v for k, v in EXAMPLE_RECORDS[0].items() if k != "duration"}
    with pytest.raises(ContractError) as caught:
        parse_records({"data": [bare]}, 10)
    assert [(p.field, p.message) for p in caught.value.problems] == [("duration", "Field required")]


def test_the_swagger_of_a_model_without_duration_never_names_it() -> None:
    from shared.serving.openapi import openapi_document

    document = json.dumps(openapi_document(100, columns=PRE_CALL))
    assert "duration" not in document
    full = openapi_document(100)
    assert "duration" in full["components"]["schemas"]["Record"]["required"]

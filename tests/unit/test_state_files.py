"""State files under $BANKOPS_HOME are validated when read, and a pid is acted on only if it is still ours."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared.automation.local_host import ScoringProcess
from shared.config import load_settings
from shared.errors import CorruptState
from shared.serving.deployment import ServerInfo, ServingState
from shared.serving.keys import KeyChecker, KeyStore
from tests.integration.scoring_fixtures import run_cli


@pytest.fixture
def state(tmp_path: Path) -> ServingState:
    return ServingState(tmp_path / "serving")


def test_a_stale_server_file_naming_an_unrelated_live_process_is_never_signalled(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        settings = load_settings(home=tmp_path)
        state = ServingState(settings.paths.serving)
        mine = ServerInfo.of_this_process(host="127.0.0.1", port=1, workers=1, home=tmp_path)
        state.write_server(mine.model_copy(update={"pid": bystander.pid}))  # the pid was reused by another program
        assert state.server() is None
        ScoringProcess(settings, 1, 1)._stop_orphan()
        assert bystander.poll() is None, "the unrelated process was killed"
    finally:
        bystander.kill()
        bystander.wait(10)


def test_the_server_file_of_this_process_names_a_running_service(state: ServingState, tmp_path: Path) -> None:
    state.write_server(ServerInfo.of_this_process(host="127.0.0.1", port=5, workers=2, home=tmp_path))
    found = state.server()
    assert found is not None and found.url == "http://127.0.0.1:5"


@pytest.mark.parametrize("body", [
    {"previous": None, "deployed_at": "x", "reason": ""},  # model_version missing
    {"model_version": "1", "previous": None, "deployed_at": "x", "reason": "", "extra": 1},
    {"model_version": 1},  # not a string
    "not json {",
])
def test_a_bad_deployment_file_is_a_clear_error_and_deploying_repairs_it(state: ServingState, body: object) -> None:
    state.folder.mkdir(parents=True)
    state.deployment_path.write_text(body if isinstance(body, str) else json.dumps(body))
    with pytest.raises(CorruptState) as caught:
        state.deployment()
    assert str(state.deployment_path) in str(caught.value) and "bankops deploy --model-version" in str(caught.value)
    state.write_deployment("3", reason="repair")
    repaired = state.deployment()
    assert repaired is not None and repaired.model_version == "3"


def test_a_server_file_with_an_extra_key_is_a_clear_error(state: ServingState, tmp_path: Path) -> None:
    info = ServerInfo.of_this_process(host="127.0.0.1", port=5, workers=1, home=tmp_path)
    state.folder.mkdir(parents=True)
    state.server_path.write_text(json.dumps(info.model_dump() | {"surprise": True}))
    with pytest.raises(CorruptState, match=r"server\.json .*surprise.*delete it if no `bankops serve` is running"):
        state.server()


def test_a_corrupt_keys_file_is_a_clear_error_and_a_worker_keeps_its_keys(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.ensure()
    checker = KeyChecker(store)
    primary = store.get("primary").get_secret_value()
    assert checker.check(f"Bearer {primary}")
    store.path.write_text('{"primary": "only one"}')
    with pytest.raises(CorruptState, match=r"keys\.json is not a valid keys file .*delete it to generate new keys"):
        store.entries()
    assert checker.check(f"Bearer {primary}"), "a broken file locked every client out"
    assert not checker.check("Bearer only one")


def test_temporary_key_copies_left_by_a_killed_writer_are_removed(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    store.ensure()
    leftover = store.folder / ".keys.json.k1ll3d"
    leftover.write_text(store.path.read_text())
    store.ensure()
    assert sorted(p.name for p in store.folder.iterdir()) == [".lock", "keys.json"]


def test_cli_names_a_bad_state_file_without_a_traceback(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "keys.json").write_text("{not json")
    shown = run_cli(tmp_path, "keys", "show", timeout=60)
    assert shown.returncode == 2 and "Traceback" not in shown.stderr + shown.stdout
    assert "keys.json is not a valid keys file" in " ".join((shown.stderr + shown.stdout).split())
    serving = tmp_path / "serving"
    serving.mkdir()
    (serving / "deployment.json").write_text('{"model_version": "1", "extra": 2}')
    status = run_cli(tmp_path, "status", timeout=120)
    assert status.returncode == 0 and "Traceback" not in status.stderr + status.stdout
    assert "deployment.json is not a valid Deployment file" in " ".join(status.stdout.split())


def test_a_corrupt_work_queue_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "queue.db").write_bytes(b"this is not a SQLite file, a careless copy over it" * 100)
    status = run_cli(tmp_path, "status", timeout=120)
    printed = " ".join((status.stderr + status.stdout).split())
    assert status.returncode == 2 and "Traceback" not in printed
    assert "queue.db is not a readable work queue" in printed and "move the file aside" in printed

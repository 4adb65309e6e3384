"""Datastore contract: local folders and Azure Blob Storage (on Azurite) behave the same."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.azure.datastore import BlobDatastore
from shared.adapters.local.datastore import LocalDatastore
from shared.errors import Conflict, InvalidInput, NotFound
from shared.ports import Datastore
from tests.contract.conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Datastore:
    if request.param == "local":
        return LocalDatastore(tmp_path / "datastore")
    service: Any = request.getfixturevalue("blob_service")
    return BlobDatastore(service)


def test_write_then_read_info_and_list(store: Datastore) -> None:
    written = store.write("incoming", "new.csv", b"a,b\n1,2\n")
    assert (written.container, written.name, written.size) == ("incoming", "new.csv", 8)
    assert store.read("incoming", "new.csv") == b"a,b\n1,2\n"
    assert store.info("incoming", "new.csv") == written
    assert store.list("incoming") == [written]
    assert store.list("processed") == []


def test_read_head_gives_the_first_bytes_only(store: Datastore) -> None:
    store.write("batch", "clients.csv", b"age,job\n" + b"30,admin.\n" * 1000)
    assert store.read_head("batch", "clients.csv", 8) == b"age,job\n"
    assert store.read_head("batch", "clients.csv", 10**6) == store.read("batch", "clients.csv")
    store.write("batch", "empty.csv", b"")
    assert store.read_head("batch", "empty.csv", 100) == b""
    with pytest.raises(NotFound):
        store.read_head("batch", "absent.csv", 100)


def test_a_rewrite_changes_the_etag(store: Datastore) -> None:
    first = store.write("incoming", "f.csv", b"one")
    time.sleep(0.01)
    second = store.write("incoming", "f.csv", b"second")
    assert second.etag != first.etag and second.size == 6
    assert store.info("incoming", "f.csv") == second


def test_files_are_listed_oldest_first(store: Datastore) -> None:
    store.write("batch", "b.csv", b"1")
    time.sleep(1.1)  # blob creation times have one-second resolution
    store.write("batch", "a.csv", b"2")
    assert [b.name for b in store.list("batch")] == ["b.csv", "a.csv"]


def test_move_never_overwrites_and_removes_the_source(store: Datastore) -> None:
    store.write("processed", "x.csv", b"earlier")
    store.write("incoming", "x.csv", b"later")
    moved = store.move("incoming", "x.csv", "processed")
    assert moved.container == "processed" and moved.name == "x.1.csv"
    assert store.read("processed", "x.1.csv") == b"later"
    assert store.read("processed", "x.csv") == b"earlier"
    assert store.info("incoming", "x.csv") is None
    assert store.move("processed", "x.1.csv", "quarantine").name == "x.1.csv"


def test_missing_files_and_bad_names(store: Datastore) -> None:
    assert store.info("incoming", "nothing.csv") is None
    with pytest.raises(NotFound, match=r"incoming/nothing\.csv"):
        store.read("incoming", "nothing.csv")
    with pytest.raises(NotFound):
        store.move("incoming", "nothing.csv", "processed")
    with pytest.raises(InvalidInput, match="unknown container"):
        store.write("elsewhere", "a.csv", b"")
    for name in ("", "../a.csv", "dir/a.csv", ".partial.csv"):
        with pytest.raises(InvalidInput, match="invalid file name"):
            store.write("incoming", name, b"")


def test_the_local_host_can_use_azurite(tmp_path: Path, blob_service: Any, azurite_port: int) -> None:
    """BANKOPS_DATASTORE=azurite: the watcher sees a blob in `incoming` and the handler registers it, as with folders."""
    from shared.adapters.azure.datastore import azurite_connection_string
    from shared.automation.watcher import IncomingWatcher
    from shared.automation.worker import Worker
    from shared.bootstrap import build_automation
    from shared.config import load_settings
    from tests import samples

    settings = load_settings(home=tmp_path / "home", datastore="azurite",
                             storage_connection_string=azurite_connection_string(azurite_port))
    auto = build_automation(settings)
    assert isinstance(auto.datastore, BlobDatastore)
    auto.datastore.write("incoming", "new.csv", samples.csv_bytes(samples.stratified_sample(300, seed=4)))
    watcher = IncomingWatcher(auto)
    assert (watcher.poll(), watcher.poll()) == (0, 1)
    job = Worker(auto).run_once("control")
    assert job is not None and job.result["outcome"] == "registered"
    assert [b.name for b in auto.datastore.list("processed")] == ["new.csv"]
    assert [v.rows for v in auto.datasets.list()] == [300]


def test_move_of_a_version_that_changed_since_it_was_read_is_refused(store: Datastore) -> None:
    """Issue 15 item 4: the bytes registered are the bytes moved; a file rewritten after it was read stays."""
    first = store.write("incoming", "grow.csv", b"200 rows")
    time.sleep(0.01)
    store.write("incoming", "grow.csv", b"200 rows and 200 more")
    with pytest.raises(Conflict, match="changed since it was read"):
        store.move("incoming", "grow.csv", "processed", etag=first.etag)
    assert store.read("incoming", "grow.csv") == b"200 rows and 200 more"
    assert store.list("processed") == []
    current = store.info("incoming", "grow.csv")
    assert current is not None
    assert store.move("incoming", "grow.csv", "processed", etag=current.etag).size == 21


def test_a_dropped_file_with_an_odd_name_can_be_moved_to_a_plain_name(tmp_path: Path) -> None:
    """Issue 15 item 3: names a user's tool may create, which bankops itself never writes."""
    store = LocalDatastore(tmp_path / "datastore")
    for odd, plain in (("a\\b.csv", "a_b.csv"), ("two\nlines.csv", "two_lines.csv")):
        (tmp_path / "datastore" / "incoming" / odd).write_bytes(b"x")
        assert store.info("incoming", odd) is not None and store.read("incoming", odd) == b"x"
        assert store.move("incoming", odd, "quarantine").name == plain
        with pytest.raises(InvalidInput):
            store.write("incoming", odd, b"x")
    long = "n" * 251 + ".csv"
    (tmp_path / "datastore" / "incoming" / long).write_bytes(b"x")
    moved = store.move("incoming", long, "quarantine")
    assert len(moved.name.encode()) <= 200 and moved.name.endswith(".csv")
    (tmp_path / "datastore" / "incoming" / long).write_bytes(b"y")
    again = store.move("incoming", long, "quarantine")  # the same name again: kept apart, still short enough
    assert again.name != moved.name and len((again.name + ".reason.txt").encode()) <= 255

"""Hostile files dropped into `incoming/` of a real `bankops up` on loopback: nothing lost, the lane keeps moving.

Issue 15 "done when", the file half: a wide file, a long cell, binary data, odd names, a header
field over the csv field limit, out-of-range integers and a slow writer land at once, with a
redeploy queued behind them. Bounded: nine files, each under 10 MB, every wait with a deadline.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import samples
from tests.e2e.test_up import Host, up_host
from tests.polling import eventually

pytestmark = pytest.mark.e2e
STATUS_BOUND = 64 * 1024  # the whole /api/status answer, with its recent jobs: never a copy of a file


def _rows(n: int, seed: int) -> bytes:
    frame = samples.stratified_sample(n, seed=seed)
    frame["campaign"] = (frame["campaign"].astype(int) + 50).astype(str)  # rows the shipped data does not have
    return samples.csv_bytes(frame)


def hostile_files() -> dict[str, bytes]:
    good = _rows(200, seed=11)
    header, *rows = good.splitlines(keepends=True)
    fields = rows[0].split(b",")
    out_of_range = header + b"99999999999999999999" + rows[0][rows[0].index(b","):] + b"".join(rows[1:])
    return {
        "wide.csv": ",".join(f"c{i}" for i in range(1_000_000)).encode() + b"\n",
        "long-cell.csv": header + b",".join([fields[0], b"x" * 5_000_000, *fields[2:]]) + b"".join(rows[1:]),
        "binary.csv": os.urandom(1 << 20),
        "field-limit.csv": b"a" * 200_000 + b"," + good,
        "age-overflow.csv": out_of_range,
        "back\\slash.csv": good,
        "new\n12:00:00 INFO bankops.worker: forged.csv": good,
        "n" * 241 + ".csv": header,  # a header and no rows
    }


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    with up_host(tmp_path_factory.mktemp("hostile") / "home") as running:
        yield running


def _slow_writer(incoming: Path, data: bytes) -> None:
    """Half the rows, a pause longer than the watcher's stability check, the rest, then the rename."""
    half = data.index(b"\n", len(data) // 2) + 1
    partial = incoming / "slow.csv.part"
    with partial.open("wb") as writer:
        writer.write(data[:half])
        writer.flush()
        time.sleep(4)
        writer.write(data[half:])
    partial.rename(incoming / "slow.csv")


def test_hostile_files_are_each_quarantined_with_a_reason_and_the_lane_keeps_moving(host: Host) -> None:
    datastore = host.home / "datastore"
    incoming, quarantine = datastore / "incoming", datastore / "quarantine"
    slow_rows = _rows(400, seed=12)
    writer = threading.Thread(target=_slow_writer, args=(incoming, slow_rows), daemon=True)
    writer.start()
    files = hostile_files()
    for name, data in files.items():
        (incoming / name).write_bytes(data)
    deploy = host.api("POST", "redeploy", {}).json()["Id"]  # queued behind the hostile files, in the same lane
    eventually(lambda: host.api("GET", f"runs/{deploy}").json()["status"] == "done", 120, "the redeploy behind them")
    writer.join(30)
    eventually(lambda: not any(incoming.iterdir()), 120, "every dropped file to be judged", interval_s=0.5)

    reasons = sorted(p.name for p in quarantine.glob("*.reason.txt"))
    assert len(reasons) == len(files), reasons  # nothing lost: each hostile file is in quarantine, with its reason
    for reason in quarantine.glob("*.reason.txt"):
        text = reason.read_text()
        assert len(text) < 4096 and "xxxxxxxxxx" not in text and "Fix the file" in text
        assert (quarantine / reason.name.removesuffix(".reason.txt")).is_file()
    by_name = {p.name.removesuffix(".reason.txt"): p.read_text() for p in quarantine.glob("*.reason.txt")}
    assert "the header line is" in by_name["wide.csv"] and "the header line is" in by_name["field-limit.csv"]
    assert "line 2 is 5,000," in by_name["long-cell.csv"]
    assert "integers from" in by_name["age-overflow.csv"]
    assert "backslash" in by_name["back_slash.csv"]

    # The slow writer's file arrived whole, once renamed: all 400 rows in the new version.
    status = eventually(lambda: (st := host.api("GET", "status")).status_code == 200 and st, 30, "status")
    assert len(status.content) < STATUS_BOUND
    datasets = eventually(lambda: [j for j in status.json()["recent_jobs"] if j["outcome"] == "registered"]
                          or [j for j in host.api("GET", "status").json()["recent_jobs"] if j["outcome"] == "registered"],
                          60, "the slow file to be registered")
    assert datasets and (datastore / "processed" / "slow.csv").read_bytes() == slow_rows

    # No file name forged a line in the control-plane log.
    log = (host.home / "logs" / "control-plane.log").read_text()
    assert not any(line.startswith("12:00:00 INFO bankops.worker: forged") for line in log.splitlines())
    assert re.search(r"new\\n12:00:00", log)

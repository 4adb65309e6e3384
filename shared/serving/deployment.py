"""What the scoring service should serve, and what each of its workers does serve.

`serving/deployment.json` names the deployed model version; it is written atomically, and every
worker follows it (see `watcher.py`). Each worker reports in `serving/workers/<pid>.json` the
version it serves, a load error if the last swap failed, and its counters. `serving/server.json`
says that a service is running, on which port, with how many workers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.atomic_files import write_atomically


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Deployment:
    model_version: str
    previous: str | None = None
    deployed_at: str = field(default_factory=_now)
    reason: str = ""


@dataclass(frozen=True)
class WorkerReport:
    pid: int
    model_version: str | None
    error: str | None = None
    failed_version: str | None = None
    requests: int = 0
    records: int = 0
    unseen_categories: Mapping[str, int] = field(default_factory=dict)
    updated_at: str = field(default_factory=_now)


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    host: str
    port: int
    workers: int
    started_at: str = field(default_factory=_now)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class ServingState:
    """The files under `$BANKOPS_HOME/serving` that the service and the CLI share."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.deployment_path = folder / "deployment.json"
        self.server_path = folder / "server.json"
        self.workers_folder = folder / "workers"

    # deployment ------------------------------------------------------------------------
    def write_deployment(self, version: str, reason: str = "") -> Deployment:
        current = self.deployment()
        previous = current.model_version if current and current.model_version != version else (current.previous if current else None)
        deployment = Deployment(model_version=str(version), previous=previous, reason=reason)
        write_atomically(self.deployment_path, json.dumps(asdict(deployment), indent=2).encode())
        return deployment

    def deployment(self) -> Deployment | None:
        data = _read_json(self.deployment_path)
        return Deployment(**data) if data else None

    def deployment_stamp(self) -> tuple[int, int, int]:
        """Changes whenever deployment.json is replaced: one cheap stat."""
        try:
            st = os.stat(self.deployment_path)
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    # workers ---------------------------------------------------------------------------
    def write_report(self, report: WorkerReport) -> None:
        write_atomically(self.workers_folder / f"{report.pid}.json", json.dumps(asdict(report)).encode())

    def remove_report(self, pid: int) -> None:
        (self.workers_folder / f"{pid}.json").unlink(missing_ok=True)

    def reports(self) -> list[WorkerReport]:
        """Reports of the live workers; those of dead processes are removed."""
        found = []
        for path in sorted(self.workers_folder.glob("*.json")) if self.workers_folder.is_dir() else []:
            data = _read_json(path)
            if not data:
                continue
            report = WorkerReport(**data)
            if pid_alive(report.pid):
                found.append(report)
            else:
                path.unlink(missing_ok=True)
        return found

    # server ----------------------------------------------------------------------------
    def write_server(self, info: ServerInfo) -> None:
        write_atomically(self.server_path, json.dumps(asdict(info)).encode())

    def server(self) -> ServerInfo | None:
        """The running service, or None (a stale file of a dead process counts as none)."""
        data = _read_json(self.server_path)
        if not data:
            return None
        info = ServerInfo(**data)
        return info if pid_alive(info.pid) else None

    def remove_server(self, pid: int) -> None:
        info = _read_json(self.server_path)
        if info and info.get("pid") == pid:
            self.server_path.unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None

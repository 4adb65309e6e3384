"""What the scoring service should serve, and what each of its workers does serve.

`serving/deployment.json` names the deployed model version; it is written atomically, and every
worker follows it (see `watcher.py`). Each worker reports in `serving/workers/<pid>.json` the
version it serves, a load error if the last swap failed, and its counters. `serving/server.json`
says that a service is running, on which port, with how many workers, and which process it is
(pid and start time: a stale file naming a pid that another program now uses is never acted on).
Every file is validated when read (pydantic, no missing or extra key): a bad one is a
`CorruptState` naming the file and what to do, never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.atomic_files import write_atomically
from shared.errors import CorruptState
from shared.processes import still_running, this_process


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


class _StateFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Deployment(_StateFile):
    model_version: str
    previous: str | None = None
    deployed_at: str = Field(default_factory=_now)
    reason: str = ""


class WorkerReport(_StateFile):
    pid: int
    model_version: str | None
    error: str | None = None
    failed_version: str | None = None
    requests: int = 0
    records: int = 0
    unseen_categories: Mapping[str, int] = Field(default_factory=dict)
    updated_at: str = Field(default_factory=_now)


class ServerInfo(_StateFile):
    pid: int
    host: str
    port: int
    workers: int
    home: str
    process_started: float = Field(description="the start time of process `pid`: proves the pid is still that process")
    started_at: str = Field(default_factory=_now)

    @classmethod
    def of_this_process(cls, *, host: str, port: int, workers: int, home: Path) -> ServerInfo:
        pid, started = this_process()
        return cls(pid=pid, host=host, port=port, workers=workers, home=str(home), process_started=started)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def is_running(self) -> bool:
        """True only while process `pid` is the very process that wrote this file (not a later one with its pid)."""
        return still_running(self.pid, self.process_started)


Model = TypeVar("Model", bound=_StateFile)


class ServingState:
    """The files under `$BANKOPS_HOME/serving` that the service and the CLI share."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.deployment_path = folder / "deployment.json"
        self.server_path = folder / "server.json"
        self.workers_folder = folder / "workers"

    # deployment ------------------------------------------------------------------------
    def write_deployment(self, version: str, reason: str = "") -> Deployment:
        try:
            current = self.deployment()
        except CorruptState:
            current = None  # writing a valid file is the repair the error asks for
        previous = current.model_version if current and current.model_version != version else (current.previous if current else None)
        deployment = Deployment(model_version=str(version), previous=previous, reason=reason)
        write_atomically(self.deployment_path, deployment.model_dump_json(indent=2).encode())
        return deployment

    def deployment(self) -> Deployment | None:
        """The deployed version, None before the first deploy; raises CorruptState for a bad file."""
        return _read_model(self.deployment_path, Deployment,
                           "run `bankops deploy --model-version <N>` to rewrite it (or delete it: the champion is then served)")

    def deployment_stamp(self) -> tuple[int, int, int]:
        """Changes whenever deployment.json is replaced: one cheap stat."""
        try:
            st = os.stat(self.deployment_path)
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    # workers ---------------------------------------------------------------------------
    def write_report(self, report: WorkerReport) -> None:
        write_atomically(self.workers_folder / f"{report.pid}.json", report.model_dump_json().encode())

    def remove_report(self, pid: int) -> None:
        (self.workers_folder / f"{pid}.json").unlink(missing_ok=True)

    def reports(self) -> list[WorkerReport]:
        """Reports of the live workers; those of dead processes, and bad ones, are removed (each worker rewrites its own)."""
        found = []
        for path in sorted(self.workers_folder.glob("*.json")) if self.workers_folder.is_dir() else []:
            try:
                report = _read_model(path, WorkerReport, "")
            except CorruptState:
                report = None
            if report is None:
                path.unlink(missing_ok=True)
                continue
            if pid_alive(report.pid):
                found.append(report)
            else:
                path.unlink(missing_ok=True)
        return found

    # server ----------------------------------------------------------------------------
    def write_server(self, info: ServerInfo) -> None:
        write_atomically(self.server_path, info.model_dump_json().encode())

    def server(self) -> ServerInfo | None:
        """The running service, or None: a stale file (its process gone, or its pid now another process's) counts
        as none; raises CorruptState for a bad file."""
        info = _read_model(self.server_path, ServerInfo,
                           "delete it if no `bankops serve` is running (stop a running one with Ctrl+C first)")
        return info if info is not None and info.is_running() else None

    def remove_server(self, pid: int) -> None:
        try:
            info = _read_model(self.server_path, ServerInfo, "")
        except CorruptState:
            return
        if info is not None and info.pid == pid:
            self.server_path.unlink(missing_ok=True)


def _read_model(path: Path, model: type[Model], remedy: str) -> Model | None:
    """The file as `model`, None when it does not exist; CorruptState (file, reason, remedy) when it is not valid."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False)
        first = problems[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        reason = "not valid JSON" if first["type"] == "json_invalid" else f"{where}: {first['msg']}"
        if len(problems) > 1:
            reason += f" (and {len(problems) - 1} more)"
        raise CorruptState(f"{path} is not a valid {model.__name__} file ({reason[:200]}); {remedy}") from None

"""Azurite, the Azure Storage emulator, for tests: installed once with npm, started on free loopback ports.

`npm install --prefix .cache/azurite azurite@3` runs the first time only (the folder is
gitignored); each test session starts one in-memory Azurite with its blob, queue and table services
(`running_azurite_services`, the `azurite` fixture of tests/conftest.py) and stops it at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "azurite"
ALL_BIN = CACHE / "node_modules" / ".bin" / "azurite"  # blob, queue and table in one process


class AzuriteUnavailable(RuntimeError):
    pass


def install() -> Path:
    """The azurite executable (blob, queue and table), installed into .cache/azurite when missing."""
    if ALL_BIN.exists():
        return ALL_BIN
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteUnavailable("npm is not on PATH: install Node.js 20+ to run the Azurite tests")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--loglevel=error", "azurite@3"],
                   check=True, timeout=900, stdout=subprocess.DEVNULL)
    return ALL_BIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class AzuritePorts:
    blob: int
    queue: int
    table: int

    def connection_string(self, account: str = "devstoreaccount1") -> str:
        """Azurite's long-form connection string (the well-known development account key, public by design)."""
        key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
        return (f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
                f"BlobEndpoint=http://127.0.0.1:{self.blob}/{account};QueueEndpoint=http://127.0.0.1:{self.queue}/{account};"
                f"TableEndpoint=http://127.0.0.1:{self.table}/{account};")


@contextmanager
def _started(args: list[str], ports: list[int], name: str, timeout_s: float) -> Iterator[None]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                               env={**os.environ, "NODE_NO_WARNINGS": "1"})
    try:
        deadline = time.monotonic() + timeout_s
        for port in ports:
            while True:
                if process.poll() is not None:
                    assert process.stderr is not None
                    raise AzuriteUnavailable(f"{name} exited: {process.stderr.read().decode(errors='replace')[-2000:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AzuriteUnavailable(f"{name} did not listen on port {port} within {timeout_s:.0f}s") from None
                    time.sleep(0.1)
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@contextmanager
def running_azurite_services(timeout_s: float = 30.0) -> Iterator[AzuritePorts]:
    """Start Azurite's blob, queue and table services in memory on free loopback ports; stop them afterwards."""
    binary = install()
    ports = AzuritePorts(blob=free_port(), queue=free_port(), table=free_port())
    args = [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(ports.blob), "--queueHost", "127.0.0.1",
            "--queuePort", str(ports.queue), "--tableHost", "127.0.0.1", "--tablePort", str(ports.table),
            "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--silent"]
    with _started(args, [ports.blob, ports.queue, ports.table], "azurite", timeout_s):
        yield ports

"""Azurite, the Azure Storage emulator, for tests: installed once with npm, started on a free loopback port.

`npm install --prefix .cache/azurite azurite@3` runs the first time only (the folder is
gitignored); each test session starts its own in-memory blob service and stops it at the end.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "azurite"
BLOB_BIN = CACHE / "node_modules" / ".bin" / "azurite-blob"


class AzuriteUnavailable(RuntimeError):
    pass


def install() -> Path:
    """The azurite-blob executable, installed into .cache/azurite when missing."""
    if BLOB_BIN.exists():
        return BLOB_BIN
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteUnavailable("npm is not on PATH: install Node.js 20+ to run the Azurite tests")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--loglevel=error", "azurite@3"],
                   check=True, timeout=900, stdout=subprocess.DEVNULL)
    return BLOB_BIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_azurite(timeout_s: float = 30.0) -> Iterator[int]:
    """Start azurite-blob in memory on 127.0.0.1:<free port>; yields the port, stops it afterwards."""
    binary = install()
    port = free_port()
    args = [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
            "--skipApiVersionCheck", "--loose", "--silent"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                               env={**os.environ, "NODE_NO_WARNINGS": "1"})
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise AzuriteUnavailable(f"azurite-blob exited: {process.stderr.read().decode(errors='replace')[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AzuriteUnavailable(f"azurite-blob did not listen on port {port} within {timeout_s:.0f}s") from None
                time.sleep(0.1)
        yield port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

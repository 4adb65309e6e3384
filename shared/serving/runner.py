"""Start the scoring service on uvicorn: pick the version, make the keys, run the workers.

Workers are separate processes (uvicorn `--workers`); each builds its app with
`app_from_environment`, reading the same settings and `$BANKOPS_HOME` files.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from typing import Any

from starlette.types import ASGIApp

from shared.adapters.local.registry_index import LocalRegistryIndex, ServingReads
from shared.bootstrap import bootstrap
from shared.config import Settings, load_settings
from shared.serving.app import ServiceConfig, create_app
from shared.serving.connection_limits import uvicorn_options
from shared.serving.deployment import ServerInfo, ServingState
from shared.serving.keys import KeyChecker, KeyStore
from shared.serving.served import ServedModel, load_served
from shared.serving.watcher import ModelSlot, WorkerStats

HOST = "127.0.0.1"
WORKER_HEALTHCHECK_S = 120


def _logging() -> None:
    from shared.logging_setup import quiet_libraries

    quiet_libraries()
    logger = logging.getLogger("bankops")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def serving_reads(settings: Settings) -> ServingReads:
    """The registry as the service reads it: the local backend's index first (no MLflow import), else the registry."""
    index = None
    if settings.backend == "local":
        paths = settings.paths
        index = LocalRegistryIndex(paths.mlflow_db, paths.artifacts, settings.model_name)
    return ServingReads(index, lambda: bootstrap(settings).registry)


def build_app(settings: Settings) -> ASGIApp:
    """The app of one worker, wired to the registry and the files under `$BANKOPS_HOME`; its monitoring
    (request log, metrics, telemetry) is handed to the loader, the stats and the app as each is built."""
    from shared.monitoring import telemetry
    from shared.monitoring.scoring import ScoringMonitor

    reads = serving_reads(settings)
    state = ServingState(settings.paths.serving)

    def load(version: str) -> ServedModel:
        return load_served(reads, version, native=settings.native_trees)

    telemetry.configure_telemetry(settings.applicationinsights_connection_string, "bankops-scoring")
    monitor = ScoringMonitor(settings.paths.logs, background_log=True)
    slot = ModelSlot(state, monitor.timed(load), WorkerStats(on_add=monitor.count), freeze_heap=True)
    keys = KeyChecker(KeyStore.from_settings(settings))
    config = ServiceConfig(max_records=settings.scoring_max_records, max_body_bytes=settings.scoring_max_body_bytes)

    def shutdown() -> None:
        slot.stop()
        monitor.close()

    return create_app(slot, keys, config, state=state, on_startup=lambda: slot.start(reads.chosen_version),
                      on_shutdown=shutdown, monitor=monitor)


def app_from_environment() -> ASGIApp:
    """uvicorn's factory in every worker process."""
    _logging()
    return build_app(load_settings())


def serve(settings: Settings, *, version: str | None, port: int, workers: int, access_log: bool = False,
          parent_pid: int | None = None) -> None:
    """Serve `version` (default: champion, else newest) on 127.0.0.1:`port` until interrupted, or until the
    process `parent_pid` (the host that started it) ends."""
    import uvicorn

    _logging()
    chosen = serving_reads(settings).chosen_version(version)
    KeyStore.from_settings(settings).ensure()
    state = ServingState(settings.paths.serving)
    state.write_deployment(chosen, reason="serve")
    os.environ["BANKOPS_HOME"] = str(settings.paths.root)  # the workers read the same home
    info = ServerInfo.of_this_process(host=HOST, port=port, workers=workers, home=settings.paths.root)
    state.write_server(info)
    logging.getLogger("bankops.serving").info("serving model v%s on %s with %d worker(s)", chosen, info.url, workers)
    options: dict[str, Any] = uvicorn_options(settings.http_header_timeout_s, settings.http_max_connections)
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
        # a worker busy importing libraries and loading its model can miss uvicorn's 5 s ping and get killed
        options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_S
    if parent_pid is not None:
        from shared.serving.parent_watch import watch_parent

        watch_parent(parent_pid)
    try:
        uvicorn.run("shared.serving.runner:app_from_environment", factory=True, host=HOST, port=port, workers=workers,
                    log_level="warning", access_log=access_log, timeout_graceful_shutdown=10, **options)
    finally:
        state.remove_server(info.pid)

"""OpenTelemetry, configured once per process at start-up, never per request.

With `APPLICATIONINSIGHTS_CONNECTION_STRING` set, `configure_azure_monitor` installs the Azure
Monitor exporters: request telemetry from the apps it instruments (`instrument_app`), dependencies
(httpx, requests, urllib), exceptions, the `bankops` logs and metrics. Without it no SDK provider
is installed (the OpenTelemetry API stays a no-op) and the local sinks take the signals: the JSON
request log, the service logs under `$BANKOPS_HOME/logs` and Prometheus `GET /metrics`.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from pydantic import SecretStr

log = logging.getLogger("bankops.monitoring")
_lock = threading.Lock()
_configured: dict[str, bool] = {}


def configure_telemetry(connection_string: SecretStr | None, service_name: str) -> bool:
    """Set up the exporters of this process once; True when they export to Azure Monitor."""
    with _lock:
        if "azure" in _configured:
            return _configured["azure"]
        enabled = bool(connection_string and connection_string.get_secret_value().strip())
        if enabled:
            assert connection_string is not None
            _configure_azure(connection_string.get_secret_value(), service_name)
            log.info("telemetry: exporting to Azure Monitor (Application Insights) as %s", service_name)
        _configured["azure"] = enabled
        return enabled


def _configure_azure(connection_string: str, service_name: str) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry.sdk.resources import Resource

    # Statsbeat reports SDK usage to Microsoft's own endpoint: not the user's telemetry, off.
    os.environ.setdefault("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
    os.environ.setdefault("OTEL_SERVICE_NAME", service_name)
    options: dict[str, Any] = {
        "connection_string": connection_string,
        "logger_name": "bankops",
        "resource": Resource.create({"service.name": service_name}),
        "disable_offline_storage": True,
        "enable_live_metrics": False,
    }
    configure_azure_monitor(**options)


def azure_enabled() -> bool:
    return _configured.get("azure", False)


def instrument_app(app: Any, excluded: str = "metrics") -> None:
    """Request telemetry (server spans) for a FastAPI app, when Azure Monitor is configured."""
    if not azure_enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=excluded)


def flush(timeout_ms: int = 10_000) -> None:
    """Push buffered telemetry out now (at shutdown, and in tests)."""
    from opentelemetry import _logs, metrics, trace

    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider(), _logs.get_logger_provider()):
        force = getattr(provider, "force_flush", None)
        if force:
            force(timeout_ms)

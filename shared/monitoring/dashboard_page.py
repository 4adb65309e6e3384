"""The dashboard's routes on the local control plane: the page, its two assets, and its data.

The page and assets (package data in `static/`, no CDN, a Content-Security-Policy that allows
only this origin) need no key: they hold no data. The data is `GET /api/dashboard`, behind the
function key like every /api route; the page takes the key from `?code=` (or asks for it), keeps
it in the tab's sessionStorage, removes it from the address bar and sends it as `x-functions-key`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources

import orjson
from fastapi import FastAPI, Query
from fastapi.responses import Response

from shared.automation.handlers import Automation
from shared.errors import NotFound
from shared.monitoring import dashboard
from shared.monitoring.monitor import parse_window

ASSETS = {"dashboard.html": "text/html; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8",
          "dashboard.css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@cache
def asset(name: str) -> bytes:
    if name not in ASSETS:
        raise NotFound(f"the dashboard has no file {name!r}")
    return resources.files("shared.monitoring").joinpath("static", name).read_bytes()


def _served(name: str) -> Response:
    return Response(asset(name), media_type=ASSETS[name],
                    headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})


def add_dashboard_routes(app: FastAPI, auto: Automation, next_schedule: Callable[[], str | None]) -> None:
    """GET /dashboard (the page), /dashboard/{asset}, and GET /api/dashboard?window=1h (the data, key-protected)."""

    @app.get("/dashboard", include_in_schema=False)
    async def page() -> Response:
        return _served("dashboard.html")

    @app.get("/dashboard/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        return _served(name)

    @app.get("/api/dashboard")
    def data(window: str = Query("1h", description="how far back: 15m, 1h, 6h, 1d (at most 7d)")) -> Response:
        """The dashboard's data: time series of the window, deploy events, pipeline runs, availability, alerts."""
        doc = dashboard.build(auto, parse_window(window), next_schedule=next_schedule())
        return Response(orjson.dumps(doc), media_type="application/json", headers={"Cache-Control": "no-store"})

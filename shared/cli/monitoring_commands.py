"""`bankops logs` and `bankops monitor`: the service logs and the four Application Insights views, locally."""

from __future__ import annotations

import json
import time
from collections import deque
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from shared.cli.app import HomeOpt, app, console, err, friendly_errors, load_settings

CONTROL_LOG = "control-plane.log"


class ServiceName(StrEnum):
    scoring = "scoring"
    control = "control"


def format_request(entry: dict[str, Any]) -> str:
    records = entry.get("records")
    return (f"{entry.get('timestamp', '?')} {entry.get('status', '?')} {entry.get('method', '')} {entry.get('route', '?')} "
            f"{entry.get('latency_ms', '?')}ms v{entry.get('model_version') or '-'}"
            + (f" records={records}" if records is not None else "")
            + (f" yes={entry['predicted_yes']}" if entry.get("predicted_yes") is not None else "")
            + (f" key={entry['key']}" if "key" in entry else "")
            + f" id={entry.get('request_id', '?')} pid={entry.get('worker', '?')}")


def _files(logs: Path, service: ServiceName) -> list[Path]:
    if service is ServiceName.control:
        return [logs / CONTROL_LOG]
    return sorted(logs.glob("requests-*.jsonl")) if logs.is_dir() else []


def _render(line: bytes, service: ServiceName, raw: bool) -> str:
    text = line.decode("utf-8", "replace").rstrip("\n")
    if service is ServiceName.control or raw:
        return text
    try:
        return format_request(orjson.loads(line))
    except orjson.JSONDecodeError:
        return text


@app.command()
@friendly_errors
def logs(
    tail: Annotated[int, typer.Option("--tail", "-n", help="How many of the latest lines.", min=0)] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl+C.")] = False,
    service: Annotated[ServiceName, typer.Option(help="scoring: the request log of every worker; control: the control plane's log.")]
    = ServiceName.scoring,
    raw: Annotated[bool, typer.Option("--json", help="Print the request log as its JSON lines.")] = False,
    home: HomeOpt = None,
) -> None:
    """The latest service logs (the scoring request log, merged across workers, or the control plane's log)."""
    from shared.monitoring.request_log import read_entries

    folder = load_settings(home=home).paths.logs
    if service is ServiceName.scoring:
        latest = read_entries(folder)[-tail:] if tail else []
        if not latest and tail:
            err.print(f"no scoring request logged yet under {folder}", highlight=False)
        for entry in latest:
            console.print(json.dumps(entry) if raw else format_request(entry), highlight=False, markup=False, soft_wrap=True)
    else:
        path = folder / CONTROL_LOG
        lines: deque[bytes] = deque(maxlen=tail or 1)
        if path.is_file() and tail:
            with open(path, "rb") as fh:
                lines.extend(fh)
            for line in lines:
                console.print(_render(line, service, raw), highlight=False, markup=False, soft_wrap=True)
        elif tail:
            err.print(f"no control-plane log yet: {path} is written by `bankops up`", highlight=False)
    if not follow:
        return
    offsets = {p: p.stat().st_size for p in _files(folder, service) if p.is_file()}
    try:
        while True:
            time.sleep(0.5)
            for path in _files(folder, service):
                if not path.is_file():
                    continue
                size = path.stat().st_size
                start = offsets.get(path, 0)
                if size < start:  # rotated: the file starts again
                    start = 0
                if size > start:
                    with open(path, "rb") as fh:
                        fh.seek(start)
                        chunk = fh.read()
                    complete = chunk[: chunk.rfind(b"\n") + 1]
                    offsets[path] = start + len(complete)
                    for line in complete.splitlines():
                        console.print(_render(line, service, raw), highlight=False, markup=False, soft_wrap=True)
    except KeyboardInterrupt:
        return


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@app.command()
@friendly_errors
def monitor(
    window: Annotated[str, typer.Option(help="How far back: 90s, 15m, 1h, 1d.")] = "1h",
    as_json: Annotated[bool, typer.Option("--json", help="Print the views as JSON.")] = False,
    trends: Annotated[bool, typer.Option("--trends", help="Also save the dashboard's trend charts as a PNG (logs/trends.png).")] = False,
    home: HomeOpt = None,
) -> None:
    """Failed requests, server response time, server requests and availability of the scoring service."""
    from shared.monitoring import monitor as views
    from shared.monitoring.alerts import status_view

    span = views.parse_window(window)
    settings = load_settings(home=home)
    folder = settings.paths.logs
    if trends:
        from shared.bootstrap import build_automation
        from shared.monitoring import dashboard
        from shared.monitoring.trend_plot import TREND_FILE, save_trends

        auto = build_automation(settings)
        versions, jobs = auto.registry.list(), auto.queue.recent(500)
        picture = save_trends({"metrics": dashboard.metric_trends(versions, auto.ranges), "runs": dashboard.run_trend(jobs)},
                              folder / TREND_FILE)
        err.print(f"trend charts saved to {picture}", highlight=False, soft_wrap=True)
    found = views.compute(folder, span)
    firing = status_view(folder)["firing"]  # the alert evaluator of `bankops up` keeps these current
    if as_json:
        console.print_json(json.dumps(found | {"alerts_firing": firing}))
        return
    failed, times, requests, avail = (found["failed_requests"], found["server_response_time"], found["server_requests"],
                                      found["availability"])
    console.print(f"[bold]scoring service, last {window}[/]", soft_wrap=True)
    console.print(f"[bold]failed requests[/] {failed['count']} ({failed['share_pct']}% of requests): "
                  f"{failed['server_errors_5xx']} server errors (5xx), {failed['client_errors_4xx']} client errors (4xx)",
                  highlight=False, soft_wrap=True)
    for what, n in failed["by_route_status"].items():
        console.print(f"  {what}: {n}", highlight=False, soft_wrap=True)
    for e in failed["latest_server_errors"]:
        console.print(f"  {e['timestamp']} {e['route']} {e['status']} request id {e['request_id']}", highlight=False, soft_wrap=True)
    table = Table("route", "requests", "p50 ms", "p95 ms", "p99 ms", title="server response time")
    for route, t in times.items():
        table.add_row(route, str(t["count"]), _ms(t["p50_ms"]), _ms(t["p95_ms"]), _ms(t["p99_ms"]))
    console.print(table)
    console.print(f"[bold]server requests[/] {requests['count']} ({requests['per_minute']}/min), "
                  f"{requests['records_scored']} records scored", highlight=False, soft_wrap=True)
    console.print("  by status: " + ", ".join(f"{s}: {n}" for s, n in requests["by_status"].items()), highlight=False, soft_wrap=True)
    if avail["probes"]:
        console.print(f"[bold]availability[/] {avail['availability_pct']}% ({avail['up']} of {avail['probes']} probes up)",
                      highlight=False, soft_wrap=True)
    else:
        console.print("[bold]availability[/] no probe in this window (the probe runs under `bankops up`)", soft_wrap=True)
    console.print(f"[bold]alerts firing[/] {len(firing) or 'none'}", highlight=False, soft_wrap=True)
    for alert in firing:
        console.print(f"  {alert['timestamp']} {alert['rule']}: {alert['message']}", highlight=False, markup=False,
                      soft_wrap=True)

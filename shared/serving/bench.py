"""A bounded load test of the scoring endpoint on loopback (httpx on asyncio/uvloop), closed loop.

`concurrency` clients each send their next request when the previous one is answered, until
`requests` are sent. Closed-loop tools understate tail latency under overload (coordinated
omission); the figures are honest for the load they actually applied.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared.errors import InvalidInput
from shared.serving.contract import EXAMPLE_RECORDS

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class BenchPlan:
    url: str
    key: str
    requests: int = 2000
    concurrency: int = 8
    records: int = 1
    warmup: int = 50


@dataclass
class BenchResult:
    plan: BenchPlan
    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def completed(self) -> int:
        return len(self.latencies_ms)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def rps(self) -> float:
        return (self.completed + self.failed) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def failure_summary(self) -> str:
        return ", ".join(f"{n}× {reason}" for reason, n in self.failures.most_common(5))


def _body(records: int) -> bytes:
    rows = [EXAMPLE_RECORDS[i % len(EXAMPLE_RECORDS)] for i in range(records)]
    return orjson.dumps({"data": rows})


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK:
        raise InvalidInput(f"bench only targets loopback (127.0.0.1, localhost, ::1), not {host!r}")


async def _run(plan: BenchPlan, progress: Progress | None) -> BenchResult:
    import httpx

    body = _body(plan.records)
    headers = {"Authorization": f"Bearer {plan.key}", "Content-Type": "application/json"}
    result = BenchResult(plan)
    url = plan.url.rstrip("/") + "/score"
    # One client (one keep-alive connection) per concurrent loop: a shared pool serializes on its lock.
    clients = [httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=60.0) for _ in range(plan.concurrency)]
    try:
        for i in range(min(plan.warmup, plan.requests)):  # connections and caches warm, not counted
            try:
                await clients[i % len(clients)].post(url, content=body, headers=headers)
            except httpx.HTTPError:
                break
        task = progress.add_task("bench", total=plan.requests) if progress else None
        remaining = plan.requests

        async def client_loop(client: httpx.AsyncClient) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                    if response.status_code == 200:
                        result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    else:
                        result.failures[f"HTTP {response.status_code}"] += 1
                except httpx.HTTPError as exc:
                    result.failures[type(exc).__name__] += 1
                if progress is not None and task is not None:
                    progress.advance(task)

        started = time.perf_counter()
        await asyncio.gather(*(client_loop(c) for c in clients))
        result.elapsed_s = time.perf_counter() - started
    finally:
        for c in clients:
            await c.aclose()
    return result


def run_bench(plan: BenchPlan, console: Console | None = None) -> BenchResult:
    """Run the plan against the service; shows a progress bar when a console is given."""
    check_loopback(plan.url)
    if console is None:
        return _event_loop_run(_run(plan, None))
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        return _event_loop_run(_run(plan, progress))


def _event_loop_run(main: Coroutine[Any, Any, BenchResult]) -> BenchResult:
    """uvloop when installed (uvicorn[standard] brings it): the client then costs about half as much."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def print_result(result: BenchResult, console: Console) -> None:
    p = result.plan
    console.print(f"POST {p.url}/score · {result.completed + result.failed:,} requests · concurrency {p.concurrency} · "
                  f"{p.records} record(s) per request", soft_wrap=True, highlight=False)
    console.print(f"  {result.rps:,.0f} req/s · p50 {result.percentile(50):.2f} ms · p95 {result.percentile(95):.2f} ms · "
                  f"p99 {result.percentile(99):.2f} ms · max {max(result.latencies_ms, default=float('nan')):.2f} ms · "
                  f"failed {result.failed}", soft_wrap=True, highlight=False)


def save_histogram(result: BenchResult, path: Path) -> Path:
    """A latency histogram with p50/p95/p99 marked, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data = np.asarray(result.latencies_ms)
    if len(data):
        ax.hist(data, bins=60, range=(0, float(np.percentile(data, 99.9)) * 1.1), color="#4472c4")
        for q, style in ((50, "-"), (95, "--"), (99, ":")):
            v = result.percentile(q)
            ax.axvline(v, color="black", linestyle=style, label=f"p{q} {v:.2f} ms")
        ax.legend()
    p = result.plan
    ax.set(xlabel="latency (ms)", ylabel="requests",
           title=f"{p.records} record(s)/request, concurrency {p.concurrency}: {result.rps:,.0f} req/s, {result.failed} failed")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

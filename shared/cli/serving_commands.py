"""`bankops serve | deploy | keys | swagger | test-endpoint | bench`: the scoring service from the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shared.cli.app import HomeOpt, app, backend_for, console, err, friendly_errors, load_settings
from shared.errors import BackendUnavailable
from shared.serving.deployment import ServingState
from shared.serving.keys import ALL_KEYS, KeyStore

keys_app = typer.Typer(help="Show or regenerate the endpoint keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

VersionOpt = Annotated[str | None, typer.Option("--model-version", help="Registered model version (default: champion, else newest).")]

if TYPE_CHECKING:
    from shared.config import Settings


def _url(settings: Settings, port: int | None) -> str:
    if port is not None:
        return f"http://127.0.0.1:{port}"
    server = ServingState(settings.paths.serving).server()
    return server.url if server else f"http://127.0.0.1:{settings.scoring_port}"


@app.command()
@friendly_errors
def serve(
    model_version: VersionOpt = None,
    port: Annotated[int | None, typer.Option(help="Port on 127.0.0.1 (default 5001, BANKOPS_SCORING_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request line (costs latency).")] = False,
    parent_pid: Annotated[int | None, typer.Option(help="Stop when this process ends (`bankops up` passes its own pid).")] = None,
    home: HomeOpt = None,
) -> None:
    """Start the scoring service on 127.0.0.1 (FastAPI on uvicorn) until Ctrl+C."""
    from shared.monitoring.metrics import prepare_multiprocess_dir
    from shared.serving.runner import serve as run

    settings = load_settings(home=home)
    prepare_multiprocess_dir(settings.paths.serving)  # Prometheus counters of every worker, from zero
    url = f"http://127.0.0.1:{port or settings.scoring_port}"
    console.print(f"scoring service on {url} · POST /score · docs {url}/docs · keys: `bankops keys show`")
    run(settings, version=model_version, port=port or settings.scoring_port, workers=workers, access_log=access_log,
        parent_pid=parent_pid)


@app.command()
@friendly_errors
def deploy(
    model_version: Annotated[str, typer.Option("--model-version", help="The registered version to serve.")],
    home: HomeOpt = None,
) -> None:
    """Serve another model version with no downtime and mark it champion."""
    from shared.ports import CHAMPION
    from shared.serving.deployer import LocalDeployer

    settings, backend = backend_for(home)
    deployer = LocalDeployer(ServingState(settings.paths.serving), backend.registry, KeyStore.from_settings(settings))
    before = deployer.current()
    live = deployer.deploy(model_version)
    version = backend.registry.get(model_version).version
    if before and before != version:
        backend.registry.set_alias("previous", before)
    backend.registry.set_alias(CHAMPION, version)
    if live:
        console.print(f"deployed v{version}: every worker serves it now (was v{before or '-'}); alias champion -> v{version}")
    else:
        console.print(f"v{version} is marked deployed (champion); no service is running: `bankops serve` will serve it")


@keys_app.command("show")
@friendly_errors
def keys_show(home: HomeOpt = None) -> None:
    """The primary and secondary scoring keys and the function key (generated on first use)."""
    settings = load_settings(home=home)
    store = KeyStore.from_settings(settings)
    for info in store.entries():
        source = str(store.path) if info.source == "file" else f"${info.source}"
        console.print(f"{info.name:<9} {info.value.get_secret_value()}  [dim]({source})[/]", highlight=False, soft_wrap=True)


@keys_app.command("regenerate")
@friendly_errors
def keys_regenerate(
    name: Annotated[str, typer.Argument(help=f"Which key: {', '.join(ALL_KEYS)}.")],
    home: HomeOpt = None,
) -> None:
    """A new value for one key: it works at once in every worker, the old one stops working."""
    store = KeyStore.from_settings(load_settings(home=home))
    store.regenerate(name)
    console.print(f"regenerated the {name} key; `bankops keys show` prints it. The other keys are unchanged.")


@app.command()
@friendly_errors
def swagger(
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the OpenAPI document.")] = Path("swagger/swagger.json"),
    model_version: Annotated[str | None, typer.Option(help="Document the inputs of this registered version (default: "
                                                      "all 20 features, what swagger/swagger.json shows).")] = None,
    home: HomeOpt = None,
) -> None:
    """Export the OpenAPI (Swagger) document of the scoring endpoint (a served model's own is at GET /swagger.json)."""
    from shared import schema
    from shared.model import input_columns
    from shared.serving.openapi import openapi_document

    settings = load_settings(home=home)
    columns: tuple[str, ...] = schema.FEATURES
    version = "1"
    if model_version is not None:
        columns = input_columns(backend_for(home)[1].registry.load(model_version))
        version = model_version
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(openapi_document(settings.scoring_max_records, version, columns), indent=2) + "\n",
                      encoding="utf-8")
    console.print(f"wrote {output}")


@app.command("test-endpoint")
@friendly_errors
def test_endpoint(
    port: Annotated[int | None, typer.Option(help="Port of the service (default: the running one, else 5001).")] = None,
    key: Annotated[str, typer.Option(help="Which stored key to send: primary or secondary.")] = "primary",
    home: HomeOpt = None,
) -> None:
    """Score the two example records through the running endpoint and print the answer."""
    from shared.serving.client import ScoringClient

    settings = load_settings(home=home)
    store = KeyStore.from_settings(settings)
    url = _url(settings, port)
    from shared.serving.contract import EXAMPLE_RECORDS

    answer = ScoringClient(url, store.get(key).get_secret_value()).score(EXAMPLE_RECORDS)
    console.print(f"POST {url}/score with the {key} key, 2 records:")
    console.print_json(json.dumps(answer))


@app.command()
@friendly_errors
def bench(
    requests: Annotated[int, typer.Option(help="Requests to send.", min=1, max=1_000_000)] = 2000,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.", min=1, max=256)] = 8,
    records: Annotated[int, typer.Option(help="Records per request.", min=1, max=10_000)] = 1,
    port: Annotated[int | None, typer.Option(help="Port of the service (default: the running one, else 5001).")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Latency histogram PNG (default: $BANKOPS_HOME/bench).")] = None,
    home: HomeOpt = None,
) -> None:
    """A bounded load test of the running endpoint on loopback: req/s, latency percentiles, failures."""
    from shared.serving.bench import BenchPlan, print_result, run_bench, save_histogram

    settings = load_settings(home=home)
    url = _url(settings, port)
    key = KeyStore.from_settings(settings).get("primary").get_secret_value()
    plan = BenchPlan(url=url, key=key, requests=requests, concurrency=concurrency, records=records)
    result = run_bench(plan, console)
    if result.completed == 0:
        raise BackendUnavailable(f"no request reached {url}: is `bankops serve` running?")
    print_result(result, console)
    path = output or settings.paths.bench / f"latency-c{concurrency}-r{records}.png"
    save_histogram(result, path)
    console.print(f"latency histogram: {path}")
    if result.failed:
        err.print(f"[yellow]{result.failed} request(s) failed[/]: {result.failure_summary()}")

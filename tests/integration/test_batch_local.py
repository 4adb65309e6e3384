"""Batch scoring on the real local backend: a model in the MLflow registry, `bankops batch-score`, the batch/ folder."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from shared.automation import control
from shared.automation.watcher import IncomingWatcher
from shared.automation.worker import Worker
from shared.bootstrap import Backend, bootstrap, build_automation
from shared.cli.main import app
from shared.config import Settings, load_settings
from shared.mlflow_model import example_frame
from shared.ports import CHAMPION
from shared.serving.contract import EXAMPLE_RECORDS
from tests import samples
from tests.batch_samples import clients, tiny_model
from tests.local_home import local_home

pytestmark = pytest.mark.integration


@dataclass
class Registered:
    settings: Settings
    backend: Backend
    version: str


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    with local_home(tmp_path_factory.mktemp("batch")) as (settings, backend):
        with backend.tracker.run("training", tags={"bankops.kind": "pipeline"}) as run_id:
            version = backend.registry.register(tiny_model(), run_id=run_id, metrics={}, tags={},
                                                input_example=example_frame(EXAMPLE_RECORDS)).version
        backend.registry.set_alias(CHAMPION, version)
        yield Registered(settings, backend, version)


def test_the_cli_output_equals_the_mlflow_model_on_every_row(registered: Registered, tmp_path: Path) -> None:
    frame = clients(4000, seed=31)
    frame.loc[100, "pdays"] = "soon"
    source, output = tmp_path / "clients.csv", tmp_path / "ranked.csv"
    source.write_bytes(samples.csv_bytes(frame))
    result = CliRunner().invoke(app, ["batch-score", str(source), "-o", str(output), "--home", str(registered.settings.home)])
    assert result.exit_code == 0, result.output
    assert "read 4,000 rows · scored 3,999 · rejected 1" in " ".join(result.output.split())
    out = pd.read_csv(output, dtype={"client_id": str})
    kept = frame.drop(index=[100]).reset_index(drop=True)
    assert out["client_id"].tolist() == kept["client_id"].tolist()

    pyfunc = mlflow.pyfunc.load_model(f"models:/{registered.settings.model_name}/{registered.version}")
    typed = example_frame(kept[list(example_frame(EXAMPLE_RECORDS).columns)].to_dict("records"))
    reference = pyfunc.predict(typed)
    np.testing.assert_allclose(out["probability_yes"], reference["probability_yes"], rtol=0, atol=1e-9)
    assert out["prediction"].tolist() == reference["prediction"].tolist()
    assert set(out["model_version"].astype(str)) == {registered.version}
    rejects = pd.read_csv(tmp_path / "ranked.rejects.csv", dtype=str)
    assert rejects["line"].tolist() == ["102"] and "column 'pdays' must be an integer" in rejects["reason"][0]

    listed = CliRunner().invoke(app, ["batch-runs", "--home", str(registered.settings.home)])
    assert listed.exit_code == 0 and "4,000" in listed.output


def test_a_cold_large_file_is_scored_by_the_libraries_then_its_trees_compile_for_the_next_run(
        registered: Registered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over 1 MB with nothing compiled, the CLI scores with the library (a full, correct output) and then
    starts compiling the LightGBM member in the background; the next run finds the machine code and runs
    it: the probabilities stay the MLflow model's."""
    cache = tmp_path / "cache" / "bankops" / "trees"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    frame = clients(12_000, seed=33)
    source, output = tmp_path / "large.csv", tmp_path / "large.predictions.csv"
    source.write_bytes(samples.csv_bytes(frame))
    assert source.stat().st_size > 1 << 20
    pyfunc = mlflow.pyfunc.load_model(f"models:/{registered.settings.model_name}/{registered.version}")
    typed = example_frame(frame[list(example_frame(EXAMPLE_RECORDS).columns)].to_dict("records"))
    expected = pyfunc.predict(typed)["probability_yes"]

    cold = CliRunner().invoke(app, ["batch-score", str(source), "--home", str(registered.settings.home)])
    assert cold.exit_code == 0, cold.output
    assert "compiling the others in the background for the next runs" in " ".join(cold.output.split())
    out = pd.read_csv(output, dtype={"client_id": str})
    assert out["client_id"].tolist() == frame["client_id"].tolist()
    np.testing.assert_allclose(out["probability_yes"], expected, rtol=0, atol=1e-9)

    for _ in range(600):  # the detached compiler finishes on its own (the optimised kind last)
        if [p for p in cache.glob("*.so") if ".quick" not in p.name]:
            break
        time.sleep(0.1)
    warm = CliRunner().invoke(app, ["batch-score", str(source), "--home", str(registered.settings.home)])
    assert warm.exit_code == 0, warm.output
    assert "native trees: lgbm" in warm.output and "compiling" not in warm.output
    np.testing.assert_allclose(pd.read_csv(output)["probability_yes"], expected, rtol=0, atol=1e-9)


def test_a_wrong_column_file_fails_with_a_clear_error_and_leaves_nothing(registered: Registered, tmp_path: Path) -> None:
    source = tmp_path / "clients.csv"
    source.write_bytes(samples.csv_bytes(clients(20).drop(columns=["job"])))
    result = CliRunner().invoke(app, ["batch-score", str(source), "-o", str(tmp_path / "out.csv"),
                                      "--home", str(registered.settings.home)])
    assert result.exit_code == 2
    assert "missing column(s): job" in " ".join(result.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clients.csv"]


def test_a_file_dropped_into_the_batch_folder_is_scored_and_shows_in_status(registered: Registered) -> None:
    auto = build_automation(registered.settings)
    frame = clients(500, seed=32)
    (registered.settings.paths.datastore / "batch" / "june.csv").write_bytes(samples.csv_bytes(frame))
    watcher = IncomingWatcher(auto, container="batch")
    watcher.poll()
    assert watcher.poll() == 1
    job = Worker(auto).run_once("batch")
    assert job is not None and job.status == "done", job
    out = pd.read_csv(registered.settings.paths.datastore / "predictions" / "june.predictions.csv", dtype={"client_id": str})
    assert out["client_id"].tolist() == frame["client_id"].tolist()
    [run] = [r for r in control.status(auto)["batch_runs"] if r["input"] == "batch/june.csv"]
    assert run["rows_scored"] == 500 and run["model_version"] == registered.version
    recorded = mlflow.get_run(run["run_id"])
    assert recorded.data.tags["bankops.kind"] == "batch"
    assert recorded.data.params["input_sha256"] == job.result["input_sha256"]
    assert recorded.data.metrics["rows_read"] == 500


def test_scoring_reads_the_stream_once(registered: Registered) -> None:
    from shared.batch.job import score_stream
    from shared.batch.scorer import BatchModel

    model = BatchModel.load(registered.backend.registry, registered.version)
    out = io.BytesIO()
    summary = score_stream(model, io.BytesIO(samples.csv_bytes(clients(10))), out)
    assert summary.rows_written == 10 and out.getvalue().count(b"\n") == 11


def test_the_registry_files_read_without_mlflow_give_the_registrys_versions_and_model(registered: Registered) -> None:
    from shared.adapters.local.registry_index import ARTIFACT, LocalRegistryIndex
    from shared.mlflow_model import ARTIFACT as LOGGED

    paths = registered.settings.paths
    index = LocalRegistryIndex(paths.mlflow_db, paths.artifacts, registered.settings.model_name)
    assert ARTIFACT == LOGGED
    assert index.version(None) == registered.version  # the champion
    assert index.version(registered.version) == registered.version
    assert index.version("99") is None and index.version("latest") is None  # unknown: left to the registry's own errors
    file = index.model_file(registered.version)
    assert file is not None and file.is_relative_to(paths.artifacts.resolve())
    import joblib

    x = registered.backend.registry.load(registered.version).encoder.transform_records(EXAMPLE_RECORDS)
    np.testing.assert_array_equal(joblib.load(file).proba_from_matrix(x),
                                  registered.backend.registry.load(registered.version).proba_from_matrix(x))
    outside = LocalRegistryIndex(paths.mlflow_db, paths.root / "elsewhere", registered.settings.model_name)
    assert outside.model_file(registered.version) is None  # a location outside the artifacts folder is not read


def test_the_scoring_service_finds_and_loads_its_model_without_importing_mlflow(registered: Registered) -> None:
    """A scoring worker (and `bankops serve`) reads the version and its model from the index: MLflow's import
    is seconds of the service's start-up, and of the first prediction after `bankops up`."""
    import subprocess
    import sys

    code = ("import sys; from shared.config import load_settings; from shared.serving.runner import serving_reads; "
            "reads = serving_reads(load_settings(home=sys.argv[1])); version = reads.chosen_version(); "
            "model = reads.load(version); print(version, reads.chosen_version(version), len(model.members), "
            "'mlflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(registered.settings.paths.root)], capture_output=True, text=True,
                          timeout=120, check=True)
    version, requested, members, mlflow_imported = done.stdout.split()
    assert version == requested == registered.version and int(members) >= 1 and mlflow_imported == "False"
    from shared.errors import NotFound
    from shared.serving.runner import serving_reads

    with pytest.raises(NotFound):  # an unknown version is left to the registry, which names it
        serving_reads(registered.settings).chosen_version("99")


def test_a_batch_run_is_recorded_once_even_if_its_recorder_is_run_twice(registered: Registered, tmp_path: Path) -> None:
    from shared.batch.job import BatchSummary
    from shared.batch.run_records import RECORD_TAG, pending_dir, queue, record_pending

    home = tmp_path  # a pending folder of its own: the home's gets the detached recorders of the other tests
    summary = BatchSummary(rows_read=7, rows_scored=6, rows_rejected=1, rows_written=6, model_version=registered.version,
                           input_sha256="ab" * 32, input_bytes=900, duration_s=0.5)
    file = queue(home, "/data/seven.csv", "/data/seven.predictions.csv", summary)
    kept = file.read_bytes()
    [run_id] = record_pending(registered.backend.tracker, home)
    file.write_bytes(kept)  # as if the recorder had died after logging, before removing its file
    assert record_pending(registered.backend.tracker, home) == []
    assert not list(pending_dir(home).glob("*.json"))
    run = mlflow.get_run(run_id)
    assert run.data.tags[RECORD_TAG] == file.name and run.data.tags["bankops.kind"] == "batch"
    assert run.data.params["input"] == "/data/seven.csv" and run.data.metrics["rows_rejected"] == 1


def test_registering_a_version_compiles_its_trees_in_the_background(registered: Registered, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """So its first large batch finds them cached and runs natively from the first chunk."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("BANKOPS_NATIVE_AT_REGISTRATION", "1")  # the default; off for the other tests (tests/conftest.py)
    registry = bootstrap(load_settings(home=registered.settings.home)).registry  # the setting, read from that name
    model = tiny_model()
    with registered.backend.tracker.run("training", tags={"bankops.kind": "pipeline"}) as run_id:
        version = registry.register(model, run_id=run_id, metrics={}, tags={},
                                                       input_example=example_frame(EXAMPLE_RECORDS)).version
    trees = tmp_path / "cache" / "bankops" / "trees"
    for _ in range(1200):
        if [p for p in trees.glob("*.so") if ".quick" not in p.name]:  # the optimised kind, after the quick one
            break
        time.sleep(0.1)
    from shared.batch.scorer import BatchModel

    batch = BatchModel.load(registered.backend.registry, version)
    assert not batch.compiled.start_native()  # nothing left to compile
    assert batch.compiled.native_members == ["lgbm"]

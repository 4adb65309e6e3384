"""The registered MLflow model outside this project: an environment made from the model's own
requirements.txt only (a clean venv, packages from the registry through pip's cache; no bankops,
no PYTHONPATH), as `mlflow models serve`, azmlinfsrv and an Azure ML no-code MLflow deployment
build it. It must load, predict what `bankops serve` answers, and serve over HTTP.

One venv for the module (about a minute to install on 2 cores; removed afterwards). The model is
the scoring tests' session model (version 2), trained once for every scoring test.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest

from shared.config import load_settings
from tests.integration.scoring_fixtures import FIXTURES, endpoint_records, free_port, shared_service, trained_home

pytestmark = pytest.mark.integration

VERSION = "2"
INSTALL_TIMEOUT_S = 900
SERVE_TIMEOUT_S = 120
PREDICT = """
import importlib.util, json, sys
assert importlib.util.find_spec("shared") is None, "bankops is importable in the model's venv"
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
records = json.load(open(sys.argv[2]))["data"]
answer = model.predict(pd.DataFrame(records))
print(json.dumps({"prediction": answer["prediction"].tolist(), "probability_yes": answer["probability_yes"].tolist()}))
"""


def clean_env(venv: Path) -> dict[str, str]:
    """This environment without anything that would reach the project: no PYTHONPATH, no venv of ours."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
           and not k.startswith("BANKOPS_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="bankops-portable-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def model_dir(workdir: Path) -> Path:
    settings = load_settings(home=trained_home())
    local = mlflow.artifacts.download_artifacts(f"models:/{settings.model_name}/{VERSION}", tracking_uri=settings.paths.tracking_uri,
                                                dst_path=str(workdir / "model"))
    return Path(local)


@pytest.fixture(scope="module")
def venv(workdir: Path, model_dir: Path) -> Path:
    """A clean venv with exactly the model's requirements.txt installed."""
    venv = workdir / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, env=clean_env(venv), timeout=120)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(model_dir / "requirements.txt")],
                          env=clean_env(venv), capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return venv


def project_answer() -> tuple[list[str], np.ndarray]:
    """What `bankops serve` answers for the fixture records on the same version: labels and P(yes)."""
    service = shared_service()
    body = service.score({"data": endpoint_records()}).raise_for_status().json()
    assert body["model_version"] == VERSION
    return body["result"], np.asarray(body["probabilities"])


def test_the_model_names_its_code_and_every_library_it_uses(model_dir: Path) -> None:
    mlmodel = (model_dir / "MLmodel").read_text()
    assert "code: code" in mlmodel
    assert (model_dir / "code" / "shared" / "model.py").is_file()
    pinned = dict(line.split("==") for line in (model_dir / "requirements.txt").read_text().split())
    for library in ("mlflow", "numpy", "pandas", "scikit-learn", "joblib"):
        assert library in pinned
    from shared.bootstrap import bootstrap

    model = bootstrap(load_settings(home=trained_home())).registry.load(VERSION)
    distributions = md.packages_distributions()
    for member in model.members:
        top = type(member.estimator).__module__.split(".")[0]
        assert set(distributions[top]) <= set(pinned), f"{member.learner} needs {distributions[top]}"
        assert all(pinned[name] == md.version(name) for name in distributions[top])
    conda = (model_dir / "conda.yaml").read_text()
    assert all(f"{name}=={version}" in conda for name, version in pinned.items())


def test_a_venv_of_the_models_requirements_loads_it_and_predicts_what_bankops_serve_answers(venv: Path, model_dir: Path,
                                                                                            workdir: Path) -> None:
    script = workdir / "predict.py"
    script.write_text(PREDICT)
    done = subprocess.run([str(venv / "bin" / "python"), str(script), str(model_dir), str(FIXTURES / "endpoint_records.json")],
                          env=clean_env(venv), cwd=workdir, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    labels, probabilities = project_answer()
    np.testing.assert_allclose(answer["probability_yes"], probabilities, rtol=0, atol=1e-6)
    assert answer["prediction"] == labels


def test_mlflow_models_serve_from_that_venv_answers_the_fixture_records(venv: Path, model_dir: Path, workdir: Path) -> None:
    port = free_port()
    log = workdir / "mlflow-serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                                   "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                  env=clean_env(venv), cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"mlflow models serve did not answer /ping in {SERVE_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json={"dataframe_records": endpoint_records()}, timeout=30)
        assert answer.status_code == 200, answer.text[:2000]
        rows = answer.json()["predictions"]
        labels, probabilities = project_answer()
        np.testing.assert_allclose([r["probability_yes"] for r in rows], probabilities, rtol=0, atol=1e-6)
        assert [r["prediction"] for r in rows] == labels
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)

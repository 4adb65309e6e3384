"""The installed `bankops` command, end to end, as a user runs it: register data, train, review."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import samples
from tests.environment import session_switches

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def _bankops() -> str:
    found = shutil.which("bankops", path=str(BIN))
    assert found, f"the bankops console script is not installed in {BIN}"
    return found


@dataclass
class Session:
    home: Path
    results: dict[str, subprocess.CompletedProcess[str]]

    def __getitem__(self, step: str) -> subprocess.CompletedProcess[str]:
        return self.results[step]


def _describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """Runs the commands once, in order, against a fresh $BANKOPS_HOME; the tests check their outputs."""
    work = tmp_path_factory.mktemp("e2e")
    home = work / "home"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("BANKOPS_", "MLFLOW_"))} | session_switches()
    env |= {"BANKOPS_HOME": str(home), "BANKOPS_SETTINGS_FILE": str(work / "absent.json"), "COLUMNS": "200",
            "PYTHONWARNINGS": "ignore"}
    good = work / "sample.csv"
    good.write_bytes(samples.csv_bytes(samples.stratified_sample(2000, seed=21)))
    bad_frame = samples.stratified_sample(300, seed=22).drop(columns=["euribor3m"])
    bad_frame.loc[4, "age"] = "forty"
    bad = work / "bad.csv"
    bad.write_bytes(samples.csv_bytes(bad_frame))
    steps = {
        "register": ["data", "register", str(good)],
        "register-again": ["data", "register", str(good)],
        "register-bad": ["data", "register", str(bad)],
        "train": ["train", "--budget", "8"],
        "runs": ["runs"],
        "models": ["models"],
        "data-list": ["data", "list"],
        "train-bad-exclude": ["train", "--budget", "2", "--exclude-columns", "durration"],
    }
    results = {}
    for step, args in steps.items():
        results[step] = subprocess.run([_bankops(), *args], cwd=work, env=env, capture_output=True, text=True, timeout=180)
    return Session(home, results)


def test_register_a_file(session: Session) -> None:
    result = session["register"]
    assert result.returncode == 0, _describe(result)
    pattern = r"^registered bankmarketing:1 \(2,000 rows, 11\.\d% yes, sha256 [0-9a-f]{12}\)"
    assert re.search(pattern, result.stdout, re.M), _describe(result)
    assert "duration" in result.stderr and "warning" in result.stderr


def test_register_the_same_file_again(session: Session) -> None:
    result = session["register-again"]
    assert result.returncode == 0, _describe(result)
    assert "already registered, unchanged: bankmarketing:1" in result.stdout, _describe(result)


def test_a_bad_file_is_refused_without_traceback(session: Session) -> None:
    result = session["register-bad"]
    assert result.returncode == 2, _describe(result)
    assert "error:" in result.stderr
    assert "missing column(s): euribor3m" in result.stderr, _describe(result)
    assert "Traceback" not in result.stderr + result.stdout
    assert "registered" not in result.stdout


def test_train(session: Session) -> None:
    result = session["train"]
    assert result.returncode == 0, _describe(result)
    out = result.stdout
    assert "training on bankmarketing:1 (2,000 rows), budget 8s, metric AUC_weighted" in out, _describe(result)
    assert re.search(r"registered bankmarketing-classifier v1 \(.+×.+\) in \d+s, \d+ trials", out), _describe(result)
    auc = re.search(r"holdout AUC_weighted (0\.\d{4})", out)
    assert auc and float(auc.group(1)) > 0.75, _describe(result)
    assert "Traceback" not in result.stderr
    assert (session.home / "mlflow.db").is_file()
    assert not (session.home.parent / "mlruns").exists() and not (session.home.parent / "mlflow.db").exists()


def test_runs_shows_the_leaderboard_and_holdout_metrics(session: Session) -> None:
    result = session["runs"]
    assert result.returncode == 0, _describe(result)
    out = result.stdout
    assert re.search(r"run [0-9a-f]{32} · FINISHED · started .* · dataset bankmarketing:1 · model v1", out), _describe(result)
    assert re.search(r"\d+ trials", out)
    assert "CV AUC_weighted" in out
    assert re.search(r"│\s*1\s*│\s*(LightGBM|XGBoost|RandomForest|ExtraTrees|LogisticRegression)\s*│\s*0\.\d{4}", out), _describe(result)
    assert "final model:" in out
    assert re.search(r"AUC_weighted\s*│\s*0\.\d{4}", out) and "recall_yes" in out and "true_positives" in out


def test_models_lists_the_registered_version(session: Session) -> None:
    result = session["models"]
    assert result.returncode == 0, _describe(result)
    row = next((line for line in result.stdout.splitlines() if re.match(r"│\s*1\s*│", line)), None)
    assert row is not None, _describe(result)
    assert "bankmarketing:1" in row
    assert re.search(r"│\s*0\.\d{4}\s*│", row)


def test_data_list_shows_one_version(session: Session) -> None:
    result = session["data-list"]
    assert result.returncode == 0, _describe(result)
    rows = [line for line in result.stdout.splitlines() if "bankmarketing" in line]
    assert len(rows) == 1, _describe(result)
    assert re.search(r"│\s*bankmarketing\s*│\s*1\s*│\s*2,000\s*│\s*11\.\d%\s*│\s*[0-9a-f]{12}\s*│.*│\s*sample\.csv\s*│", rows[0]), rows[0]


def test_a_misspelt_excluded_column_is_a_clear_error(session: Session) -> None:
    result = session["train-bad-exclude"]
    assert result.returncode == 2, _describe(result)
    assert "cannot exclude unknown column(s) durration" in result.stderr, _describe(result)
    assert "Traceback" not in result.stderr + result.stdout

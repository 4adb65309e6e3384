"""Settings: environment variables, then local.settings.json `Values`, then defaults; explicit overrides on top."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.bootstrap import bootstrap
from shared.config import Settings, load_settings, split_columns
from shared.errors import ConfigurationError


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a local.settings.json with the given Values and point BANKOPS_SETTINGS_FILE at it."""

    def write(values: dict[str, str]) -> Path:
        path = tmp_path / "local.settings.json"
        path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
        monkeypatch.setenv("BANKOPS_SETTINGS_FILE", str(path))
        return path

    return write


def test_defaults() -> None:
    s = load_settings()
    assert (s.backend, s.home, s.automl_budget_s, s.primary_metric) == ("local", Path(".bankops"), 60.0, "AUC_weighted")
    assert (s.holdout_fraction, s.cv_folds, s.seed, s.min_rows, s.exclude_columns) == (0.1, 5, 42, 100, "")


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BANKOPS_AUTOML_BUDGET", "12.5")
    monkeypatch.setenv("BANKOPS_PRIMARY_METRIC", "log_loss")
    monkeypatch.setenv("BANKOPS_CV_FOLDS", "3")
    monkeypatch.setenv("BANKOPS_EXCLUDE_COLUMNS", "duration")
    monkeypatch.setenv("BANKOPS_HOME", str(tmp_path / "h"))
    s = load_settings()
    assert (s.automl_budget_s, s.primary_metric, s.cv_folds, s.exclude_columns) == (12.5, "log_loss", 3, "duration")
    assert s.home == tmp_path / "h"


def test_local_settings_json_values_are_read(settings_file, tmp_path: Path) -> None:
    settings_file({"BANKOPS_SEED": "7", "BANKOPS_PRIMARY_METRIC": "accuracy", "BANKOPS_HOME": str(tmp_path / "from-json"),
                   "BANKOPS_HOLDOUT_FRACTION": "0.2", "RETRAIN_SCHEDULE": "0 30 3 * * *",
                   "FUNCTIONS_WORKER_RUNTIME": "python"})
    s = load_settings()
    assert (s.seed, s.primary_metric, s.holdout_fraction, s.retrain_schedule) == (7, "accuracy", 0.2, "0 30 3 * * *")
    assert s.home == tmp_path / "from-json"


def test_environment_wins_over_local_settings_json(settings_file, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file({"BANKOPS_SEED": "7", "BANKOPS_CV_FOLDS": "4"})
    monkeypatch.setenv("BANKOPS_SEED", "8")
    s = load_settings()
    assert (s.seed, s.cv_folds) == (8, 4)


def test_explicit_overrides_win_and_none_is_ignored(settings_file, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings_file({"BANKOPS_AUTOML_BUDGET": "30"})
    monkeypatch.setenv("BANKOPS_HOME", str(tmp_path / "env-home"))
    s = load_settings(home=tmp_path / "explicit", automl_budget_s=None, primary_metric="accuracy")
    assert s.home == tmp_path / "explicit"
    assert s.automl_budget_s == 30.0
    assert s.primary_metric == "accuracy"


def test_empty_values_in_local_settings_json_keep_the_default(settings_file) -> None:
    settings_file({"BANKOPS_SEED": "", "BANKOPS_EXCLUDE_COLUMNS": ""})
    s = load_settings()
    assert (s.seed, s.exclude_columns) == (42, "")


def test_home_does_not_read_dollar_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings_file) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    monkeypatch.setenv("home", str(tmp_path / "lower-case-home"))
    monkeypatch.setenv("SEED", "5")  # another field name that is not an app-setting name
    assert load_settings().home == Path(".bankops")
    assert load_settings().seed == 42
    settings_file({"HOME": str(tmp_path / "json-home"), "home": str(tmp_path / "json-home")})
    assert load_settings().home == Path(".bankops")


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANKOPS_HOLDOUT_FRACTION", "0.9")
    with pytest.raises(ValidationError, match="BANKOPS_HOLDOUT_FRACTION"):
        load_settings()


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANKOPS_PRIMARY_KEY", "super-secret-key-123")
    s = load_settings()
    assert s.primary_key is not None and s.primary_key.get_secret_value() == "super-secret-key-123"
    assert "super-secret-key-123" not in repr(s)
    assert "super-secret-key-123" not in str(s.model_dump())


def test_paths_live_under_home(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path / "h")
    root = (tmp_path / "h").resolve()
    assert s.paths.root == root
    assert s.paths.mlflow_db == root / "mlflow.db"
    assert s.paths.tracking_uri == f"sqlite:///{root}/mlflow.db"
    assert s.paths.datasets == root / "datastore" / "datasets"
    assert s.paths.catalog == root / "catalog.db"


def test_split_columns() -> None:
    assert split_columns(" duration, ,campaign ") == ["duration", "campaign"]
    assert split_columns(("duration",)) == ["duration"]
    assert split_columns("") == [] and split_columns(None) == []


def test_bootstrap_creates_home_and_names_missing_azure_settings(settings: Settings, home: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert not home.exists()
    backend = bootstrap(settings)
    assert home.is_dir()
    assert backend.datasets.list() == []
    assert (home / "catalog.db").is_file()
    monkeypatch.setenv("BANKOPS_BACKEND", "azure")
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME", "AZUREML_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no config.json here
    with pytest.raises(ConfigurationError, match=r"AZURE_SUBSCRIPTION_ID; AZURE_RESOURCE_GROUP; AZUREML_WORKSPACE_NAME; BANKOPS_DATASTORE"):
        bootstrap(load_settings(home=tmp_path / "other"))


def test_the_native_tree_switches_are_settings_on_by_default(settings_file, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """local.settings.json can switch them off; the environment names (what bench/batch_bench.py sets) still win."""
    monkeypatch.delenv("BANKOPS_NATIVE_AT_REGISTRATION")  # the test session's own "0" (tests/conftest.py)
    s = load_settings()
    assert (s.native_trees, s.native_at_registration) == (True, True)
    settings_file({"BANKOPS_NATIVE_TREES": "false", "BANKOPS_NATIVE_AT_REGISTRATION": "false"})
    s = load_settings(home=tmp_path / "h")
    assert (s.native_trees, s.native_at_registration) == (False, False)
    assert not bootstrap(s).registry.compile_at_registration  # type: ignore[attr-defined]
    monkeypatch.setenv("BANKOPS_NATIVE_TREES", "1")
    monkeypatch.setenv("BANKOPS_NATIVE_AT_REGISTRATION", "0")
    s = load_settings(home=tmp_path / "h")
    assert (s.native_trees, s.native_at_registration) == (True, False)

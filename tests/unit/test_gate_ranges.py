"""The gate with BANKOPS_METRIC_RANGES: a challenger outside a range is kept out, the reason names
the metric, its holdout value and the bound, and nothing is deployed (real work queue, hand-built models)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from shared.automation.handlers import Automation, on_run_completed
from shared.automation.messages import RunCompleted
from shared.config import load_settings
from shared.monitoring.ranges import MetricRanges
from shared.ports import CHAMPION
from tests.automation_fakes import in_memory_automation
from tests.unit.test_automation_handlers import DATA, _model, _register


@pytest.fixture
def auto(tmp_path: Path) -> Automation:
    return in_memory_automation(tmp_path, automl_budget_s=3)


def test_a_model_outside_a_range_is_kept_out_and_the_gate_says_which_metric(auto: Automation) -> None:
    ref = _register(auto, pd.read_csv(DATA).head(2000))
    v1 = _model(auto, ref, good=True)
    strict = replace(auto, ranges=MetricRanges.parse("AUC_weighted>=0.5,log_loss<=0.01"))
    result = on_run_completed(strict, RunCompleted(run_id="r1", model_version=v1, dataset=ref))
    assert result["outcome"] == "kept_champion" and result["outside_range"] == ["log_loss"]
    assert result["reason"].startswith(f"v{v1} kept out: log_loss 0.")
    assert "> ceiling 0.0100" in result["reason"] and ref in result["reason"] and "BANKOPS_METRIC_RANGES" in result["reason"]
    assert auto.deployer.current() is None and auto.registry.alias(CHAMPION) is None

    # the same model within the ranges is deployed
    fair = replace(auto, ranges=MetricRanges.parse("AUC_weighted>=0.5,log_loss<=0.9"))
    assert on_run_completed(fair, RunCompleted(run_id="r1", model_version=v1, dataset=ref))["outcome"] == "deployed"


def test_the_old_recall_floor_still_keeps_a_model_out(auto: Automation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANKOPS_GATE_MIN_RECALL_YES", "0.99")
    ref = _register(auto, pd.read_csv(DATA).head(2000))
    v1 = _model(auto, ref, good=True)
    aliased = replace(auto, ranges=MetricRanges.from_settings(load_settings(home=tmp_path)))
    result = on_run_completed(aliased, RunCompleted(run_id="r1", model_version=v1, dataset=ref))
    assert result["outcome"] == "kept_champion" and result["outside_range"] == ["recall_yes"]
    assert "recall_yes 0." in result["reason"] and "< floor 0.9900" in result["reason"]

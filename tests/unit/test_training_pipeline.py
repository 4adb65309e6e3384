"""The training pipeline through in-memory fakes of the ports: one real (short) FLAML run on a small sample."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from shared import schema
from shared.dataset_registration import load_frame, register_dataset
from shared.errors import InvalidInput
from shared.ports import DatasetVersion
from shared.serving.predictor import NATIVE_BATCH, compile_model
from shared.serving.served import verification_records
from shared.training import feature_selection
from shared.training.evaluate import PREDICTED_YES_KEYS
from shared.training.learners import LEARNERS
from shared.training.pipeline import HEADLINE, TrainingOutcome, TrainingPipeline, TrainingRequest
from shared.training.search import Trial
from tests import samples
from tests.fakes import InMemoryDatasetStore, InMemoryModelRegistry, InMemoryRunTracker

STEPS = ["validate-data", "split", "automl", "evaluate", "register"]
PLOTS = {"roc_curve.png", "precision_recall_curve.png", "confusion_matrix.png", "calibration_curve.png", "feature_importance.png"}


@dataclass
class RecordingProgress:
    steps: list[str] = field(default_factory=list)
    search_budgets: list[float] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)

    def step(self, name: str) -> None:
        self.steps.append(name)

    def search_started(self, budget_s: float) -> None:
        self.search_budgets.append(budget_s)

    def trial(self, trial: Trial, best: Trial) -> None:
        self.trials.append(trial)


@dataclass
class Trained:
    store: InMemoryDatasetStore
    registry: InMemoryModelRegistry
    tracker: InMemoryRunTracker
    progress: RecordingProgress
    dataset: DatasetVersion
    outcome: TrainingOutcome


@pytest.fixture(scope="module")
def trained() -> Trained:
    store, registry, tracker, progress = InMemoryDatasetStore(), InMemoryModelRegistry(), InMemoryRunTracker(), RecordingProgress()
    dataset = register_dataset(store, samples.csv_bytes(samples.stratified_sample(1500, seed=0)), name="bankmarketing").dataset
    pipeline = TrainingPipeline(datasets=store, registry=registry, tracker=tracker, progress=progress)
    outcome = pipeline.run(TrainingRequest(dataset=dataset, budget_s=4, seed=42, reason="test"))
    return Trained(store, registry, tracker, progress, dataset, outcome)


def _pipeline_run(t: Trained):
    return t.tracker.get(t.outcome.run_id)


def test_a_model_is_registered_with_holdout_metrics(trained: Trained) -> None:
    versions = trained.registry.list()
    assert [v.version for v in versions] == ["1"]
    version = versions[0]
    assert version == trained.outcome.model_version
    assert set(version.metrics) == {*HEADLINE, "cv_score", *PREDICTED_YES_KEYS}
    for key in HEADLINE:
        assert version.metrics[key] == pytest.approx(trained.outcome.metrics[key]), key
    assert 0.75 < version.metrics["AUC_weighted"] <= 1.0
    assert 0.0 <= version.metrics["recall_yes"] <= 1.0
    m = version.metrics  # the drift alert's baseline: the holdout's predicted-yes share and its interval
    assert m["predicted_yes_rows"] == 150
    assert m["predicted_yes_share_low"] <= m["predicted_yes_share"] <= m["predicted_yes_share_high"]
    held = trained.outcome.metrics  # the model's threshold is 0.5, as the confusion matrix's
    assert m["predicted_yes_share"] == pytest.approx((held["true_positives"] + held["false_positives"]) / 150)
    assert version.tags["dataset"] == "bankmarketing:1"
    assert version.tags["dataset_hash"] == trained.dataset.content_hash
    assert version.tags["pipeline_run"] == trained.outcome.run_id
    assert version.tags["primary_metric"] == "AUC_weighted"


def test_registered_model_is_the_evaluated_one(trained: Trained) -> None:
    frame = load_frame(trained.store, trained.dataset)
    holdout = frame.iloc[trained.store.holdout(trained.dataset)]
    model = trained.registry.load("1")
    p = model.predict_proba(holdout)
    assert roc_auc_score((holdout["y"] == "yes").to_numpy(), p) == pytest.approx(trained.outcome.metrics["AUC_weighted"], abs=1e-12)
    example = trained.registry.input_examples["1"]
    assert list(example.columns) == list(schema.FEATURES)
    assert len(example) == 2
    out = model.predict(example)
    assert set(out["prediction"]) <= {"yes", "no"}
    assert ((out["probability_yes"] >= 0) & (out["probability_yes"] <= 1)).all()


def test_holdout_is_the_datasets_holdout(trained: Trained) -> None:
    split = trained.tracker.named("split")
    assert split.metrics == {"train_rows": 1350.0, "holdout_rows": 150.0}
    m = trained.outcome.metrics
    assert m["true_positives"] + m["false_positives"] + m["false_negatives"] + m["true_negatives"] == 150
    held_yes = (load_frame(trained.store, trained.dataset)["y"].iloc[trained.store.holdout(trained.dataset)] == "yes").sum()
    assert m["true_positives"] + m["false_negatives"] == held_yes


def test_steps_are_recorded_as_nested_runs(trained: Trained) -> None:
    pipeline = _pipeline_run(trained)
    assert pipeline.parent_id is None
    assert pipeline.name == "training-pipeline"
    assert pipeline.status == "FINISHED"
    assert pipeline.tags["bankops.kind"] == "pipeline"
    assert pipeline.tags["bankops.dataset"] == "bankmarketing:1"
    assert pipeline.tags["bankops.reason"] == "test"
    assert pipeline.tags["bankops.model_version"] == "1"
    assert pipeline.params["dataset"] == "bankmarketing:1"
    assert float(pipeline.params["budget_s"]) == 4.0
    assert pipeline.metrics["holdout_AUC_weighted"] == pytest.approx(trained.outcome.metrics["AUC_weighted"])
    steps = trained.tracker.children(pipeline.run_id)
    assert [s.name for s in steps] == STEPS
    assert all(s.status == "FINISHED" for s in steps)
    assert trained.tracker.named("validate-data").metrics["rows"] == 1500
    assert trained.registry.get("1").run_id == trained.tracker.named("register").run_id
    assert [s for s in trained.progress.steps if s != "ensemble"] == ["validate data", "split", "automl", "evaluate", "register"]


def test_trials_are_recorded_as_children_of_the_automl_step(trained: Trained) -> None:
    automl = trained.tracker.named("automl")
    trials = [r for r in trained.tracker.children(automl.run_id) if r.tags.get("bankops.kind") == "trial"]
    assert len(trials) == trained.outcome.trials >= 1
    assert len(trained.progress.trials) == len(trials), "each trial was reported while the search ran"
    for trial in trials:
        assert trial.status == "FINISHED"
        assert trial.params["learner"] in LEARNERS
        assert trial.name.startswith("trial-") and trial.name.endswith(trial.params["learner"])
        assert 0.0 < trial.metrics["cv_score"] <= 1.0
        assert trial.metrics["train_time_s"] >= 0
    best_cv = max(t.metrics["cv_score"] for t in trials)
    assert trained.outcome.cv_score == pytest.approx(best_cv)
    assert automl.params["trials"] == str(len(trials))
    assert len(trained.progress.search_budgets) == 1 and 0 < trained.progress.search_budgets[0] <= 4


def test_plots_are_logged_on_the_evaluate_step(trained: Trained) -> None:
    artifacts = trained.tracker.named("evaluate").artifacts
    assert set(artifacts) >= PLOTS
    for name in PLOTS:
        assert artifacts[name].startswith(b"\x89PNG\r\n\x1a\n"), name
        assert len(artifacts[name]) > 2000, f"{name} is suspiciously small"
    importance = artifacts["feature_importance.csv"].decode()
    assert "duration" in importance and "auc_drop" in importance


def test_report_gives_trials_and_holdout_metrics(trained: Trained) -> None:
    report = trained.tracker.report()
    assert report.run_id == trained.outcome.run_id
    assert report.status == "FINISHED"
    assert len(report.trials) == trained.outcome.trials
    assert report.holdout_metrics["AUC_weighted"] == pytest.approx(trained.outcome.metrics["AUC_weighted"])
    # asking with the id of a step gives the same pipeline run
    assert trained.tracker.report(trained.tracker.named("evaluate").run_id).run_id == trained.outcome.run_id


def test_outcome_summarises_the_run(trained: Trained) -> None:
    outcome = trained.outcome
    assert outcome.dataset == trained.dataset
    assert outcome.ensemble and "×" in outcome.ensemble
    assert np.isfinite(outcome.cv_score)
    assert any("duration" in w for w in outcome.warnings)
    assert outcome.duration_s < 90


def test_unknown_metric_fails_before_any_run(valid_frame) -> None:
    store, registry, tracker = InMemoryDatasetStore(), InMemoryModelRegistry(), InMemoryRunTracker()
    dataset = register_dataset(store, samples.csv_bytes(valid_frame), name="bankmarketing").dataset
    pipeline = TrainingPipeline(datasets=store, registry=registry, tracker=tracker)
    with pytest.raises(InvalidInput, match="unknown primary metric 'gini'"):
        pipeline.run(TrainingRequest(dataset=dataset, budget_s=4, metric="gini"))
    assert tracker.runs == []
    assert registry.list() == []


def test_a_misspelt_excluded_column_fails_before_any_run(valid_frame) -> None:
    store, registry, tracker = InMemoryDatasetStore(), InMemoryModelRegistry(), InMemoryRunTracker()
    dataset = register_dataset(store, samples.csv_bytes(valid_frame), name="bankmarketing").dataset
    pipeline = TrainingPipeline(datasets=store, registry=registry, tracker=tracker)
    with pytest.raises(InvalidInput, match="cannot exclude unknown column"):
        pipeline.run(TrainingRequest(dataset=dataset, budget_s=4, exclude_columns=("durration",)))
    assert tracker.runs == []
    assert registry.list() == []


def test_the_default_small_run_keeps_every_column_and_says_why(trained: Trained) -> None:
    automl = trained.tracker.named("automl")
    assert automl.params["feature_selection"] == "fewer than 10,000 training rows"
    assert automl.params["features_dropped"] == "none"
    assert trained.outcome.features_dropped == []
    assert trained.registry.load("1").encoder.columns == schema.FEATURES


def test_columns_found_to_be_noise_are_left_out_of_the_served_model(monkeypatch: pytest.MonkeyPatch,
                                                                   endpoint_records: list[dict]) -> None:
    # The step stands aside under 10,000 rows or when it would take over a tenth of the budget;
    # both limits are lowered so that a 3,000-row, few-second run goes through it.
    monkeypatch.setattr(feature_selection, "MIN_ROWS", 1000)
    monkeypatch.setattr(feature_selection, "MAX_BUDGET_SHARE", 1.0)
    store, registry, tracker = InMemoryDatasetStore(), InMemoryModelRegistry(), InMemoryRunTracker()
    dataset = register_dataset(store, samples.csv_bytes(samples.stratified_sample(3000, seed=1)), name="bankmarketing").dataset
    outcome = TrainingPipeline(datasets=store, registry=registry, tracker=tracker).run(
        TrainingRequest(dataset=dataset, budget_s=6, seed=42, exclude_columns=("duration",)))
    dropped = outcome.features_dropped
    assert dropped, "on 2,700 rows some of the 19 columns measure as noise"
    assert len(dropped) <= 19 // 4 and "duration" not in dropped
    model = registry.load("1")
    assert model.encoder.columns == tuple(c for c in schema.FEATURES if c not in {"duration", *dropped})
    automl = tracker.named("automl")
    assert automl.params["features_dropped"] == ",".join(dropped)
    assert automl.params["features"] == ",".join(model.encoder.columns)
    assert all(automl.metrics[f"probe_importance_{c}"] < feature_selection.DROP_BELOW for c in dropped)
    assert tracker.get(outcome.run_id).tags["bankops.features_dropped"] == ",".join(dropped)
    out = model.predict(pd.DataFrame(endpoint_records))  # clients still send all 20 fields
    assert list(out["prediction"]) == ["yes" if p >= 0.5 else "no" for p in out["probability_yes"]]
    # the scoring service's and batch scoring's fast paths take the narrower matrix too
    records = verification_records()
    x = np.repeat(model.encoder.transform_records(records), NATIVE_BATCH // len(records) + 1, axis=0)
    for compiled in (compile_model(model, records), compile_model(model, records, exact=True, native=True)):
        assert len(compiled.fast_members) == len(model.members), "every member verified on its fast call"
        np.testing.assert_allclose(compiled.proba(x), model.proba_from_matrix(x), rtol=0, atol=1e-6)

"""Boosters compiled to native code (lleaves) give the libraries' answers, and batch scoring uses them
only when they do."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from xgboost import XGBClassifier

from shared.model import BankMarketingModel, Member
from shared.serving import native_trees, predictor
from shared.serving.deployment import ServingState
from shared.serving.predictor import NATIVE_BATCH, compile_model
from shared.serving.served import load_served, verification_records
from shared.serving.watcher import ModelSlot, WorkerStats
from tests.batch_samples import tiny_model


def test_the_compiler_is_installed() -> None:
    """lleaves (with llvmlite < 0.45) is a dependency: without it batch scoring is several times slower."""
    assert native_trees.available()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _data(rows: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=rows), rng.integers(0, 8, rows).astype(float), rng.uniform(0, 999, rows),
                         np.round(rng.normal(93.5, 0.6, rows), 3)])
    x[rng.random(rows) < 0.05, 0] = np.nan
    y = ((x[:, 1] > 3) ^ (np.nan_to_num(x[:, 0]) > 0.5) | (x[:, 2] > 900)).astype(int)
    return x, y


def _edges(model: XGBClassifier, like: np.ndarray) -> np.ndarray:
    """Rows whose values sit on, and one step either side of, every split of the model, as float64
    and at the midpoints where rounding to float32 decides the branch."""
    trees = model.get_booster().trees_to_dataframe()
    splits = trees[trees.Feature != "Leaf"]
    rows = []
    for feature, split in zip(splits.Feature, splits.Split, strict=True):
        j = int(feature[1:])
        t = np.float32(split)
        below = np.nextafter(t, np.float32(-np.inf))
        mid = (float(below) + float(t)) / 2
        for value in (float(t), float(below), mid, np.nextafter(mid, -np.inf), np.nextafter(mid, np.inf),
                      float(np.nextafter(t, np.float32(np.inf)))):
            row = like.copy()
            row[j] = value
            rows.append(row)
    return np.array(rows)


def test_an_xgboost_model_compiled_reaches_the_same_leaves_on_every_split_boundary(tmp_path) -> None:
    x, y = _data()
    model = XGBClassifier(n_estimators=60, max_depth=4, learning_rate=0.2, random_state=0).fit(x, y)
    native = native_trees.compile_text(native_trees.xgboost_text(model), tmp_path)
    edges = np.vstack([_edges(model, x[0]), _edges(model, x[1]), x])
    # float32 sums against double sums: a few 1e-8; a row sent down another branch would differ by far more
    np.testing.assert_allclose(native(edges), model.predict_proba(edges)[:, 1], rtol=0, atol=1e-6)


def test_a_lightgbm_model_compiled_gives_its_answers(tmp_path) -> None:
    x, y = _data(seed=1)
    model = LGBMClassifier(n_estimators=50, num_leaves=15, verbose=-1, random_state=0).fit(x, y)
    native = native_trees.compile_text(native_trees.lightgbm_text(model), tmp_path)
    np.testing.assert_allclose(native(x), model.predict_proba(x)[:, 1], rtol=0, atol=1e-12)


def test_the_machine_code_is_compiled_once_per_model(tmp_path) -> None:
    x, y = _data(seed=2)
    text = native_trees.xgboost_text(XGBClassifier(n_estimators=10, max_depth=3, random_state=0).fit(x, y))
    native_trees.compile_text(text, tmp_path)
    binary = next(tmp_path.glob("*.so"))
    inode = binary.stat().st_ino  # a new compile would replace the file
    again = native_trees.compile_text(text, tmp_path)
    assert binary.stat().st_ino == inode and len(list(tmp_path.glob("*.so"))) == 1
    assert list(tmp_path.glob("*.part")) == []
    assert again(x[:5]).shape == (5,)


def _blend_with_xgboost() -> BankMarketingModel:
    base = tiny_model()
    frame_x = base.encoder.transform_records(verification_records())
    rng = np.random.default_rng(0)
    xs = np.vstack([frame_x] * 40) + rng.normal(0, 0.01, (len(frame_x) * 40, frame_x.shape[1]))
    ys = (base.proba_from_matrix(xs) > 0.2).astype(int)
    boosted = XGBClassifier(n_estimators=30, max_depth=3, random_state=0).fit(xs, ys)
    return BankMarketingModel(encoder=base.encoder, members=[*base.members, Member("xgboost", 0.5, boosted)])


def test_batch_scoring_runs_large_batches_natively_with_the_models_answers() -> None:
    model = _blend_with_xgboost()
    compiled = compile_model(model, verification_records(), exact=True, native=True)
    x = np.repeat(model.encoder.transform_records(verification_records()), NATIVE_BATCH // 8 + 1, axis=0)
    assert len(x) >= NATIVE_BATCH
    np.testing.assert_allclose(compiled.proba(x), model.proba_from_matrix(x), rtol=0, atol=1e-6)
    assert sorted(compiled.native_members) == ["lgbm", "xgboost"]


def test_a_native_member_that_fails_or_disagrees_falls_back_to_its_library(monkeypatch, caplog) -> None:
    model = _blend_with_xgboost()
    x = np.repeat(model.encoder.transform_records(verification_records()), NATIVE_BATCH // 8 + 1, axis=0)

    def broken(text: str, cache_dir: object) -> object:
        if "feature_names=f0" in text:
            raise RuntimeError("compiler crashed")  # the XGBoost member
        return lambda rows: np.full(len(rows), 0.5)  # the LightGBM member: wrong answers

    monkeypatch.setattr(predictor.native_trees, "compile_text", broken)
    compiled = compile_model(model, verification_records(), exact=True, native=True)
    np.testing.assert_allclose(compiled.proba(x), model.proba_from_matrix(x), rtol=0, atol=1e-9)
    assert compiled.native_members == []
    assert "disagree" in caplog.text and "unavailable" in caplog.text


def test_compiled_models_unused_for_a_month_are_removed_when_another_is_compiled(tmp_path) -> None:
    x, y = _data(seed=3)
    old = native_trees.xgboost_text(XGBClassifier(n_estimators=5, max_depth=2, random_state=0).fit(x, y))
    native_trees.compile_text(old, tmp_path)
    (stale,) = tmp_path.glob("*.so")
    month_ago = stale.stat().st_mtime - 31 * 86400
    os.utime(stale, (month_ago, month_ago))
    new = native_trees.xgboost_text(XGBClassifier(n_estimators=6, max_depth=2, random_state=0).fit(x, y))
    native_trees.compile_text(new, tmp_path)
    assert stale.stem not in {p.stem for p in tmp_path.iterdir()}  # its machine code and model file are gone
    assert len(list(tmp_path.glob("*.so"))) == 1 and len(list(tmp_path.glob("*.txt"))) == 1


def _wait_for(condition, seconds: float = 120.0) -> None:
    """Poll until the detached compiler has done its part (bounded; no timing is asserted)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_a_cold_model_scores_with_its_libraries_until_its_trees_compile_then_switches(tmp_path) -> None:
    """Nothing cached: large batches keep each member's library call (the model's own answers) while a
    detached child compiles; once the machine code is there the next large batch runs it, same answers."""
    model = _blend_with_xgboost()
    x = np.repeat(model.encoder.transform_records(verification_records()), NATIVE_BATCH // 8 + 1, axis=0)
    compiled = compile_model(model, verification_records(), exact=True, native=True)
    assert compiled.start_native()  # something to compile: the cache is empty
    np.testing.assert_allclose(compiled.proba(x), model.proba_from_matrix(x), rtol=0, atol=1e-9)
    _wait_for(compiled.native_ready)
    np.testing.assert_allclose(compiled.proba(x), model.proba_from_matrix(x), rtol=0, atol=1e-6)
    assert sorted(compiled.native_members) == ["lgbm", "xgboost"]
    trees = tmp_path / "cache" / "bankops" / "trees"
    _wait_for(lambda: len(list(trees.glob("*.so"))) == 4)  # then the optimised kind, for later runs
    again = compile_model(model, verification_records(), exact=True, native=True)
    assert not again.start_native()  # all cached: nothing starts, every member native from the first batch
    assert sorted(again.native_members) == ["lgbm", "xgboost"]


def test_members_compile_in_parallel_children_and_a_second_compiler_waits_for_the_first(tmp_path) -> None:
    x, y = _data(seed=5)
    models = [XGBClassifier(n_estimators=n, max_depth=3, random_state=0).fit(x, y) for n in (8, 9)]
    texts = [native_trees.xgboost_text(m) for m in models]
    compilations = [native_trees.Compilation(t, tmp_path) for t in texts]
    first = native_trees.start_compiling(compilations)
    second = native_trees.start_compiling(compilations)  # the same files: waits on their locks, compiles nothing twice
    assert first is not None and second is not None
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    assert all(c.binary.exists() for c in compilations) and not list(tmp_path.glob("*.part"))
    assert native_trees.start_compiling(compilations) is None
    # linked into shared libraries where a linker is installed (loaded by ctypes, without LLVM)
    assert all(c.binary.with_suffix(native_trees.LIBRARY).exists() == (shutil.which("ld") is not None) for c in compilations)
    for model, text in zip(models, texts, strict=True):
        native = native_trees.Compilation(text, tmp_path).load()
        np.testing.assert_allclose(native(x), model.predict_proba(x)[:, 1], rtol=0, atol=1e-6)


def test_a_member_of_a_handful_of_trees_stays_on_its_library_in_batches_and_runs_compiled_when_served(tmp_path) -> None:
    """Batch scoring keeps a 4-tree booster on its library (compiling it would cost more than it saves in
    one run); registration still compiles it, for the serving workers, whose every request it saves time."""
    base = tiny_model()
    x = base.encoder.transform_records(verification_records())
    frame_x = np.vstack([x] * 40)
    y = (base.proba_from_matrix(frame_x) > 0.2).astype(int)
    small = LGBMClassifier(n_estimators=4, num_leaves=4, verbose=-1, random_state=0).fit(frame_x, y)
    model = BankMarketingModel(encoder=base.encoder, members=[Member("lgbm", 1.0, small)])
    compiled = compile_model(model, verification_records(), exact=True, native=True)
    assert not compiled.start_native()  # nothing worth compiling
    rows = np.repeat(x, NATIVE_BATCH // 8 + 1, axis=0)
    np.testing.assert_allclose(compiled.proba(rows), model.proba_from_matrix(rows), rtol=0, atol=1e-9)
    assert compiled.native_members == [] and not (tmp_path / "cache" / "bankops" / "trees").exists()
    compiler = predictor.start_native_compilation(model)
    assert compiler is not None and compiler.wait(timeout=120) == 0
    served = load_served(_OneVersion(model), "1", warm_rounds=1, native=True)
    assert served.compiled.serving_native == ["lgbm"]
    records = verification_records(100, seed=5)
    np.testing.assert_allclose(served.score(records).probabilities, model.predict_proba_records(records), rtol=0, atol=1e-9)


class _OneVersion:
    """A registry of one version (what `load_served` reads of it)."""

    def __init__(self, model: BankMarketingModel) -> None:
        self.model = model

    def load(self, version: str) -> BankMarketingModel:
        return self.model


def test_a_serving_worker_switches_to_the_machine_code_once_compiled_and_answers_the_same(tmp_path) -> None:
    """Nothing cached: the worker serves with the libraries and starts a compiler; once the machine code
    is cached its slot swaps to the same version running it for one record as for a hundred, with the
    model's answers; a worker started after that runs it from its first request."""
    model = _blend_with_xgboost()
    state = ServingState(tmp_path / "serving")
    state.write_deployment("1", reason="test")
    slot = ModelSlot(state, lambda v: load_served(_OneVersion(model), v, warm_rounds=1, native=True), WorkerStats(),
                     poll_s=3600, freeze_heap=True)
    slot.start(lambda: "1")
    try:
        records = verification_records(100, seed=3)
        expected = model.predict_proba_records(records)
        first = slot.current
        assert first is not None and first.compiled.serving_native == []
        np.testing.assert_allclose(first.score(records).probabilities, expected, rtol=0, atol=1e-6)
        _wait_for(first.compiled.serving_native_ready)
        slot.upgrade()
        served = slot.current
        assert served is not first and served is not None and served.version == "1"
        assert sorted(served.compiled.serving_native) == ["lgbm", "xgboost"]
        for n in (1, 2, 64, 100):
            np.testing.assert_allclose(served.score(records[:n]).probabilities, expected[:n], rtol=0, atol=1e-6)
        slot.upgrade()
        assert slot.current is served  # nothing more to switch
        again = load_served(_OneVersion(model), "1", warm_rounds=1, native=True)
        assert sorted(again.compiled.serving_native) == ["lgbm", "xgboost"] and again.upgraded() is None
    finally:
        slot.stop()


def test_a_serving_worker_keeps_the_library_of_a_member_whose_machine_code_disagrees(monkeypatch, caplog) -> None:
    model = _blend_with_xgboost()
    warm = load_served(_OneVersion(model), "1", warm_rounds=1, native=True)
    _wait_for(warm.compiled.serving_native_ready)
    monkeypatch.setattr(native_trees.Compilation, "load", lambda self, threads=None: lambda rows: np.full(len(rows), 0.5))
    served = load_served(_OneVersion(model), "1", warm_rounds=1, native=True)
    assert served.compiled.serving_native == [] and "disagree" in caplog.text
    records = verification_records(100, seed=4)
    np.testing.assert_allclose(served.score(records).probabilities, model.predict_proba_records(records), rtol=0, atol=1e-6)


def _register_blend(tmp_path, wait_s: float) -> BankMarketingModel:
    from shared.adapters.local.registry import MlflowModelRegistry
    from shared.adapters.local.tracking import MlflowTracker
    from shared.mlflow_model import example_frame

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, "native", tmp_path / "artifacts")
    registry = MlflowModelRegistry(uri, "m", compile_at_registration=True, native_wait_s=wait_s)
    model = _blend_with_xgboost()
    with tracker.run("pipeline") as run_id:
        registry.register(model, run_id=run_id, metrics={}, tags={}, input_example=example_frame(verification_records()[:2]))
    return model


def test_registering_a_version_compiles_its_trees_and_train_waits_for_them(tmp_path) -> None:
    """`bankops train` registers with a wait: when it returns, batch scoring and serving find every member's
    machine code cached and run it from their first call."""
    model = _register_blend(tmp_path, wait_s=120)
    served = load_served(_OneVersion(model), "1", warm_rounds=1, native=True)
    assert sorted(served.compiled.serving_native) == ["lgbm", "xgboost"]
    batch = compile_model(model, verification_records(), exact=True, native=True)
    batch.start_native()  # the optimised kind may still be compiling: the quick one is used meanwhile
    assert sorted(batch.native_members) == ["lgbm", "xgboost"]
    x = np.repeat(model.encoder.transform_records(verification_records()), NATIVE_BATCH // 8 + 1, axis=0)
    np.testing.assert_allclose(batch.proba(x), model.proba_from_matrix(x), rtol=0, atol=1e-6)

"""Fixed-config experiments for the pre-call model (no `duration`): which features and configs help?

    .venv/bin/python bench/precall_cv.py --seeds 42 1 2 --features base te --models lgbm catboost

For each split (train_test_split(test_size=0.2, random_state=seed, stratify=y) of the shipped data,
as bench/train_bench.py), each feature set and each fixed model config: 5-fold out-of-fold AUC on
the 80% (every feature fit, target encodings included, is refit inside each fold, so the OOF score
is an honest estimate) and, only to confirm, the holdout AUC of one fit on the 80%. Fixed configs
make the figures independent of CPU time, so they do not move with the shared machine's load.
Model choice is made on the OOF column; the holdout (SE about 0.003) is for confirmation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared import schema  # noqa: E402
from shared.features import FeatureEncoder  # noqa: E402

DATA = ROOT / "shared" / "resources" / "bankmarketing_train.csv"
NOISE = ("marital", "housing", "loan")  # what the noise-column step leaves out on most splits


def split(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    frame = pd.read_csv(DATA)
    y = (frame[schema.TARGET] == schema.POSITIVE).to_numpy(dtype=np.int64)
    a, b, ya, yb = train_test_split(frame, y, test_size=0.2, random_state=seed, stratify=y)
    return a.reset_index(drop=True), b.reset_index(drop=True), ya, yb


def features(name: str, train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train matrix, test matrix) of feature set `name`, fit on `train` only."""
    if name.startswith("enc"):  # the project's encoder (shared/features.py)
        from shared.features import FeatureEncoder as Enc

        enc = Enc.fit(train, y, exclude=("duration",))
        return enc.fit_matrix(train, y, seed=seed) if hasattr(enc, "fit_matrix") else enc.transform(train), enc.transform(test)
    also = tuple(c for c in name.split("-")[1:] if c in schema.FEATURES)  # "drop-job-education": drop these too
    enc = FeatureEncoder.fit(train, y, exclude=("duration", *(NOISE if "drop" in name else ()), *also))
    xa, xb = enc.transform(train), enc.transform(test)
    extra_a: list[np.ndarray] = []
    extra_b: list[np.ndarray] = []

    def keys(frame: pd.DataFrame, cols: tuple[str, ...]) -> pd.Series:
        return frame[list(cols)].astype(str).agg("|".join, axis=1)

    groups: dict[str, tuple[str, ...]] = {
        "period": ("cons.price.idx",),
        "day": ("euribor3m", "cons.price.idx"),
        "daydow": ("euribor3m", "cons.price.idx", "day_of_week"),
        "mdow": ("month", "day_of_week"),
        "job": ("job",),
        "periodcontact": ("cons.price.idx", "contact"),
        "daycontact": ("euribor3m", "cons.price.idx", "contact"),
    }
    if "cnt" in name:
        for g in ("day", "daydow"):
            ka, kb = keys(train, groups[g]), keys(test, groups[g])
            counts = ka.value_counts()
            extra_a.append(ka.map(counts).to_numpy(float))
            extra_b.append(kb.map(counts).fillna(0).to_numpy(float))
    if "te" in name:
        from sklearn.preprocessing import TargetEncoder

        wanted = ["period", "day", "daydow", "mdow"] if "te4" in name else ["day", "daydow"] if "te2" in name else \
            ["day"] if "te1" in name else ["period", "day", "daydow", "mdow", "periodcontact", "daycontact"]
        ka = pd.DataFrame({g: keys(train, groups[g]) for g in wanted})
        kb = pd.DataFrame({g: keys(test, groups[g]) for g in wanted})
        te = TargetEncoder(target_type="binary", cv=StratifiedKFold(5, shuffle=True, random_state=seed))
        extra_a.append(te.fit_transform(ka, y))
        extra_b.append(te.transform(kb))
    if "flag" in name:
        extra_a.append((train["pdays"] == 999).to_numpy(float))
        extra_b.append((test["pdays"] == 999).to_numpy(float))
    if extra_a:
        xa = np.column_stack([xa, *extra_a])
        xb = np.column_stack([xb, *extra_b])
    return xa, xb


MODELS: dict[str, Callable[[int], Any]] = {}


def model(name: str) -> Callable[[Callable[[int], Any]], Callable[[int], Any]]:
    def register(fn: Callable[[int], Any]) -> Callable[[int], Any]:
        MODELS[name] = fn
        return fn
    return register


@model("lgbm")
def _lgbm(seed: int) -> Any:
    from lightgbm import LGBMClassifier
    return LGBMClassifier(n_estimators=600, learning_rate=0.02, num_leaves=15, min_child_samples=50, subsample=0.8,
                          subsample_freq=1, colsample_bytree=0.5, reg_lambda=5.0, random_state=seed, n_jobs=1, verbose=-1)


@model("lgbm_reg")
def _lgbm_reg(seed: int) -> Any:
    from lightgbm import LGBMClassifier
    return LGBMClassifier(n_estimators=500, learning_rate=0.02, num_leaves=7, min_child_samples=100, subsample=0.7,
                          subsample_freq=1, colsample_bytree=0.5, reg_lambda=10.0, random_state=seed, n_jobs=1, verbose=-1)


@model("lgbm_slow")
def _lgbm_slow(seed: int) -> Any:
    from lightgbm import LGBMClassifier
    return LGBMClassifier(n_estimators=800, learning_rate=0.01, num_leaves=15, min_child_samples=100, subsample=0.7,
                          subsample_freq=1, colsample_bytree=0.5, reg_lambda=10.0, random_state=seed, n_jobs=1, verbose=-1)


@model("xgb")
def _xgb(seed: int) -> Any:
    from xgboost import XGBClassifier
    return XGBClassifier(n_estimators=500, learning_rate=0.03, max_depth=5, subsample=0.8, colsample_bytree=0.7,
                         min_child_weight=2, tree_method="hist", random_state=seed, n_jobs=1)


@model("xgb_reg")
def _xgb_reg(seed: int) -> Any:
    from xgboost import XGBClassifier
    return XGBClassifier(n_estimators=500, learning_rate=0.02, max_depth=4, subsample=0.7, colsample_bytree=0.6,
                         min_child_weight=10, reg_lambda=5.0, tree_method="hist", random_state=seed, n_jobs=1)


@model("catboost")
def _cat(seed: int) -> Any:
    from catboost import CatBoostClassifier
    return CatBoostClassifier(iterations=1000, learning_rate=0.05, depth=6, l2_leaf_reg=3, random_seed=seed, thread_count=1,
                              verbose=0, allow_writing_files=False)


@model("catboost_reg")
def _cat_reg(seed: int) -> Any:
    from catboost import CatBoostClassifier
    return CatBoostClassifier(iterations=800, learning_rate=0.04, depth=5, l2_leaf_reg=10, random_seed=seed, thread_count=1,
                              verbose=0, allow_writing_files=False)


def curve(fs: str, mname: str, train: pd.DataFrame, y: np.ndarray, seed: int, step: int = 50) -> dict[int, float]:
    """5-fold OOF AUC of model `mname` after every `step` trees: where its tree count should stop."""
    est = MODELS[mname](seed)
    top = int(est.get_params().get("n_estimators") or est.get_params()["iterations"])
    ks = list(range(step, top + 1, step))
    oof = {k: np.zeros(len(y)) for k in ks}
    for a, b in StratifiedKFold(5, shuffle=True, random_state=seed).split(train, y):
        xa, xb = features(fs, train.iloc[a].reset_index(drop=True), y[a], train.iloc[b].reset_index(drop=True), seed)
        m = MODELS[mname](seed).fit(xa, y[a])
        kind = type(m).__name__
        if kind == "CatBoostClassifier":
            staged = {step * (i + 1): p[:, 1] for i, p in enumerate(m.staged_predict_proba(xb, eval_period=step))}
        elif kind == "XGBClassifier":
            staged = {k: m.predict_proba(xb, iteration_range=(0, k))[:, 1] for k in ks}
        else:
            staged = {k: m.predict_proba(xb, num_iteration=k)[:, 1] for k in ks}
        for k in ks:
            oof[k][b] = staged[k]
    return {k: float(roc_auc_score(y, oof[k])) for k in ks}


def _pre_call(learner: str) -> Callable[[int], Any]:
    def build(seed: int) -> Any:
        from shared.training.learners import PRE_CALL_PORTFOLIO, build_native

        return build_native(learner, dict(PRE_CALL_PORTFOLIO)[learner], seed=seed, n_jobs=1)
    return build


for _learner in ("lgbm", "catboost", "xgboost"):  # the shipped pre-call portfolio (shared/training/learners.py)
    MODELS[f"pc_{_learner}"] = _pre_call(_learner)


def evaluate(fs: str, mname: str, train: pd.DataFrame, test: pd.DataFrame, y: np.ndarray, yt: np.ndarray,
             seed: int) -> dict[str, float]:
    oof = np.zeros(len(y))
    started = time.monotonic()
    for a, b in StratifiedKFold(5, shuffle=True, random_state=seed).split(train, y):
        xa, xb = features(fs, train.iloc[a].reset_index(drop=True), y[a], train.iloc[b].reset_index(drop=True), seed)
        oof[b] = MODELS[mname](seed).fit(xa, y[a]).predict_proba(xb)[:, 1]
    xa, xb = features(fs, train, y, test, seed)
    hold = MODELS[mname](seed).fit(xa, y).predict_proba(xb)[:, 1]
    return {"oof": float(roc_auc_score(y, oof)), "holdout": float(roc_auc_score(yt, hold)), "s": time.monotonic() - started,
            "_oof": oof.tolist(), "_hold": hold.tolist()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--features", nargs="+", default=["base"])
    parser.add_argument("--models", nargs="+", default=["lgbm"])
    parser.add_argument("--out", type=Path, default=None, help="JSON lines of every result, predictions included")
    parser.add_argument("--curves", action="store_true", help="OOF AUC per 50 trees of each model instead (no holdout)")
    args = parser.parse_args(argv)
    rows = []
    if args.curves:
        for seed in args.seeds:
            train, _, y, _ = split(seed)
            for fs in args.features:
                for m in args.models:
                    c = curve(fs, m, train, y, seed)
                    best = max(c, key=c.__getitem__)
                    print(json.dumps({"seed": seed, "features": fs, "model": m, "best_trees": best, "best_oof": round(c[best], 5),
                                      "curve": {k: round(v, 5) for k, v in c.items()}}), flush=True)
        return 0
    for seed in args.seeds:
        train, test, y, yt = split(seed)
        for fs in args.features:
            for m in args.models:
                r = evaluate(fs, m, train, test, y, yt, seed)
                rows.append({"seed": seed, "features": fs, "model": m, **{k: v for k, v in r.items() if not k.startswith("_")}})
                print(f"seed {seed:3d} {fs:14s} {m:13s} oof {r['oof']:.5f} holdout {r['holdout']:.5f} ({r['s']:.0f} s)", flush=True)
                if args.out:
                    with args.out.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps({"seed": seed, "features": fs, "model": m, **r}) + "\n")
    table = pd.DataFrame(rows)
    print(table.groupby(["features", "model"])[["oof", "holdout"]].mean().round(5).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

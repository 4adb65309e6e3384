"""One AutoGluon run on one split, inside AutoGluon's own venv (bench/train_splits.py starts it).

    .cache/bench-venvs/autogluon/bin/python bench/peers/autogluon_run.py --train train.csv --test test.csv \
        --preset medium_quality --budget 60 --seed 42 --out out.json [--drop duration]

The split's rows come as the two CSVs that train_splits.py wrote from bench/train_bench.py's own
split, so AutoGluon fits on the same 80% and is scored on the same 20% as bankops; nothing of this
repo is imported (AutoGluon 1.6 needs pandas < 3, this project uses pandas 3). Fits
TabularPredictor(eval_metric="roc_auc", presets=--preset, time_limit=--budget) with its defaults
otherwise, and writes the holdout AUC, fit and total wall time, peak RSS and versions as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

TARGET = "y"
POSITIVE = "yes"


def peak_rss_mb() -> dict[str, float]:
    """Peak RSS of this process and of its largest finished child (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(own, 1), "children": round(children, 1), "total": round(own + children, 1)}


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--preset", required=True, choices=["medium_quality", "good_quality", "high_quality", "best_quality"])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=42, help="the split's seed (recorded; AutoGluon's own seed is fixed)")
    parser.add_argument("--drop", nargs="*", default=[], help="columns to leave out (duration for a pre-call model)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    import pandas as pd
    from autogluon.tabular import TabularPredictor
    from sklearn.metrics import roc_auc_score

    train = pd.read_csv(args.train).drop(columns=args.drop)
    test = pd.read_csv(args.test).drop(columns=args.drop)
    train[TARGET] = (train[TARGET] == POSITIVE).astype(int)
    y_test = (test.pop(TARGET) == POSITIVE).astype(int).to_numpy()
    load_before = [round(v, 2) for v in os.getloadavg()]
    workdir = Path(tempfile.mkdtemp(prefix="ag-"))
    try:
        started = time.monotonic()
        predictor = TabularPredictor(label=TARGET, eval_metric="roc_auc", path=str(workdir / "model"), verbosity=2)
        predictor.fit(train, presets=args.preset, time_limit=args.budget)
        fit_s = time.monotonic() - started
        t0 = time.monotonic()
        proba = predictor.predict_proba(test, as_pandas=False)
        predict_s = time.monotonic() - t0
        positive = proba[:, 1] if proba.ndim == 2 else proba
        auc = float(roc_auc_score(y_test, positive))
        board = predictor.leaderboard(silent=True)
        best = str(predictor.model_best)
        models = len(board)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "system": f"autogluon_{args.preset}",
        "preset": args.preset, "seed": args.seed, "budget_s": args.budget, "dropped_columns": args.drop,
        "train_rows": len(train), "test_rows": len(test), "columns": [c for c in train.columns if c != TARGET],
        "holdout_auc_weighted": round(auc, 5), "holdout_auc_weighted_unrounded": auc,
        "wall_time_s": round(fit_s, 2), "predict_holdout_s": round(predict_s, 3),
        "model_best": best, "models_trained": models,
        "peak_rss_mb": peak_rss_mb(),
        "conditions": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": [round(v, 2) for v in os.getloadavg()]},
        "versions": {"python": sys.version.split()[0], **{p: version(p) for p in (
            "autogluon.tabular", "autogluon.core", "lightgbm", "catboost", "xgboost-cpu", "scikit-learn", "pandas", "numpy",
            "torch", "fastai", "ray")}},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{report['system']} split {args.seed}: holdout AUC {auc:.5f}, fit {fit_s:.1f} s, best {best}, {models} models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

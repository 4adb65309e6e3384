"""Training benchmark: the project's AutoML on a fixed 80/20 split of the shipped data.

    .venv/bin/python bench/train_bench.py --budget 60 --out bench/results/train.json

Splits shared/resources/bankmarketing_train.csv with train_test_split(test_size=0.2,
random_state=42, stratify=y), runs the same AutoML step as `bankops train` (FeatureEncoder.fit,
then shared.training.automl.run_automl: FLAML search + blend) on the 80% within the budget,
scores the 20%, and fits a default LightGBM (400 trees, learning rate 0.05) on the same split as
the floor. Writes holdout AUC_weighted, CV/OOF scores, wall time, peak memory and software
versions to --out, and prints a table against the floor and the published reference numbers.
`--pre-call` leaves out `duration` (known only after the call) for the AutoML and the floor alike.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.versions import versions  # noqa: E402
from shared import schema  # noqa: E402
from shared.features import FeatureEncoder  # noqa: E402
from shared.training.automl import run_automl  # noqa: E402
from shared.training.learners import LEARNERS  # noqa: E402
from shared.training.pipeline import SEARCH_SHARE  # noqa: E402

DATA = ROOT / "shared" / "resources" / "bankmarketing_train.csv"
TARGET_AUC = 0.948
MEMORY_LIMIT_MB = 1024
# Holdout AUC_weighted measured on this split on a 2-core machine (quoted in the issue).
REFERENCE = (
    ("default LightGBM (quoted)", 0.9454, None),
    ("FLAML 60 s (quoted)", 0.9459, 60),
    ("FLAML 240 s (quoted)", 0.9471, 240),
    ("AutoGluon medium_quality (quoted)", 0.9476, 38),
    ("AutoGluon best_quality 300 s (quoted)", 0.9475, 300),
    ("Azure AutoML, 4-node cluster (quoted)", 0.9464, 1800),
)
PACKAGES = ("flaml", "lightgbm", "xgboost", "catboost", "scikit-learn", "numpy", "pandas")


def peak_rss_mb() -> dict[str, float]:
    """Peak resident set size of this process and of its largest finished child (Linux: KiB)."""
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / scale
    return {"self": round(own, 1), "children": round(children, 1), "total": round(own + children, 1)}


def load_split(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    frame = pd.read_csv(DATA)
    y = (frame[schema.TARGET] == schema.POSITIVE).to_numpy(dtype=np.int64)
    train, test, y_train, y_test = train_test_split(frame, y, test_size=0.2, random_state=seed, stratify=y)
    return train.reset_index(drop=True), test.reset_index(drop=True), y_train, y_test


def bench_automl(train: pd.DataFrame, test: pd.DataFrame, y_train: np.ndarray, y_test: np.ndarray,
                 args: argparse.Namespace) -> dict:
    started = time.monotonic()
    encoder = FeatureEncoder.fit(train, y_train, exclude=args.exclude)
    x = encoder.transform(train)
    result = run_automl(x, y_train, list(encoder.columns), budget_s=args.budget, started=started, seed=args.seed,
                        learners=tuple(args.learners), search_share=args.search_share, per_learner=args.per_learner,
                        portfolio=not args.no_portfolio, drop_noise=not args.keep_all_columns)
    model = result.model(encoder)
    wall = time.monotonic() - started
    t0 = time.monotonic()
    auc = float(roc_auc_score(y_test, model.predict_proba(test)))
    predict_s = time.monotonic() - t0
    one = model.encoder.transform(test.head(1))
    latencies = []
    for _ in range(30):
        t1 = time.perf_counter()
        model.proba_from_matrix(one)
        latencies.append(time.perf_counter() - t1)
    return {
        "holdout_auc_weighted": round(auc, 5),
        "holdout_auc_weighted_unrounded": auc,  # what the target is judged on
        "cv_score_best_search": round(result.cv_score, 5),
        "oof_score_blend": round(result.blend.oof_score, 5) if np.isfinite(result.blend.oof_score) else None,
        "oof_score_candidates": {k: round(v, 5) for k, v in result.blend.candidate_scores.items()},
        "features_dropped": result.features.dropped,
        "feature_selection_s": round(result.features.seconds, 2),
        "skipped_candidates": result.blend.skipped,
        "members_not_refit": result.blend.unrefit,
        "candidate_seconds": result.blend.seconds,
        "ensemble": model.describe(),
        "trials": len(result.trials),
        "search_s": round(result.search_s, 2),
        "blend_s": round(result.blend_s, 2),
        "search_budget_s": round(args.budget * args.search_share, 2),
        "wall_time_s": round(wall, 2),
        "predict_holdout_s": round(predict_s, 3),
        "predict_one_row_ms": round(1000 * float(np.median(latencies)), 2),
    }


def bench_floor(train: pd.DataFrame, test: pd.DataFrame, y_train: np.ndarray, y_test: np.ndarray, seed: int,
                exclude: tuple[str, ...] = ()) -> dict:
    from lightgbm import LGBMClassifier

    started = time.monotonic()
    encoder = FeatureEncoder.fit(train, y_train, exclude=exclude)
    model = LGBMClassifier(n_estimators=400, learning_rate=0.05, random_state=seed, verbose=-1)
    model.fit(encoder.transform(train), y_train)
    auc = float(roc_auc_score(y_test, model.predict_proba(encoder.transform(test))[:, 1]))
    return {"holdout_auc_weighted": round(auc, 5), "wall_time_s": round(time.monotonic() - started, 2)}


def table(report: dict) -> str:
    floor = report["floor_lightgbm"]["holdout_auc_weighted"]
    automl = report["automl"]
    rows = [
        ("bankops AutoML (this run)", automl["holdout_auc_weighted"], automl["wall_time_s"]),
        ("default LightGBM floor (this run)", floor, report["floor_lightgbm"]["wall_time_s"]),
        *(() if report["settings"]["excluded_columns"] else REFERENCE),  # the quoted figures are with every column
    ]
    lines = [f"{'model':42s} {'holdout AUC':>11s} {'vs floor':>9s} {'gap':>8s} {'time s':>7s}"]
    for name, auc, seconds in rows:
        shown = "-" if seconds is None else f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"
        lines.append(f"{name:42s} {auc:11.4f} {auc / floor:9.4f} {auc - floor:+8.4f} {shown:>7s}")
    if report["settings"].get("pre_call"):
        lines.append(f"pre-call (no {', '.join(report['settings']['excluded_columns'])}): the quoted rows are with duration; "
                     f"judge against the peers on the same split (bench/train_splits.py)")
    else:
        lines.append(f"target: holdout AUC >= {TARGET_AUC} within {report['budget_s']:.0f} s and peak memory < {MEMORY_LIMIT_MB} MB")
    oof = "n/a" if automl["oof_score_blend"] is None else f"{automl['oof_score_blend']:.4f}"
    lines.append(f"CV: best searched config {automl['cv_score_best_search']:.4f}, blend out-of-fold {oof}; "
                 f"ensemble {automl['ensemble']}; trials {automl['trials']}")
    peak = report["peak_rss_mb"]["total"]
    lines.append(f"wall {automl['wall_time_s']:.1f} s (budget {report['budget_s']:.0f} s); peak RSS {peak:.0f} MB; "
                 f"load average before/after {report['conditions']['load_before']} / {report['conditions']['load_after']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train.json")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--search-share", type=float, default=SEARCH_SHARE)
    parser.add_argument("--per-learner", type=int, default=2, help="searched configs per learner offered to the blend")
    parser.add_argument("--no-portfolio", action="store_true", help="blend searched configs only")
    parser.add_argument("--learners", nargs="+", default=list(LEARNERS))
    parser.add_argument("--keep-all-columns", action="store_true", help="skip the step that leaves out noise columns")
    parser.add_argument("--no-floor", action="store_true", help="skip the LightGBM floor")
    parser.add_argument("--pre-call", action="store_true",
                        help=f"leave out the columns known only after the call ({', '.join(schema.LEAKY_FEATURES)}), "
                             "for the AutoML and the floor, as `bankops train --pre-call` does")
    args = parser.parse_args(argv)
    args.exclude = tuple(schema.LEAKY_FEATURES) if args.pre_call else ()

    train, test, y_train, y_test = load_split(args.seed)
    t0 = time.monotonic()
    for module in ("catboost", "flaml.automl", "lightgbm", "xgboost"):  # imported before the clock starts
        importlib.import_module(module)
    import_s = time.monotonic() - t0
    load_before = [round(v, 2) for v in os.getloadavg()]
    automl = bench_automl(train, test, y_train, y_test, args)
    peak = peak_rss_mb()  # the AutoML's peak, before the floor runs
    no_floor = {"holdout_auc_weighted": float("nan"), "wall_time_s": 0.0}
    floor = no_floor if args.no_floor else bench_floor(train, test, y_train, y_test, args.seed, args.exclude)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "split": {"test_size": 0.2, "random_state": args.seed, "stratify": "y", "train_rows": len(train), "test_rows": len(test)},
        "budget_s": args.budget,
        "settings": {"search_share": args.search_share, "per_learner": args.per_learner, "portfolio": not args.no_portfolio,
                     "drop_noise_columns": not args.keep_all_columns, "learners": args.learners,
                     "pre_call": args.pre_call, "excluded_columns": list(args.exclude)},
        "automl": automl,
        "floor_lightgbm": floor,
        "peak_rss_mb": peak,
        "within_budget": automl["wall_time_s"] <= args.budget + 5,
        # the 0.948 target is the with-duration model's; a pre-call run is judged against its peers
        "meets_target": None if args.pre_call
        else automl["holdout_auc_weighted_unrounded"] >= TARGET_AUC and peak["total"] < MEMORY_LIMIT_MB,
        "conditions": {"cpus": os.cpu_count(), "import_s": round(import_s, 2), "load_before": load_before,
                       "load_after": [round(v, 2) for v in os.getloadavg()],
                       "openmp": {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ},
                       "platform": platform.platform()},
        "versions": versions(PACKAGES),
        "reference": [{"name": n, "holdout_auc_weighted": a, "time_s": s} for n, a, s in REFERENCE],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from shared.openmp import apply_openmp_environment

    apply_openmp_environment()  # this process and the peers it starts
    raise SystemExit(main())

"""Training benchmark over several 80/20 splits: is a change better, or was the bench split lucky?

    .venv/bin/python bench/train_splits.py --seeds 42 1 2 3 4 5 --out bench/results/train_splits.json
    .venv/bin/python bench/train_splits.py --with-baseline      # also every split with --keep-all-columns

The holdout of one split has 6,590 rows, so its AUC moves by a few 1e-4 with the rows drawn alone
(its standard error is about 0.003); a change to the AutoML is judged on the mean and the sign of
its difference over splits. Each run is bench/train_bench.py in a process of its own (`--seed` sets
the split and the AutoML's seed; no floor), after a pause so the previous run's load average does
not switch the boosters to passive OpenMP waiting (fewer trials).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parents[1]
BASELINE_FLAG = "--keep-all-columns"


def run_one(seed: int, budget: float, extra: list[str], workdir: Path) -> dict:
    out = workdir / f"seed{seed}{''.join(extra).replace('-', '_')}.json"
    cmd = [sys.executable, str(ROOT / "bench" / "train_bench.py"), "--budget", str(budget), "--seed", str(seed), "--no-floor",
           "--out", str(out), *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = json.loads(out.read_text(encoding="utf-8"))
    automl = report["automl"]
    return {"seed": seed, "holdout_auc_weighted": automl["holdout_auc_weighted_unrounded"], "oof_score_blend": automl["oof_score_blend"],
            "features_dropped": automl.get("features_dropped", []), "trials": automl["trials"], "wall_time_s": automl["wall_time_s"],
            "peak_rss_mb": report["peak_rss_mb"]["total"], "load_before": report["conditions"]["load_before"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4, 5])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--pause", type=float, default=30.0, help="seconds between runs, for the load average to settle")
    parser.add_argument("--with-baseline", action="store_true", help=f"also run each split with {BASELINE_FLAG}")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_splits.json")
    args = parser.parse_args(argv)

    variants = {"default": []} | ({"keep_all_columns": [BASELINE_FLAG]} if args.with_baseline else {})
    total = len(args.seeds) * len(variants)
    results: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        done = 0
        for seed in args.seeds:
            for name, extra in variants.items():
                if done:
                    time.sleep(args.pause)
                started = time.monotonic()
                row = run_one(seed, args.budget, extra, Path(tmp))
                results[name].append(row)
                done += 1
                print(f"[{done}/{total}] split {seed:>3} {name:16s} holdout {row['holdout_auc_weighted']:.5f}  "
                      f"trials {row['trials']:>3}  {time.monotonic() - started:.0f} s  dropped {','.join(row['features_dropped']) or '-'}",
                      flush=True)
    summary = {name: {"mean_holdout_auc_weighted": mean([r["holdout_auc_weighted"] for r in rows]),
                      "min": min(r["holdout_auc_weighted"] for r in rows), "max": max(r["holdout_auc_weighted"] for r in rows)}
               for name, rows in results.items()}
    if args.with_baseline:
        pairs = zip(results["default"], results["keep_all_columns"], strict=True)
        diffs = [a["holdout_auc_weighted"] - b["holdout_auc_weighted"] for a, b in pairs]
        summary["default_minus_keep_all_columns"] = {"mean": mean(diffs), "per_split": dict(zip(args.seeds, diffs, strict=True)),
                                                     "splits_better": sum(d > 0 for d in diffs)}
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "budget_s": args.budget, "seeds": args.seeds,
              "summary": summary, "runs": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for name, s in summary.items():
        if "mean_holdout_auc_weighted" in s:
            print(f"{name:16s} mean holdout AUC {s['mean_holdout_auc_weighted']:.5f} (min {s['min']:.5f}, max {s['max']:.5f})")
    if args.with_baseline:
        d = summary["default_minus_keep_all_columns"]
        print(f"leaving out noise columns: {d['mean']:+.5f} on average, better on {d['splits_better']} of {len(args.seeds)} splits")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from shared.openmp import apply_openmp_environment

    apply_openmp_environment()  # this process and the peers it starts
    raise SystemExit(main())

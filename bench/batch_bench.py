"""Batch scoring benchmark: bankops batch scoring against the naive pandas + MLflow path, CSV in and out.

    .venv/bin/python bench/batch_bench.py --rows 1000000 --out bench/results/batch.json

Generates a client list of --rows rows sampled with replacement from the shipped data (into
--home, not the repo), makes sure --home has a registered model (trains one with
`bankops train --budget` when it has none), then runs, each in its own process so each peak
memory is its own:

- fast: `shared.batch.job.score_file` (what `bankops batch-score` runs), CSV in, CSV out;
- naive: pandas `read_csv`, the MLflow pyfunc model's `predict`, `to_csv`.

Model loading is timed apart and left out of both; for the fast path it includes compiling the
LightGBM and XGBoost members to native code from a cold cache, in child processes
(`compile_peak_rss_mb`), which a user pays once per model version. Writes seconds, rows/s, peak RSS, the ratio
and a check that both paths give the same probabilities to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.versions import versions  # noqa: E402

TARGET_RATIO = 3.0
MEMORY_LIMIT_MB = 1024
PACKAGES = ("pyarrow", "pandas", "numpy", "mlflow", "lightgbm", "xgboost", "catboost", "scikit-learn", "lleaves", "llvmlite")


def peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(who).ru_maxrss / scale, 1)


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """`rows` lines of the shipped data (without y), drawn with replacement."""
    import numpy as np
    import pandas as pd

    from shared.resources import shipped_data

    frame = pd.read_csv(shipped_data(), dtype=str, keep_default_na=False).drop(columns=["y"])
    lines = frame.to_csv(index=False, header=False, lineterminator="\n").splitlines(keepends=True)
    picked = np.random.default_rng(seed).integers(0, len(lines), rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(",".join(frame.columns) + "\n")
        for start in range(0, rows, 100_000):
            fh.write("".join(lines[i] for i in picked[start:start + 100_000]))
    tmp.replace(path)


def model_version(home: Path, budget: float) -> str:
    from shared.bootstrap import bootstrap
    from shared.config import load_settings
    from shared.errors import NotFound

    registry = bootstrap(load_settings(home=home)).registry
    try:
        champion = registry.alias("champion")
        return champion.version if champion else registry.get().version
    except NotFound:
        pass
    print(f"no model in {home}: training one (budget {budget:.0f}s)", flush=True)
    subprocess.run([str(Path(sys.executable).with_name("bankops")), "train", "--budget", str(budget), "--home", str(home)],
                   check=True)
    return registry.get().version


def child_fast(home: Path, version: str, source: Path, output: Path) -> dict:
    from shared.batch.job import score_file
    from shared.batch.scorer import BatchModel
    from shared.bootstrap import bootstrap
    from shared.config import load_settings

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="bankops-bench-cache-")  # compile cold: what a new model costs
    t0 = time.monotonic()
    model = BatchModel.load(bootstrap(load_settings(home=home)).registry, version)
    model.compiled.prepare_native()
    load_s = time.monotonic() - t0
    t1 = time.monotonic()
    summary = score_file(model, source, output)
    seconds = time.monotonic() - t1
    return {"seconds": round(seconds, 2), "rows_per_s": round(summary.rows_read / seconds), "model_load_s": round(load_s, 2),
            "rows_scored": summary.rows_scored, "peak_rss_mb": peak_mb(), "model": model.model.describe(),
            "fast_members": model.compiled.fast_members, "native_members": model.compiled.native_members,
            # the boosters are compiled to native code in child processes, before scoring (model_load_s)
            "compile_peak_rss_mb": peak_mb(resource.RUSAGE_CHILDREN)}


def child_naive(home: Path, version: str, source: Path, output: Path) -> dict:
    import mlflow
    import pandas as pd

    from shared.config import load_settings

    settings = load_settings(home=home)
    mlflow.set_tracking_uri(settings.paths.tracking_uri)
    t0 = time.monotonic()
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    load_s = time.monotonic() - t0
    t1 = time.monotonic()
    frame = pd.read_csv(source)
    t2 = time.monotonic()
    scored = model.predict(frame)
    t3 = time.monotonic()
    out = pd.concat([frame, scored], axis=1)
    out["model_version"] = version
    out.to_csv(output, index=False)
    t4 = time.monotonic()
    return {"seconds": round(t4 - t1, 2), "rows_per_s": round(len(frame) / (t4 - t1)), "model_load_s": round(load_s, 2),
            "read_csv_s": round(t2 - t1, 2), "predict_s": round(t3 - t2, 2), "to_csv_s": round(t4 - t3, 2),
            "peak_rss_mb": peak_mb()}


def run_child(mode: str, args: argparse.Namespace, version: str, source: Path, output: Path) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--home", str(args.home), "--version", version,
               "--source", str(source), "--output", str(output)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_probabilities(fast: Path, naive: Path, rows: int = 100_000) -> float:
    """The largest difference between the two outputs' probability_yes over the first rows."""
    import numpy as np
    import pandas as pd

    a = pd.read_csv(fast, usecols=["probability_yes"], nrows=rows)["probability_yes"].to_numpy()
    b = pd.read_csv(naive, usecols=["probability_yes"], nrows=rows)["probability_yes"].to_numpy()
    return float(np.abs(a - b).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "bankops-bench-batch")
    parser.add_argument("--budget", type=float, default=60.0, help="training budget when --home has no model (as bankops train)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch.json")
    parser.add_argument("--child", choices=("fast", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--version", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.home = args.home.resolve()
    if args.child:
        from shared.logging_setup import quiet_libraries

        quiet_libraries()
        result = (child_fast if args.child == "fast" else child_naive)(args.home, args.version, args.source, args.output)
        print(json.dumps(result))
        return

    data = args.home / "bench" / f"clients-{args.rows}.csv"
    if not data.exists():
        print(f"generating {args.rows:,} rows into {data}", flush=True)
        generate(data, args.rows)
    version = model_version(args.home, args.budget)
    fast_out, naive_out = data.with_name("fast.predictions.csv"), data.with_name("naive.predictions.csv")
    load_before = os.getloadavg()
    print("fast path (bankops batch scoring)…", flush=True)
    fast = run_child("fast", args, version, data, fast_out)
    print(f"  {fast['seconds']:.1f}s, {fast['rows_per_s']:,} rows/s, peak {fast['peak_rss_mb']:.0f} MB", flush=True)
    print("naive path (pandas read_csv, MLflow predict, to_csv)…", flush=True)
    naive = run_child("naive", args, version, data, naive_out)
    print(f"  {naive['seconds']:.1f}s, {naive['rows_per_s']:,} rows/s, peak {naive['peak_rss_mb']:.0f} MB", flush=True)
    ratio = naive["seconds"] / fast["seconds"]
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": args.rows,
        "input_mb": round(data.stat().st_size / 2**20, 1),
        "model_version": version,
        "fast": fast,
        "naive": naive,
        "ratio_naive_over_fast": round(ratio, 2),
        "max_probability_difference_first_100k": same_probabilities(fast_out, naive_out),
        "targets": {"ratio_at_least": TARGET_RATIO, "peak_rss_mb_under": MEMORY_LIMIT_MB},
        "meets_ratio": ratio >= TARGET_RATIO,
        "meets_memory": fast["peak_rss_mb"] < MEMORY_LIMIT_MB,
        "machine": {"cpus": os.cpu_count(), "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()], "platform": platform.platform()},
        "versions": versions(PACKAGES),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    fast_out.unlink(missing_ok=True)
    naive_out.unlink(missing_ok=True)
    print(f"batch scoring {fast['rows_per_s']:,} rows/s vs naive {naive['rows_per_s']:,} rows/s: {ratio:.2f}x "
          f"(target {TARGET_RATIO:.0f}x) · peak {fast['peak_rss_mb']:.0f} MB (naive {naive['peak_rss_mb']:.0f} MB) · "
          f"model {fast['model']} · wrote {args.out}")


if __name__ == "__main__":
    from shared.openmp import apply_openmp_environment

    apply_openmp_environment()  # this process and the peers it starts
    main()

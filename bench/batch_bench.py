"""Batch scoring benchmark: `bankops batch-score` against the naive pandas + MLflow path, each a whole process.

    .venv/bin/python bench/batch_bench.py --rows 1000000 --budgets 60,30 --out bench/results/batch.json

Generates a client list of --rows rows sampled with replacement from the shipped data (into
--home, not the repo). For each training budget it uses the home `--home`-<budget> (training a
model there with `bankops train --budget` when it has none), then runs, each as a process of its own
timed from its start to its exit (imports, model loading and recording included):

- naive: `bench/naive_batch.py`: pandas `read_csv`, the MLflow pyfunc model's `predict`, `to_csv`;
- libraries: `bankops batch-score` with native trees switched off (BANKOPS_NATIVE_TREES=0), the
  libraries' own predictors: what a cold run must never be slower than;
- after_train: `bankops batch-score` right after `bankops train` returned: the first run of a new
  version as a user runs it. `bankops train` compiles the version's trees at registration and
  waits for them (`compile_at_registration_s`, read from the cache files' times), so this run finds
  them cached: the cold target is judged on it;
- cold_empty_cache: `bankops batch-score` with an empty native-code cache, as the first run of a
  version that was not compiled at registration (trained elsewhere, or its cache pruned): it scores
  with the libraries while the trees compile in the background, switching member by member;
- compiled: `bankops batch-score` again, once that background compiler has finished.

Each budget trains a new version in its home (`bankops train`, the default native wait), so the
first run after training is measured every time.

`bankops batch-score` records its run in the tracker from a detached child after it exits, and a
cold run leaves the compiler running: the bench waits for both before the next measurement and
reports how long they went on (`background_*_after_exit_s`).

Writes seconds, the parts of each (from the processes' own wall-clock marks), peak RSS, the ratios
naive/cold and naive/compiled against the targets, the largest probability difference from the
naive output over every row, and the load average around each run to --out. With --lock FILE each
measured process runs holding an exclusive lock on FILE (machines shared by several benchmarks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_lock  # noqa: E402
from bench.versions import versions  # noqa: E402

TARGET_COLD = 3.0
TARGET_COMPILED = 5.0
TOLERANCE = 1e-6
MEMORY_LIMIT_MB = 1024
COMPILE_WAIT_S = 900
PACKAGES = ("pyarrow", "pandas", "numpy", "mlflow", "lightgbm", "xgboost", "catboost", "scikit-learn", "lleaves", "llvmlite")


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


def bankops() -> str:
    return str(Path(sys.executable).with_name("bankops"))


def train_version(home: Path, budget: float, cache: Path) -> tuple[str, dict[str, Any]]:
    """A new version trained with `bankops train` (which compiles its trees into `cache` and waits for
    them); its number, the command's seconds and how long the compile at registration took."""
    from shared.adapters.local.registry_index import LocalRegistryIndex
    from shared.config import load_settings

    settings = load_settings(home=home)
    print(f"training a new version in {home} (budget {budget:.0f}s)…", flush=True)
    run = whole_process([bankops(), "train", "--budget", str(budget), "--home", str(home)],
                        os.environ | {"XDG_CACHE_HOME": str(cache), "COLUMNS": "200"})
    version = LocalRegistryIndex(settings.paths.mlflow_db, settings.paths.artifacts, settings.model_name).version(None)
    assert version is not None
    trees = cache / "bankops" / "trees"
    files, binaries = list(trees.glob("*.txt")), list(trees.glob("*.so"))
    compile_s = round(max(b.stat().st_mtime for b in binaries) - min(f.stat().st_mtime for f in files), 1) if binaries else None
    return version, {"seconds": run["seconds"], "compile_at_registration_s": compile_s,
                     "compiled_files": len(binaries), "model_files": len(files)}


def whole_process(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run a command; its wall time from spawn to exit, its own peak RSS, its output, the load average around it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as errors:
        load_before = os.getloadavg()
        started = time.time()
        t0 = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=errors, text=True)
        _, status, usage = os.wait4(process.pid, 0)  # this process's own rusage (not earlier children's)
        seconds = time.monotonic() - t0
        load_after = os.getloadavg()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        errors.seek(0)
        stdout, stderr = out.read(), errors.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {stderr[-2000:]}")
    return {"seconds": round(seconds, 2), "started": started, "stdout": stdout, "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "load_average_before": [round(v, 2) for v in load_before], "load_average_after": [round(v, 2) for v in load_after]}


def run_naive(settings: Any, version: str, data: Path, output: Path) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "bench" / "naive_batch.py"), settings.paths.tracking_uri,
               f"models:/{settings.model_name}/{version}", str(data), str(output), version]
    run = whole_process(command, dict(os.environ))
    marks = json.loads(run["stdout"].strip().splitlines()[-1])
    start = run["started"]
    return {"seconds": run["seconds"], "peak_rss_mb": run["peak_rss_mb"],
            "parts_s": {"start_and_import": round(marks["imported"] - start, 2),
                        "load_model": round(marks["loaded"] - marks["imported"], 2),
                        "read_csv": round(marks["read"] - marks["loaded"], 2),
                        "predict": round(marks["predicted"] - marks["read"], 2),
                        "to_csv": round(marks["written"] - marks["predicted"], 2)},
            "load_average_before": run["load_average_before"], "load_average_after": run["load_average_after"]}


def run_bankops(home: Path, version: str, data: Path, output: Path, cache: Path, native: bool = True) -> dict[str, Any]:
    timings = Path(tempfile.mkstemp(prefix="bankops-batch-timings-", suffix=".json")[1])
    env = os.environ | {"XDG_CACHE_HOME": str(cache), "BANKOPS_BATCH_TIMINGS": str(timings), "COLUMNS": "200"}
    if not native:
        env["BANKOPS_NATIVE_TREES"] = "0"
    command = [bankops(), "batch-score", str(data), "-o", str(output), "--home", str(home), "--model-version", version]
    run = whole_process(command, env)
    marks = json.loads(timings.read_text())
    timings.unlink()
    start = run["started"]
    return {"seconds": run["seconds"], "peak_rss_mb": run["peak_rss_mb"],
            "parts_s": {"start_and_import": round(marks["entered"] - start, 2),
                        "load_model": round(marks["loaded"] - marks["entered"], 2),
                        "read_score_write": round(marks["scored"] - marks["loaded"], 2),
                        "queue_run_record": round(marks["recorded"] - marks["scored"], 2),
                        "exit": round(start + run["seconds"] - marks["recorded"], 2)},
            "native_members": marks["native_members"],
            "load_average_before": run["load_average_before"], "load_average_after": run["load_average_after"]}


def wait_for_compiler(cache: Path) -> float:
    """Seconds until every model file in the cache has its optimised machine code (the detached compiler's work)."""
    trees, t0 = cache / "bankops" / "trees", time.monotonic()
    while time.monotonic() - t0 < COMPILE_WAIT_S:
        models = {p.stem for p in trees.glob("*.txt")}
        if models and models <= {p.stem for p in trees.glob("*.so")} and not list(trees.glob("*.part")):
            break
        time.sleep(0.5)
    time.sleep(1.0)  # the compiler's own exit
    return round(time.monotonic() - t0, 1)


def wait_for_recorder(home: Path) -> float:
    """Seconds until the detached recorder has logged the run (bankops batch-score records it after exiting)."""
    pending, t0 = home / "batch-runs-pending", time.monotonic()
    while time.monotonic() - t0 < COMPILE_WAIT_S and list(pending.glob("*.json")):
        time.sleep(0.5)
    return round(time.monotonic() - t0, 1)


def probabilities(path: Path) -> Any:
    import pyarrow.csv as pcsv

    return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(include_columns=["probability_yes"]))[0].to_numpy()


def largest_difference(a: Path, b: Path) -> float:
    import numpy as np

    x, y = probabilities(a), probabilities(b)
    return float(np.abs(x - y).max()) if len(x) == len(y) else float("inf")


def bench_budget(args: argparse.Namespace, budget: float, data: Path) -> dict[str, Any]:
    from shared.config import load_settings

    home = Path(f"{args.home}-{budget:g}")
    settings = load_settings(home=home)
    cache = Path(tempfile.mkdtemp(prefix="bankops-bench-cache-"))
    empty_cache = Path(tempfile.mkdtemp(prefix="bankops-bench-cache-"))
    with machine_lock(args.lock):
        version, training = train_version(home, budget, cache)
    print(f"  v{version}: {training}", flush=True)
    from shared.adapters.local.registry_index import LocalRegistryIndex

    model_file = LocalRegistryIndex(settings.paths.mlflow_db, settings.paths.artifacts, settings.model_name).model_file(version)
    describe = "?"
    if model_file is not None:
        import joblib

        describe = joblib.load(model_file).describe()
    kinds = ("naive", "after_train", "libraries", "cold_empty_cache", "compiled")
    outputs = {k: data.with_name(f"{k}-{budget:g}.predictions.csv") for k in kinds}
    try:
        with machine_lock(args.lock):  # the peer and bankops measured on the same machine, no other bench between
            print(f"[{budget:g}s model v{version}: {describe}] naive path (pandas read_csv, MLflow predict, to_csv)…", flush=True)
            naive = run_naive(settings, version, data, outputs["naive"])
            print(f"  {naive['seconds']:.1f}s {naive['parts_s']}", flush=True)
            print("  bankops batch-score, the first run after bankops train…", flush=True)
            after_train = run_bankops(home, version, data, outputs["after_train"], cache)
            after_train["background_record_after_exit_s"] = wait_for_recorder(home)
            print(f"  {after_train['seconds']:.1f}s {after_train['parts_s']} native {after_train['native_members']}", flush=True)
            print("  bankops batch-score, libraries only (BANKOPS_NATIVE_TREES=0)…", flush=True)
            libraries = run_bankops(home, version, data, outputs["libraries"], empty_cache, native=False)
            libraries["background_record_after_exit_s"] = wait_for_recorder(home)
            print(f"  {libraries['seconds']:.1f}s {libraries['parts_s']}", flush=True)
            print("  bankops batch-score, cold (empty native cache)…", flush=True)
            cold = run_bankops(home, version, data, outputs["cold_empty_cache"], empty_cache)
            cold["background_compile_after_exit_s"] = wait_for_compiler(empty_cache)
            cold["background_record_after_exit_s"] = wait_for_recorder(home)
            print(f"  {cold['seconds']:.1f}s {cold['parts_s']} native {cold['native_members']}; "
                  f"compiler done {cold['background_compile_after_exit_s']}s after exit", flush=True)
            print("  bankops batch-score, compiled…", flush=True)
            compiled = run_bankops(home, version, data, outputs["compiled"], empty_cache)
            compiled["background_record_after_exit_s"] = wait_for_recorder(home)
            print(f"  {compiled['seconds']:.1f}s {compiled['parts_s']} native {compiled['native_members']}", flush=True)
        differences = {k: largest_difference(outputs[k], outputs["naive"]) for k in kinds[1:]}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(empty_cache, ignore_errors=True)
        for path in outputs.values():
            path.unlink(missing_ok=True)
    ratio_first = naive["seconds"] / after_train["seconds"]
    ratio_cold, ratio_compiled = naive["seconds"] / cold["seconds"], naive["seconds"] / compiled["seconds"]
    print(f"  naive/first run after train {ratio_first:.2f}x (target {TARGET_COLD:g}x) · naive/cold with an empty cache "
          f"{ratio_cold:.2f}x · naive/compiled {ratio_compiled:.2f}x (target {TARGET_COMPILED:g}x) · largest difference "
          f"{max(differences.values()):.2g}", flush=True)
    return {
        "budget_s": budget, "home": str(home), "model_version": version, "model": describe, "training": training,
        "naive": naive, "after_train": after_train, "libraries": libraries, "cold_empty_cache": cold, "compiled": compiled,
        "cold_over_libraries": round(cold["seconds"] / libraries["seconds"], 2),
        "ratio_naive_over_first_run_after_train": round(ratio_first, 2),
        "ratio_naive_over_cold_empty_cache": round(ratio_cold, 2), "ratio_naive_over_compiled": round(ratio_compiled, 2),
        "max_probability_difference_from_naive": differences,
        "meets_first_run": ratio_first >= TARGET_COLD, "meets_compiled": ratio_compiled >= TARGET_COMPILED,
        "meets_memory": max(after_train["peak_rss_mb"], cold["peak_rss_mb"], compiled["peak_rss_mb"]) < MEMORY_LIMIT_MB,
        "meets_equality": max(differences.values()) <= TOLERANCE,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "bankops-bench-batch",
                        help="homes are HOME-<budget>; the generated data goes under HOME/bench")
    parser.add_argument("--budgets", default="60,30", help="training budgets of the models to score with (comma-separated)")
    parser.add_argument("--lock", type=Path, help="hold an exclusive lock on this file during each measured process")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch.json")
    args = parser.parse_args()
    args.home = args.home.resolve()
    data = args.home / "bench" / f"clients-{args.rows}.csv"
    if not data.exists():
        print(f"generating {args.rows:,} rows into {data}", flush=True)
        generate(data, args.rows)
    runs: list[dict[str, Any]] = []
    for budget in (float(b) for b in args.budgets.split(",") if b.strip()):
        runs.append(bench_budget(args, budget, data))
        report = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": args.rows,
            "input_mb": round(data.stat().st_size / 2**20, 1),
            "targets": {"naive_over_first_run_after_train_at_least": TARGET_COLD, "naive_over_compiled_at_least": TARGET_COMPILED,
                        "peak_rss_mb_under": MEMORY_LIMIT_MB, "max_probability_difference": TOLERANCE},
            "runs": runs,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "versions": versions(PACKAGES),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")  # after each budget: a long run keeps what it measured
    print(f"wrote {args.out}")


if __name__ == "__main__":
    from shared.openmp import apply_openmp_environment

    apply_openmp_environment()  # the processes it starts
    main()

"""Training benchmark over several 80/20 splits, bankops beside its peers on the same rows in the same run.

    .venv/bin/python bench/train_splits.py --seeds 42 1 2 3 4 5 --out bench/results/train_splits.json
    .venv/bin/python bench/train_splits.py --pre-call            # without duration: train_splits_precall.json
    .venv/bin/python bench/train_splits.py --with-baseline       # also bankops with --keep-all-columns
    .venv/bin/python bench/train_splits.py --lock /path/bench.lock   # each run holds this flock

On each split (bench/train_bench.py's train_test_split(test_size=0.2, random_state=seed, stratify=y))
it runs, each in a process of its own: bankops (bench/train_bench.py: the AutoML of `bankops train`,
then the default LightGBM floor on the same encoded rows), AutoGluon medium_quality and AutoGluon
best_quality (bench/peers/autogluon_run.py, in a venv of its own under --venvs, created on first use:
AutoGluon 1.6 needs pandas < 3; the split's train and test rows are written as CSVs for it), all with
the same time budget. `--pre-call` leaves out `duration` for every one of them.

The holdout of one split has 6,590 rows, so its AUC moves by a few 1e-4 with the rows drawn alone
(its standard error is about 0.003); systems are compared on the same rows, by the mean and the
sign of the per-split differences (bankops minus each peer). Before each run the bench waits (at
most --pause seconds) for the 1-minute load average to fall under 0.75 per core, so the previous
run's load does not switch bankops' boosters to passive OpenMP waiting (shared/openmp.py), and
every system starts on equally quiet cores. Writes --out (JSON) and a markdown table beside it (.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_lock, peer_venv  # noqa: E402

BASELINE_FLAG = "--keep-all-columns"
LEAKY = ("duration",)  # shared.schema.LEAKY_FEATURES, named here so the peers need nothing of this repo
AUTOGLUON_PACKAGES = ("autogluon.tabular[lightgbm,catboost,xgboost,ray]==1.6.3", "pandas<3", "psutil")
AUTOGLUON_PRESETS = {"autogluon_medium": "medium_quality", "autogluon_best": "best_quality"}
LABELS = {"bankops": "bankops", "autogluon_medium": "AutoGluon medium_quality", "autogluon_best": "AutoGluon best_quality",
          "lightgbm_floor": "default LightGBM", "bankops_keep_all_columns": "bankops, every column kept"}
BUSY_LOAD_PER_CORE = 0.75  # as shared/openmp.py


def log(message: str) -> None:
    print(message, flush=True)


def ensure_autogluon_venv(venvs: Path) -> Path:
    """AutoGluon's own virtual environment (made again when the wanted packages change)."""
    return peer_venv(venvs / "autogluon", list(AUTOGLUON_PACKAGES), "\n".join(AUTOGLUON_PACKAGES) + "\n", log)


def settle(limit: float) -> float:
    """Wait, at most `limit` seconds, for the 1-minute load average to fall under 0.75 per core."""
    started = time.monotonic()
    busy = BUSY_LOAD_PER_CORE * (os.cpu_count() or 1)
    while os.getloadavg()[0] >= busy and time.monotonic() - started < limit:
        time.sleep(2)
    return time.monotonic() - started


def write_split(seed: int, workdir: Path) -> tuple[Path, Path]:
    """The split's rows as CSVs for the peers, drawn by the bench's own load_split (so the rows are the same)."""
    sys.path.insert(0, str(ROOT))
    from bench.train_bench import load_split

    train, test, _, _ = load_split(seed)
    paths = workdir / f"train{seed}.csv", workdir / f"test{seed}.csv"
    train.to_csv(paths[0], index=False)
    test.to_csv(paths[1], index=False)
    return paths


def run_process(cmd: list[str], log_path: Path, timeout: float, env: dict[str, str] | None = None) -> str | None:
    """Runs one bench process with its output to log_path; the error (with the log's tail) when it fails."""
    try:
        with log_path.open("w", encoding="utf-8") as out:
            subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, env=env)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        return f"{exc}; log {log_path}:\n" + "\n".join(tail)
    return None


def run_bankops(seed: int, args: argparse.Namespace, extra: list[str], workdir: Path, floor: bool) -> dict[str, Any]:
    out = workdir / f"bankops{seed}{''.join(extra).replace('-', '_')}{'_precall' if args.pre_call else ''}.json"
    cmd = [sys.executable, str(ROOT / "bench" / "train_bench.py"), "--budget", str(args.budget), "--seed", str(seed),
           "--out", str(out), *extra, *(["--pre-call"] if args.pre_call else []), *([] if floor else ["--no-floor"])]
    error = run_process(cmd, args.logs / f"{out.stem}.log", timeout=3 * args.budget + 300)
    if error:
        return {"seed": seed, "error": error}
    report = json.loads(out.read_text(encoding="utf-8"))
    automl = report["automl"]
    row = {"seed": seed, "holdout_auc_weighted": automl["holdout_auc_weighted_unrounded"], "oof_score_blend": automl["oof_score_blend"],
           "features_dropped": automl.get("features_dropped", []), "trials": automl["trials"], "ensemble": automl["ensemble"],
           "wall_time_s": automl["wall_time_s"], "peak_rss_mb": report["peak_rss_mb"]["total"],
           "load_before": report["conditions"]["load_before"], "load_after": report["conditions"]["load_after"],
           "openmp": report["conditions"]["openmp"], "excluded_columns": report["settings"].get("excluded_columns", []),
           "versions": report["versions"]}
    if floor:
        row["floor"] = report["floor_lightgbm"]
    return row


def run_autogluon(seed: int, preset: str, args: argparse.Namespace, split: tuple[Path, Path], workdir: Path) -> dict[str, Any]:
    out = workdir / f"{preset}{seed}{'_precall' if args.pre_call else ''}.json"
    cmd = [str(args.autogluon_python), str(ROOT / "bench" / "peers" / "autogluon_run.py"), "--train", str(split[0]),
           "--test", str(split[1]), "--preset", preset, "--budget", str(args.budget), "--seed", str(seed), "--out", str(out),
           *(["--drop", *LEAKY] if args.pre_call else [])]
    error = run_process(cmd, args.logs / f"{out.stem}.log", timeout=3 * args.budget + 300, env=args.peer_env)
    if error:
        return {"seed": seed, "error": error}
    report = json.loads(out.read_text(encoding="utf-8"))
    return {"seed": seed, "holdout_auc_weighted": report["holdout_auc_weighted_unrounded"], "wall_time_s": report["wall_time_s"],
            "model_best": report["model_best"], "models_trained": report["models_trained"],
            "peak_rss_mb": report["peak_rss_mb"]["total"], "load_before": report["conditions"]["load_before"],
            "load_after": report["conditions"]["load_after"], "dropped_columns": report["dropped_columns"],
            "versions": report["versions"]}


def summarise(results: dict[str, list[dict[str, Any]]], seeds: list[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Mean/min/max per system, and bankops minus each other system per split (splits where either failed are left out)."""
    auc = {name: {r["seed"]: r["holdout_auc_weighted"] for r in rows if "error" not in r} for name, rows in results.items()}
    summary = {name: {"mean_holdout_auc_weighted": mean(v.values()), "min": min(v.values()), "max": max(v.values()),
                      "splits": len(v),
                      "mean_wall_time_s": mean(r["wall_time_s"] for r in results[name] if "error" not in r),
                      "max_peak_rss_mb": max((r.get("peak_rss_mb", 0.0) for r in results[name] if "error" not in r), default=None)}
               for name, v in auc.items() if v}
    differences = {}
    for name in auc:
        if name == "bankops":
            continue
        both = [s for s in seeds if s in auc["bankops"] and s in auc[name]]
        per_split = {s: auc["bankops"][s] - auc[name][s] for s in both}
        if per_split:
            differences[f"bankops_minus_{name}"] = {"mean": mean(per_split.values()), "per_split": per_split,
                                                    "splits_better": sum(d > 0 for d in per_split.values()), "splits": len(per_split)}
    return summary, differences


def markdown(report: dict[str, Any]) -> str:
    results, differences, summary = report["runs"], report["differences"], report["summary"]
    systems = [s for s in results if s in summary]
    peers = [s for s in systems if f"bankops_minus_{s}" in differences]
    head = ["split seed", *(LABELS[s] for s in systems), *(f"bankops - {LABELS[s]}" for s in peers)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def cell(name: str, seed: int) -> str:
        row = next((r for r in results[name] if r["seed"] == seed), None)
        return "not run" if row is None else "failed" if "error" in row else f"{row['holdout_auc_weighted']:.5f}"

    for seed in report["seeds"]:
        diffs = [differences.get(f"bankops_minus_{s}", {}).get("per_split", {}).get(seed) for s in peers]
        lines.append(f"| {seed} | " + " | ".join([*(cell(s, seed) for s in systems),
                                                  *("-" if d is None else f"{d:+.5f}" for d in diffs)]) + " |")
    means = [f"**{summary[s]['mean_holdout_auc_weighted']:.5f}**" for s in systems]
    mean_diffs = [f"**{differences[f'bankops_minus_{s}']['mean']:+.5f}**" for s in peers]
    lines.append("| mean | " + " | ".join([*means, *mean_diffs]) + " |")
    wins = [f"{differences[f'bankops_minus_{s}']['splits_better']} of {differences[f'bankops_minus_{s}']['splits']}" for s in peers]
    lines.append("| bankops higher on | " + " | ".join([*([""] * len(systems)), *wins]) + " |")
    walls = [f"{summary[s]['mean_wall_time_s']:.0f}" for s in systems]
    lines.append("| mean wall s | " + " | ".join([*walls, *([""] * len(peers))]) + " |")
    rss = ["" if summary[s]["max_peak_rss_mb"] in (None, 0.0) else f"{summary[s]['max_peak_rss_mb']:.0f}" for s in systems]
    lines.append("| peak RSS MB (max) | " + " | ".join([*rss, *([""] * len(peers))]) + " |")
    loads = [v for rows in results.values() for r in rows if "error" not in r for v in r.get("load_before", [])[:1]]
    cols = ", ".join(report["excluded_columns"]) or "none"
    lines.append("")
    lines.append(f"{report['budget_s']:.0f} s budget each, columns left out: {cols}; {report['when']}; 1-minute load average "
                 f"before the runs {min(loads):.2f}-{max(loads):.2f} ({os.cpu_count()} cores)." if loads else "")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4, 5])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--pause", type=float, default=60.0, help="at most this many seconds of waiting for the load to settle")
    parser.add_argument("--pre-call", action="store_true", help=f"leave out {', '.join(LEAKY)} for every system")
    parser.add_argument("--with-baseline", action="store_true", help=f"also run bankops on each split with {BASELINE_FLAG}")
    parser.add_argument("--no-peers", action="store_true", help="bankops and the floor only (no AutoGluon)")
    parser.add_argument("--venvs", type=Path, default=ROOT / ".cache" / "bench-venvs")
    parser.add_argument("--logs", type=Path, default=ROOT / ".cache" / "train-splits-logs", help="each run's output")
    parser.add_argument("--lock", type=Path, default=None, help="a file to flock for each run (machine-wide bench lock)")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/train_splits[_precall].json")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = ROOT / "bench" / "results" / ("train_splits_precall.json" if args.pre_call else "train_splits.json")

    args.logs.mkdir(parents=True, exist_ok=True)
    peers = {} if args.no_peers else AUTOGLUON_PRESETS
    if peers:
        args.autogluon_python = ensure_autogluon_venv(args.venvs.resolve()) / "bin" / "python"
    args.peer_env = dict(os.environ)
    systems = ["bankops", *peers, "lightgbm_floor", *(["bankops_keep_all_columns"] if args.with_baseline else [])]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    runs_per_split = 1 + len(peers) + int(args.with_baseline)
    total, done = len(args.seeds) * runs_per_split, 0
    software: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="train-splits-") as tmp:
        workdir = Path(tmp)
        for index, seed in enumerate(args.seeds):
            split = write_split(seed, workdir) if peers else (workdir, workdir)
            jobs: list[tuple[str, Any]] = [("bankops", lambda s=seed: run_bankops(s, args, [], workdir, floor=True))]
            jobs += [(name, lambda s=seed, p=preset, c=split: run_autogluon(s, p, args, c, workdir)) for name, preset in peers.items()]
            if args.with_baseline:
                jobs.append(("bankops_keep_all_columns", lambda s=seed: run_bankops(s, args, [BASELINE_FLAG], workdir, floor=False)))
            for name, job in jobs:
                with machine_lock(args.lock):
                    waited = settle(args.pause)
                    started = time.monotonic()
                    row = job()
                row["settle_s"] = round(waited, 1)
                software.setdefault(name, row.pop("versions", None))
                row.pop("versions", None)
                done += 1
                if name == "bankops":
                    floor = row.pop("floor", None)
                    results["lightgbm_floor"].append({"seed": seed, **({"error": row["error"]} if floor is None else {
                        "holdout_auc_weighted": floor["holdout_auc_weighted"], "wall_time_s": floor["wall_time_s"]})})
                results[name].append(row)
                shown = f"holdout {row['holdout_auc_weighted']:.5f}" if "error" not in row else f"FAILED: {row['error']}"
                log(f"[{done}/{total}] split {seed:>3} {name:24s} {shown}  {time.monotonic() - started:.0f} s  "
                    f"load before {row.get('load_before', '-')}")
            # written after every split, so an interrupted run leaves the splits it finished
            table = write_report(args, systems, results, software, args.seeds[:index + 1])
    print(table)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0 if all("error" not in r for rows in results.values() for r in rows) else 1


def write_report(args: argparse.Namespace, systems: list[str], results: dict[str, list[dict[str, Any]]],
                 software: dict[str, Any], seeds: list[int]) -> str:
    """--out and its markdown table for the splits done so far (`complete` once every split is)."""
    summary, differences = summarise(results, seeds)
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "budget_s": args.budget, "seeds": seeds,
              "complete": seeds == args.seeds, "pre_call": args.pre_call, "excluded_columns": list(LEAKY) if args.pre_call else [],
              "systems": {name: LABELS[name] for name in systems}, "summary": summary, "differences": differences,
              "software": {k: v for k, v in software.items() if v is not None}, "runs": results}
    table = markdown(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    return table

if __name__ == "__main__":
    raise SystemExit(main())

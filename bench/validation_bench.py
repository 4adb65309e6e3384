"""How long and how much memory judging a dropped file costs: the shipped data, the size cap, hostile files.

    .venv/bin/python bench/validation_bench.py --out bench/results/validation.json

Each case runs `validate_csv` in a fresh child process (so its peak RSS is its own) and reports
seconds and peak RSS; `column_problems` of a 40,000-name header shows the repeated-column check
is linear (it was quadratic: 20,000 names took 3 s).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import time
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).resolve().parents[1] / "shared" / "resources" / "bankmarketing_train.csv"


def _case(name: str) -> bytes:
    base = SHIPPED.read_bytes()
    header, _, body = base.partition(b"\n")
    if name == "shipped (3.9 MB, 32,950 rows)":
        return base
    if name == "at the 64 MiB cap (16x shipped)":
        return header + b"\n" + (body.rstrip(b"\n") + b"\n") * 16
    if name == "1,000,000 columns":
        return ",".join(f"c{i}" for i in range(1_000_000)).encode() + b"\n" + b",".join([b"1"] * 1_000_000) + b"\n"
    if name == "one 60 MB cell":
        first, _, rest = body.partition(b"\n")
        fields = first.split(b",")
        return header + b"\n" + b",".join([fields[0], b"x" * 60_000_000, *fields[2:]]) + b"\n" + rest
    raise KeyError(name)


def _run(name: str, out: Any) -> None:
    from shared.data_validation import validate_csv
    from shared.errors import InvalidDataset

    content = _case(name)
    start = time.perf_counter()
    try:
        outcome = f"valid, {validate_csv(content, min_rows=1, min_rows_per_class=0).rows} rows"
    except InvalidDataset as error:
        outcome = f"refused: {error.message[:80]}"
    out.put({"case": name, "bytes": len(content), "seconds": round(time.perf_counter() - start, 3),
             "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "outcome": outcome})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/validation.json"))
    args = parser.parse_args()
    results: list[dict[str, Any]] = [{"conditions": {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()}}]
    ctx = multiprocessing.get_context("spawn")
    for name in ("shipped (3.9 MB, 32,950 rows)", "at the 64 MiB cap (16x shipped)", "1,000,000 columns", "one 60 MB cell"):
        queue = ctx.Queue()
        child = ctx.Process(target=_run, args=(name, queue))
        child.start()
        results.append(queue.get(timeout=600))
        child.join(60)
    from shared import schema
    from shared.data_validation import column_problems

    names = [*schema.COLUMNS, *(f"x{i}" for i in range(20_000))] * 2
    start = time.perf_counter()
    column_problems(names, schema.COLUMNS)
    results.append({"case": "column_problems, 40,042 names", "seconds": round(time.perf_counter() - start, 3)})
    for row in results:
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

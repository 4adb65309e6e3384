"""How long the everyday commands take to answer, as whole processes: `bankops --help`, `keys show`, `logs`,
and `status` against a running `bankops up` (and on a home with no host running, where it reads the registry).

Beside them, the same run times the floor (`python -c pass`: the interpreter alone) and a peer command line
users already run (`mlflow --help`). Each command runs `--repeat` times; the median and the spread are
written, with the machine's load, to the --out JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BANKOPS = [sys.executable, "-c", "from shared.cli.main import main; main()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _time(command: list[str], env: dict[str, str], repeat: int) -> dict[str, float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=120)
        seconds.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(seconds), 3), "min_s": round(min(seconds), 3), "max_s": round(max(seconds), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--budget", type=float, default=5.0, help="AutoML budget of the host that `status` asks")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cli_startup.json")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="bankops-bench-cli-")) / "home"
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("BANKOPS_", "MLFLOW_"))}
    env |= {"BANKOPS_SETTINGS_FILE": str(home.parent / "absent.json"), "PYTHONPATH": str(ROOT)}
    load_before = os.getloadavg()
    results: dict[str, dict[str, float]] = {
        "python -c pass (floor)": _time([sys.executable, "-c", "pass"], env, args.repeat),
        "mlflow --help (peer)": _time([sys.executable, "-m", "mlflow", "--help"], env, args.repeat),
        "bankops --help": _time([*BANKOPS, "--help"], env, args.repeat),
    }
    port, scoring_port = _free_port(), _free_port()
    host = subprocess.Popen([*BANKOPS, "up", "--budget", str(args.budget), "--home", str(home), "--port", str(port),
                             "--scoring-port", str(scoring_port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{scoring_port}/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise SystemExit("bankops up did not serve within 600 s")
        at = ["--home", str(home)]
        results["bankops keys show"] = _time([*BANKOPS, "keys", "show", *at], env, args.repeat)
        results["bankops logs"] = _time([*BANKOPS, "logs", *at], env, args.repeat)
        results["bankops status (host running)"] = _time([*BANKOPS, "status", *at, "--port", str(port)], env, args.repeat)
    finally:
        host.terminate()
        host.wait(120)
    results["bankops status (no host: reads the registry)"] = _time([*BANKOPS, "status", "--home", str(home)], env, 3)
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.platform(),
              "cores": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(), "repeat": args.repeat,
              "commands": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, figures in results.items():
        print(f"{name:50s} {figures['median_s']:.3f} s  (min {figures['min_s']:.3f}, max {figures['max_s']:.3f})")
    return 0


if __name__ == "__main__":
    from shared.openmp import apply_openmp_environment

    apply_openmp_environment()
    raise SystemExit(main())

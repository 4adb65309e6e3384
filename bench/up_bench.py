"""From a fresh clone to the first prediction: `make up` timed as a new user runs it, install included.

    python3.11 bench/up_bench.py --out bench/results/up.json                  # cold, then warm (what `make bench-up` runs)
    python3.11 bench/up_bench.py --scenarios warm --out bench/results/up.json  # one scenario; the others in --out are kept

Each scenario `git clone`s the committed HEAD of this repo into a temporary folder (so uncommitted changes
are not measured), runs `make up` there in a process group of its own (the clone's `.venv` and `.bankops`
are new: an empty home), and polls POST /score with the primary key from `.bankops/keys/keys.json` until the
first 200. It records, from the moment `make up` started: the install finished (`.venv/.installed`), the
first 200 of /score, and the full model's moment (the console's "full model served" or "not deployed" line).
Then Ctrl-C (SIGINT to the group): `bankops up` must print "stopped" and the scoring port must be closed.

Scenarios (the package cache is a folder under --cache-root, PIP_CACHE_DIR and UV_CACHE_DIR both):
- cold: the cache folder emptied first, so every wheel comes from the registry;
- warm: the same folder as the cold run left it;
- peer-cold / peer-warm: the same with the project as it was (INSTALLER=pip, BANKOPS_QUICK_BUDGET_S=0), the
  figure the ratios are taken against (a separate cache folder, emptied for peer-cold).
Ports are free ones picked here (BANKOPS_CONTROL_PORT / BANKOPS_SCORING_PORT), so a host elsewhere on the
machine does not collide. The 2 cores may be shared: the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("cold", "warm", "peer-cold", "peer-warm")
TARGET_FIRST_S = 90.0
FULL_LINE = re.compile(r"full model (served|v\d+ not deployed)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _score(port: int, key: str, body: bytes) -> int | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/score", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return None


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_scenario(name: str, cache_root: Path, timeout_s: float, keep: bool) -> dict[str, Any]:
    peer = name.startswith("peer")
    cache = cache_root / ("peer" if peer else "bankops")
    if name.endswith("cold"):
        shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"bankops-up-{name}-"))
    clone = work / "bankops"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    control_port, scoring_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("BANKOPS_", "MLFLOW_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env |= {"PIP_CACHE_DIR": str(cache / "pip"), "UV_CACHE_DIR": str(cache / "uv"), "COLUMNS": "200",
            "BANKOPS_CONTROL_PORT": str(control_port), "BANKOPS_SCORING_PORT": str(scoring_port)}
    command = ["make", "up"]
    if peer:
        command.append("INSTALLER=pip")
        env["BANKOPS_QUICK_BUDGET_S"] = "0"
    body = json.dumps(json.loads((ROOT / "shared" / "resources" / "endpoint_records.json").read_text())).encode()
    log_path = work / "make-up.log"
    result: dict[str, Any] = {"scenario": name, "command": " ".join(command), "commit": head, "load_before": _loadavg(),
                              "cache_files_before": sum(1 for p in cache.rglob("*") if p.is_file())}
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=_interruptible)
    key_file = clone / ".bankops" / "keys" / "keys.json"
    key: str | None = None
    first = install = full = None
    deadline = started + timeout_s
    try:
        while time.monotonic() < deadline and process.poll() is None:
            now = time.monotonic() - started
            if install is None and (clone / ".venv" / ".installed").exists():
                install = now
            if key is None and key_file.exists():
                try:
                    key = str(json.loads(key_file.read_text())["primary"])
                except (ValueError, KeyError):
                    key = None
            if first is None and key is not None and _score(scoring_port, key, body) == 200:
                first = time.monotonic() - started
            if full is None and FULL_LINE.search(log_path.read_text(errors="replace")):
                full = now
            if first is not None and (full is not None or peer):  # the peer's first model is its full model
                break
            time.sleep(0.25)
        result["exited_early"] = process.poll() is not None
    finally:
        stop_started = time.monotonic()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            result["killed"] = True
        result["stop_s"] = round(time.monotonic() - stop_started, 2)
    printed = log_path.read_text(errors="replace")
    result |= {
        "install_s": round(install, 1) if install is not None else None,
        "first_prediction_s": round(first, 1) if first is not None else None,
        "full_model_s": round(full, 1) if full is not None else None,
        "full_model_outcome": (m.group(0) if (m := FULL_LINE.search(printed)) else None),
        "console": [line for line in printed.splitlines()
                    if re.search(r"first model served|full model|model served|installed with|installing with", line)],
        "stopped_cleanly": "stopped" in printed.splitlines()[-3:] or printed.rstrip().endswith("stopped"),
        "scoring_port_closed": not _port_open(scoring_port),
        "make_exit_code": process.returncode,
        "load_after": _loadavg(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if keep:
        result["folder"] = str(work)
    else:
        result["log_tail"] = printed.splitlines()[-8:]
        shutil.rmtree(work, ignore_errors=True)
    return result


def _interruptible() -> None:
    """In the child, before exec: Ctrl-C's default action, so `make up` hears the bench's SIGINT even when the
    bench itself was started in the background by a shell without job control (which ignores SIGINT in it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=["cold", "warm"])
    parser.add_argument("--cache-root", type=Path, default=ROOT / ".cache" / "bench-up", help="package caches of the scenarios")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per scenario before it is stopped")
    parser.add_argument("--keep", action="store_true", help="keep each clone and its log")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "up.json")
    args = parser.parse_args()
    out: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    out.setdefault("scenarios", {})
    for name in args.scenarios:
        print(f"{name}: make up from a fresh clone…", flush=True)
        result = run_scenario(name, args.cache_root, args.timeout, args.keep)
        out["scenarios"][name] = result
        print(f"  install {result['install_s']}s, first prediction {result['first_prediction_s']}s, full model "
              f"{result['full_model_s']}s ({result['full_model_outcome']}), stopped cleanly {result['stopped_cleanly']}, "
              f"load {result['load_before']} -> {result['load_after']}", flush=True)
    ratios = {}
    for cache in ("cold", "warm"):
        ours, theirs = out["scenarios"].get(cache, {}), out["scenarios"].get(f"peer-{cache}", {})
        if ours.get("first_prediction_s") and theirs.get("first_prediction_s"):
            ratios[f"first_prediction_{cache}_vs_peer"] = round(ours["first_prediction_s"] / theirs["first_prediction_s"], 3)
    out["ratios"] = ratios
    out["target_first_prediction_s"] = TARGET_FIRST_S
    out["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    failed = [n for n in args.scenarios if not out["scenarios"][n]["first_prediction_s"] or not out["scenarios"][n]["stopped_cleanly"]]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

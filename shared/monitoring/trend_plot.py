"""The dashboard's trends as a picture (for a report or a ticket): each holdout metric across model
versions with its range, and the pipeline runs over time (duration, trials, failures)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TREND_FILE = "trends.png"


def save_trends(trends: dict[str, Any], path: Path) -> Path:
    """Draw `trends` (the dashboard document's `trends` part) to `path` as a PNG; returns `path`."""
    fig, (metrics_ax, runs_ax) = plt.subplots(2, 1, figsize=(9, 7))
    for i, trend in enumerate(trends.get("metrics", [])):
        color = f"C{i % 10}"
        points = trend["points"]
        if points:
            metrics_ax.plot([f"v{p['version']}" for p in points], [p["value"] for p in points], "o-", color=color, label=trend["metric"])
        for bound in (trend.get("low"), trend.get("high")):
            if bound is not None:
                metrics_ax.axhline(bound, color=color, linestyle="--", linewidth=1)
    metrics_ax.set_title("holdout metrics by model version (dashed: BANKOPS_METRIC_RANGES)")
    if metrics_ax.get_legend_handles_labels()[0]:
        metrics_ax.legend(fontsize=8, loc="best")
    runs = [r for r in trends.get("runs", []) if r.get("at_ms")]
    at = [datetime.fromtimestamp(r["at_ms"] / 1000, UTC) for r in runs]
    done = [(t, r["duration_s"]) for t, r in zip(at, runs, strict=True) if r.get("duration_s") is not None]
    if done:
        runs_ax.plot([t for t, _ in done], [d for _, d in done], "o-", color="C0", label="duration, s")
    trials = [(t, r["trials"]) for t, r in zip(at, runs, strict=True) if r.get("trials") is not None]
    if trials:
        runs_ax.plot([t for t, _ in trials], [n for _, n in trials], "s--", color="C2", label="AutoML trials")
    for t, r in zip(at, runs, strict=True):
        if r.get("state") == "failed":
            runs_ax.axvline(t, color="C3", linestyle=":", linewidth=1.5)
    runs_ax.set_title(f"pipeline runs over time ({sum(r.get('state') == 'failed' for r in runs)} failed: dotted red)")
    if runs_ax.get_legend_handles_labels()[0]:
        runs_ax.legend(fontsize=8, loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

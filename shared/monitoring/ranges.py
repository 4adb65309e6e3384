"""Metric ranges: the floors and ceilings a model's holdout metrics must keep (`BANKOPS_METRIC_RANGES`).

One text setting, e.g. `AUC_weighted>=0.93,recall_yes>=0.45,log_loss<=0.30`, read by both the
champion/challenger gate (a model outside a range is not deployed) and the `metric_out_of_range`
alert (the newest registered version is outside a range). Any metric the evaluate step records can
be named; a metric may have a floor and a ceiling (`accuracy>=0.85,accuracy<=0.99`). The older
`BANKOPS_GATE_MIN_RECALL_YES` is an alias for `recall_yes>=<value>` (the stricter floor wins).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared import schema
from shared.errors import ConfigurationError

# Every metric the evaluate step records (shared/training/evaluate.holdout_metrics), plus the CV score.
_PER_CLASS = tuple(f"{m}_{c}" for c in schema.CLASSES for m in ("precision", "recall", "f1_score"))
_AVERAGED = tuple(f"{m}_{a}" for a in ("weighted", "macro") for m in ("precision", "recall", "f1_score"))
METRICS = ("AUC_weighted", "accuracy", "average_precision", "average_precision_score_weighted", "log_loss",
           *_AVERAGED, *_PER_CLASS, "true_negatives", "false_positives", "false_negatives", "true_positives", "cv_score")
_TERM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=)\s*(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*")


class MetricRange(BaseModel):
    """One metric's floor (`low`) and/or ceiling (`high`), both inclusive."""

    model_config = ConfigDict(frozen=True)

    metric: str
    low: float | None = None
    high: float | None = None

    def violation(self, value: float) -> str | None:
        """What is wrong with `value`, or None when it is inside the range."""
        if self.low is not None and value < self.low:
            return f"{self.metric} {value:.4f} < floor {self.low:.4f}"
        if self.high is not None and value > self.high:
            return f"{self.metric} {value:.4f} > ceiling {self.high:.4f}"
        return None

    def bound(self, value: float) -> float | None:
        """The bound `value` crossed (the floor or the ceiling)."""
        if self.low is not None and value < self.low:
            return self.low
        return self.high

    @property
    def text(self) -> str:
        parts = ([f"{self.metric}>={self.low:g}"] if self.low is not None else []) + (
            [f"{self.metric}<={self.high:g}"] if self.high is not None else [])
        return ",".join(parts)


class Outside(BaseModel):
    """A metric outside its range: the value, the bound it crossed, and a sentence saying so."""

    metric: str
    value: float | None
    bound: float | None
    reason: str


class MetricRanges(BaseModel):
    """Every configured range, by metric."""

    model_config = ConfigDict(frozen=True)

    ranges: Mapping[str, MetricRange] = Field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, *, min_recall_yes: float = 0.0) -> MetricRanges:
        """`name>=x` / `name<=x` terms separated by commas; an unknown metric or a bad term says which."""
        found: dict[str, MetricRange] = {}
        for term in (t for t in (text or "").split(",") if t.strip()):
            match = _TERM.fullmatch(term)
            if not match:
                raise ConfigurationError(f"BANKOPS_METRIC_RANGES term {term.strip()[:60]!r}: write METRIC>=NUMBER or "
                                         "METRIC<=NUMBER, such as AUC_weighted>=0.93,log_loss<=0.30")
            name, op, number = match.group(1), match.group(2), float(match.group(3))
            if name not in METRICS:
                raise ConfigurationError(f"BANKOPS_METRIC_RANGES names unknown metric {name[:60]!r}; the evaluate step "
                                         f"records {', '.join(METRICS)}")
            old = found.get(name, MetricRange(metric=name))
            found[name] = old.model_copy(update={"low": number} if op == ">=" else {"high": number})
        if min_recall_yes > 0:  # the old single floor, kept as an alias
            old = found.get("recall_yes", MetricRange(metric="recall_yes"))
            found["recall_yes"] = old.model_copy(update={"low": max(old.low or 0.0, min_recall_yes)})
        for r in found.values():
            if r.low is not None and r.high is not None and r.low > r.high:
                raise ConfigurationError(f"BANKOPS_METRIC_RANGES: {r.metric} has floor {r.low:g} above its ceiling {r.high:g}")
        return cls(ranges=found)

    @classmethod
    def from_settings(cls, settings: Any) -> MetricRanges:
        return cls.parse(str(settings.metric_ranges or ""), min_recall_yes=float(settings.gate_min_recall_yes or 0.0))

    def outside(self, metrics: Mapping[str, float]) -> list[Outside]:
        """Every metric outside its range; a ranged metric the model did not record is outside too."""
        found: list[Outside] = []
        for name, r in self.ranges.items():
            if name not in metrics:
                found.append(Outside(metric=name, value=None, bound=r.low if r.low is not None else r.high,
                                     reason=f"{name} was not recorded (range {r.text})"))
                continue
            value = float(metrics[name])
            reason = r.violation(value)
            if reason:
                found.append(Outside(metric=name, value=value, bound=r.bound(value), reason=reason))
        return found

    @property
    def text(self) -> str:
        return ",".join(r.text for r in self.ranges.values())

    def bands(self) -> dict[str, list[float | None]]:
        """metric -> [low, high] for the dashboard."""
        return {name: [r.low, r.high] for name, r in self.ranges.items()}

"""Champion vs challenger on the same holdout rows: deploy only what is not worse.

Both models score the holdout kept with the challenger's dataset version, so the comparison is
fair even when the champion was trained on an older version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from shared import schema
from shared.dataset_registration import load_frame
from shared.monitoring.ranges import MetricRanges
from shared.ports import DatasetStore, DatasetVersion, ModelRegistry
from shared.training.evaluate import holdout_metrics


@dataclass(frozen=True)
class GateDecision:
    deploy: bool
    reason: str
    challenger: Mapping[str, float] = field(default_factory=dict)
    champion: Mapping[str, float] = field(default_factory=dict)
    outside: tuple[str, ...] = ()  # the metrics outside their ranges that kept the challenger out


def _score(registry: ModelRegistry, version: str, frame: object, y: np.ndarray) -> dict[str, float]:
    model = registry.load(version)
    return holdout_metrics(y, model.predict_proba(frame))


def decide(
    *,
    challenger: str,
    champion: str | None,
    dataset: DatasetVersion,
    datasets: DatasetStore,
    registry: ModelRegistry,
    tolerance: float = 0.002,
    ranges: MetricRanges | None = None,
) -> GateDecision:
    """Deploy when every holdout metric of the challenger is within its range (`BANKOPS_METRIC_RANGES`)
    and there is no champion, or the challenger's AUC_weighted is within `tolerance` of the champion's
    (or better). A model kept out by a range is named with the metric, its value and the bound."""
    frame = load_frame(datasets, dataset).iloc[datasets.holdout(dataset)].reset_index(drop=True)
    y = (frame[schema.TARGET] == schema.POSITIVE).to_numpy(dtype=np.int64)
    ch = _score(registry, challenger, frame, y)
    outside = (ranges or MetricRanges()).outside(ch)
    if outside:
        return GateDecision(False, f"v{challenger} kept out: {'; '.join(o.reason for o in outside)} "
                                   f"on the holdout of {dataset.ref} (BANKOPS_METRIC_RANGES)", ch,
                            outside=tuple(o.metric for o in outside))
    if champion is None:
        return GateDecision(True, f"v{challenger} is the first model: deployed (AUC_weighted {ch['AUC_weighted']:.4f})", ch)
    if champion == challenger:
        return GateDecision(False, f"v{challenger} is already the champion", ch, ch)
    cp = _score(registry, champion, frame, y)
    diff = ch["AUC_weighted"] - cp["AUC_weighted"]
    verdict = (f"challenger v{challenger} AUC_weighted {ch['AUC_weighted']:.4f} vs champion v{champion} "
               f"{cp['AUC_weighted']:.4f} on the holdout of {dataset.ref} ({diff:+.4f}, tolerance {tolerance})")
    if diff < -tolerance:
        return GateDecision(False, f"kept champion: {verdict}", ch, cp)
    return GateDecision(True, f"deployed challenger: {verdict}", ch, cp)

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
from shared.ports import DatasetStore, DatasetVersion, ModelRegistry
from shared.training.evaluate import holdout_metrics


@dataclass(frozen=True)
class GateDecision:
    deploy: bool
    reason: str
    challenger: Mapping[str, float] = field(default_factory=dict)
    champion: Mapping[str, float] = field(default_factory=dict)


def _score(registry: ModelRegistry, version: str, frame: object, y: np.ndarray) -> dict[str, float]:
    model = registry.load(version)
    return holdout_metrics(y, model.predict_proba(frame))  # type: ignore[arg-type]


def decide(
    *,
    challenger: str,
    champion: str | None,
    dataset: DatasetVersion,
    datasets: DatasetStore,
    registry: ModelRegistry,
    tolerance: float = 0.002,
    floors: Mapping[str, float] | None = None,
) -> GateDecision:
    """Deploy when there is no champion, or the challenger's AUC_weighted is within `tolerance`
    of the champion's (or better) and every metric in `floors` is at least its floor."""
    frame = load_frame(datasets, dataset).iloc[datasets.holdout(dataset)].reset_index(drop=True)
    y = (frame[schema.TARGET] == schema.POSITIVE).to_numpy(dtype=np.int64)
    ch = _score(registry, challenger, frame, y)
    low = [f"{k} {ch[k]:.4f} < floor {v:.4f}" for k, v in (floors or {}).items() if ch.get(k, 0.0) < v]
    if low:
        return GateDecision(False, f"v{challenger} kept out: {'; '.join(low)}", ch)
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

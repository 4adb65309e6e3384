"""The tags the Azure ML evaluate step writes on the pipeline run and the function app reads back.

Their own module, without the gate: the function app (which has no scikit-learn) reads the decision, only the
evaluate step computes it (shared/evaluation/azureml_evaluate.py).
"""

from __future__ import annotations

DECISION_TAG, REASON_TAG, CHAMPION_TAG, METRIC_TAG = "bankops_decision", "bankops_reason", "bankops_champion", "bankops_metric_"
PROMOTE, KEEP = "promote", "keep"
NO_CHAMPION = "none"
SMOKE_LABELS_TAG, SMOKE_P_YES_TAG = "bankops_smoke_labels", "bankops_smoke_p_yes"

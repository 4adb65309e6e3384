"""XGBoost boosters as ONNX Runtime tree ensembles, for small batches.

XGBoost's in-place predict spends about 0.2 ms per call before it walks a tree; ONNX Runtime's
tree ensemble about 15 µs. A one-record request through a blend member of five fold boosters
goes from about 1.5 ms to under 0.1 ms. From about a hundred rows on, XGBoost's own predictor is
as fast or faster, so the predictor keeps it there.

Both compare float32 features with float32 thresholds, so every row reaches the same leaves; ONNX
Runtime adds the leaf values in float32 in another order, so probabilities differ from XGBoost's
by up to about 1e-7; the predictor accepts the session only within 1e-6 (the scoring contract).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger("bankops.serving")

ProbaFn = Callable[[np.ndarray], np.ndarray]


def xgboost_session(estimator: Any, n_features: int) -> ProbaFn | None:
    """P("yes") of a binary XGBClassifier through ONNX Runtime, one thread; None when the
    converter or the runtime is missing or refuses the model."""
    try:
        import onnxruntime as ort
        from onnxmltools.convert import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType
    except ImportError:
        log.info("onnxruntime or onnxmltools not installed; XGBoost predicts small batches itself")
        return None
    try:
        onnx_model = convert_xgboost(estimator, initial_types=[("x", FloatTensorType([None, n_features]))], target_opset=15)
    except Exception:  # a booster the converter does not know (objective, categorical splits, ...)
        log.info("XGBoost model not convertible to ONNX; XGBoost predicts small batches itself", exc_info=True)
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # small batches: threads cost more than they give; workers are processes
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the converter declares a fixed label shape; ORT warns about it on every batch
    session = ort.InferenceSession(onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    output = next(o.name for o in session.get_outputs() if o.name == "probabilities")

    def proba(x: np.ndarray) -> np.ndarray:
        (p,) = session.run([output], {"x": np.ascontiguousarray(x, dtype=np.float32)})
        return np.asarray(p[:, 1], dtype=np.float64)

    return proba

"""The MLflow model format of a BankMarketingModel: a pyfunc that takes the raw 20 fields.

`mlflow.pyfunc.load_model(uri).predict(frame)` returns `prediction` ("yes"/"no") and
`probability_yes` per row: the featurization is inside the model.
"""

from __future__ import annotations

from shared.openmp import apply_openmp_environment

# An entry point: MLflow servers import this module to unpickle the model, before its boosters load.
apply_openmp_environment()

import importlib.metadata as md
import tempfile
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow.models import infer_signature

from shared import schema
from shared.model import BankMarketingModel

ARTIFACT = "bank_marketing_model.joblib"
_REQUIREMENTS = ("numpy", "pandas", "scikit-learn", "lightgbm", "xgboost", "joblib")


class BankMarketingPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """pyfunc adapter: loads the pickled model once, predicts per call."""

    def load_context(self, context: Any) -> None:
        self.model: BankMarketingModel = joblib.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.model.predict(pd.DataFrame(model_input)).reset_index(drop=True)


def example_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records as a typed frame in schema column order (the signature's input example)."""
    frame = pd.DataFrame(records)[list(schema.FEATURES)]
    for name in schema.INTEGER_FEATURES:
        frame[name] = frame[name].astype("int64")
    for name in schema.FLOAT_FEATURES:
        frame[name] = frame[name].astype("float64")
    return frame


def log_pyfunc(model: BankMarketingModel, input_example: pd.DataFrame, registered_name: str | None) -> Any:
    """Log under the active run (and register when a name is given); returns MLflow's ModelInfo."""
    requirements = [f"{p}=={md.version(p)}" for p in _REQUIREMENTS]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT
        joblib.dump(model, path)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=BankMarketingPyfunc(),
            artifacts={"model": str(path)},
            signature=infer_signature(input_example, model.predict(input_example)),
            input_example=input_example,
            pip_requirements=requirements,
            registered_model_name=registered_name,
        )

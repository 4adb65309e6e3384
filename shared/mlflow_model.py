"""The MLflow model format of a BankMarketingModel: a pyfunc that takes the raw fields it uses.

`mlflow.pyfunc.load_model(uri).predict(frame)` returns `prediction` ("yes"/"no") and
`probability_yes` per row: the featurization is inside the model. The model carries the few
modules of this project its pickles need (CODE_MODULES, as a package `shared` under the model's
`code/`, which MLflow puts on sys.path at load), and its requirements pin every library its
members use, as installed where it was trained: an environment made from its own
requirements.txt loads and serves it (`mlflow models serve`, azmlinfsrv, an Azure ML no-code
MLflow deployment) without this project installed.
"""

from __future__ import annotations

from shared.openmp import apply_openmp_environment

# An entry point: MLflow servers import this module to unpickle the model, before its boosters load.
apply_openmp_environment()

import contextlib
import importlib.metadata as md
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import joblib
import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.pyfunc.model import PythonModel

from shared import schema
from shared.model import BankMarketingModel

ARTIFACT = "bank_marketing_model.joblib"
# What unpickling and predicting need: this adapter, the model and its encoder, what they import.
CODE_MODULES: Final = ("__init__.py", "openmp.py", "errors.py", "schema.py", "features.py", "model.py", "mlflow_model.py")
# Libraries every saved model imports (pandas: the encoder; scikit-learn: every estimator's base).
BASE_REQUIREMENTS: Final = ("mlflow", "numpy", "pandas", "scikit-learn", "scipy", "joblib", "cloudpickle")


class BankMarketingPyfunc(PythonModel):
    """pyfunc adapter: loads the pickled model once, predicts per call."""

    def load_context(self, context: Any) -> None:
        self.model: BankMarketingModel = joblib.load(context.artifacts["model"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.model.predict(pd.DataFrame(model_input)).reset_index(drop=True)


def example_frame(records: list[dict[str, Any]], columns: tuple[str, ...] = schema.FEATURES) -> pd.DataFrame:
    """Records as a typed frame of `columns` (default: all features) in schema order (the
    signature's input example)."""
    frame = pd.DataFrame(records)[[c for c in schema.FEATURES if c in set(columns)]]
    for name in frame.columns:
        if name in schema.INTEGER_FEATURES:
            frame[name] = frame[name].astype("int64")
        elif name in schema.FLOAT_FEATURES:
            frame[name] = frame[name].astype("float64")
    return frame


def _parts(estimator: Any) -> Iterator[Any]:
    """The estimator and everything it wraps (pipeline steps, voting members, frozen models)."""
    yield estimator
    inner: list[Any] = []
    if getattr(estimator, "steps", None):
        inner = [step for _, step in estimator.steps]
    elif hasattr(estimator, "estimator") and type(estimator).__name__ == "FrozenEstimator":
        inner = [estimator.estimator]
    elif isinstance(getattr(estimator, "estimators_", None), list) and type(estimator).__name__ == "VotingClassifier":
        inner = list(estimator.estimators_)
    for part in inner:
        yield from _parts(part)


def member_libraries(model: BankMarketingModel) -> list[str]:
    """The distributions (pip names) whose classes the members are made of, sorted."""
    distributions = md.packages_distributions()
    found: set[str] = set()
    for member in model.members:
        for part in _parts(member.estimator):
            top = type(part).__module__.split(".")[0]
            found.update(distributions.get(top, [top]))
    return sorted(found)


def requirements(model: BankMarketingModel) -> list[str]:
    """pip requirements pinned to the versions installed here: the base libraries and the members'."""
    names = dict.fromkeys([*BASE_REQUIREMENTS, *member_libraries(model)])
    return [f"{name}=={md.version(name)}" for name in names]


@contextlib.contextmanager
def pyfunc_arguments(model: BankMarketingModel, input_example: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """The keyword arguments of `mlflow.pyfunc.log_model` / `save_model` for `model` (its files
    live until the block ends). The signature and example hold the columns the model uses."""
    example = input_example[[c for c in input_example.columns if c in set(model.encoder.columns)]]
    with tempfile.TemporaryDirectory() as tmp:
        artifact = Path(tmp) / ARTIFACT
        joblib.dump(model, artifact)
        package = Path(tmp) / "code" / "shared"
        package.mkdir(parents=True)
        here = Path(__file__).parent
        for name in CODE_MODULES:
            shutil.copyfile(here / name, package / name)
        yield {
            "python_model": BankMarketingPyfunc(),
            "artifacts": {"model": str(artifact)},
            "code_paths": [str(package)],
            "signature": infer_signature(example, model.predict(example)),
            "input_example": example,
            "pip_requirements": requirements(model),
        }


def log_pyfunc(model: BankMarketingModel, input_example: pd.DataFrame, registered_name: str | None) -> Any:
    """Log under the active run (and register when a name is given); returns MLflow's ModelInfo."""
    with pyfunc_arguments(model, input_example) as arguments:
        return mlflow.pyfunc.log_model(name="model", registered_model_name=registered_name, **arguments)


def save_pyfunc(model: BankMarketingModel, input_example: pd.DataFrame, path: Path) -> None:
    """The same MLflow model, saved to a folder (for an upload to a workspace)."""
    with pyfunc_arguments(model, input_example) as arguments:
        mlflow.pyfunc.save_model(str(path), **arguments)

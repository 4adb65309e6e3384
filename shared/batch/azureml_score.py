"""The batch step on Azure ML: entry script of the batch deployment, and the command of the pipeline step.

Azure ML's batch driver calls `init()` once per worker process and `run(mini_batch)` with a list of
input file paths; each file is scored by the local batch step (`shared.batch.job.score_file`) into
`$AZUREML_BI_OUTPUT_PATH/<stem>.predictions.csv` (rejects beside it), so the output has the same
columns as `bankops batch-score`: every input column, then prediction, probability_yes, model_version.
The deployment uses `output_action=summary_only`: `run` answers one summary row per file, and the
files themselves are what it writes. As a pipeline command step: `python -m shared.batch.azureml_score
--model DIR --input FILE --output DIR`.

The model folder (`$AZUREML_MODEL_DIR`) holds the registered MLflow model: a bankops blend is
scored by the compiled predictor (`BatchModel`), an Azure AutoML model through its own
`predict_proba` on the checked rows (`FrameModel`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # loaded as a file by the batch driver: the code folder holds the `shared` package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd
import pyarrow as pa

from shared import schema
from shared.batch.files import output_names
from shared.batch.job import BatchSummary, rejects_path, score_file
from shared.batch.validate import CheckedRows

MODEL_VERSION_ENV = "BANKOPS_MODEL_VERSION"
_LABELS = pa.array([schema.NEGATIVE, schema.POSITIVE])
_state: dict[str, Any] = {}


class FrameModel:
    """A model that takes only a DataFrame of the 20 raw fields (an Azure AutoML sklearn pipeline), for `score_stream`.

    A plain class, not a dataclass: the batch driver may load this file without registering it as a module.
    """

    def __init__(self, version: str, model: Any) -> None:
        self.version, self.model = version, model  # model: predict_proba(frame) -> P(yes), and a threshold

    def matrix(self, checked: CheckedRows, rows: np.ndarray) -> pd.DataFrame:
        """The checked rows as the raw fields, typed as in training (integers whole, categories stripped)."""
        columns: dict[str, Any] = {}
        for name in schema.FEATURES:
            if name in checked.numbers:
                values = checked.numbers[name][rows]
                columns[name] = values.astype(np.int64) if schema.kind_of(name) == "integer" else values
            else:
                categories, codes = checked.categories[name]
                columns[name] = np.asarray([*categories, ""], dtype=object)[codes[rows]]
        return pd.DataFrame(columns)

    def proba(self, x: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_proba(x), dtype=np.float64) if len(x) else np.zeros(0)

    def labels(self, p: np.ndarray) -> pa.Array:
        return _LABELS.take(pa.array((p >= float(getattr(self.model, "threshold", 0.5))).astype(np.int8)))


def load_model(model_dir: Path, version: str) -> Any:
    """The registered model in `model_dir` (an MLflow folder, at any depth), ready for `score_stream`."""
    from shared.adapters.azure.registry import load_mlflow_folder  # no Azure SDK import: plain MLflow and joblib
    from shared.batch.scorer import BatchModel
    from shared.model import BankMarketingModel

    model = load_mlflow_folder(model_dir)
    if isinstance(model, BankMarketingModel):
        return BatchModel.build(model, version)
    return FrameModel(version, model)


def model_version(model_dir: Path) -> str:
    """The version the deployment set, else the last folder of the model's path (…/<name>/<version>)."""
    return os.environ.get(MODEL_VERSION_ENV) or model_dir.name


def score_into(model: Any, source: Path, output_dir: Path, output_name: str | None = None) -> BatchSummary:
    """Score one file into `output_dir/<stem>.predictions.csv` (and its rejects), as `bankops batch-score` does.

    Scored on local disk first and copied at the end: the output folder may be a mounted blob
    container, where a rename is not atomic and a half-written file would be visible.
    """
    name = output_name or output_names(source.name)[0]
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bankops-batch-") as tmp:
        scored = Path(tmp) / name
        summary = score_file(model, source, scored)
        for path in (scored, rejects_path(scored)):
            if path.exists():
                shutil.copyfile(path, output_dir / path.name)
    return summary


def init() -> None:
    """Load the deployment's model once per worker process."""
    model_dir = Path(os.environ["AZUREML_MODEL_DIR"])
    _state["model"] = load_model(model_dir, model_version(model_dir))
    _state["output"] = Path(os.environ.get("AZUREML_BI_OUTPUT_PATH") or tempfile.mkdtemp(prefix="bankops-predictions-"))


def run(mini_batch: list[str]) -> pd.DataFrame:
    """Score every file of the mini-batch; one summary row per file (a file with the wrong columns raises: it fails)."""
    rows = []
    for path in map(Path, mini_batch):
        summary = score_into(_state["model"], path, _state["output"])
        rows.append({"file": path.name, "output": output_names(path.name)[0], **summary.as_dict()})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    """The pipeline step: score one input file with the model folder into the output folder."""
    parser = argparse.ArgumentParser(description="bankops batch scoring step (Azure ML pipeline command)")
    parser.add_argument("--model", type=Path, required=True, help="folder of the registered MLflow model")
    parser.add_argument("--input", type=Path, required=True, help="the client CSV (a folder: every *.csv in it)")
    parser.add_argument("--output", type=Path, required=True, help="folder the predictions are written to")
    parser.add_argument("--output-name", default=None, help="file name of the predictions (default <stem>.predictions.csv)")
    parser.add_argument("--model-version", default=None, help="the version written in model_version")
    args = parser.parse_args(argv)
    model = load_model(args.model, args.model_version or model_version(args.model))
    inputs = sorted(args.input.glob("*.csv")) if args.input.is_dir() else [args.input]
    for source in inputs:
        summary = score_into(model, source, args.output, args.output_name if len(inputs) == 1 else None)
        print(f"{source.name}: {summary.as_dict()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

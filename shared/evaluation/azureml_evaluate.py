"""The evaluate step of the Azure ML training pipeline: the local gate, run where the AutoML model loads.

`python -m shared.evaluation.azureml_evaluate` runs in the model's own environment (the AutoML
curated environment) on the pipeline's compute. It scores the challenger (the AutoML step's best
model) and the champion (the registered version the alias pointed at when the pipeline was
submitted) on the holdout kept with the dataset version, with `shared.automation.gate.decide`,
the very rule the local backend applies. It writes `decision.json` into its output folder and tags
the pipeline run (decision 8 of the project: `bankops_decision`, `bankops_reason`,
`bankops_metric_<name>`, plus `bankops_champion`), so the function app reads the decision from the
job's tags and never loads an AutoML model. It also tags what the challenger answers for the
scoring contract's example records (`bankops_smoke_labels`, `bankops_smoke_p_yes`): the deployer's
smoke test compares the endpoint's answer with those instead of loading the model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared import schema
from shared.automation.gate import GateDecision, decide
from shared.data_validation import validate_csv
from shared.errors import BankopsError, ConfigurationError, InvalidInput, NotFound
from shared.evaluation.decision_tags import (
    CHAMPION_TAG,
    DECISION_TAG,
    KEEP,
    METRIC_TAG,
    NO_CHAMPION,
    PROMOTE,
    REASON_TAG,
    SMOKE_LABELS_TAG,
    SMOKE_P_YES_TAG,
)
from shared.model import BankMarketingModel
from shared.monitoring.ranges import MetricRanges
from shared.ports import DatasetVersion, ModelVersion, parse_dataset_ref

CHALLENGER = "new"  # the challenger has no registered version yet: the gate's reasons call it "vnew"
MAX_REASON = 250  # run tags are short; the full reason is in decision.json
DATA_FILE, HOLDOUT_FILE = "data.csv", "holdout.json"  # what AzureDatasetStore writes into a version's folder


class MountedDataset:
    """One dataset version's folder as Azure ML mounts the `mltable` input: the CSV and its holdout rows.

    Read only: the step judges a version, it never registers one.
    """

    def __init__(self, folder: Path, ref: str) -> None:
        name, version = parse_dataset_ref(ref)
        if version is None:
            raise InvalidInput(f"the dataset reference must be NAME:VERSION, not {ref[:80]!r}")
        self.folder = folder
        content = self._file(DATA_FILE)
        frame = validate_csv(content, min_rows=1, min_rows_per_class=1).frame
        positive = float((frame[schema.TARGET] == schema.POSITIVE).mean())
        self.version = DatasetVersion(name=name, version=int(version), content_hash=hashlib.sha256(content).hexdigest(),
                                      rows=len(frame), positive_share=positive, created_at="", uri=f"azureml:{ref}")

    def _file(self, name: str) -> bytes:
        path = self.folder / name
        if not path.is_file():
            raise NotFound(f"{name} is missing from the mounted dataset folder {self.folder}: was it registered by bankops?")
        return path.read_bytes()

    def find(self, name: str, content_hash: str) -> DatasetVersion | None:
        v = self.version
        return v if (v.name, v.content_hash) == (name, content_hash) else None

    def add(self, name: str, content: bytes, *, content_hash: str, rows: int, positive_share: float,
            holdout: np.ndarray, source: str) -> DatasetVersion:
        raise InvalidInput("the evaluate step reads one dataset version; it registers none")

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        if name != self.version.name or version not in (None, self.version.version):
            raise NotFound(f"only {self.version.ref} is mounted in this step")
        return self.version

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        return [self.version] if name in (None, self.version.name) else []

    def read(self, dataset: DatasetVersion) -> bytes:
        self.get(dataset.name, dataset.version)
        return self._file(DATA_FILE)

    def holdout(self, dataset: DatasetVersion) -> np.ndarray:
        self.get(dataset.name, dataset.version)
        return np.asarray(json.loads(self._file(HOLDOUT_FILE)), dtype=np.int64)


class MountedModels:
    """The challenger's and the champion's MLflow folders as mounted inputs, by version name. Read only."""

    def __init__(self, folders: Mapping[str, Path]) -> None:
        self.folders = dict(folders)

    def _folder(self, version: str) -> Path:
        if version not in self.folders:
            raise NotFound(f"model version {version} is not an input of this step")
        return self.folders[version]

    def load(self, version: str) -> BankMarketingModel:
        from shared.adapters.azure.registry import load_mlflow_folder

        return load_mlflow_folder(self._folder(version))  # type: ignore[no-any-return]

    def get(self, version: str | None = None) -> ModelVersion:
        name = version or CHALLENGER
        self._folder(name)
        return ModelVersion(name="mounted", version=name, run_id="", created_at="")

    def list(self) -> list[ModelVersion]:
        return [self.get(v) for v in self.folders]

    def register(self, model: BankMarketingModel, *, run_id: str, metrics: Mapping[str, float],
                 tags: Mapping[str, str], input_example: Any) -> ModelVersion:
        raise InvalidInput("the evaluate step judges models; the function app registers them")

    def set_alias(self, alias: str, version: str) -> None:
        raise InvalidInput("the evaluate step judges models; the function app moves aliases")

    def alias(self, alias: str) -> ModelVersion | None:
        return None


def evaluate(*, challenger: Path, dataset: Path, dataset_ref: str, champion: Path | None = None, champion_version: str = "",
             tolerance: float = 0.002, ranges: MetricRanges | None = None) -> GateDecision:
    """The local gate's decision for the challenger folder against the champion folder (if any)."""
    if (champion is None) != (not champion_version):
        raise InvalidInput("give the champion's folder and its version together, or neither")
    folders = {CHALLENGER: challenger, **({champion_version: champion} if champion is not None else {})}
    store = MountedDataset(dataset, dataset_ref)
    return decide(challenger=CHALLENGER, champion=champion_version or None, dataset=store.version, datasets=store,
                  registry=MountedModels(folders), tolerance=tolerance, ranges=ranges)


def smoke_expectations(challenger: Path) -> dict[str, str]:
    """What the challenger answers for the example records of the scoring contract, as tags."""
    from shared.adapters.azure.registry import load_mlflow_folder
    from shared.serving.contract import EXAMPLE_RECORDS

    model = load_mlflow_folder(challenger)
    p_yes = np.asarray(model.predict_proba_records(list(EXAMPLE_RECORDS)), dtype=float)
    return {SMOKE_LABELS_TAG: ",".join(str(x) for x in model.label(p_yes)), SMOKE_P_YES_TAG: ",".join(f"{p:.6f}" for p in p_yes)}


def decision_tags(decision: GateDecision, champion_version: str) -> dict[str, str]:
    """The pipeline run's tags the function app reads (decision 8): decision, short reason, challenger metrics."""
    return {DECISION_TAG: PROMOTE if decision.deploy else KEEP, REASON_TAG: decision.reason[:MAX_REASON],
            CHAMPION_TAG: champion_version or NO_CHAMPION,
            **{f"{METRIC_TAG}{k}": f"{v:.6g}" for k, v in sorted(decision.challenger.items())}}


def tag_pipeline_run(tags: Mapping[str, str]) -> str:
    """Set `tags` on the pipeline run this step belongs to, through the workspace's MLflow endpoint.

    Azure ML starts every step with MLFLOW_TRACKING_URI and MLFLOW_RUN_ID set; the step's run names
    the pipeline's as its root (`mlflow.rootRunId`) or parent run. Answers the pipeline run's id.
    """
    from mlflow.tracking import MlflowClient

    run_id = os.environ.get("MLFLOW_RUN_ID", "")
    if not run_id:
        raise BankopsError("MLFLOW_RUN_ID is not set: this step must run inside an Azure ML pipeline job")
    client = MlflowClient()
    own = client.get_run(run_id).data.tags
    pipeline = own.get("mlflow.rootRunId") or own.get("mlflow.parentRunId")
    if not pipeline:
        raise BankopsError(f"run {run_id} names no pipeline run (no mlflow.rootRunId or mlflow.parentRunId tag)")
    for key, value in tags.items():
        client.set_tag(pipeline, key, value)
    return str(pipeline)


def _ranges(text: str) -> MetricRanges:
    try:
        return MetricRanges.parse(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="azureml_evaluate", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--challenger", type=Path, required=True, help="the AutoML step's best model (MLflow folder)")
    parser.add_argument("--dataset", type=Path, required=True, help="the dataset version's mounted folder")
    parser.add_argument("--dataset-ref", required=True, help="NAME:VERSION of that dataset version")
    parser.add_argument("--champion", type=Path, help="the champion's MLflow folder")
    parser.add_argument("--champion-version", default="", help="the champion's registered version")
    parser.add_argument("--tolerance", type=float, default=0.002)
    parser.add_argument("--ranges", type=_ranges, default=MetricRanges(),
                        help="BANKOPS_METRIC_RANGES, e.g. AUC_weighted>=0.93,recall_yes>=0.45,log_loss<=0.30")
    parser.add_argument("--output", type=Path, required=True, help="folder for decision.json")
    args = parser.parse_args(argv)
    decision = evaluate(challenger=args.challenger, dataset=args.dataset, dataset_ref=args.dataset_ref, champion=args.champion,
                        champion_version=args.champion_version, tolerance=args.tolerance, ranges=args.ranges)
    tags = decision_tags(decision, args.champion_version) | smoke_expectations(args.challenger)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "decision.json").write_text(json.dumps(
        {"decision": tags[DECISION_TAG], "reason": decision.reason, "dataset": args.dataset_ref,
         "champion_version": args.champion_version or None, "challenger": dict(decision.challenger),
         "champion": dict(decision.champion)}, indent=2))
    pipeline = tag_pipeline_run(tags)
    print(f"{tags[DECISION_TAG]}: {decision.reason} (tagged pipeline run {pipeline})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

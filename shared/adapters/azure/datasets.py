"""DatasetStore on Azure ML data assets: each version an `mltable` asset over files in Blob Storage.

A version's folder in the `datasets` container (the Azure ML datastore AZUREML_DATASTORE points
at it) holds the validated CSV as registered (`data.csv`), its holdout row indices
(`holdout.json`), the training rows without the holdout (`train.csv`) and the `MLTable` file
that makes AutoML read `train.csv`, so AutoML never sees the rows the gate judges models on.
The files are written before the asset is registered: a crash leaves an unreferenced folder,
never a half-registered version. Validation happens before `add`, as for the local store.
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from shared.errors import NotFound
from shared.ports import DatasetVersion

CONTAINER = "datasets"
MLTABLE = """\
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - file: ./train.csv
transformations:
  - read_delimited:
      delimiter: ','
      encoding: utf8
      header: all_files_same_headers
"""


def training_rows(content: bytes, holdout: np.ndarray) -> bytes:
    """The CSV without the holdout rows (0-based data rows), for AutoML."""
    frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False)
    out = io.StringIO()
    frame.drop(index=[int(i) for i in holdout]).to_csv(out, index=False)
    return out.getvalue().encode()


class AzureDatasetStore:
    def __init__(self, ml_client: Any, blob_service: Any, *, datastore_name: str, container: str = CONTAINER) -> None:
        from azure.core.exceptions import ResourceExistsError

        self.ml, self.blobs, self.datastore_name, self.container = ml_client, blob_service, datastore_name, container
        with contextlib.suppress(ResourceExistsError):
            blob_service.create_container(container)

    def _folder(self, name: str, content_hash: str) -> str:
        return f"{name}/{content_hash}"

    @staticmethod
    def _version(asset: Any) -> DatasetVersion:
        tags = dict(asset.tags or {})
        return DatasetVersion(name=asset.name, version=int(asset.version), content_hash=tags["content_hash"], rows=int(tags["rows"]),
                              positive_share=float(tags["positive_share"]), created_at=tags.get("created_at", ""),
                              uri=f"azureml:{asset.name}:{asset.version}", source=tags.get("source", ""))

    def _assets(self, name: str) -> list[Any]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return [a for a in self.ml.data.list(name=name) if "content_hash" in (a.tags or {})]
        except ResourceNotFoundError:
            return []

    def find(self, name: str, content_hash: str) -> DatasetVersion | None:
        found = [a for a in self._assets(name) if a.tags.get("content_hash") == content_hash]
        return self._version(min(found, key=lambda a: int(a.version))) if found else None

    def add(self, name: str, content: bytes, *, content_hash: str, rows: int, positive_share: float,
            holdout: np.ndarray, source: str) -> DatasetVersion:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data
        from azure.core.exceptions import ResourceExistsError

        existing = self.find(name, content_hash)
        if existing is not None:
            return existing
        folder = self._folder(name, content_hash)
        files = {"data.csv": content, "holdout.json": json.dumps([int(i) for i in holdout]).encode(),
                 "train.csv": training_rows(content, holdout), "MLTable": MLTABLE.encode()}
        for file, data in files.items():
            self.blobs.get_blob_client(self.container, f"{folder}/{file}").upload_blob(data, overwrite=True)
        version = 1 + max((int(a.version) for a in self._assets(name)), default=0)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        asset = Data(name=name, version=str(version), type=AssetTypes.MLTABLE,
                     path=f"azureml://datastores/{self.datastore_name}/paths/{folder}/",
                     description=f"bankops dataset {name} v{version} ({rows} rows) from {source}",
                     tags={"content_hash": content_hash, "rows": str(rows), "positive_share": f"{positive_share:.6g}",
                           "created_at": created, "source": source})
        try:
            return self._version(self.ml.data.create_or_update(asset))
        except ResourceExistsError:  # another writer took this version number: same content wins, else retry
            again = self.find(name, content_hash)
            if again is not None:
                return again
            return self.add(name, content, content_hash=content_hash, rows=rows, positive_share=positive_share,
                            holdout=holdout, source=source)

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        assets = [a for a in self._assets(name) if version is None or int(a.version) == version]
        if not assets:
            which = f"version {version} of dataset {name!r}" if version else f"dataset {name!r}"
            raise NotFound(f"{which} is not registered; see `bankops data list`, or register a file with `bankops data register PATH`")
        return self._version(max(assets, key=lambda a: int(a.version)))

    def list(self, name: str | None = None) -> list[DatasetVersion]:
        names = [name] if name is not None else sorted({a.name for a in self.ml.data.list()})
        return [self._version(a) for n in names for a in sorted(self._assets(n), key=lambda a: int(a.version))]

    def _read(self, dataset: DatasetVersion, file: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self.blobs.get_blob_client(self.container, f"{self._folder(dataset.name, dataset.content_hash)}/{file}")
        try:
            return bytes(blob.download_blob().readall())
        except ResourceNotFoundError as exc:
            raise NotFound(f"the files of {dataset.ref} are missing from the {self.container!r} container") from exc

    def read(self, dataset: DatasetVersion) -> bytes:
        return self._read(dataset, "data.csv")

    def holdout(self, dataset: DatasetVersion) -> np.ndarray:
        return np.asarray(json.loads(self._read(dataset, "holdout.json")), dtype=np.int64)

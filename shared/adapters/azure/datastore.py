"""Datastore on Azure Blob Storage (`azure-storage-blob`): one container per area, as the local folders.

Works against Azure (connection string, or account URL + managed identity) and Azurite, the
storage emulator (BANKOPS_DATASTORE=azurite). Blob uploads are atomic: a reader sees the old
blob or the new one, never part of it. The etag is the blob's ETag without quotes, as Event Grid
puts it in BlobCreated events, so an event can be matched with the blob it announced.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from shared.adapters.local.datastore import CONTAINERS
from shared.config import Settings
from shared.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from shared.ports import BlobInfo

# The storage emulator's documented development account (public, the same on every machine).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(blob_port: int = 10000, host: str = "127.0.0.1") -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://{host}:{blob_port}/{AZURITE_ACCOUNT};")


def blob_service(settings: Settings) -> Any:
    """A BlobServiceClient for BANKOPS_DATASTORE=azurite|azure."""
    try:
        from azure.storage.blob import BlobServiceClient
    except ImportError as exc:
        raise ConfigurationError(f"BANKOPS_DATASTORE={settings.datastore} needs azure-storage-blob: pip install '.[azure]'") from exc
    if settings.storage_connection_string is not None:
        return BlobServiceClient.from_connection_string(settings.storage_connection_string.get_secret_value())
    if settings.datastore == "azurite":
        return BlobServiceClient.from_connection_string(azurite_connection_string())
    if settings.storage_account_url:
        from shared.adapters.azure.workspace import credential

        return BlobServiceClient(settings.storage_account_url, credential=credential())
    raise ConfigurationError("BANKOPS_DATASTORE=azure needs BANKOPS_STORAGE_ACCOUNT_URL (managed identity) "
                             "or BANKOPS_STORAGE_CONNECTION_STRING")


def _etag(value: str) -> str:
    return value.strip('"')


class BlobDatastore:
    """The five areas as blob containers of one storage account (created when missing)."""

    def __init__(self, service: Any, *, create: bool = True) -> None:
        from azure.core.exceptions import ResourceExistsError

        self.service = service
        if create:
            for container in CONTAINERS:
                with contextlib.suppress(ResourceExistsError):
                    service.create_container(container)

    def _blob(self, container: str, name: str) -> Any:
        if container not in CONTAINERS:
            raise InvalidInput(f"unknown container {container!r}; the containers are: {', '.join(CONTAINERS)}")
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise InvalidInput(f"invalid file name {name!r}: use a plain name such as new-data.csv")
        return self.service.get_blob_client(container, name)

    def list(self, container: str) -> list[BlobInfo]:
        self._blob(container, "x")
        blobs = [b for b in self.service.get_container_client(container).list_blobs() if not b.name.startswith(".") and "/" not in b.name]
        blobs.sort(key=lambda b: (b.creation_time or b.last_modified, b.name))
        return [BlobInfo(container=container, name=b.name, etag=_etag(b.etag), size=b.size) for b in blobs]

    def info(self, container: str, name: str) -> BlobInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self._blob(container, name).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return BlobInfo(container=container, name=name, etag=_etag(props.etag), size=props.size)

    def read(self, container: str, name: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return bytes(self._blob(container, name).download_blob().readall())
        except ResourceNotFoundError as exc:
            raise NotFound(f"{container}/{name} does not exist") from exc

    def read_head(self, container: str, name: str, max_bytes: int) -> bytes:
        """A ranged download: only the first `max_bytes` leave the storage account."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self._blob(container, name).get_blob_properties()
            length = min(max_bytes, props.size)
            if length == 0:
                return b""
            return bytes(self._blob(container, name).download_blob(offset=0, length=length).readall())
        except ResourceNotFoundError as exc:
            raise NotFound(f"{container}/{name} does not exist") from exc

    def write(self, container: str, name: str, data: bytes) -> BlobInfo:
        answer = self._blob(container, name).upload_blob(data, overwrite=True)
        return BlobInfo(container=container, name=name, etag=_etag(answer["etag"]), size=len(data))

    def move(self, container: str, name: str, to_container: str, *, etag: str | None = None) -> BlobInfo:
        """Copy, then delete the source only if it is still the copied version; never overwrite a target.

        With `etag`, the copy is of that version only (a conditional download), else Conflict.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

        source = self._blob(container, name)
        condition = {} if etag is None else {"etag": f'"{etag}"', "match_condition": MatchConditions.IfNotModified}
        try:
            download = source.download_blob(**condition)
        except ResourceNotFoundError as exc:
            raise NotFound(f"{container}/{name} does not exist") from exc
        except ResourceModifiedError as exc:
            raise Conflict(f"{container}/{name} changed since it was read; it is judged again") from exc
        data, etag = bytes(download.readall()), download.properties.etag
        stem, suffix = os.path.splitext(name)
        candidates = (name if n == 0 else f"{stem}.{n}{suffix}" for n in range(10_000))
        for candidate in candidates:
            try:
                answer = self._blob(to_container, candidate).upload_blob(data, overwrite=False)
                break
            except ResourceExistsError:
                continue
        # rewritten meanwhile (its new BlobCreated event handles it) or already gone: keep what is there
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
            source.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
        return BlobInfo(container=to_container, name=candidate, etag=_etag(answer["etag"]), size=len(data))

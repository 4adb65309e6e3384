"""Datastore on folders under $BANKOPS_HOME/datastore: one folder per container.

The etag is the file's modification time and size, which change with every write, like a blob's
ETag. Names starting with '.' are partial uploads (write to '.name', then rename) and are hidden.
bankops writes only plain names; a file a user dropped under an odd name (a backslash, a newline,
255 bytes) can still be read and moved, and lands under a plain, shorter name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from shared.atomic_files import write_atomically
from shared.errors import Conflict, InvalidInput, NotFound
from shared.ports import BlobInfo
from shared.untrusted_text import for_log, safe_file_name

CONTAINERS = ("incoming", "quarantine", "processed", "batch", "predictions")
_WRITTEN_NAME_LIMIT = 240  # bytes: room for ".reason.txt" under the 255 a file system allows


class LocalDatastore:
    def __init__(self, root: Path) -> None:
        self.root = root
        for container in CONTAINERS:
            (root / container).mkdir(parents=True, exist_ok=True)

    def _path(self, container: str, name: str, *, existing: bool = False) -> Path:
        """The path of a file; a name bankops writes must be plain, one it finds (`existing`) may be odd."""
        if container not in CONTAINERS:
            raise InvalidInput(f"unknown container {container!r}; the containers are: {', '.join(CONTAINERS)}")
        odd = not existing and safe_file_name(name, _WRITTEN_NAME_LIMIT) != name  # a backslash, a newline, too long
        if not name or "/" in name or "\x00" in name or name.startswith(".") or odd:
            raise InvalidInput(f"invalid file name {for_log(name, 80)!r}: use a plain name such as new-data.csv")
        return self.root / container / name

    def _info(self, container: str, path: Path) -> BlobInfo:
        st = path.stat()
        return BlobInfo(container=container, name=path.name, etag=f"{st.st_mtime_ns:x}-{st.st_size:x}", size=st.st_size)

    def list(self, container: str) -> list[BlobInfo]:
        folder = self._path(container, "x").parent
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        return [self._info(container, p) for p in sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))]

    def info(self, container: str, name: str) -> BlobInfo | None:
        path = self._path(container, name, existing=True)
        try:
            return self._info(container, path)
        except FileNotFoundError:
            return None

    def read(self, container: str, name: str) -> bytes:
        try:
            return self._path(container, name, existing=True).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"{container}/{name} does not exist") from exc

    def read_head(self, container: str, name: str, max_bytes: int) -> bytes:
        try:
            with self._path(container, name, existing=True).open("rb") as f:
                return f.read(max_bytes)
        except FileNotFoundError as exc:
            raise NotFound(f"{container}/{name} does not exist") from exc

    def write(self, container: str, name: str, data: bytes) -> BlobInfo:
        path = self._path(container, name)
        write_atomically(path, data)
        return self._info(container, path)

    def open_read(self, container: str, name: str) -> BinaryIO:
        try:
            return open(self._path(container, name, existing=True), "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"{container}/{name} does not exist") from exc

    def write_from(self, container: str, name: str, source: BinaryIO) -> BlobInfo:
        path = self._path(container, name)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                shutil.copyfileobj(source, fh, 4 << 20)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return self._info(container, path)

    def move(self, container: str, name: str, to_container: str, *, etag: str | None = None) -> BlobInfo:
        source = self._path(container, name, existing=True)
        if not source.is_file():
            raise NotFound(f"{container}/{for_log(name)} does not exist")
        if etag is not None and self._info(container, source).etag != etag:
            raise Conflict(f"{container}/{for_log(name)} changed since it was read; it is judged again")
        plain = safe_file_name(name)
        target = self._path(to_container, plain)
        if target.exists():  # keep both: never overwrite an earlier file of the same name
            stem, suffix = os.path.splitext(plain)
            n = 1
            while (candidate := self._path(to_container, f"{stem}.{n}{suffix}")).exists():
                n += 1
            target = candidate
        shutil.move(source, target)
        moved = self._info(to_container, target)
        if etag is not None and moved.etag != etag:  # written to between the check and the rename: put it back
            if not source.exists():
                shutil.move(target, source)
            raise Conflict(f"{container}/{for_log(name)} changed while it was moved; it is judged again")
        return moved

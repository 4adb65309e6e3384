"""Endpoint keys like Azure ML's: a primary and a secondary scoring key, plus the function key.

They live in `$BANKOPS_HOME/keys/keys.json` (folder 0700, file 0600), generated on first use,
each regenerable alone. `BANKOPS_PRIMARY_KEY`, `BANKOPS_SECONDARY_KEY` and `BANKOPS_FUNCTION_KEY`
override the stored ones. The file is always replaced atomically, so a reader sees the old keys
or the new ones; the scoring workers notice a change by one `stat` per request. Key values are
compared with `hmac.compare_digest` and never appear in logs or error messages. The file is
validated when read: a bad one is a `CorruptState` naming it and what to do (a scoring worker
keeps the keys it had), and temporary copies a killed writer left behind are removed under the lock.
"""

from __future__ import annotations

import fcntl
import hmac
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from shared.atomic_files import remove_leftovers, write_atomically
from shared.errors import Conflict, CorruptState, InvalidInput

log = logging.getLogger("bankops.keys")

if TYPE_CHECKING:
    from shared.config import Settings

SCORING_KEYS = ("primary", "secondary")
ALL_KEYS = (*SCORING_KEYS, "function")
ENV_NAMES = {"primary": "BANKOPS_PRIMARY_KEY", "secondary": "BANKOPS_SECONDARY_KEY", "function": "BANKOPS_FUNCTION_KEY"}


def new_key() -> str:
    """256 random bits, URL-safe (what Azure ML keys carry, in a different alphabet)."""
    return secrets.token_urlsafe(32)


class KeysFile(BaseModel):
    """keys/keys.json: no missing, extra or empty key."""

    model_config = ConfigDict(extra="forbid", strict=True)
    primary: str
    secondary: str
    function: str
    updated_at: str


@dataclass(frozen=True)
class KeyInfo:
    name: str
    value: SecretStr
    source: str  # "file" or the environment variable's name


class KeyStore:
    """The keys file under `$BANKOPS_HOME/keys`, with environment overrides on top."""

    def __init__(self, folder: Path, overrides: Mapping[str, SecretStr | None] | None = None) -> None:
        self.folder = folder
        self.path = folder / "keys.json"
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None and v.get_secret_value()}

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyStore:
        return cls(settings.paths.keys, {"primary": settings.primary_key, "secondary": settings.secondary_key,
                                         "function": settings.function_key})

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                remove_leftovers(self.path)  # a writer killed mid-write left its copy: it holds every key
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, str]:
        """The stored keys ({} before the first start); raises CorruptState for a bad file."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            stored = KeysFile.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            reason = "not valid JSON" if first["type"] == "json_invalid" else f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
            raise CorruptState(f"{self.path} is not a valid keys file ({reason}); restore it from a backup, or delete it "
                               "to generate new keys (every client then needs the new ones: `bankops keys show`)") from None
        return {k: v for k in ALL_KEYS if (v := getattr(stored, k))}

    def _write(self, keys: Mapping[str, str]) -> None:
        body = KeysFile(**{k: keys[k] for k in ALL_KEYS}, updated_at=datetime.now(UTC).isoformat(timespec="seconds"))
        write_atomically(self.path, body.model_dump_json(indent=2).encode(), mode=0o600)

    def ensure(self) -> None:
        """Generate whichever stored key is missing (first start); existing keys are kept."""
        with self._locked():
            stored = self._read()
            missing = [k for k in ALL_KEYS if k not in stored]
            if missing:
                self._write(stored | {k: new_key() for k in missing})

    def regenerate(self, name: str) -> None:
        """A new value for one key; the others stay valid throughout."""
        if name not in ALL_KEYS:
            raise InvalidInput(f"unknown key {name!r}; choose one of: {', '.join(ALL_KEYS)}")
        if name in self.overrides:
            raise Conflict(f"the {name} key comes from {ENV_NAMES[name]}; change that variable instead")
        with self._locked():
            stored = self._read()
            stored[name] = new_key()
            self._write({k: stored.get(k) or new_key() for k in ALL_KEYS})

    def entries(self) -> list[KeyInfo]:
        """Every key in force, and where it comes from."""
        self.ensure()
        stored = self._read()
        found = []
        for name in ALL_KEYS:
            if name in self.overrides:
                found.append(KeyInfo(name, self.overrides[name], ENV_NAMES[name]))
            else:
                found.append(KeyInfo(name, SecretStr(stored[name]), "file"))
        return found

    def get(self, name: str) -> SecretStr:
        return next(k.value for k in self.entries() if k.name == name)

    def scoring_keys(self) -> list[tuple[str, bytes]]:
        """(name, value) of each key a scoring request may present, values as bytes for compare_digest."""
        stored = self._read()
        values = []
        for name in SCORING_KEYS:
            value = self.overrides[name].get_secret_value() if name in self.overrides else stored.get(name)
            if value:
                values.append((name, value.encode()))
        return values


class KeyChecker:
    """Checks a bearer key against the scoring keys, re-reading the file when it changes."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self._stamp: tuple[int, int, int] | None = None
        self._keys: list[tuple[str, bytes]] = []

    def _refresh(self) -> None:
        try:
            st = os.stat(self.store.path)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._keys = self.store.scoring_keys()
            except CorruptState as exc:  # keep the keys in force: a broken file must not lock every client out
                log.error("%s; the service keeps the keys it had", exc)

    @staticmethod
    def _token(authorization: str | None) -> bytes | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return token.strip().encode("utf-8", "replace")

    def _matching(self, presented: bytes) -> str | None:
        found = None
        for name, key in self._keys:
            if hmac.compare_digest(presented, key):  # no early exit: same work for every key
                found = name
        return found

    def check(self, authorization: str | None) -> bool:
        """True when the header is `Bearer <a current scoring key>`."""
        presented = self._token(authorization)
        if presented is None:
            return False
        self._refresh()
        return self._matching(presented) is not None

    def key_name(self, authorization: str | None) -> str:
        """Which key the header presents, for the request log: "primary", "secondary", "none" (no header) or
        "invalid"; never the key. Judged on the keys the last `check` read (the routes check first)."""
        if not authorization:
            return "none"
        presented = self._token(authorization)
        return (self._matching(presented) if presented is not None else None) or "invalid"

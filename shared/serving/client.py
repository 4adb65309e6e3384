"""A small client of the scoring endpoint: the key from the key store, the records as JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from shared.errors import BackendUnavailable, BankopsError


class ScoringClient:
    """POST /score with a bearer key; errors become BankopsError with the service's message."""

    def __init__(self, base_url: str, key: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.timeout_s = timeout_s

    def score(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        try:
            response = httpx.post(f"{self.base_url}/score", json={"data": list(records)}, headers=self._headers,
                                  timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"the scoring service at {self.base_url} does not answer ({type(exc).__name__}); "
                                     "start it with `bankops serve`") from None
        if response.status_code != 200:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise BankopsError(f"the scoring service answered {response.status_code}: {message}")
        answer: dict[str, Any] = response.json()
        return answer

    def health(self) -> dict[str, Any] | None:
        try:
            response = httpx.get(f"{self.base_url}/", timeout=self.timeout_s)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

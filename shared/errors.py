"""One root error with a code, and one table from codes to HTTP statuses.

Handlers raise these; HTTP entry points translate them, so a user sees the message and a
fitting status instead of a traceback.
"""

from __future__ import annotations


class BankopsError(Exception):
    """Base of every error a user can act on; `message` says what is wrong and what to do."""

    code = "internal_error"

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def __str__(self) -> str:
        if not self.details:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {d}" for d in self.details)


class InvalidInput(BankopsError):
    code = "invalid_input"


class InvalidDataset(InvalidInput):
    """A data file that fails validation; `details` lists every problem found."""

    code = "invalid_dataset"


class PayloadTooLarge(InvalidInput):
    """A request body over the size or count limit: the client must send less (HTTP 413)."""

    code = "payload_too_large"


class NotFound(BankopsError):
    code = "not_found"


class Conflict(BankopsError):
    code = "conflict"


class ConfigurationError(BankopsError):
    code = "configuration_error"


class CorruptState(BankopsError):
    """A state file under $BANKOPS_HOME that cannot be read; the message names it and how to repair it."""

    code = "corrupt_state"


class BackendUnavailable(BankopsError):
    code = "backend_unavailable"


class InProgress(BankopsError):
    """Long-running work (an Azure ML deployment) has started but is not done: call again later.

    Workers put the job back with `retry_after_s` instead of blocking a function past its timeout.
    """

    code = "in_progress"

    def __init__(self, message: str, *, retry_after_s: float = 30.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


HTTP_STATUS: dict[str, int] = {
    InvalidInput.code: 422,
    InvalidDataset.code: 422,
    PayloadTooLarge.code: 413,
    NotFound.code: 404,
    Conflict.code: 409,
    ConfigurationError.code: 500,
    BackendUnavailable.code: 503,
    CorruptState.code: 503,
    InProgress.code: 202,
    BankopsError.code: 500,
}


def http_status(error: BankopsError) -> int:
    """The HTTP status that matches an error's code."""
    return HTTP_STATUS.get(error.code, 500)

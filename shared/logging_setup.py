"""Quiet, uniform logging for the command line: our messages, not the libraries' chatter."""

from __future__ import annotations

import logging
import os
import warnings


def quiet_libraries() -> None:
    """MLflow, FLAML and friends log at INFO and warn about things a user cannot act on."""
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    for name in ("mlflow", "flaml", "flaml.automl", "alembic", "urllib3", "lightgbm"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    logging.getLogger("mlflow.models.model").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*does not have valid feature names.*")


class OneLineFormatter(logging.Formatter):
    """A log line is one line: control characters in the message (a file name with a newline) are escaped,
    so no input can forge a line. Tracebacks, which bankops itself adds, keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        from shared.untrusted_text import escape

        record.message = escape(record.message)
        return super().formatMessage(record)

"""Storage BlobCreated on the `incoming` container -> validate, register a dataset version, train."""

from __future__ import annotations

import azure.functions as func

from functions.runtime import automation
from shared.automation import control

bp = func.Blueprint()


@bp.event_grid_trigger(arg_name="event")
def on_data_arrived(event: func.EventGridEvent) -> None:
    """Fired by the subscriptions bankops-data-arrived (incoming/) and bankops-batch-arrived (batch/) on
    Microsoft.Storage.BlobCreated; a payload without subject is named by its blob URL."""
    control.events(automation(), [_as_dict(event)])


def _as_dict(event: func.EventGridEvent) -> dict[str, object]:
    return {"id": event.id, "eventType": event.event_type, "subject": event.subject, "data": event.get_json()}

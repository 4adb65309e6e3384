"""The documented Event Grid payloads (tests/fixtures/events) read as bankops reads them.

Each fixture is Microsoft's sample (source in the file); what counts is which events become work
and what they name: blobs by container and name with the eTag unquoted, runs only when they are
pipeline runs bankops tagged.
"""

from __future__ import annotations

import pytest

from shared.automation import eventgrid
from shared.automation.messages import DataArrived, RunCompleted, RunFailed
from shared.errors import InvalidInput
from tests import event_fixtures


def _message(name: str) -> tuple[object, str] | None:
    [event] = eventgrid.parse(event_fixtures.load(name))
    return eventgrid.to_message(event)


def test_every_fixture_names_its_source_and_parses() -> None:
    assert len(event_fixtures.names()) >= 15
    for name in event_fixtures.names():
        events = eventgrid.parse(event_fixtures.load(name))
        assert events and all(e.type.startswith("Microsoft.") for e in events), name


@pytest.mark.parametrize("name", ["blob_created.eventgrid", "blob_created.cloudevents", "blob_created_unquoted_etag.eventgrid",
                                  "blob_created_adls_flushwithclose.eventgrid", "blob_created_no_subject.eventgrid",
                                  "blob_created_emulator_url_no_subject.eventgrid"])
def test_a_finished_blob_in_incoming_is_one_arrival_keyed_by_its_unquoted_etag(name: str) -> None:
    found = _message(name)
    assert found is not None, name
    message, key = found
    assert message == DataArrived(blob="incoming/x.csv", etag="0x8D4BCC2E4835CD0", sequencer="00000000000004420000000000028963",
                                  api=message.api, message_id=message.message_id)  # type: ignore[attr-defined]
    assert key == "blob:incoming/x.csv:0x8D4BCC2E4835CD0"  # quoted or not: the same arrival, deduplicated


def test_events_for_other_containers_and_unfinished_data_lake_files_are_ignored() -> None:
    assert _message("blob_created_verbatim.eventgrid") is None  # test-container: not watched
    assert _message("blob_created_adls_createfile.eventgrid") is None  # CreateFile: empty, FlushWithClose follows


@pytest.mark.parametrize(("url", "expected"), [
    ("https://acct.blob.core.windows.net/incoming/x.csv", ("incoming", "x.csv")),
    ("https://acct.dfs.core.windows.net/incoming/sub/dir/x.csv", ("incoming", "sub/dir/x.csv")),
    ("https://acct.blob.core.windows.net/incoming/new%20clients.csv", ("incoming", "new clients.csv")),
    ("http://127.0.0.1:10000/devstoreaccount1/incoming/x.csv", ("incoming", "x.csv")),
    ("http://localhost:10000/devstoreaccount1/batch/list.csv", ("batch", "list.csv")),
    ("http://azurite:10000/devstoreaccount1/incoming/x.csv", ("incoming", "x.csv")),
])
def test_blob_urls_name_container_and_blob(url: str, expected: tuple[str, str]) -> None:
    assert eventgrid.blob_path("", url) == expected


@pytest.mark.parametrize("url", ["", "https://acct.blob.core.windows.net/incoming", "https://acct.blob.core.windows.net/",
                                 "http://127.0.0.1:10000/devstoreaccount1/incoming", "not a url"])
def test_an_event_naming_no_blob_is_a_clear_error(url: str) -> None:
    with pytest.raises(InvalidInput, match="cannot tell the container and blob name"):
        eventgrid.blob_path("", url)


@pytest.mark.parametrize("etag", ['"0x8D4BCC2E4835CD0"', "0x8D4BCC2E4835CD0", ' "0x8D4BCC2E4835CD0" ', 'W/"0x8D4BCC2E4835CD0"'])
def test_etags_compare_without_quotes(etag: str) -> None:
    assert eventgrid.normalize_etag(etag) == "0x8D4BCC2E4835CD0"


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_the_pipeline_run_bankops_tagged_is_the_completion_that_counts(schema: str) -> None:
    found = _message(f"run_completed_pipeline_run.{schema}")
    assert found is not None
    message, key = found
    assert isinstance(message, RunCompleted) and (message.run_id, message.dataset, message.model_version) == (
        "bankops-job-1", "bankmarketing:2", "")
    assert key == "run:bankops-job-1"


@pytest.mark.parametrize("name", ["run_completed_automl_child.eventgrid", "run_completed_automl_child.cloudevents",
                                  "run_completed_automl_step.eventgrid", "run_completed_step_run.eventgrid",
                                  "run_completed_pipeline_run_other.eventgrid"])
def test_other_runs_completions_are_acknowledged_and_ignored(name: str) -> None:
    assert _message(name) is None


@pytest.mark.parametrize(("status", "outcome"), [("Failed", "failed"), ("failed", "failed"), ("Canceled", "canceled")])
def test_a_bankops_pipeline_run_that_failed_or_was_canceled_is_a_failed_retrain(status: str, outcome: str) -> None:
    [raw] = event_fixtures.load("run_status_changed_pipeline_failed.eventgrid")
    raw["data"]["runStatus"] = status
    [event] = eventgrid.parse([raw])
    found = eventgrid.to_message(event)
    assert found is not None
    message, key = found
    assert isinstance(message, RunFailed) and (message.run_id, message.status, message.dataset) == (
        "bankops-job-1", outcome, "bankmarketing:2")
    assert key == f"run:bankops-job-1:{outcome}"


@pytest.mark.parametrize("status", ["Running", "Completed", "Finalizing", None])
def test_other_status_changes_and_other_runs_failures_are_ignored(status: str | None) -> None:
    [raw] = event_fixtures.load("run_status_changed_pipeline_failed.eventgrid")
    raw["data"]["runStatus"] = status
    assert eventgrid.to_message(eventgrid.parse([raw])[0]) is None
    assert _message("run_status_changed_automl_child_failed.eventgrid") is None  # the documented sample: a child run


def test_a_run_id_no_azure_ml_run_has_is_ignored() -> None:
    [raw] = event_fixtures.load("run_completed_pipeline_run.eventgrid")
    raw["data"]["runId"] = "r" * 10_000
    assert eventgrid.to_message(eventgrid.parse([raw])[0]) is None

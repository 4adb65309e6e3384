"""Schemathesis against the live service's /swagger.json: no 5xx and no response that breaks the schema.

Its Python API drives Hypothesis per operation and generation mode, with every default check
(server errors, status codes, content types, response schemas, auth, negative data rejection).
One exception: a schema-valid `input_data` body may still be refused, because OpenAPI 3.0 cannot
say that each row value has the type of the column it sits under; for that shape only, the
"schema-valid data must be accepted" check is left out. The `data` (records) shape keeps it.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from tests.integration.scoring_fixtures import Service, shared_service

pytestmark = pytest.mark.integration
MAX_EXAMPLES = 100


@pytest.fixture(scope="module")
def fuzzed() -> Service:
    return shared_service()


# Invalid input must be refused with a 4xx; 413 (too many records) is a refusal our contract uses,
# which Schemathesis's default list for negative_data_rejection leaves out.
REJECTIONS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]


@pytest.fixture(scope="module")
def live_schema(fuzzed: Service) -> schemathesis.BaseSchema:
    config = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REJECTIONS}}})
    return schemathesis.openapi.from_url(f"{fuzzed.url}/swagger.json", config=config)


def test_the_live_document_lists_the_operations(live_schema: schemathesis.BaseSchema) -> None:
    labels = {result.ok().label for result in live_schema.get_all_operations()}
    assert labels == {"GET /", "POST /score", "GET /stats"}


# GET / takes no input at all, so there is no negative request to generate for it.
FUZZED = [(m, p, mode) for m, p in [("POST", "/score"), ("GET", "/"), ("GET", "/stats")]
          for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if not (p == "/" and mode is GenerationMode.NEGATIVE)]


@pytest.mark.parametrize(("method", "path", "mode"), FUZZED, ids=lambda v: getattr(v, "value", v))
def test_generated_requests_get_no_5xx_and_conforming_answers(live_schema: schemathesis.BaseSchema, fuzzed: Service,
                                                              method: str, path: str, mode: GenerationMode) -> None:
    operation = live_schema[path][method]
    headers = fuzzed.headers()
    failures: dict[str, str] = {}
    calls = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        columns_shape = isinstance(case.body, dict) and "input_data" in case.body
        try:
            case.call_and_validate(headers=headers, timeout=30, excluded_checks=[positive_data_acceptance] if columns_shape else [])
        except Exception as exc:  # collect every distinct failure, then report them together
            failures.setdefault(str(exc).splitlines()[0], str(exc)[:2000])

    check()
    assert calls > 0
    assert not failures, "\n\n".join(failures.values())

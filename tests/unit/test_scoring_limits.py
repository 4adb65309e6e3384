"""Hostile scoring bodies get their 422 before anything big is built, and the answer never copies them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.serving.app import decode_records
from shared.serving.contract import EXAMPLE_RECORDS, ContractError
from shared.serving.json_budget import key_count, over_key_budget


def refused(raw: bytes, max_records: int = 10) -> ContractError:
    with pytest.raises(ContractError) as caught:
        decode_records(raw, max_records)
    assert caught.value.status == 422
    assert len(orjson.dumps([p.as_dict() for p in caught.value.problems])) < 8_000, "the answer is bounded"
    return caught.value


def test_one_record_with_a_million_unknown_keys_is_refused_by_its_field_count() -> None:
    record: dict[str, Any] = dict(EXAMPLE_RECORDS[0]) | {f"k{i}": 1 for i in range(1_000_000)}
    error = refused(orjson.dumps({"data": [record]}), max_records=10_000)
    assert "1,000,021 or more fields" in error.message and "remove the unknown fields" in error.message


def test_spaced_colons_are_counted_exactly_and_refused_too() -> None:
    body = b'{"data": [{' + b",\n".join(b'"k%d"\t: 1' % i for i in range(5_000)) + b"}]}"
    assert key_count(body) == 5_001
    assert "fields" in refused(body).message


def test_colons_inside_values_do_not_count_as_keys() -> None:
    record = dict(EXAMPLE_RECORDS[0]) | {"job": ":" * 150, "education": '\\":' * 40}
    raw = orjson.dumps({"data": [record]})
    assert raw.count(b":") > 200 and over_key_budget(raw, 28) is None
    assert decode_records(raw, 1)[0]["job"] == ":" * 150


def test_a_record_wider_than_the_features_is_one_problem_not_one_per_key() -> None:
    record: dict[str, Any] = dict(EXAMPLE_RECORDS[0]) | {f"k{i}": 1 for i in range(150)}
    error = refused(orjson.dumps({"data": [EXAMPLE_RECORDS[1], record]}), max_records=10)
    assert [(p.record, p.field) for p in error.problems] == [(1, "data")]
    assert "170 fields" in error.problems[0].message


def test_a_long_unknown_field_name_is_not_echoed_whole() -> None:
    record = dict(EXAMPLE_RECORDS[0])
    del record["age"]
    record["x" * 100_000] = 1
    error = refused(orjson.dumps({"data": [record]}))
    assert all(len(p.field) < 100 for p in error.problems)


def test_too_many_columns_are_refused_before_the_rows_are_built() -> None:
    columns = [f"c{i}" for i in range(50_000)]
    error = refused(orjson.dumps({"input_data": {"columns": columns, "data": [[0] * 50_000]}}), max_records=10_000)
    assert [(p.field, p.message) for p in error.problems] == [("input_data.columns", "50000 columns; send the 20 feature names")]


@pytest.mark.parametrize("index", [[{}], ["0"], [1.5], [True], {"0": 1}])
def test_input_data_index_takes_only_integers(index: object) -> None:
    columns = list(EXAMPLE_RECORDS[0])
    body = {"input_data": {"columns": columns, "data": [list(EXAMPLE_RECORDS[0].values())], "index": index}}
    error = refused(orjson.dumps(body))
    assert [(p.field, p.message) for p in error.problems] == [("input_data.index", "must be a list of integers")]


def test_input_data_with_an_integer_index_is_scored() -> None:
    columns = list(EXAMPLE_RECORDS[0])
    body = {"input_data": {"columns": columns, "data": [list(r.values()) for r in EXAMPLE_RECORDS], "index": [7, 8]}}
    assert len(decode_records(orjson.dumps(body), 10)) == 2


def test_too_many_records_is_still_413_when_counted_before_decoding() -> None:
    with pytest.raises(ContractError) as caught:
        decode_records(orjson.dumps({"data": [EXAMPLE_RECORDS[0]] * 11}), 10)
    assert caught.value.status == 413

"""The scoring contract: the typed record, both request shapes, the answer, and their errors.

A record is a TypedDict keyed by the feature names themselves ("emp.var.rate" included), so a
validated record goes straight to `FeatureEncoder.transform_records` with no copy into pandas.
Validation is strict: an integer field takes only a JSON integer, a number field a finite JSON
number, a categorical field a string. Unknown categories are valid: the model scores them.
A record holds the columns the served model uses (all required); the other known bank-marketing
fields are accepted and ignored (a pre-call model trained without `duration` takes records with
or without it), and a field nobody knows is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, NotRequired

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from shared import schema
from shared.serving.json_budget import over_key_budget

INT_BOUND = 2**31 - 1
FLOAT_BOUND = 1e12
CATEGORY_MAX_LENGTH = 200
WIDTH = len(schema.FEATURES)
# The service's answers that name no field, one text for the FastAPI routes and the plain-ASGI /score
UNAUTHORIZED_MESSAGE = "missing or wrong key: send Authorization: Bearer <primary or secondary key>"
NOT_JSON_MESSAGE = "send the body as application/json"
NO_MODEL_MESSAGE = "no model loaded yet"
ENVELOPE_KEYS = 8  # keys a body may hold besides its records' fields ("data", "input_data", "columns", ...)
NAME_ECHO = 64  # a field name is echoed at most this long: errors never copy the input

_Integer = Annotated[int, Field(strict=True, ge=-INT_BOUND - 1, le=INT_BOUND)]
_Float = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-FLOAT_BOUND, le=FLOAT_BOUND)]
_Category = Annotated[str, Field(strict=True, max_length=CATEGORY_MAX_LENGTH)]
_TYPES = {"integer": _Integer, "float": _Float, "categorical": _Category}

Record = TypedDict("Record", {name: _TYPES[schema.kind_of(name)] for name in schema.FEATURES})  # type: ignore[misc]
Record.__pydantic_config__ = ConfigDict(extra="forbid", title="Record")  # type: ignore[attr-defined]

RECORDS = TypeAdapter(list[Record])


def model_columns(columns: Sequence[str] | None) -> tuple[str, ...]:
    """The features a model uses, in schema order (None: all of them)."""
    used = set(schema.FEATURES if columns is None else columns)
    unknown = used - set(schema.FEATURES)
    if unknown:
        raise ValueError(f"not features: {', '.join(sorted(unknown))}")
    return tuple(c for c in schema.FEATURES if c in used)


@cache
def record_type(columns: tuple[str, ...] = schema.FEATURES) -> Any:
    """The record TypedDict for a model using `columns`: those typed and required, the other known
    features accepted (any value) and ignored, anything else refused."""
    if columns == schema.FEATURES:
        return Record
    fields: dict[str, Any] = {name: _TYPES[schema.kind_of(name)] if name in columns else NotRequired[Any]
                              for name in schema.FEATURES}
    record = TypedDict("Record", fields)  # type: ignore[misc]
    record.__pydantic_config__ = ConfigDict(extra="forbid", title="Record")  # type: ignore[attr-defined]
    return record


@cache
def records_adapter(columns: tuple[str, ...] = schema.FEATURES) -> TypeAdapter[Any]:
    """The validator of a list of records for a model using `columns` (see `record_type`)."""
    if columns == schema.FEATURES:
        return RECORDS
    record = record_type(columns)
    return TypeAdapter(list[record])  # type: ignore[valid-type]


@cache
def _envelope_adapter(columns: tuple[str, ...], max_records: int) -> TypeAdapter[Any]:
    record = record_type(columns)
    # functional syntax: the record type and the bound are this call's values
    envelope = TypedDict("Envelope", {"data": Annotated[list[record],  # type: ignore[valid-type,name-match]  # noqa: UP013
                                                        Field(min_length=1, max_length=max_records)]})
    envelope.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return TypeAdapter(envelope)


# Bytes with which pydantic's JSON parser and orjson disagree (pydantic reads NaN and Infinity, orjson refuses them).
_PARSERS_DIFFER = (b"NaN", b"Infinity")


def quick_records(raw: bytes, max_records: int, columns: Sequence[str] = schema.FEATURES) -> list[Record] | None:
    """The records of a valid `{"data": [records]}` body, parsed and validated in one pass from its bytes
    (pydantic-core's `validate_json`: no Python objects for the JSON itself, about half the cost of
    decoding then validating). None for anything else: the full path (`parse_records` on orjson's
    decoding) then answers, with its exact errors, so this only ever accepts what that path accepts."""
    if any(token in raw for token in _PARSERS_DIFFER) or over_key_budget(raw, max_records * WIDTH + ENVELOPE_KEYS) is not None:
        return None  # a body of too many keys is refused by the full path before anything is parsed
    try:
        body = _envelope_adapter(model_columns(columns), max_records).validate_json(raw)
    except ValidationError:
        return None
    return body["data"]  # type: ignore[no-any-return]

# The two records of tests/fixtures/endpoint_records.json: the examples of the docs and `bankops test-endpoint`.
EXAMPLE_RECORDS: list[dict[str, Any]] = [
    {"age": 43, "job": "blue-collar", "marital": "single", "education": "basic.9y", "default": "no", "housing": "yes",
     "loan": "no", "contact": "cellular", "month": "jul", "day_of_week": "thu", "duration": 982, "campaign": 1,
     "pdays": 999, "previous": 0, "poutcome": "nonexistent", "emp.var.rate": 1.4, "cons.price.idx": 93.918,
     "cons.conf.idx": -42.7, "euribor3m": 4.963, "nr.employed": 5228.1},
    {"age": 57, "job": "technician", "marital": "married", "education": "high.school", "default": "no", "housing": "no",
     "loan": "yes", "contact": "cellular", "month": "may", "day_of_week": "mon", "duration": 371, "campaign": 1,
     "pdays": 999, "previous": 1, "poutcome": "failure", "emp.var.rate": -1.8, "cons.price.idx": 92.893,
     "cons.conf.idx": -46.2, "euribor3m": 1.299, "nr.employed": 5099.1},
]


@dataclass(frozen=True)
class FieldProblem:
    """One offending field: which record (None for the envelope), which field, what is wrong."""

    record: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"record": self.record, "field": self.field, "message": self.message}


class ContractError(Exception):
    """A request that breaks the contract; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or []


def _problems(exc: ValidationError, prefix: str, limit: int = 100) -> list[FieldProblem]:
    """Pydantic errors as (record index, field, message); the value itself is never echoed."""
    found = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        loc = error["loc"]
        index = loc[0] if loc and isinstance(loc[0], int) else None
        field = ".".join(str(p) for p in loc[1:]) if index is not None else ".".join(str(p) for p in loc)
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        name = f"{prefix}{field}" if field else prefix.rstrip(".")
        found.append(FieldProblem(index, name if len(name) <= NAME_ECHO else f"{name[:NAME_ECHO]}...", message))
    return found


def _records_from_columns(body: Mapping[str, Any], max_records: int) -> list[Any]:
    """The `input_data` shape (columns + rows) as records; rows must match the columns."""
    unknown = sorted(set(body) - {"columns", "data", "index"})
    if unknown:
        raise ContractError(422, "invalid input_data", [FieldProblem(None, f"input_data.{k}", "unknown field") for k in unknown])
    columns, rows = body.get("columns"), body.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ContractError(422, "invalid input_data", [FieldProblem(None, "input_data.columns", "must be a list of feature names")])
    if not isinstance(rows, list):
        raise ContractError(422, "invalid input_data", [FieldProblem(None, "input_data.data", "must be a list of rows")])
    if len(columns) > WIDTH:
        raise ContractError(422, "invalid input_data", [FieldProblem(None, "input_data.columns", f"{len(columns)} columns; "
                                                                     f"send the {WIDTH} feature names")])
    index = body.get("index")
    if index is not None and (not isinstance(index, list) or not all(type(i) is int for i in index)):
        raise ContractError(422, "invalid input_data", [FieldProblem(None, "input_data.index", "must be a list of integers")])
    if len(set(columns)) != len(columns):
        raise ContractError(422, "invalid input_data", [FieldProblem(None, "input_data.columns", "repeats a column")])
    _check_count(len(rows), max_records)
    problems = [FieldProblem(i, "input_data.data", f"row has {len(r) if isinstance(r, list) else 'no list of'} values "
                             f"for {len(columns)} columns") for i, r in enumerate(rows)
                if not isinstance(r, list) or len(r) != len(columns)]
    if problems:
        raise ContractError(422, "invalid input_data", problems[:100])
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _check_count(n: int, max_records: int) -> None:
    if n == 0:
        raise ContractError(422, "no records to score", [FieldProblem(None, "data", "must hold at least one record")])
    if n > max_records:
        raise ContractError(413, f"{n} records in one request; the limit is {max_records}: split the request")


def _check_width(records: list[Any]) -> None:
    """A record with far more keys than features is refused whole, before validation lists each unknown key."""
    wide = [FieldProblem(i, "data", f"{len(r)} fields; a record has the {WIDTH} features, remove the others")
            for i, r in enumerate(records) if isinstance(r, dict) and len(r) > 2 * WIDTH]
    if wide:
        raise ContractError(422, "invalid records: see `errors` for each record and field", wide[:100])


def parse_records(body: Any, max_records: int, columns: Sequence[str] = schema.FEATURES) -> list[Record]:
    """The validated records of a decoded JSON body in either shape, for a model using `columns`
    (the other known features may be sent and are ignored); raises ContractError."""
    if not isinstance(body, dict):
        raise ContractError(422, 'the body must be a JSON object: {"data": [records]} or {"input_data": {"columns", "data"}}')
    unknown = sorted(set(body) - {"data", "input_data"})
    shapes = [k for k in ("data", "input_data") if k in body]
    if unknown or len(shapes) != 1:
        problems = [FieldProblem(None, k, "unknown field") for k in unknown]
        if len(shapes) != 1:
            problems.append(FieldProblem(None, "data", "send exactly one of `data` (records) or `input_data` (columns and rows)"))
        raise ContractError(422, "invalid request body", problems)
    if shapes[0] == "data":
        raw, prefix = body["data"], ""
        if not isinstance(raw, list):
            raise ContractError(422, "invalid request body", [FieldProblem(None, "data", "must be a list of records")])
        _check_count(len(raw), max_records)
        _check_width(raw)
    else:
        inner = body["input_data"]
        if not isinstance(inner, dict):
            raise ContractError(422, "invalid input_data", [FieldProblem(None, "input_data", "must be an object with columns and data")])
        raw, prefix = _records_from_columns(inner, max_records), ""
    try:
        return records_adapter(model_columns(columns)).validate_python(raw)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ContractError(422, "invalid records: see `errors` for each record and field", _problems(exc, prefix)) from None


# --- OpenAPI schemas ------------------------------------------------------------------------
def record_schema(columns: Sequence[str] = schema.FEATURES) -> dict[str, Any]:
    """JSON schema of one record for a model using `columns` (OpenAPI 3.0 compatible), with a
    description per kind. Only those columns are shown: the other known fields are ignored."""
    used = model_columns(columns)
    record: dict[str, Any] = RECORDS.json_schema()["$defs"]["Record"]
    record["properties"] = {name: prop for name, prop in record["properties"].items() if name in used}
    record["required"] = list(used)
    for name, prop in record["properties"].items():
        prop.pop("title", None)
        kind = schema.kind_of(name)
        prop["description"] = {"integer": "integer", "float": "finite number",
                               "categorical": "category (a value never seen in training is scored and counted)"}[kind]
        prop["example"] = EXAMPLE_RECORDS[0][name]
    record["title"] = "Record"
    record["description"] = (f"One client: the {len(used)} input features the model uses, all required "
                             "(the other fields of the bank marketing data are ignored if sent).")
    # Other known features are accepted and ignored; a field nobody knows is refused (422).
    record["additionalProperties"] = False
    return record


def openapi_components(max_records: int, columns: Sequence[str] = schema.FEATURES) -> dict[str, Any]:
    """The components/schemas of the scoring endpoint for a model using `columns`."""
    used = model_columns(columns)
    columns_schema = {"type": "array", "items": {"type": "string", "enum": list(used)}, "minItems": len(used),
                      "maxItems": len(used), "uniqueItems": True,
                      "description": f"the {len(used)} feature names the model uses, any order"}
    row = {"type": "array", "minItems": len(used), "maxItems": len(used),
           "items": {"oneOf": [{"type": "string"}, {"type": "number"}]},
           "description": "values in the order of `columns`, each of the type the feature takes (see Record)"}
    return {
        "Record": record_schema(used),
        "RecordsRequest": {
            "type": "object", "required": ["data"], "additionalProperties": False,
            "description": "The payload of Azure ML AutoML endpoints and their endpoint.py clients.",
            "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}, "minItems": 1,
                                    "maxItems": max_records}},
        },
        "ColumnsRequest": {
            "type": "object", "required": ["input_data"], "additionalProperties": False,
            "description": "The MLflow / managed online endpoint payload (split orientation).",
            "properties": {"input_data": {
                "type": "object", "required": ["columns", "data"], "additionalProperties": False,
                "properties": {"columns": columns_schema, "data": {"type": "array", "items": row, "minItems": 1,
                                                                   "maxItems": max_records},
                               "index": {"type": "array", "items": {"type": "integer"}}},
            }},
        },
        "ScoreResponse": {
            "type": "object", "required": ["result", "probabilities", "model_version"], "additionalProperties": False,
            "properties": {
                "result": {"type": "array", "items": {"type": "string", "enum": list(schema.CLASSES)},
                           "description": "the prediction for each record, in order"},
                "probabilities": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1},
                                  "description": 'P("yes") for each record, in order'},
                "model_version": {"type": "string", "description": "the registered model version that answered"},
            },
        },
        "Error": {
            "type": "object", "required": ["message"],
            "properties": {
                "message": {"type": "string"},
                "errors": {"type": "array", "items": {
                    "type": "object", "required": ["field", "message"],
                    "properties": {"record": {"type": "integer", "nullable": True, "description": "index of the record"},
                                   "field": {"type": "string"}, "message": {"type": "string"}}}},
                "request_id": {"type": "string"},
            },
        },
        "Health": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string"}, "model_version": {"type": "string", "nullable": True}},
        },
    }

"""The OpenAPI 3.0 document of the scoring endpoint, and the Swagger UI page served from local assets.

OpenAPI 3.0.3 rather than 3.1: the Swagger UI shipped in `swagger-ui-bundle` (4.x) and most
Azure tooling read 3.0. The document is written by hand from the contract's schemas, so what it
promises is what `contract.py` enforces.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared import schema
from shared.serving.contract import EXAMPLE_RECORDS, model_columns, openapi_components

TITLE = "bankops scoring endpoint"
ASSETS_URL = "/docs/assets"


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_document(max_records: int, version: str = "1", columns: Sequence[str] = schema.FEATURES) -> dict[str, Any]:
    """The whole document for a model using `columns`: paths, schemas, the bearer scheme, the two
    example records (holding only those columns)."""
    columns = list(model_columns(columns))
    records = [{c: r[c] for c in columns} for r in EXAMPLE_RECORDS]
    examples = {
        "records": {"summary": "Two clients as records (Azure ML AutoML endpoint.py)", "value": {"data": records}},
        "columns": {"summary": "The same two clients as columns and rows (MLflow / managed online endpoint)",
                    "value": {"input_data": {"columns": columns, "data": [[r[c] for c in columns] for r in records]}}},
    }
    auth_errors = {"401": _error("No key, or not a current key: send `Authorization: Bearer <primary or secondary key>`.")}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": TITLE, "version": version,
            "description": "Will a client subscribe a term deposit? Scores records of the UCI bank marketing data "
                           "with the deployed model. Send the primary or secondary key as a bearer token.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/": {"get": {
                "summary": "Health", "operationId": "health", "security": [],
                "responses": {"200": {"description": "A model is loaded", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Health"}}}},
                    "503": _error("No model loaded yet")},
            }},
            "/score": {"post": {
                "summary": "Score records", "operationId": "score",
                "description": f"1 to {max_records:,} records per call. Every field of Record is required and typed; the "
                               "other fields of the bank marketing data are ignored, any other field is refused; "
                               "a category never seen in training is scored (as missing) and counted.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"oneOf": [{"$ref": "#/components/schemas/RecordsRequest"},
                                         {"$ref": "#/components/schemas/ColumnsRequest"}]},
                    "examples": examples}}},
                "responses": {
                    "200": {"description": "One prediction and P(yes) per record, in order, and the model version",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreResponse"},
                                                             "example": {"result": ["yes", "no"], "probabilities": [0.83, 0.07],
                                                                         "model_version": "1"}}}},
                    "400": _error("A malformed request (e.g. an invalid Content-Length)"),
                    **auth_errors,
                    "413": _error(f"More than {max_records:,} records, or a body over the size limit"),
                    "415": _error("The body is not sent as application/json"),
                    "422": _error("Invalid input: `errors` names each offending record and field"),
                    "500": _error("An unexpected failure; quote `request_id`"),
                    "503": _error("No model loaded yet"),
                },
            }},
            "/stats": {"get": {
                "summary": "Counters of every worker", "operationId": "stats",
                "responses": {"200": {"description": "Requests, records, unseen categories per field, versions served",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}, **auth_errors},
            }},
        },
        "components": {
            "schemas": openapi_components(max_records, columns),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "The endpoint's primary or secondary key (`bankops keys show`)"}},
        },
        "security": [{"bearerAuth": []}],
    }


def swagger_ui_assets() -> Path:
    """The folder of the Swagger UI files shipped in the `swagger-ui-bundle` package."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(swagger_ui_path)


def swagger_ui_html(openapi_url: str) -> str:
    """The /docs page: Swagger UI from local assets, no CDN."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{TITLE}</title>
<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS_URL}/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({{url: "{openapi_url}", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"}});</script>
</body></html>"""

"""The OpenAPI document, with every error response described as what it is: an RFC 9457
`application/problem+json` body (FastAPI would call them `application/json`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; some problems add fields of their own "
    "(job_id, current_version, reason, errors…).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "identifies the kind of problem"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "for validation problems: each field and what is wrong with it",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}
PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        for schema_name in ("HTTPValidationError", "ValidationError", "ProblemOut"):
            schemas.pop(schema_name, None)
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for status, response in responses.items():
                    if status.isdigit() and int(status) >= 400:
                        response["content"] = PROBLEM_CONTENT
                responses["default"] = {
                    "description": "an error, as a problem (400, 413, 415, 500, 503, …)",
                    "content": PROBLEM_CONTENT,
                }
        app.openapi_schema = document
        return document

    return build

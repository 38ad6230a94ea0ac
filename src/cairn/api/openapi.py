"""The OpenAPI document: FastAPI's, plus the error responses it cannot infer from the routes.

Every operation that resolves the caller requires ``bearerAuth`` (an ``HTTPBearer`` scheme,
declared by ``deps.get_principal``; every operation but ``/healthz`` and ``/readyz``), so Swagger
UI's "Authorize" sends the token. Here:

- every 4xx/5xx response of an operation is an ``application/problem+json`` document of the
  ``Problem`` schema (``cairn.api.problems``), FastAPI's own 422 ``HTTPValidationError``
  included (the handlers in ``problems.py`` answer it that way); a response a route declares
  with content of its own (health's 503 document) keeps it;
- the operations that require the scheme also declare 401, 403 and 503 (database unavailable,
  ``Retry-After``) when their route did not.

Built once, on the first request for ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cairn.api.problems import PROBLEM_JSON, Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_VALIDATION_REF = "#/components/schemas/HTTPValidationError"
#: Responses every authenticated operation may give, whatever its route declares.
_AUTHENTICATED: dict[str, str] = {
    "401": "Missing or invalid bearer token",
    "403": "The token's role may not call this operation",
    "503": "The database is unavailable (or a read model is behind): retry after Retry-After",
}


def _is_problem_slot(response: dict[str, Any]) -> bool:
    """A 4xx/5xx response without content of its own (or FastAPI's validation error)."""
    content = response.get("content") or {}
    if not content:
        return True
    schema = content.get("application/json", {}).get("schema", {})
    return len(content) == 1 and schema.get("$ref") == _VALIDATION_REF


def _problem_schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return {**defs, "Problem": schema}


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def add_problem_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (an OpenAPI document) with problem+json error responses, in place."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if operation.get("security"):
                for code, description in _AUTHENTICATED.items():
                    responses.setdefault(code, {"description": description})
            for code, response in responses.items():
                if code[:1] in ("4", "5") and _is_problem_slot(response):
                    description = response.get("description") or "Error"
                    if description == "Validation Error":
                        description = "Invalid request fields (app.validation)"
                    responses[code] = {
                        "description": description,
                        "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
                    }
    schemas: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_problem_schemas())
    in_paths = set(_refs(schema.get("paths", {})))
    if _VALIDATION_REF not in in_paths:  # every 422 is a problem now
        schemas.pop("HTTPValidationError", None)
        if "#/components/schemas/ValidationError" not in in_paths | set(_refs(schemas)):
            schemas.pop("ValidationError", None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with FastAPI's document plus :func:`add_problem_responses`
    (built once, like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_problem_responses(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                    servers=app.servers,
                    separate_input_output_schemas=app.separate_input_output_schemas,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

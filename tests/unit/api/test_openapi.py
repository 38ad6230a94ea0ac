"""The OpenAPI document: the bearer scheme on every authenticated operation, and every error
response a problem document."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

OPEN = {("get", "/healthz"), ("get", "/readyz")}


@pytest.fixture
async def document(bare_client: httpx.AsyncClient) -> dict[str, Any]:
    r = await bare_client.get("/openapi.json")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_bearer_scheme_is_declared(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"],
    }


def test_every_operation_but_the_probes_requires_the_bearer_token(
    document: dict[str, Any],
) -> None:
    operations = _operations(document)
    assert len(operations) > 25
    for method, path, operation in operations:
        if (method, path) in OPEN:
            assert "security" not in operation, path
        else:
            assert operation["security"] == [{"bearerAuth": []}], (method, path)
            assert {"401", "403"} <= operation["responses"].keys(), (method, path)


async def test_the_scheme_matches_what_the_api_does(bare_client: httpx.AsyncClient) -> None:
    """Operations without the scheme answer without a token; the others refuse."""
    assert (await bare_client.get("/healthz")).status_code == 200
    assert (await bare_client.get("/readyz")).status_code == 200
    assert (await bare_client.get("/api/v1/inventory")).status_code == 401


def test_problem_schema_has_the_rfc_9457_members_and_cairns(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    problem = schemas["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    assert {"instance", "correlation_id", "errors"} <= problem["properties"].keys()
    assert problem["additionalProperties"] is True
    assert "ProblemFieldError" in schemas
    # FastAPI's own validation error shape is gone: a 422 is a problem too.
    assert "HTTPValidationError" not in schemas


def test_every_error_response_is_problem_json(document: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in _operations(document):
        for code, response in operation["responses"].items():
            if not code.startswith(("4", "5")):
                continue
            content = response["content"]
            own_503 = {("get", "/readyz"), ("get", "/api/v1/admin/health")}
            if (method, path) in own_503 and code == "503":  # their own document, no problem
                assert list(content) == ["application/json"]
                continue
            assert content == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, (method, path, code)
            checked += 1
    assert checked > 100


async def test_a_real_refusal_matches_the_problem_schema(
    bare_client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    r = await bare_client.get("/api/v1/inventory")
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) <= body.keys()
    assert set(body) <= set(problem["properties"])

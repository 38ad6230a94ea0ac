"""Every refusal is an RFC 9457 problem document with a stable code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from api_tokens import ADMIN

PROBLEM = "application/problem+json"


async def test_unknown_route_is_a_404_problem(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.get("/api/v1/nothing-here", headers=ADMIN)
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == "app.not_found"
    assert body["status"] == 404
    assert {"type", "title", "detail"} <= body.keys()


async def test_wrong_method_is_a_405_problem(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.delete("/healthz")
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "app.method_not_allowed"


async def test_declared_oversized_body_is_a_413_problem(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.post("/api/v1/orders", content=b"x" * 4096, headers=ADMIN)
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "app.body_too_large"


async def test_streamed_oversized_body_is_a_413_problem(bare_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"y" * 1024

    r = await bare_client.post("/api/v1/orders", content=chunks(), headers=ADMIN)
    assert r.status_code == 413
    assert r.json()["code"] == "app.body_too_large"


async def test_problem_carries_the_request_correlation_id(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.get("/nope", headers={"X-Correlation-ID": "abc-123"})
    assert r.headers["x-correlation-id"] == "abc-123"
    assert r.json()["correlation_id"] == "abc-123"

"""An error no handler answered is a 500 problem that still carries the request's correlation
id (body and header): the request middleware answers it, not Starlette's outermost one."""

from __future__ import annotations

import httpx
from starlette.types import Receive, Scope, Send

from cairn.api.middleware import RequestMiddleware
from cairn.observability.metrics import Metrics


async def raising(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("boom")


async def test_an_unanswered_error_is_a_500_problem_with_the_correlation_id() -> None:
    app = RequestMiddleware(raising, metrics=Metrics(), max_body_bytes=1024)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
        r = await client.get("/x", headers={"X-Correlation-ID": "abc-123"})
        posted = await client.post("/x", json={"a": 1})
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["x-correlation-id"] == "abc-123"
    assert r.json()["code"] == "app.internal"
    assert r.json()["correlation_id"] == "abc-123"
    assert posted.status_code == 500
    assert posted.json()["correlation_id"] == posted.headers["x-correlation-id"]


async def test_control_characters_are_refused_before_the_app_runs() -> None:
    app = RequestMiddleware(raising, metrics=Metrics(), max_body_bytes=1024)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
        path = await client.get("/orders/%00")
        query = await client.get("/orders", params={"status": "\x00"})
        body = await client.post("/orders", json={"items": [{"name": "a\x00"}]})
        escaped = await client.post("/orders", json={"name": "a\\u0000"})  # a backslash, no NUL
    assert (path.status_code, path.json()["location"]) == (400, "path")
    assert (query.status_code, query.json()["location"]) == (400, "query.status")
    assert (body.status_code, body.json()["location"]) == (400, "body.items.0.name")
    assert escaped.status_code == 500  # reached the (raising) app

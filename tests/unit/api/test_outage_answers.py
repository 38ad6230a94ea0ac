"""During a database outage every request answers 503 problem+json with Retry-After (SPEC §12):
a driver error no layer translated, and a request that would hang past the request timeout."""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
import psycopg
import pytest
from psycopg_pool import PoolTimeout
from starlette.types import Receive, Scope, Send

from cairn.api.middleware import RequestMiddleware
from cairn.observability.metrics import Metrics


def raising(exc: Exception) -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return app


async def hanging(scope: Scope, receive: Receive, send: Send) -> None:
    await asyncio.sleep(60)


async def answer(app: object, **options: float) -> httpx.Response:
    middleware = RequestMiddleware(app, metrics=Metrics(), max_body_bytes=1024, **options)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=middleware, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
        return await client.post("/api/v1/orders", json={"a": 1})


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.OperationalError("consuming input failed: server closed the connection"),
        psycopg.InterfaceError("the connection is closed"),
        psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
        psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
        PoolTimeout("couldn't get a connection after 10.00 sec"),
        sqlite3.OperationalError("database is locked"),
        ExceptionGroup("both reads", [PoolTimeout("timeout"), psycopg.OperationalError("lost")]),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_database_error_nobody_translated_is_a_503_with_retry_after(
    error: Exception,
) -> None:
    r = await answer(raising(error))
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "1"
    assert r.json()["code"] == "store.unavailable"
    assert r.json()["correlation_id"] == r.headers["x-correlation-id"]


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("no such table: orders"),
        psycopg.errors.UndefinedTable("relation orders does not exist"),
        ExceptionGroup("mixed", [PoolTimeout("timeout"), KeyError("bug")]),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_bug_is_still_a_500(error: Exception) -> None:
    r = await answer(raising(error))
    assert r.status_code == 500
    assert r.json()["code"] == "app.internal"


async def test_a_request_past_the_request_timeout_is_a_503_with_retry_after() -> None:
    started = asyncio.get_running_loop().time()
    r = await answer(hanging, request_timeout=0.2)
    assert asyncio.get_running_loop().time() - started < 5
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json()["code"] == "app.request_timeout"

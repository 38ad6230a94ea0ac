"""Request heads are bounded (CAIRN_MAX_HEADER_BYTES, CAIRN_MAX_HEADERS): 431 problem+json
before auth and before the body is read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from api_tokens import ADMIN


async def test_too_many_headers_is_431_before_auth(bare_client: httpx.AsyncClient) -> None:
    headers = {f"x-h-{i}": "v" for i in range(101)}  # no token at all: still 431, not 401
    r = await bare_client.get("/api/v1/orders", headers=headers)
    assert r.status_code == 431
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "app.headers_too_large"


async def test_headers_too_large_is_431_and_the_body_is_not_read(
    bare_client: httpx.AsyncClient,
) -> None:
    read: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        read.append(1)
        yield b"{}"

    r = await bare_client.post(
        "/api/v1/orders", headers={**ADMIN, "x-big": "a" * 17_000}, content=body()
    )
    assert r.status_code == 431
    assert r.json()["limit_bytes"] == 16_384
    assert read == []  # answered without asking for the body


async def test_headers_within_the_limits_pass(bare_client: httpx.AsyncClient) -> None:
    headers = {**ADMIN, **{f"x-h-{i}": "v" * 100 for i in range(50)}}
    r = await bare_client.get("/api/v1/inventory", headers=headers)
    assert r.status_code != 431

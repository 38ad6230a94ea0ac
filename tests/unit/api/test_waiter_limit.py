"""``?min_position=`` waiters are bounded per principal (CAIRN_MAX_WAITERS_PER_CLIENT): one more
is 503 problem+json with Retry-After at once; other principals are not affected."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from api_tokens import CUSTOMER_1, CUSTOMER_2, TOKENS

from cairn.api.app import create_app
from cairn.orders.bootstrap import bootstrap
from cairn.settings import Settings
from cairn.store.memory import MemoryEventStore


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url="memory://",
        tokens=TOKENS,
        max_waiters_per_client=2,
        read_your_writes_timeout=0.5,
    )
    container = await bootstrap(settings, store=MemoryEventStore())
    app = create_app(settings, container, run_workers=False)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as c:
                yield c
    finally:
        await container.close()


async def test_one_waiter_too_many_is_503_at_once(client: httpx.AsyncClient) -> None:
    c = client
    url = "/api/v1/orders?min_position=1000000"

    async def ask(headers: dict[str, str]) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        r = await c.get(url, headers=headers)
        return r, time.perf_counter() - started

    waiting = [asyncio.create_task(ask(CUSTOMER_1)) for _ in range(2)]
    other = asyncio.create_task(ask(CUSTOMER_2))
    await asyncio.sleep(0.1)
    extra, took = await ask(CUSTOMER_1)
    assert extra.status_code == 503
    assert extra.json()["code"] == "app.too_many_waiters"
    assert extra.headers["retry-after"] == "1"
    assert extra.headers["content-type"].startswith("application/problem+json")
    assert took < 0.3
    for r, _ in await asyncio.gather(*waiting, other):
        assert r.status_code == 503
        assert r.json()["code"] == "app.read_model_behind"
    again, _ = await ask(CUSTOMER_1)  # the waits are over: the slots are free again
    assert again.json()["code"] == "app.read_model_behind"

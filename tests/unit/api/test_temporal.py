"""``GET /orders/{id}?version=|as_of=`` and ``/history`` are asked of the query bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_tokens import ADMIN, TOKENS
from test_commands import order_body, register_mug

from cairn.api.app import create_app
from cairn.orders.bootstrap import Container, bootstrap
from cairn.orders.queries import GetOrder, GetStreamHistory
from cairn.settings import Settings


@pytest.fixture
async def container() -> AsyncIterator[Container]:
    container = await bootstrap(Settings(database_url="memory://", tokens=TOKENS))
    try:
        yield container
    finally:
        await container.close()


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container.settings, container, run_workers=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
            yield client


async def test_temporal_reads_and_history_are_queries_on_the_bus(
    client: httpx.AsyncClient, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_mug(client)
    created = (await client.post("/api/v1/orders", json=order_body(), headers=ADMIN)).json()
    oid = created["order_id"]
    asked: list[object] = []
    ask = container.query_bus.ask

    async def recorded(query: object) -> Any:
        asked.append(query)
        return await ask(query)

    monkeypatch.setattr(container.query_bus, "ask", recorded)

    at_v1 = await client.get(f"/api/v1/orders/{oid}?version=1", headers=ADMIN)
    before = await client.get(f"/api/v1/orders/{oid}?as_of=2000-01-01T00:00:00Z", headers=ADMIN)
    history = await client.get(f"/api/v1/orders/{oid}/history", headers=ADMIN)

    first, second, third = asked
    assert first == GetOrder(oid, version=1)
    assert isinstance(second, GetOrder)
    assert second.as_of is not None
    assert (second.order_id, second.version, second.as_of.year) == (oid, None, 2000)
    assert third == GetStreamHistory(f"order-{oid}", after_version=0, limit=101)  # a page + 1
    assert (at_v1.status_code, at_v1.json()["version"], at_v1.headers["ETag"]) == (200, 1, '"1"')
    assert at_v1.json()["created_at"] == at_v1.json()["updated_at"]
    assert before.status_code == 404
    assert history.json()["events"][0]["type"] == "OrderCreated"

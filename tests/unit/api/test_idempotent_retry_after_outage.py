"""A command whose commit reached the store but whose answer was lost (the database went away
before its Idempotency-Key record was written, so the client got a 503) is answered, on retry
with the same key, as the first attempt would have been: the events of that command are already
in the log (their ids derive from the key), so the retry replays them instead of deciding again
(SPEC §12: never 422 ``order.not_draft`` for a place that was committed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_tokens import CUSTOMER_1, OPERATOR, TOKENS
from test_commands import MUG, order_body

from cairn.api.app import create_app
from cairn.api.idempotency import IdempotencyStore, StoredResponse
from cairn.errors import StoreUnavailableError
from cairn.orders.bootstrap import bootstrap
from cairn.settings import Settings
from cairn.store.memory import MemoryEventStore


class LostAnswers:
    """The idempotency store's ``put`` fails once: the database went down right after the
    command committed."""

    def __init__(self, inner: IdempotencyStore) -> None:
        self.inner = inner
        self.fail_next = False
        self._put = inner.put

    async def put(self, principal: str, key: str, response: StoredResponse) -> None:
        if self.fail_next:
            self.fail_next = False
            raise StoreUnavailableError("PostgreSQL at db:5432/cairn: server closed the connection")
        await self._put(principal, key, response)


@pytest.fixture
async def app_and_faults() -> AsyncIterator[
    tuple[httpx.AsyncClient, LostAnswers, MemoryEventStore]
]:
    store = MemoryEventStore()
    settings = Settings(database_url="memory://", tokens=TOKENS)
    container = await bootstrap(settings, store=store)
    app = create_app(settings, container, run_workers=False)
    try:
        async with app.router.lifespan_context(app):
            idempotency = app.state.runtime.idempotency
            faults = LostAnswers(idempotency)
            idempotency.put = faults.put
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
                yield client, faults, store
    finally:
        await container.close()


async def _types(store: MemoryEventStore, order_id: str) -> list[str]:
    return [e.type for e in await store.read_stream(f"order-{order_id}")]


async def test_a_create_whose_answer_was_lost_answers_the_first_outcome_on_retry(
    app_and_faults: tuple[httpx.AsyncClient, LostAnswers, MemoryEventStore],
) -> None:
    client, faults, store = app_and_faults
    assert (await client.post("/api/v1/products", json=MUG, headers=OPERATOR)).status_code == 201
    headers = {**CUSTOMER_1, "Idempotency-Key": "create-1"}
    faults.fail_next = True
    first = await client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert first.status_code == 503
    assert first.headers["retry-after"] == "1"

    retry = await client.post("/api/v1/orders", json=order_body(), headers=headers)

    assert retry.status_code == 201
    body: dict[str, Any] = retry.json()
    written = await _types(store, body["order_id"])
    assert written[0] == "OrderCreated"
    assert body["version"] == len(written)  # written once, by the first attempt
    again = await client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert (again.status_code, again.json()) == (201, body)


async def test_a_place_whose_answer_was_lost_is_not_refused_as_not_draft_on_retry(
    app_and_faults: tuple[httpx.AsyncClient, LostAnswers, MemoryEventStore],
) -> None:
    client, faults, store = app_and_faults
    assert (await client.post("/api/v1/products", json=MUG, headers=OPERATOR)).status_code == 201
    created = await client.post(
        "/api/v1/orders", json=order_body(), headers={**CUSTOMER_1, "Idempotency-Key": "c-2"}
    )
    order_id = created.json()["order_id"]
    before = await _types(store, order_id)
    place = f"/api/v1/orders/{order_id}/place"
    headers = {**CUSTOMER_1, "Idempotency-Key": "place-2"}
    faults.fail_next = True
    first = await client.post(place, json={"payment_method": "tok_ok"}, headers=headers)
    assert first.status_code == 503
    placed = await _types(store, order_id)
    assert placed == [*before, "OrderPlaced"]  # committed, though its answer was lost

    retry = await client.post(place, json={"payment_method": "tok_ok"}, headers=headers)

    assert retry.status_code == 202, retry.text
    assert retry.json()["version"] == len(placed)
    assert await _types(store, order_id) == placed

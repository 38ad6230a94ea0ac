"""Commands over HTTP: shapes of SPEC §10, ETag / If-Match, Idempotency-Key, refusals."""

from __future__ import annotations

from typing import Any

import httpx
from api_tokens import ADMIN, CUSTOMER_1, CUSTOMER_2, OPERATOR

from cairn.store.memory import MemoryEventStore

MUG = {"sku": "MUG-1", "name": "Mug", "price": "12.50", "currency": "EUR", "initial_stock": 10}


def order_body(customer_id: str = "c-1", **extra: Any) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "customer_name": "Ada",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "shipping_address": {
            "line1": "1 Main St",
            "city": "Paris",
            "postal_code": "75001",
            "country": "FR",
        },
        "items": [{"sku": "MUG-1", "quantity": 2}],
        **extra,
    }


async def register_mug(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.post("/api/v1/products", json=MUG, headers=OPERATOR)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_registering_a_product_answers_version_and_position(
    bare_client: httpx.AsyncClient,
) -> None:
    r = await bare_client.post("/api/v1/products", json=MUG, headers=OPERATOR)
    assert r.status_code == 201
    assert r.json() == {"sku": "MUG-1", "version": 2, "position": 2}
    assert r.headers["etag"] == '"2"'


async def test_replenishing_stock_bumps_the_version(bare_client: httpx.AsyncClient) -> None:
    await register_mug(bare_client)
    r = await bare_client.post("/api/v1/products/MUG-1/stock", json={"quantity": 5}, headers=ADMIN)
    assert r.status_code == 200
    assert r.json()["version"] == 3


async def test_replenishing_an_unknown_sku_is_404(bare_client: httpx.AsyncClient) -> None:
    r = await bare_client.post("/api/v1/products/NOPE/stock", json={"quantity": 5}, headers=ADMIN)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_creating_an_order_answers_its_number(bare_client: httpx.AsyncClient) -> None:
    await register_mug(bare_client)
    r = await bare_client.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["order_number"].startswith("ORD-")
    assert body["version"] == 2
    assert r.headers["etag"] == '"2"'


async def test_a_customer_cannot_create_for_another_customer(
    bare_client: httpx.AsyncClient,
) -> None:
    await register_mug(bare_client)
    r = await bare_client.post("/api/v1/orders", json=order_body("c-2"), headers=CUSTOMER_1)
    assert r.status_code == 403


async def test_another_customers_order_is_404(bare_client: httpx.AsyncClient) -> None:
    await register_mug(bare_client)
    created = (
        await bare_client.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1)
    ).json()
    r = await bare_client.get(f"/api/v1/orders/{created['order_id']}", headers=CUSTOMER_2)
    assert r.status_code == 404
    r = await bare_client.post(
        f"/api/v1/orders/{created['order_id']}/cancel", json={}, headers=CUSTOMER_2
    )
    assert r.status_code == 404


async def test_if_match_mismatch_is_412_and_writes_nothing(
    bare_client: httpx.AsyncClient, bare_store: MemoryEventStore
) -> None:
    await register_mug(bare_client)
    created = (await bare_client.post("/api/v1/orders", json=order_body(), headers=ADMIN)).json()
    head = await bare_store.head_position()
    r = await bare_client.post(
        f"/api/v1/orders/{created['order_id']}/items",
        json={"sku": "MUG-1", "quantity": 1},
        headers={**ADMIN, "If-Match": '"1"'},
    )
    assert r.status_code == 412
    assert await bare_store.head_position() == head
    r = await bare_client.post(
        f"/api/v1/orders/{created['order_id']}/items",
        json={"sku": "MUG-1", "quantity": 1},
        headers={**ADMIN, "If-Match": '"2"'},
    )
    assert r.status_code == 200
    assert r.headers["etag"] == '"3"'


async def test_idempotency_key_replays_the_first_response(
    bare_client: httpx.AsyncClient, bare_store: MemoryEventStore
) -> None:
    await register_mug(bare_client)
    headers = {**ADMIN, "Idempotency-Key": "k-1"}
    first = await bare_client.post("/api/v1/orders", json=order_body(), headers=headers)
    head = await bare_store.head_position()
    again = await bare_client.post("/api/v1/orders", json=order_body(), headers=headers)
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await bare_store.head_position() == head


async def test_idempotency_key_with_another_body_is_refused(
    bare_client: httpx.AsyncClient, bare_store: MemoryEventStore
) -> None:
    await register_mug(bare_client)
    headers = {**ADMIN, "Idempotency-Key": "k-2"}
    await bare_client.post("/api/v1/orders", json=order_body(), headers=headers)
    head = await bare_store.head_position()
    r = await bare_client.post("/api/v1/orders", json=order_body("c-9"), headers=headers)
    assert r.status_code == 422
    assert r.json()["code"] == "app.idempotency_key_reused"
    assert await bare_store.head_position() == head


async def test_ship_is_forbidden_to_customers(bare_client: httpx.AsyncClient) -> None:
    await register_mug(bare_client)
    created = (
        await bare_client.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1)
    ).json()
    r = await bare_client.post(f"/api/v1/orders/{created['order_id']}/ship", headers=CUSTOMER_1)
    assert r.status_code == 403


async def test_temporal_query_answers_an_earlier_version(bare_client: httpx.AsyncClient) -> None:
    await register_mug(bare_client)
    created = (await bare_client.post("/api/v1/orders", json=order_body(), headers=ADMIN)).json()
    oid = created["order_id"]
    await bare_client.post(
        f"/api/v1/orders/{oid}/items", json={"sku": "MUG-1", "quantity": 3}, headers=ADMIN
    )
    then = (await bare_client.get(f"/api/v1/orders/{oid}?version=2", headers=ADMIN)).json()
    assert then["items"][0]["quantity"] == 2
    assert then["total"] == "25.00"
    assert then["version"] == 2


async def test_a_customer_placing_its_own_order_costs_no_read_of_the_store(
    bare_client: httpx.AsyncClient, bare_store: MemoryEventStore
) -> None:
    await register_mug(bare_client)
    created = (
        await bare_client.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1)
    ).json()
    reads = 0
    read_stream = bare_store.read_stream

    async def counted(stream_id: str, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await read_stream(stream_id, **kwargs)

    bare_store.read_stream = counted  # type: ignore[method-assign]

    r = await bare_client.post(
        f"/api/v1/orders/{created['order_id']}/place", json={}, headers=CUSTOMER_1
    )

    assert r.status_code == 202
    assert reads == 0  # the owner came from the command side's cached order


async def test_one_idempotency_key_is_scoped_to_its_principal(
    bare_client: httpx.AsyncClient, bare_store: MemoryEventStore
) -> None:
    """Customer B using customer A's key gets another order; A's retry still replays A's first
    response; nobody can compute the order id a key will create (it is keyed with a secret)."""
    import uuid

    await register_mug(bare_client)
    key = "shared-key"
    squat = await bare_client.post(
        "/api/v1/orders",
        json=order_body("c-2"),
        headers={**CUSTOMER_2, "Idempotency-Key": key},
    )
    assert squat.status_code == 201, squat.text
    # B tries to pre-create A's order under the old, public derivation of A's key.
    public = uuid.uuid5(
        uuid.UUID("8f0e7a52-3c1d-4e59-9a8b-6d2f4c7b1e03"), f"customer:c-1\x1f{key}\x1fentity"
    )
    pre = await bare_client.post(
        "/api/v1/orders", json=order_body("c-2", order_id=str(public)), headers=CUSTOMER_2
    )
    assert pre.status_code == 201, pre.text

    first = await bare_client.post(
        "/api/v1/orders", json=order_body("c-1"), headers={**CUSTOMER_1, "Idempotency-Key": key}
    )
    assert first.status_code == 201, first.text
    order_id = first.json()["order_id"]
    assert order_id not in {squat.json()["order_id"], str(public)}
    head = await bare_store.head_position()
    retry = await bare_client.post(
        "/api/v1/orders", json=order_body("c-1"), headers={**CUSTOMER_1, "Idempotency-Key": key}
    )
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert await bare_store.head_position() == head
    mine = await bare_client.get(f"/api/v1/orders/{order_id}/history", headers=CUSTOMER_1)
    assert mine.status_code == 200, mine.text
    assert mine.json()["events"][0]["data"]["customer_id"] == "c-1"
    other = await bare_client.get(f"/api/v1/orders/{order_id}/history", headers=CUSTOMER_2)
    assert other.status_code == 404


async def test_an_expired_idempotency_key_is_a_new_request(bare_store: MemoryEventStore) -> None:
    """After CAIRN_IDEMPOTENCY_TTL the key's record is gone: the same key creates a new order
    (new derived ids) and starts a new record."""
    import asyncio

    from api_tokens import TOKENS

    from cairn.api.app import create_app
    from cairn.orders.bootstrap import bootstrap
    from cairn.settings import Settings

    settings = Settings(database_url="memory://", tokens=TOKENS, idempotency_ttl=0.2)
    container = await bootstrap(settings, store=bare_store)
    app = create_app(settings, container, run_workers=False)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://cairn") as client:
                await register_mug(client)
                headers = {**CUSTOMER_1, "Idempotency-Key": "k-ttl"}
                first = await client.post("/api/v1/orders", json=order_body(), headers=headers)
                again = await client.post("/api/v1/orders", json=order_body(), headers=headers)
                assert again.headers.get("idempotent-replayed") == "true"
                await asyncio.sleep(0.3)
                later = await client.post("/api/v1/orders", json=order_body(), headers=headers)
                other = await client.post(
                    "/api/v1/orders", json=order_body(customer_name="Bo"), headers=headers
                )
    finally:
        await container.close()
    assert first.status_code == later.status_code == 201
    assert "idempotent-replayed" not in later.headers
    assert later.json()["order_id"] != first.json()["order_id"]
    assert other.status_code == 422  # the new record is live: another body is refused again

"""Seed 004's paths (SPEC §15) answer like the cairn routes they stand for, with the same auth,
and are in the OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_tokens import ADMIN, CUSTOMER_1, CUSTOMER_2, OPERATOR, TOKENS

from cairn.api.app import create_app
from cairn.orders.bootstrap import bootstrap
from cairn.settings import Settings
from cairn.store.memory import MemoryEventStore

MUG = {"sku": "MUG-1", "name": "Mug", "price": "12.50", "currency": "EUR", "initial_stock": 10}
SEED_004 = {
    ("get", "/api/v1/customers/{customer_id}/orders"),
    ("get", "/api/v1/orders/status/{status}"),
    ("get", "/api/v1/admin/events/{stream_id}"),
    ("post", "/api/v1/admin/events/replay"),
    ("post", "/api/v1/admin/projections/rebuild"),
}


def _order(customer_id: str) -> dict[str, Any]:
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
        "items": [{"sku": "MUG-1", "quantity": 1}],
    }


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The whole API with its workers, over an in-memory store."""
    settings = Settings(database_url="memory://", tokens=TOKENS)
    container = await bootstrap(settings, store=MemoryEventStore())
    app = create_app(settings, container)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://c") as client:
                yield client
    finally:
        await container.close()


@pytest.fixture
async def orders(client: httpx.AsyncClient) -> dict[str, Any]:
    """Two orders of c-1 (one placed) and one of c-2; ``position``: the last write's."""
    assert (await client.post("/api/v1/products", json=MUG, headers=OPERATOR)).status_code == 201
    ids: dict[str, Any] = {}
    for name, customer, token in (("a", "c-1", CUSTOMER_1), ("b", "c-1", CUSTOMER_1)):
        r = await client.post("/api/v1/orders", json=_order(customer), headers=token)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["order_id"]
    r = await client.post("/api/v1/orders", json=_order("c-2"), headers=CUSTOMER_2)
    ids["c"] = r.json()["order_id"]
    r = await client.post(
        f"/api/v1/orders/{ids['a']}/place", json={"payment_method": "tok_ok"}, headers=CUSTOMER_1
    )
    assert r.status_code == 202, r.text
    ids["position"] = r.json()["position"]
    return ids


async def test_the_seed_paths_are_in_the_openapi_document_with_the_bearer_scheme(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for method, path in SEED_004:
        assert method in paths.get(path, {}), (method, path)
        assert paths[path][method]["security"] == [{"bearerAuth": []}]


async def test_customer_orders_are_the_orders_list_of_that_customer(
    client: httpx.AsyncClient, orders: dict[str, Any]
) -> None:
    wait = f"min_position={orders['position']}"
    seed = await client.get(f"/api/v1/customers/c-1/orders?{wait}", headers=CUSTOMER_1)
    cairn = await client.get(f"/api/v1/orders?customer_id=c-1&{wait}", headers=CUSTOMER_1)
    assert seed.status_code == 200, seed.text
    # The same orders in the same order (the saga may move order a on between the two reads).
    ids = [o["order_id"] for o in seed.json()["orders"]]
    assert ids == [o["order_id"] for o in cairn.json()["orders"]]
    assert set(ids) == {orders["a"], orders["b"]}


async def test_customer_orders_take_the_list_filters_and_paging(
    client: httpx.AsyncClient, orders: dict[str, Any]
) -> None:
    wait = f"min_position={orders['position']}"
    r = await client.get(f"/api/v1/customers/c-1/orders?limit=1&{wait}", headers=OPERATOR)
    assert len(r.json()["orders"]) == 1
    assert r.json()["next_cursor"]
    r = await client.get(f"/api/v1/customers/c-1/orders?status=draft&{wait}", headers=OPERATOR)
    assert [o["order_id"] for o in r.json()["orders"]] == [orders["b"]]


async def test_a_customer_may_not_list_another_customers_orders(
    client: httpx.AsyncClient, orders: dict[str, Any]
) -> None:
    r = await client.get("/api/v1/customers/c-1/orders", headers=CUSTOMER_2)
    assert r.status_code == 403
    assert r.json()["code"] == "auth.forbidden_customer"
    assert (await client.get("/api/v1/customers/c-1/orders")).status_code == 401


async def test_orders_by_status_are_the_orders_list_filtered_by_status(
    client: httpx.AsyncClient, orders: dict[str, Any]
) -> None:
    wait = f"min_position={orders['position']}"
    seed = await client.get(f"/api/v1/orders/status/draft?{wait}", headers=OPERATOR)
    cairn = await client.get(f"/api/v1/orders?status=draft&{wait}", headers=OPERATOR)
    assert seed.status_code == 200, seed.text
    assert seed.json() == cairn.json()
    assert {o["order_id"] for o in seed.json()["orders"]} == {orders["b"], orders["c"]}


async def test_a_customer_sees_only_its_own_orders_of_a_status(
    client: httpx.AsyncClient, orders: dict[str, Any]
) -> None:
    r = await client.get(
        f"/api/v1/orders/status/draft?min_position={orders['position']}", headers=CUSTOMER_2
    )
    assert [o["order_id"] for o in r.json()["orders"]] == [orders["c"]]


async def test_a_status_that_does_not_exist_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/orders/status/lost", headers=OPERATOR)
    assert r.status_code == 404
    assert r.json()["code"] == "order.unknown_status"


async def test_admin_stream_events_are_the_admin_stream(
    client: httpx.AsyncClient, orders: dict[str, Any]
) -> None:
    # Its first three events (the saga appends more meanwhile, so the stream's version moves).
    stream = f"order-{orders['a']}?to_version=3"
    seed = await client.get(f"/api/v1/admin/events/{stream}", headers=ADMIN)
    cairn = await client.get(f"/api/v1/admin/streams/{stream}", headers=ADMIN)
    assert seed.status_code == 200, seed.text
    assert seed.json()["events"] == cairn.json()["events"]
    assert seed.json()["stream_id"] == f"order-{orders['a']}"
    types = [e["type"] for e in seed.json()["events"]]
    assert types == ["OrderCreated", "ItemAdded", "OrderPlaced"]


async def test_admin_stream_events_are_for_admins_only_and_404_for_no_stream(
    client: httpx.AsyncClient, orders: dict[str, Any]
) -> None:
    stream = f"order-{orders['a']}"
    assert (await client.get(f"/api/v1/admin/events/{stream}", headers=OPERATOR)).status_code == 403
    r = await client.get("/api/v1/admin/events/order-nothing", headers=ADMIN)
    assert r.status_code == 404
    assert r.json()["code"] == "stream.not_found"


async def _finished(client: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> list[str]:
    states = []
    for job in jobs:
        for _ in range(200):
            body = (
                await client.get(f"/api/v1/admin/replays/{job['job_id']}", headers=ADMIN)
            ).json()
            if body["state"] != "running":
                break
            await asyncio.sleep(0.02)
        states.append(body["state"])
    return states


async def test_replaying_events_replays_every_projection(
    client: httpx.AsyncClient, orders: dict[str, Any]
) -> None:
    names = {
        p["name"]
        for p in (await client.get("/api/v1/admin/projections", headers=ADMIN)).json()[
            "projections"
        ]
    }
    r = await client.post("/api/v1/admin/events/replay", headers=ADMIN)
    assert r.status_code == 202, r.text
    jobs = r.json()["jobs"]
    assert {j["name"] for j in jobs} == names
    assert {j["kind"] for j in jobs} == {"replay"}
    assert await _finished(client, jobs) == ["completed"] * len(jobs)
    r = await client.get(f"/api/v1/orders/{orders['a']}", headers=CUSTOMER_1)
    assert r.json()["status"] in ("placed", "confirmed")


async def test_replaying_events_of_one_projection(
    client: httpx.AsyncClient, orders: dict[str, Any]
) -> None:
    r = await client.post("/api/v1/admin/events/replay?projection=orders", headers=ADMIN)
    assert r.status_code == 202, r.text
    assert [j["name"] for j in r.json()["jobs"]] == ["orders"]
    assert await _finished(client, r.json()["jobs"]) == ["completed"]


async def test_replaying_an_unknown_projection_is_404_and_starts_nothing(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/api/v1/admin/events/replay?projection=nope", headers=ADMIN)
    assert r.status_code == 404
    assert r.json()["code"] == "projection.not_found"
    assert (await client.get("/api/v1/admin/replays", headers=ADMIN)).json()["jobs"] == []


async def test_rebuilding_all_projections_rebuilds_each(
    client: httpx.AsyncClient, orders: dict[str, Any]
) -> None:
    r = await client.post("/api/v1/admin/projections/rebuild", headers=ADMIN)
    assert r.status_code == 202, r.text
    body = r.json()
    assert {p["state"] for p in body["projections"]} == {"rebuilding"}
    assert [p["name"] for p in body["projections"]] == [j["name"] for j in body["jobs"]]
    assert await _finished(client, body["jobs"]) == ["completed"] * len(body["jobs"])


async def test_replay_and_rebuild_are_for_admins_only(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/admin/events/replay", "/api/v1/admin/projections/rebuild"):
        assert (await client.post(path, headers=OPERATOR)).status_code == 403
        assert (await client.post(path)).status_code == 401

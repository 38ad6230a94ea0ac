"""``GET /orders/{id}/history`` a page at a time: ``limit`` (bounded by CAIRN_HISTORY_MAX_PAGE),
``after_version``, ``next_after_version``; bad values are 422 problem+json."""

from __future__ import annotations

import httpx
from api_tokens import ADMIN, CUSTOMER_1, CUSTOMER_2
from test_commands import order_body, register_mug


async def _order_with_events(client: httpx.AsyncClient, adds: int) -> str:
    await register_mug(client)
    created = await client.post("/api/v1/orders", json=order_body(), headers=CUSTOMER_1)
    oid: str = created.json()["order_id"]
    for _ in range(adds):
        r = await client.post(
            f"/api/v1/orders/{oid}/items", json={"sku": "MUG-1", "quantity": 1}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
    return oid


async def test_history_pages_through_every_event_in_order(bare_client: httpx.AsyncClient) -> None:
    oid = await _order_with_events(bare_client, 5)  # versions 1..7
    url = f"/api/v1/orders/{oid}/history"
    whole = (await bare_client.get(url, headers=CUSTOMER_1)).json()
    assert [e["version"] for e in whole["events"]] == [1, 2, 3, 4, 5, 6, 7]
    assert whole["next_after_version"] is None
    assert set(whole) == {"order_id", "events", "next_after_version"}
    assert set(whole["events"][0]) >= {"type", "version", "position", "data", "recorded_at"}

    seen: list[int] = []
    after = 0
    while True:
        r = await bare_client.get(url, params={"limit": 3, "after_version": after}, headers=ADMIN)
        assert r.status_code == 200, r.text
        seen += [e["version"] for e in r.json()["events"]]
        if r.json()["next_after_version"] is None:
            break
        after = r.json()["next_after_version"]
    assert seen == [1, 2, 3, 4, 5, 6, 7]

    past = await bare_client.get(url, params={"after_version": 7}, headers=CUSTOMER_1)
    assert past.status_code == 200
    assert past.json()["events"] == []
    later_page = await bare_client.get(url, params={"after_version": 3}, headers=CUSTOMER_2)
    assert later_page.status_code == 404  # another customer's order, on any page


async def test_bad_paging_values_are_422_problems(bare_client: httpx.AsyncClient) -> None:
    oid = await _order_with_events(bare_client, 0)
    url = f"/api/v1/orders/{oid}/history"
    for params in (
        {"limit": 0},
        {"limit": 1001},
        {"limit": "x"},
        {"after_version": -1},
        {"after_version": "y"},
    ):
        r = await bare_client.get(url, params=params, headers=ADMIN)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    ok = await bare_client.get(url, params={"limit": 1000}, headers=ADMIN)
    assert ok.status_code == 200

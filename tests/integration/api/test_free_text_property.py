"""SPEC §12 as a property: arbitrary Unicode (control characters included) in the free-text
fields of an order (customer and product names, address lines, the cancel reason) is either
refused at the edge with a 4xx problem, or flows through every read model, on SQLite and on
PostgreSQL, without stopping a projection."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ADMIN = {"Authorization": "Bearer adm"}
PROBLEM = "application/problem+json"

#: Every code point but surrogates (which a client cannot encode), weighted to C0 controls.
TEXT = st.one_of(
    st.text(min_size=1, max_size=12),
    st.text(st.characters(max_codepoint=0x20), min_size=1, max_size=4),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
)


def collect(examples: int) -> list[dict[str, str]]:
    """Hypothesis draws the cases up front (the app lives in this test's event loop)."""
    drawn: list[dict[str, str]] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.fixed_dictionaries(
            {
                "customer_name": TEXT,
                "line1": TEXT,
                "line2": TEXT,
                "city": TEXT,
                "product_name": TEXT,
                "reason": TEXT,
            }
        )
    )
    def draw(case: dict[str, str]) -> None:
        drawn.append(case)

    draw()
    return drawn


def accepted(r: httpx.Response) -> bool:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith(PROBLEM), r.text
        assert r.json()["code"], r.text  # the edge's, the schema's or the domain's refusal
        return False
    return True


async def test_free_text_is_refused_at_the_edge_or_reaches_every_read_model(
    app_client: httpx.AsyncClient,
) -> None:
    orders: dict[str, dict[str, Any]] = {}
    for n, case in enumerate(collect(40)):
        sku = f"SKU-{n}"
        product = {"sku": sku, "name": case["product_name"], "price": "1.50", "currency": "EUR"}
        has_product = accepted(
            await app_client.post(
                "/api/v1/products", json={**product, "initial_stock": 5}, headers=ADMIN
            )
        )
        body = {
            "customer_id": f"c-{n}",
            "customer_name": case["customer_name"],
            "customer_email": f"c{n}@example.com",
            "currency": "EUR",
            "shipping_address": {
                "line1": case["line1"],
                "line2": case["line2"],
                "city": case["city"],
                "postal_code": "75001",
                "country": "FR",
            },
            "items": [{"sku": sku, "quantity": 1}] if has_product else [],
        }
        r = await app_client.post("/api/v1/orders", json=body, headers=ADMIN)
        if not accepted(r):
            continue
        order_id = r.json()["order_id"]
        r = await app_client.post(
            f"/api/v1/orders/{order_id}/cancel", json={"reason": case["reason"]}, headers=ADMIN
        )
        orders[order_id] = {
            "customer_name": case["customer_name"],
            "cancellation_reason": case["reason"] if accepted(r) else None,
        }

    assert orders, "every case was refused: the property tested nothing"
    await caught_up(app_client)
    for order_id, expected in orders.items():
        r = await app_client.get(f"/api/v1/orders/{order_id}", headers=ADMIN)
        assert r.status_code == 200, r.text
        view = r.json()
        if expected["cancellation_reason"] is not None:
            assert view["status"] == "cancelled"
            assert view["cancellation_reason"] == expected["cancellation_reason"]


async def caught_up(client: httpx.AsyncClient, timeout: float = 15.0) -> None:
    """Every projection reaches the log head and is running, with nothing parked."""
    r = await client.get("/api/v1/admin/health", headers=ADMIN)
    head = int(r.json()["components"]["event_store"]["head_position"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await client.get("/api/v1/admin/projections", headers=ADMIN)
        assert r.status_code == 200, r.text
        projections = r.json()["projections"]
        done = all(p["position"] >= head and p["state"] == "running" for p in projections)
        if done:
            break
        assert loop.time() < deadline, projections
        await asyncio.sleep(0.05)
    # Refused at the edge, nothing poison reached the log: nothing to park either.
    assert all(p["parked"] == 0 for p in projections), projections

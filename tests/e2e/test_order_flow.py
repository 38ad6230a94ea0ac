"""The whole order flow and every saga path, over HTTP against ``cairn serve``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from e2e_server import ADMIN, CUSTOMER_1, MUG, OPERATOR, order_body, wait_for

from cairn.orders.domain.ids import payment_id_for


def _register(client: httpx.Client, **overrides: Any) -> None:
    r = client.post("/api/v1/products", json={**MUG, **overrides}, headers=OPERATOR)
    assert r.status_code == 201, r.text


def _create(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    r = client.post("/api/v1/orders", json=order_body(**overrides), headers=CUSTOMER_1)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _place(client: httpx.Client, order_id: str, token: str = "tok_ok") -> dict[str, Any]:
    r = client.post(
        f"/api/v1/orders/{order_id}/place", json={"payment_method": token}, headers=CUSTOMER_1
    )
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


def _status_becomes(client: httpx.Client, order_id: str, status: str) -> dict[str, Any]:
    return wait_for(client, f"/api/v1/orders/{order_id}", lambda o: o["status"] == status)


def test_an_order_is_confirmed_shipped_and_delivered(client: httpx.Client) -> None:
    _register(client)
    created = _create(client)
    oid = created["order_id"]
    assert created["order_number"].startswith("ORD-")
    placed = _place(client, oid)
    assert placed["order_id"] == oid
    confirmed = _status_becomes(client, oid, "confirmed")
    assert confirmed["total"] == "25.00"
    assert confirmed["items"] == [
        {"sku": "MUG-1", "name": "Mug", "quantity": 2, "unit_price": "12.50", "line_total": "25.00"}
    ]
    r = client.post(f"/api/v1/orders/{oid}/ship", json={}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    payment = wait_for(
        client,
        f"/api/v1/admin/streams/payment-{payment_id_for(oid)}",
        lambda s: any(e["type"] == "PaymentCaptured" for e in s["events"]),
    )
    assert payment["events"][0]["type"] == "PaymentAuthorized"
    r = client.post(f"/api/v1/orders/{oid}/deliver", json={}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    delivered = _status_becomes(client, oid, "delivered")
    assert delivered["order_number"] == created["order_number"]
    inventory = wait_for(client, "/api/v1/inventory/MUG-1", lambda i: i["on_hand"] == 8)
    assert (inventory["reserved"], inventory["available"]) == (0, 8)


@pytest.mark.parametrize(
    ("token", "country", "reason_part"),
    [
        ("tok_decline", "FR", "declin"),
        ("tok_ok", "ZZ", ""),
    ],
)
def test_a_failed_step_cancels_the_order_and_releases_stock(
    client: httpx.Client, token: str, country: str, reason_part: str
) -> None:
    _register(client)
    oid = _create(client, country=country)["order_id"]
    _place(client, oid, token)
    cancelled = _status_becomes(client, oid, "cancelled")
    assert cancelled["cancellation_reason"]
    assert reason_part in cancelled["cancellation_reason"].lower()
    wait_for(
        client, "/api/v1/inventory/MUG-1", lambda i: i["reserved"] == 0 and i["available"] == 10
    )


def test_an_order_beyond_the_stock_is_cancelled(client: httpx.Client) -> None:
    _register(client, initial_stock=1)
    oid = _create(client)["order_id"]
    _place(client, oid)
    cancelled = _status_becomes(client, oid, "cancelled")
    assert cancelled["cancellation_reason"]


def test_a_flaky_gateway_still_confirms_within_ten_seconds(client: httpx.Client) -> None:
    _register(client)
    oid = _create(client)["order_id"]
    _place(client, oid, "tok_flaky")
    wait_for(client, f"/api/v1/orders/{oid}", lambda o: o["status"] == "confirmed", timeout=10)


def test_a_gateway_timeout_cancels_within_thirty_seconds(client: httpx.Client) -> None:
    _register(client)
    oid = _create(client)["order_id"]
    _place(client, oid, "tok_timeout")
    wait_for(client, f"/api/v1/orders/{oid}", lambda o: o["status"] == "cancelled", timeout=30)
    wait_for(client, "/api/v1/inventory/MUG-1", lambda i: i["reserved"] == 0, timeout=10)


def test_sagas_are_listed_by_status(client: httpx.Client) -> None:
    _register(client)
    oid = _create(client)["order_id"]
    _place(client, oid)
    _status_becomes(client, oid, "confirmed")
    body = wait_for(
        client,
        "/api/v1/admin/sagas?status=completed",
        lambda b: any(s["order_id"] == oid for s in b["sagas"]),
    )
    saga = next(s for s in body["sagas"] if s["order_id"] == oid)
    assert saga["status"] == "completed"
    detail = client.get(f"/api/v1/admin/sagas/{saga['saga_id']}", headers=ADMIN)
    assert detail.status_code == 200
    assert detail.json()["history"]

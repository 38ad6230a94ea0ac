"""SPEC §1 / §7 crypto-shredding, over HTTP: after ``POST /admin/customers/{id}/forget`` the
customer's name, email and address read back redacted everywhere, the rest of the history and
other customers stay intact."""

from __future__ import annotations

from typing import Any

import httpx
from e2e_server import ADMIN, CUSTOMER_1, CUSTOMER_2, MUG, OPERATOR, order_body, wait_for

REDACTED = "[redacted]"


def _order(client: httpx.Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post("/api/v1/orders", json=order_body(**body), headers=headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _forget(client: httpx.Client, customer_id: str) -> dict[str, Any]:
    r = client.post(f"/api/v1/admin/customers/{customer_id}/forget", headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_forgotten_customer_reads_back_redacted_everywhere(client: httpx.Client) -> None:
    assert client.post("/api/v1/products", json=MUG, headers=OPERATOR).status_code == 201
    ada = _order(client, CUSTOMER_1)
    grace = _order(
        client, CUSTOMER_2, customer_id="c-2", customer_name="Grace", customer_email="g@x.io"
    )
    wait_for(client, "/api/v1/customers/c-1/summary", lambda s: s["customer_name"] == "Ada")
    # The forget lists the orders the orders read model knows: a projection of its own, which
    # may still be behind the customer summary's.
    wait_for(client, "/api/v1/orders?customer_id=c-1", lambda b: len(b["orders"]) == 1)

    forgotten = _forget(client, "c-1")
    assert forgotten["key_deleted"] is True
    assert forgotten["order_ids"] == [ada["order_id"]]

    history = client.get(f"/api/v1/orders/{ada['order_id']}/history", headers=ADMIN)
    assert history.status_code == 200
    assert "Ada" not in history.text
    assert "ada@example.com" not in history.text
    assert "1 Main St" not in history.text
    wait_for(client, "/api/v1/customers/c-1/summary", lambda s: s["customer_name"] == REDACTED)
    wait_for(client, "/api/v1/orders/search?q=ada", lambda b: b["orders"] == [])
    log = client.get("/api/v1/admin/events?after=0&limit=1000", headers=ADMIN).text
    assert "ada@example.com" not in log
    assert "g@x.io" in log
    summary = client.get("/api/v1/customers/c-2/summary", headers=ADMIN).json()
    assert summary["customer_name"] == "Grace"
    order = client.get(f"/api/v1/orders/{grace['order_id']}", headers=ADMIN).json()
    assert order["customer_id"] == "c-2"


def test_forgetting_again_is_harmless_and_says_no_key_was_left(client: httpx.Client) -> None:
    assert client.post("/api/v1/products", json=MUG, headers=OPERATOR).status_code == 201
    _order(client, CUSTOMER_1)
    assert _forget(client, "c-1")["key_deleted"] is True
    assert _forget(client, "c-1")["key_deleted"] is False


def test_an_order_of_a_forgotten_customer_keeps_its_totals_and_status(
    client: httpx.Client,
) -> None:
    assert client.post("/api/v1/products", json=MUG, headers=OPERATOR).status_code == 201
    created = _order(client, CUSTOMER_1)
    _forget(client, "c-1")
    order = wait_for(client, f"/api/v1/orders/{created['order_id']}", lambda o: True)
    assert order["total"] == "25.00"
    assert order["status"] == "draft"


def test_forget_is_admin_only(client: httpx.Client) -> None:
    r = client.post("/api/v1/admin/customers/c-1/forget", headers=CUSTOMER_1)
    assert r.status_code == 403

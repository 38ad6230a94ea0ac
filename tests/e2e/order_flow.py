"""One order's whole happy path over HTTP, shared by the end-to-end tests of SPEC §18."""

from __future__ import annotations

import httpx
from e2e_server import CUSTOMER_1, MUG, OPERATOR, order_body, wait_for

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def place_and_deliver(client: httpx.Client) -> str:
    """The whole happy path of one order over HTTP, the order created in the caller's trace
    ``TRACE_ID``; its order id."""
    assert client.post("/api/v1/products", json=MUG, headers=OPERATOR).status_code == 201
    traced = {**CUSTOMER_1, "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"}
    r = client.post("/api/v1/orders", json=order_body(), headers=traced)
    assert r.status_code == 201, r.text
    oid: str = r.json()["order_id"]
    r = client.post(
        f"/api/v1/orders/{oid}/place", json={"payment_method": "tok_ok"}, headers=CUSTOMER_1
    )
    assert r.status_code == 202, r.text
    wait_for(client, f"/api/v1/orders/{oid}", lambda o: o["status"] == "confirmed")
    assert client.post(f"/api/v1/orders/{oid}/ship", json={}, headers=OPERATOR).status_code == 200
    wait_for(client, f"/api/v1/orders/{oid}", lambda o: o["status"] == "shipped")
    r = client.post(f"/api/v1/orders/{oid}/deliver", json={}, headers=OPERATOR)
    assert r.status_code == 200, r.text
    wait_for(client, f"/api/v1/orders/{oid}", lambda o: o["status"] == "delivered")
    return oid

"""GraphQL on the real ``cairn serve``: an order made and placed through mutations, watched
through ``orderStatusChanged`` over ``graphql-transport-ws`` (SPEC §14)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from e2e_server import ADMIN, CUSTOMER_1, MUG, Server
from websockets.sync.client import ClientConnection, connect

CREATE = """
mutation C($input: CreateOrderInput!) { createOrder(input: $input) { orderId version position } }
"""
PLACE = 'mutation P($id: ID!) { placeOrder(orderId: $id, paymentMethod: "tok_ok") { version } }'
WATCH = "subscription W($id: ID!) { orderStatusChanged(orderId: $id) { status version position } }"
ORDER = "query O($id: ID!, $min: Int) { order(id: $id, minPosition: $min) { status total } }"
ORDER_INPUT = {
    "customerId": "c-1",
    "customerName": "Ada",
    "customerEmail": "ada@example.com",
    "currency": "EUR",
    "shippingAddress": {
        "line1": "1 Main St",
        "city": "Paris",
        "postalCode": "75001",
        "country": "FR",
    },
    "items": [{"sku": "MUG-1", "quantity": 2}],
}


def _graphql(client: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=CUSTOMER_1
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def _receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=30))
    return message


def test_a_subscriber_sees_the_order_placed_then_confirmed(
    server: Server, client: httpx.Client
) -> None:
    assert client.post("/api/v1/products", json=MUG, headers=ADMIN).status_code == 201
    created = _graphql(client, CREATE, input=ORDER_INPUT)["createOrder"]
    order_id = created["orderId"]

    url = server.url.replace("http", "ws", 1) + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": dict(CUSTOMER_1)}
        ws.send(json.dumps(init))
        assert _receive(ws)["type"] == "connection_ack"
        subscribe = {"query": WATCH, "variables": {"id": order_id}}
        ws.send(json.dumps({"id": "w", "type": "subscribe", "payload": subscribe}))
        assert _receive(ws)["payload"]["data"]["orderStatusChanged"]["status"] == "draft"

        _graphql(client, PLACE, id=order_id)
        statuses = [_receive(ws)["payload"]["data"]["orderStatusChanged"] for _ in range(2)]
    assert [s["status"] for s in statuses] == ["placed", "confirmed"]

    order = _graphql(client, ORDER, id=order_id, min=statuses[-1]["position"])["order"]
    assert order == {"status": "confirmed", "total": "25.00"}


def test_sigterm_with_a_subscriber_connected_stops_cleanly(
    server: Server, client: httpx.Client
) -> None:
    assert client.post("/api/v1/products", json=MUG, headers=ADMIN).status_code == 201
    order_id = _graphql(client, CREATE, input=ORDER_INPUT)["createOrder"]["orderId"]
    url = server.url.replace("http", "ws", 1) + "/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init", "payload": dict(CUSTOMER_1)}))
        assert _receive(ws)["type"] == "connection_ack"
        subscribe = {"query": WATCH, "variables": {"id": order_id}}
        ws.send(json.dumps({"id": "w", "type": "subscribe", "payload": subscribe}))
        assert _receive(ws)["type"] == "next"
        started = time.monotonic()
        assert server.stop() == 0, server.log()
    assert time.monotonic() - started < 12

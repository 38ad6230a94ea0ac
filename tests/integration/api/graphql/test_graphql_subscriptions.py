"""``orderStatusChanged`` over ``graphql-transport-ws`` on ``/graphql`` (SPEC §14)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from graphql_client import (
    ADMIN,
    CUSTOMER_1,
    CUSTOMER_2,
    GraphQLServer,
    ws_init,
    ws_next,
    ws_subscribe,
)
from websockets.exceptions import ConnectionClosed

from cairn.api.graphql.hub import StreamHub

STATUS = """
subscription Status($id: ID!) {
  orderStatusChanged(orderId: $id) { orderId status version position }
}"""
PLACE = 'mutation P($id: ID!) { placeOrder(orderId: $id, paymentMethod: "tok_ok") { version } }'
SHIP = "mutation S($id: ID!) { shipOrder(orderId: $id) { version } }"
DELIVER = "mutation D($id: ID!) { deliverOrder(orderId: $id) { version } }"
CANCEL = 'mutation C($id: ID!) { cancelOrder(orderId: $id, reason: "no") { version } }'


def _hub(gql: GraphQLServer) -> StreamHub:
    hub = gql.app.state.graphql_hub
    assert isinstance(hub, StreamHub)
    return hub


async def _changes(ws: Any, count: int) -> list[dict[str, Any]]:
    changes = []
    for _ in range(count):
        message = await ws_next(ws)
        assert message["type"] == "next", message
        changes.append(message["payload"]["data"]["orderStatusChanged"])
    return changes


async def _wait_listeners(hub: StreamHub, count: int) -> None:
    for _ in range(200):
        if hub.listener_count == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{hub.listener_count} listeners, expected {count}")


async def test_a_subscriber_sees_every_status_change_after_subscribing_then_completes(
    gql_any: GraphQLServer,
) -> None:
    gql = gql_any
    await gql.register_product()
    order_id = (await gql.create_order(CUSTOMER_1))["orderId"]
    async with gql.websocket() as ws:
        assert (await ws_init(ws, CUSTOMER_1))["type"] == "connection_ack"
        await ws_subscribe(ws, STATUS, {"id": order_id})
        [current] = await _changes(ws, 1)
        assert (current["orderId"], current["status"]) == (order_id, "draft")

        await gql.data(PLACE, {"id": order_id}, CUSTOMER_1)
        placed, confirmed = await _changes(ws, 2)
        assert [placed["status"], confirmed["status"]] == ["placed", "confirmed"]
        assert current["position"] < placed["position"] < confirmed["position"]
        assert current["version"] < placed["version"] < confirmed["version"]

        await gql.data(SHIP, {"id": order_id}, ADMIN)
        await gql.data(DELIVER, {"id": order_id}, ADMIN)
        shipped, delivered = await _changes(ws, 2)
        assert [shipped["status"], delivered["status"]] == ["shipped", "delivered"]
        assert await ws_next(ws) == {"id": "1", "type": "complete"}


async def test_a_cancelled_order_completes_its_subscription(gql: GraphQLServer) -> None:
    await gql.register_product()
    order_id = (await gql.create_order(ADMIN))["orderId"]
    async with gql.websocket() as ws:
        await ws_init(ws, ADMIN)
        await ws_subscribe(ws, STATUS, {"id": order_id})
        await _changes(ws, 1)
        await gql.data(CANCEL, {"id": order_id})
        [cancelled] = await _changes(ws, 1)
        assert cancelled["status"] == "cancelled"
        assert await ws_next(ws) == {"id": "1", "type": "complete"}


async def test_subscribing_to_another_customers_order_is_an_error(gql: GraphQLServer) -> None:
    await gql.register_product()
    order_id = (await gql.create_order(CUSTOMER_1))["orderId"]
    async with gql.websocket() as ws:
        await ws_init(ws, CUSTOMER_2)
        await ws_subscribe(ws, STATUS, {"id": order_id})
        message = await ws_next(ws)
    errors = message["payload"].get("errors") or message["payload"]
    assert errors[0]["extensions"]["code"] == "order.not_found"


async def test_a_connection_without_a_valid_token_is_refused_at_init(gql: GraphQLServer) -> None:
    async with gql.websocket() as ws:
        await ws_init_refused(ws, None)
    async with gql.websocket() as ws:
        await ws_init_refused(ws, "not-a-token")


async def ws_init_refused(ws: Any, token: str | None) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        await ws_init(ws, token)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_the_token_may_come_on_the_upgrade_request(gql: GraphQLServer) -> None:
    await gql.register_product()
    order_id = (await gql.create_order(CUSTOMER_1))["orderId"]
    headers = {"Authorization": f"Bearer {CUSTOMER_1}"}
    async with gql.websocket(additional_headers=headers) as ws:
        assert (await ws_init(ws, None))["type"] == "connection_ack"
        await ws_subscribe(ws, STATUS, {"id": order_id})
        [current] = await _changes(ws, 1)
        assert current["status"] == "draft"


async def test_many_subscribers_share_one_store_subscription_and_leave_none_behind(
    gql: GraphQLServer,
) -> None:
    await gql.register_product()
    orders = [(await gql.create_order(ADMIN))["orderId"] for _ in range(5)]
    hub = _hub(gql)
    sockets = [gql.websocket() for _ in orders]
    connections = [await socket.__aenter__() for socket in sockets]
    try:
        for ws, order_id in zip(connections, orders, strict=True):
            await ws_init(ws, ADMIN)
            await ws_subscribe(ws, STATUS, {"id": order_id})
            await _changes(ws, 1)
        await asyncio.gather(*(gql.data(PLACE, {"id": o}) for o in orders))
        for ws, order_id in zip(connections, orders, strict=True):
            placed, confirmed = await _changes(ws, 2)
            assert (placed["orderId"], placed["status"]) == (order_id, "placed")
            assert confirmed["status"] == "confirmed"
        assert hub.subscriptions_opened == 1
        assert hub.listener_count == len(orders)
    finally:
        for socket in sockets:
            await socket.__aexit__(None, None, None)
    await _wait_listeners(hub, 0)


async def test_the_token_may_be_nested_in_the_init_payloads_headers(gql: GraphQLServer) -> None:
    await gql.register_product()
    order_id = (await gql.create_order(CUSTOMER_1))["orderId"]
    async with gql.websocket() as ws:
        init = {"headers": {"Authorization": f"Bearer {CUSTOMER_1}"}}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert (await ws_next(ws))["type"] == "connection_ack"
        await ws_subscribe(ws, STATUS, {"id": order_id})
        [current] = await _changes(ws, 1)
        assert current["status"] == "draft"

"""Orders through GraphQL mutations and queries, as REST does them (SPEC §14)."""

from __future__ import annotations

import asyncio
from typing import Any

from graphql_client import ADMIN, CUSTOMER_1, GraphQLServer

ORDER = """
query Order($id: ID!, $min: Int) {
  order(id: $id, minPosition: $min) {
    id orderNumber customerId status currency total version
    items { sku name quantity unitPrice lineTotal }
  }
}"""
PLACE = """
mutation Place($id: ID!) {
  placeOrder(orderId: $id, paymentMethod: "tok_ok") { orderId version position }
}"""
ADD = """
mutation Add($id: ID!, $sku: ID!, $q: Int!) {
  addItem(orderId: $id, sku: $sku, quantity: $q) { orderId version position }
}"""


async def _status_becomes(gql: GraphQLServer, order_id: str, status: str) -> dict[str, Any]:
    for _ in range(200):
        order = (await gql.data(ORDER, {"id": order_id}))["order"]
        if order is not None and order["status"] == status:
            return dict(order)
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} never became {status}: {order}")


async def test_an_order_created_filled_and_placed_by_mutations_is_confirmed_by_the_saga(
    gql_any: GraphQLServer,
) -> None:
    gql = gql_any
    await gql.register_product()
    created = await gql.create_order(CUSTOMER_1)
    order_id = created["orderId"]
    assert created["orderNumber"].startswith("ORD-")
    added = (await gql.data(ADD, {"id": order_id, "sku": "MUG-1", "q": 1}, CUSTOMER_1))["addItem"]
    assert added["version"] == created["version"] + 1
    placed = (await gql.data(PLACE, {"id": order_id}, CUSTOMER_1))["placeOrder"]
    assert placed["orderId"] == order_id

    order = await _status_becomes(gql, order_id, "confirmed")
    assert order["items"] == [
        {"sku": "MUG-1", "name": "Mug", "quantity": 3, "unitPrice": "12.50", "lineTotal": "37.50"}
    ]
    assert order["total"] == "37.50"


async def test_min_position_reads_the_write_it_names(gql: GraphQLServer) -> None:
    await gql.register_product()
    created = await gql.create_order(ADMIN)
    data = await gql.data(ORDER, {"id": created["orderId"], "min": created["position"]})
    assert data["order"]["status"] == "draft"
    assert data["order"]["version"] == created["version"]

"""REST's ``Idempotency-Key`` and ``If-Match`` as mutation arguments (``idempotencyKey``,
``expectedVersion``): a retry gets the first result and writes nothing, a key reused with other
arguments is refused, a stale version is refused and writes nothing (SPEC §12, §14)."""

from __future__ import annotations

from typing import Any

from graphql_client import ADMIN, CUSTOMER_1, CUSTOMER_2, GraphQLServer, order_input

CREATE = """
mutation Create($input: CreateOrderInput!, $key: String) {
  createOrder(input: $input, idempotencyKey: $key) {
    orderId orderNumber version position replayed
  }
}"""
PLACE = """
mutation Place($id: ID!, $key: String, $expected: Int) {
  placeOrder(orderId: $id, paymentMethod: "tok_ok", idempotencyKey: $key,
             expectedVersion: $expected) { orderId version position replayed }
}"""
ADD = """
mutation Add($id: ID!, $q: Int!, $key: String, $expected: Int) {
  addItem(orderId: $id, sku: "MUG-1", quantity: $q, idempotencyKey: $key,
          expectedVersion: $expected) { version replayed }
}"""
REPLENISH = """
mutation Replenish($key: String) {
  replenishStock(sku: "MUG-1", quantity: 5, idempotencyKey: $key) { sku version replayed }
}"""


async def _history(gql: GraphQLServer, order_id: str) -> list[str]:
    r = await gql.rest("GET", f"/api/v1/orders/{order_id}/history")
    assert r.status_code == 200, r.text
    return [e["type"] for e in r.json()["events"]]


def _code(body: dict[str, Any]) -> str:
    assert body.get("errors"), body
    code: str = body["errors"][0]["extensions"]["code"]
    return code


async def test_a_create_retried_with_its_key_gets_the_first_order_and_writes_nothing(
    gql: GraphQLServer,
) -> None:
    await gql.register_product()
    variables = {"input": order_input(), "key": "create-1"}
    first = (await gql.data(CREATE, variables, CUSTOMER_1))["createOrder"]
    again = (await gql.data(CREATE, variables, CUSTOMER_1))["createOrder"]
    assert first["replayed"] is False
    assert again == {**first, "replayed": True}
    assert await _history(gql, first["orderId"]) == ["OrderCreated", "ItemAdded"]


async def test_another_callers_key_is_its_own(gql: GraphQLServer) -> None:
    await gql.register_product()
    mine = await gql.data(CREATE, {"input": order_input("c-1"), "key": "same"}, CUSTOMER_1)
    theirs = await gql.data(CREATE, {"input": order_input("c-2"), "key": "same"}, CUSTOMER_2)
    assert mine["createOrder"]["orderId"] != theirs["createOrder"]["orderId"]
    assert theirs["createOrder"]["replayed"] is False


async def test_a_key_reused_with_other_arguments_is_refused_and_writes_nothing(
    gql: GraphQLServer,
) -> None:
    await gql.register_product()
    created = await gql.create_order(CUSTOMER_1)
    order_id = created["orderId"]
    one = {"id": order_id, "q": 1, "key": "add-1"}
    assert (await gql.data(ADD, one, CUSTOMER_1))["addItem"]["version"] == created["version"] + 1
    body = await gql.run(ADD, {**one, "q": 2}, CUSTOMER_1)
    assert _code(body) == "app.idempotency_key_reused"
    assert await _history(gql, order_id) == ["OrderCreated", "ItemAdded", "ItemAdded"]


async def test_a_key_used_by_another_mutation_is_refused(gql: GraphQLServer) -> None:
    await gql.register_product()
    created = await gql.create_order(ADMIN)
    await gql.data(ADD, {"id": created["orderId"], "q": 1, "key": "k"})
    body = await gql.run(PLACE, {"id": created["orderId"], "key": "k"})
    assert _code(body) == "app.idempotency_key_reused"


async def test_a_place_retried_after_it_committed_gets_its_first_result(
    gql: GraphQLServer,
) -> None:
    await gql.register_product()
    created = await gql.create_order(CUSTOMER_1)
    variables = {"id": created["orderId"], "key": "place-1"}
    placed = (await gql.data(PLACE, variables, CUSTOMER_1))["placeOrder"]
    again = (await gql.data(PLACE, variables, CUSTOMER_1))["placeOrder"]
    assert again == {**placed, "replayed": True}
    assert (await _history(gql, created["orderId"])).count("OrderPlaced") == 1


async def test_the_expected_version_is_checked_and_a_stale_one_writes_nothing(
    gql: GraphQLServer,
) -> None:
    await gql.register_product()
    created = await gql.create_order(CUSTOMER_1)
    order_id, version = created["orderId"], created["version"]
    stale = await gql.run(ADD, {"id": order_id, "q": 1, "expected": version - 1}, CUSTOMER_1)
    assert _code(stale) == "store.concurrency"
    assert await _history(gql, order_id) == ["OrderCreated", "ItemAdded"]
    added = await gql.data(ADD, {"id": order_id, "q": 1, "expected": version}, CUSTOMER_1)
    assert added["addItem"]["version"] == version + 1


async def test_bad_keys_and_versions_are_refused_with_rest_codes(gql: GraphQLServer) -> None:
    await gql.register_product()
    created = await gql.create_order(ADMIN)
    order_id = created["orderId"]
    assert _code(await gql.run(ADD, {"id": order_id, "q": 1, "key": ""})) == (
        "app.bad_idempotency_key"
    )
    assert _code(await gql.run(ADD, {"id": order_id, "q": 1, "key": "x" * 256})) == (
        "app.bad_idempotency_key"
    )
    assert _code(await gql.run(ADD, {"id": order_id, "q": 1, "expected": -1})) == ("app.validation")
    assert await _history(gql, order_id) == ["OrderCreated", "ItemAdded"]


async def test_product_mutations_take_keys_too(gql: GraphQLServer) -> None:
    await gql.register_product(stock=10)
    first = (await gql.data(REPLENISH, {"key": "restock-1"}))["replenishStock"]
    again = (await gql.data(REPLENISH, {"key": "restock-1"}))["replenishStock"]
    assert again == {**first, "replayed": True}
    r = await gql.rest("GET", "/api/v1/admin/streams/inventory-MUG-1")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == first["version"]

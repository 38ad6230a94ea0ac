"""A customer token sees and acts on its own orders only, over GraphQL as over REST."""

from __future__ import annotations

from graphql_client import ADMIN, CUSTOMER_1, CUSTOMER_2, OPERATOR, GraphQLServer

ORDER = "query O($id: ID!, $min: Int) { order(id: $id, minPosition: $min) { id customerId } }"
ORDERS = """
query L($customer: ID, $min: Int) {
  orders(customerId: $customer, minPosition: $min) { nodes { id customerId } hasNextPage }
}"""
SUMMARY = """
query S($customer: ID!, $min: Int) {
  customerSummary(customerId: $customer, minPosition: $min) { customerId orderCount }
}"""
PRODUCT = 'query P { product(sku: "MUG-1") { sku available } }'


async def test_another_customers_order_is_null_without_an_error(gql: GraphQLServer) -> None:
    await gql.register_product()
    created = await gql.create_order(CUSTOMER_1)
    order_id, written = created["orderId"], {"min": created["position"]}
    body = await gql.run(ORDER, {"id": order_id, **written}, CUSTOMER_2)
    assert body == {"data": {"order": None}}
    mine = await gql.data(ORDER, {"id": order_id, **written}, CUSTOMER_1)
    assert mine["order"] == {"id": order_id, "customerId": "c-1"}


async def test_a_customer_lists_only_its_own_orders(gql: GraphQLServer) -> None:
    await gql.register_product()
    await gql.create_order(CUSTOMER_1)
    last = await gql.create_order(CUSTOMER_2)
    data = await gql.data(ORDERS, {"min": last["position"]}, CUSTOMER_2)
    assert [node["customerId"] for node in data["orders"]["nodes"]] == ["c-2"]
    everyone = await gql.data(ORDERS, {"min": last["position"]}, OPERATOR)
    assert sorted(n["customerId"] for n in everyone["orders"]["nodes"]) == ["c-1", "c-2"]


async def test_a_customer_asking_for_anothers_orders_is_refused(gql: GraphQLServer) -> None:
    body = await gql.run(ORDERS, {"customer": "c-1"}, CUSTOMER_2)
    assert body["errors"][0]["extensions"]["code"] == "auth.forbidden_customer"
    assert body["data"] is None


async def test_another_customers_summary_is_null(gql: GraphQLServer) -> None:
    await gql.register_product()
    created = await gql.create_order(CUSTOMER_1)
    variables = {"customer": "c-1", "min": created["position"]}
    assert (await gql.data(SUMMARY, variables, CUSTOMER_2))["customerSummary"] is None
    own = await gql.data(SUMMARY, variables, CUSTOMER_1)
    assert own["customerSummary"] == {"customerId": "c-1", "orderCount": 1}


async def test_products_are_for_operators_as_rest_inventory_is(gql: GraphQLServer) -> None:
    await gql.register_product(stock=7)
    body = await gql.run(PRODUCT, token=CUSTOMER_1)
    rest = await gql.rest("GET", "/api/v1/inventory/MUG-1", CUSTOMER_1)
    assert body["errors"][0]["extensions"]["code"] == rest.json()["code"] == "auth.forbidden"
    data = await gql.data(PRODUCT, token=ADMIN)
    assert data["product"] == {"sku": "MUG-1", "available": 7}


async def test_a_customers_search_finds_only_its_own_orders(gql: GraphQLServer) -> None:
    await gql.register_product()
    await gql.create_order(CUSTOMER_1)
    last = await gql.create_order(CUSTOMER_2)
    search = 'query S($min: Int) { searchOrders(q: "mug", minPosition: $min) { customerId } }'
    mine = await gql.data(search, {"min": last["position"]}, CUSTOMER_2)
    assert mine["searchOrders"] == [{"customerId": "c-2"}]
    everyone = await gql.data(search, {"min": last["position"]}, OPERATOR)
    assert sorted(o["customerId"] for o in everyone["searchOrders"]) == ["c-1", "c-2"]

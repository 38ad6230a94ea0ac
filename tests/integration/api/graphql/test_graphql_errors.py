"""The same bad input gets the same code over GraphQL (``errors[].extensions.code``) as over REST
(the problem's ``code``), and writes nothing (SPEC §14, §9)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from graphql_client import (
    ADDRESS,
    ADMIN,
    CREATE_ORDER,
    CUSTOMER_1,
    CUSTOMER_2,
    GraphQLServer,
    order_input,
)

ADD = """
mutation Add($id: ID!, $sku: ID!, $q: Int!) {
  addItem(orderId: $id, sku: $sku, quantity: $q) { version }
}"""
PLACE = """
mutation Place($id: ID!, $method: String!) {
  placeOrder(orderId: $id, paymentMethod: $method) { version }
}"""
SHIP = "mutation Ship($id: ID!) { shipOrder(orderId: $id) { version } }"
REST_ADDRESS = {"line1": "1 Main St", "city": "Paris", "postal_code": "75001", "country": "FR"}


def rest_order(customer_id: str = "c-1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "customer_name": "Ada",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "shipping_address": REST_ADDRESS,
        "items": [{"sku": "MUG-1", "quantity": 2}],
    }
    return body | changes


@dataclass
class Case:
    """One bad request, over REST (``method``, ``path``, ``body``) and over GraphQL."""

    method: str
    path: str
    body: Any
    query: str
    variables: dict[str, Any] = field(default_factory=dict)
    token: str | None = ADMIN


def cases(order_id: str) -> dict[str, Case]:
    items = f"/api/v1/orders/{order_id}/items"
    return {
        "zero quantity": Case(
            "POST", items, {"sku": "MUG-1", "quantity": 0},
            ADD, {"id": order_id, "sku": "MUG-1", "q": 0},
        ),
        "huge quantity": Case(
            "POST", items, {"sku": "MUG-1", "quantity": 1_000_001},
            ADD, {"id": order_id, "sku": "MUG-1", "q": 1_000_001},
        ),
        "quantity of the wrong type": Case(
            "POST", items, {"sku": "MUG-1", "quantity": "two"},
            ADD, {"id": order_id, "sku": "MUG-1", "q": "two"},
        ),
        "quantity beyond 32 bits": Case(
            "POST", items, {"sku": "MUG-1", "quantity": 10**10},
            ADD, {"id": order_id, "sku": "MUG-1", "q": 10**10},
        ),
        "unknown sku": Case(
            "POST", items, {"sku": "NOPE-1", "quantity": 1},
            ADD, {"id": order_id, "sku": "NOPE-1", "q": 1},
        ),
        "unknown order": Case(
            "POST", "/api/v1/orders/no-such-order/items", {"sku": "MUG-1", "quantity": 1},
            ADD, {"id": "no-such-order", "sku": "MUG-1", "q": 1},
        ),
        "bad email": Case(
            "POST", "/api/v1/orders", rest_order(customer_email="not-an-email"),
            CREATE_ORDER, {"input": order_input(customerEmail="not-an-email")},
        ),
        "bad currency": Case(
            "POST", "/api/v1/orders", rest_order(currency="euro"),
            CREATE_ORDER, {"input": order_input(currency="euro")},
        ),
        "bad country": Case(
            "POST", "/api/v1/orders", rest_order(shipping_address=REST_ADDRESS | {"country": "F"}),
            CREATE_ORDER, {"input": order_input(shippingAddress=ADDRESS | {"country": "F"})},
        ),
        "creating for another customer": Case(
            "POST", "/api/v1/orders", rest_order("c-1"),
            CREATE_ORDER, {"input": order_input("c-1")}, CUSTOMER_2,
        ),
        "another customer's order": Case(
            "POST", items, {"sku": "MUG-1", "quantity": 1},
            ADD, {"id": order_id, "sku": "MUG-1", "q": 1}, CUSTOMER_2,
        ),
        "customer shipping": Case(
            "POST", f"/api/v1/orders/{order_id}/ship", {},
            SHIP, {"id": order_id}, CUSTOMER_1,
        ),
        "not confirmed yet": Case(
            "POST", f"/api/v1/orders/{order_id}/ship", {}, SHIP, {"id": order_id},
        ),
        "empty payment method": Case(
            "POST", f"/api/v1/orders/{order_id}/place", {"payment_method": ""},
            PLACE, {"id": order_id, "method": ""},
        ),
        "no token": Case(
            "POST", items, {"sku": "MUG-1", "quantity": 1},
            ADD, {"id": order_id, "sku": "MUG-1", "q": 1}, None,
        ),
        "a token nobody has": Case(
            "POST", items, {"sku": "MUG-1", "quantity": 1},
            ADD, {"id": order_id, "sku": "MUG-1", "q": 1}, "forged",
        ),
    }  # fmt: skip


CASES = list(cases("x"))


@pytest.mark.parametrize("name", CASES)
async def test_bad_input_gets_the_rest_code_and_writes_nothing(
    gql: GraphQLServer, name: str
) -> None:
    await gql.register_product()
    order = await gql.create_order(CUSTOMER_1)
    case = cases(order["orderId"])[name]
    head = await gql.app.state.runtime.store.head_position()

    headers = {} if case.token is None else {"Authorization": f"Bearer {case.token}"}
    rest = await gql.http.request(case.method, case.path, json=case.body, headers=headers)
    assert rest.status_code >= 400, rest.text
    body = await gql.run(case.query, case.variables, case.token)

    assert [e["extensions"]["code"] for e in body["errors"]] == [rest.json()["code"]]
    assert body["errors"][0]["extensions"]["status"] == rest.status_code
    assert await gql.app.state.runtime.store.head_position() == head


async def test_a_refused_field_is_named_like_rest_names_it(gql: GraphQLServer) -> None:
    body = await gql.run(CREATE_ORDER, {"input": order_input(customerEmail="nope")})
    [error] = body["errors"]
    assert error["extensions"]["errors"][0]["field"] == "customer_email"
    assert "customer_email" in error["message"]

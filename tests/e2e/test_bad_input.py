"""Bad input of every kind is a 4xx problem naming the problem, writes nothing, and the server
stays up (SPEC §9)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from e2e_server import ADMIN, MUG, OPERATOR, order_body, problem

JSON = {"Content-Type": "application/json"}


def head(client: httpx.Client) -> int:
    r = client.get("/api/v1/admin/health", headers=ADMIN)
    assert r.status_code == 200, r.text
    return int(r.json()["components"]["event_store"]["head_position"])


@pytest.fixture
def draft(shared: httpx.Client) -> str:
    """A catalogue with MUG-1 and a fresh draft order holding two mugs."""
    r = shared.post("/api/v1/products", json=MUG, headers=OPERATOR)
    assert r.status_code in (201, 422), r.text
    r = shared.post("/api/v1/orders", json=order_body(), headers=ADMIN)
    assert r.status_code == 201, r.text
    return str(r.json()["order_id"])


Send = Callable[[httpx.Client, str], httpx.Response]


def post(path: str, **kwargs: Any) -> Send:
    extra_headers = kwargs.pop("headers", {})

    def send(client: httpx.Client, order_id: str) -> httpx.Response:
        headers = {**ADMIN, **extra_headers}
        return client.post(path.format(order=order_id), headers=headers, **kwargs)

    return send


def delete(path: str) -> Send:
    def send(client: httpx.Client, order_id: str) -> httpx.Response:
        return client.delete(path.format(order=order_id), headers=ADMIN)

    return send


def with_item(**item: Any) -> dict[str, Any]:
    return order_body(items=[{"sku": "MUG-1", "quantity": 1, **item}])


CASES: dict[str, tuple[Send, int]] = {
    "malformed JSON": (
        post("/api/v1/products", content=b'{"sku": "X-1", ', headers=JSON),
        400,
    ),
    "body not UTF-8": (post("/api/v1/products", content=b"\xff\xfe{", headers=JSON), 400),
    "JSON array instead of object": (post("/api/v1/products", json=[1, 2]), 422),
    "missing fields": (post("/api/v1/products", json={"sku": "X-2"}), 422),
    "price as a float": (post("/api/v1/products", json={**MUG, "sku": "X-3", "price": 12.5}), 422),
    "price not a number": (
        post("/api/v1/products", json={**MUG, "sku": "X-4", "price": "abc"}),
        422,
    ),
    "lower-case currency": (
        post("/api/v1/products", json={**MUG, "sku": "X-5", "currency": "eur"}),
        422,
    ),
    "unknown currency": (
        post("/api/v1/products", json={**MUG, "sku": "X-6", "currency": "XYZ"}),
        422,
    ),
    "quantity as a string": (
        post("/api/v1/orders/{order}/items", json={"sku": "MUG-1", "quantity": "2"}),
        422,
    ),
    "quantity as a bool": (
        post("/api/v1/orders/{order}/items", json={"sku": "MUG-1", "quantity": True}),
        422,
    ),
    "negative quantity": (
        post("/api/v1/orders/{order}/items", json={"sku": "MUG-1", "quantity": -1}),
        422,
    ),
    "zero quantity": (
        post("/api/v1/orders/{order}/items", json={"sku": "MUG-1", "quantity": 0}),
        422,
    ),
    "huge quantity": (
        post("/api/v1/orders/{order}/items", json={"sku": "MUG-1", "quantity": 1_000_001}),
        422,
    ),
    "astronomic quantity": (
        post("/api/v1/orders/{order}/items", json={"sku": "MUG-1", "quantity": 10**40}),
        422,
    ),
    "negative stock": (post("/api/v1/products/MUG-1/stock", json={"quantity": -5}), 422),
    "unknown SKU on an order": (
        post("/api/v1/orders/{order}/items", json={"sku": "NOPE-9", "quantity": 1}),
        422,
    ),
    "unknown SKU at creation": (
        post("/api/v1/orders", json=order_body(items=[{"sku": "NOPE-9", "quantity": 1}])),
        422,
    ),
    "huge quantity at creation": (post("/api/v1/orders", json=with_item(quantity=2_000_000)), 422),
    "three-letter country": (
        post(
            "/api/v1/orders",
            json={
                **order_body(),
                "shipping_address": {**order_body()["shipping_address"], "country": "FRA"},
            },
        ),
        422,
    ),
    "bad email": (post("/api/v1/orders", json=order_body(customer_email="nope")), 422),
    "stock for an unknown SKU": (post("/api/v1/products/NOPE-9/stock", json={"quantity": 1}), 404),
    "unknown order placed": (
        post("/api/v1/orders/00000000-0000-4000-8000-000000000000/place", json={}),
        404,
    ),
    "unknown order item": (
        post(
            "/api/v1/orders/00000000-0000-4000-8000-000000000000/items",
            json={"sku": "MUG-1", "quantity": 1},
        ),
        404,
    ),
    "removing a SKU not on the order": (delete("/api/v1/orders/{order}/items/OTHER-1"), 404),
    "delivering a draft": (post("/api/v1/orders/{order}/deliver", json={}), 422),
    "shipping a draft": (post("/api/v1/orders/{order}/ship", json={}), 422),
    "registering a product twice": (post("/api/v1/products", json=MUG), 422),
    "oversized body": (
        post("/api/v1/products", content=b'{"sku": "' + b"x" * 2_000_000 + b'"}', headers=JSON),
        413,
    ),
    "malformed If-Match": (
        post(
            "/api/v1/orders/{order}/items",
            json={"sku": "MUG-1", "quantity": 1},
            headers={"If-Match": "yesterday"},
        ),
        400,
    ),
    "stale If-Match": (
        post(
            "/api/v1/orders/{order}/items",
            json={"sku": "MUG-1", "quantity": 1},
            headers={"If-Match": '"1"'},
        ),
        412,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_problem_and_writes_nothing(
    shared: httpx.Client, draft: str, case: str
) -> None:
    send, status = CASES[case]
    before = head(shared)
    r = send(shared, draft)
    assert r.status_code == status, r.text
    body = problem(r)
    assert body["detail"]
    assert head(shared) == before
    assert shared.get("/healthz").status_code == 200


def test_placing_an_empty_order_is_refused(shared: httpx.Client) -> None:
    r = shared.post("/api/v1/orders", json=order_body(items=[]), headers=ADMIN)
    assert r.status_code == 201
    before = head(shared)
    r = shared.post(f"/api/v1/orders/{r.json()['order_id']}/place", json={}, headers=ADMIN)
    assert r.status_code == 422
    assert problem(r)["code"] == "order.empty"
    assert head(shared) == before


def test_validation_problems_name_the_field(shared: httpx.Client) -> None:
    r = shared.post("/api/v1/products", json={**MUG, "sku": "Y-1", "price": 1.5}, headers=ADMIN)
    errors = problem(r)["errors"]
    assert any(e["field"] == "price" for e in errors)


def test_unknown_route_and_method_are_problems(shared: httpx.Client) -> None:
    assert problem(shared.get("/api/v1/nowhere", headers=ADMIN))["code"] == "app.not_found"
    assert (
        problem(shared.put("/api/v1/products", headers=ADMIN))["code"] == "app.method_not_allowed"
    )

"""SPEC §12, "Control characters": a NUL (or another control character where no client needs
one) anywhere in a request is a 4xx problem naming where, before anything is written; SQLite
and PostgreSQL alike (it used to be a 201 and a stopped projection, or a 500, on PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

ADMIN = {"Authorization": "Bearer adm"}
CODE = "request.control_character"


def order_body(**extra: Any) -> dict[str, Any]:
    return {
        "customer_id": "c-1",
        "customer_name": "Ada",
        "customer_email": "ada@example.com",
        "currency": "EUR",
        "shipping_address": {
            "line1": "1 Main St",
            "city": "Paris",
            "postal_code": "75001",
            "country": "FR",
        },
        **extra,
    }


async def head(client: httpx.AsyncClient) -> int:
    r = await client.get("/api/v1/admin/health", headers=ADMIN)
    assert r.status_code in (200, 503), r.text
    return int(r.json()["components"]["event_store"]["head_position"])


def refused(r: httpx.Response, location: str) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == CODE
    assert body["location"] == location
    assert body["correlation_id"] == r.headers["x-correlation-id"]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        (order_body(customer_name="Ada\x00"), "body.customer_name"),
        (order_body(customer_email="ada\x00@example.com"), "body.customer_email"),
        (order_body(customer_name="A\x07da"), "body.customer_name"),
        (
            order_body(shipping_address={"line1": "\x00", "city": "P", "postal_code": "1"}),
            "body.shipping_address.line1",
        ),
        (order_body(customer_id="c\x001"), "body.customer_id"),
    ],
)
async def test_a_control_character_in_a_body_field_is_refused(
    app_client: httpx.AsyncClient, body: dict[str, Any], location: str
) -> None:
    before = await head(app_client)
    r = await app_client.post("/api/v1/orders", json=body, headers=ADMIN)
    refused(r, location)
    assert await head(app_client) == before


async def test_a_lone_surrogate_in_a_body_string_is_refused(app_client: httpx.AsyncClient) -> None:
    before = await head(app_client)
    content = httpx.Request("POST", "/", json=order_body(customer_name="@@")).content
    content = content.replace(b"@@", b"\\ud800")
    r = await app_client.post(
        "/api/v1/orders", content=content, headers={**ADMIN, "Content-Type": "application/json"}
    )
    refused(r, "body.customer_name")
    assert await head(app_client) == before


async def test_tab_newline_and_carriage_return_pass_in_free_text(
    app_client: httpx.AsyncClient,
) -> None:
    body = order_body(customer_name="Ada\tLove\r\nlace")
    r = await app_client.post("/api/v1/orders", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/%00",
        "/api/v1/orders/a%00b/place",
        "/api/v1/inventory/%00",
        "/api/v1/products/%1f",
    ],
)
async def test_a_control_character_in_the_path_is_refused(
    app_client: httpx.AsyncClient, path: str
) -> None:
    before = await head(app_client)
    r = await app_client.request("POST" if path.endswith("place") else "GET", path, headers=ADMIN)
    refused(r, "path")
    assert await head(app_client) == before


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("status=%00", "query.status"),
        ("cursor=abc%00def", "query.cursor"),
        ("limit=5&customer_id=c%0a1", "query.customer_id"),
        ("st%00atus=x", "query.st?atus"),
    ],
)
async def test_a_control_character_in_the_query_is_refused(
    app_client: httpx.AsyncClient, query: str, location: str
) -> None:
    before = await head(app_client)
    r = await app_client.get(f"/api/v1/orders?{query}", headers=ADMIN)
    refused(r, location)
    assert await head(app_client) == before


async def test_a_control_character_in_a_header_is_refused(app_client: httpx.AsyncClient) -> None:
    before = await head(app_client)
    r = await app_client.post(
        "/api/v1/orders",
        json=order_body(),
        headers={**ADMIN, "Idempotency-Key": "k\x001"},
    )
    refused(r, "header.idempotency-key")
    r = await app_client.get("/api/v1/orders", headers={**ADMIN, "X-Note": "a\x1fb"})
    refused(r, "header.x-note")
    assert await head(app_client) == before

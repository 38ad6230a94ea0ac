"""SPEC §7 / §10 over HTTP: auth matrix, Idempotency-Key, If-Match, temporal queries,
read-your-writes, lists and search, admin routes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from e2e_server import (
    ADMIN,
    CUSTOMER_1,
    CUSTOMER_2,
    MUG,
    OPERATOR,
    order_body,
    problem,
    wait_for,
)


def _catalogue(client: httpx.Client) -> str:
    """A fresh SKU with 100 units (unique per test, the server is shared)."""
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    r = client.post(
        "/api/v1/products", json={**MUG, "sku": sku, "initial_stock": 100}, headers=OPERATOR
    )
    assert r.status_code == 201, r.text
    return sku


def _order(client: httpx.Client, sku: str, customer: str = "c-1", **headers: str) -> dict[str, Any]:
    body = order_body(customer, items=[{"sku": sku, "quantity": 2}])
    r = client.post("/api/v1/orders", json=body, headers={**ADMIN, **headers})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _head(client: httpx.Client) -> int:
    r = client.get("/api/v1/admin/health", headers=ADMIN)
    return int(r.json()["components"]["event_store"]["head_position"])


# --- auth ------------------------------------------------------------------------------------

NO_TOKEN: dict[str, str] = {}
BAD_TOKEN = {"Authorization": "Bearer not-a-token"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/healthz", NO_TOKEN, 200),
        ("GET", "/readyz", NO_TOKEN, 200),
        ("GET", "/docs", NO_TOKEN, 200),
        ("GET", "/openapi.json", NO_TOKEN, 200),
        ("GET", "/api/v1/admin/health", NO_TOKEN, 401),
        ("GET", "/api/v1/admin/events", BAD_TOKEN, 401),
        ("GET", "/api/v1/admin/events", OPERATOR, 403),
        ("GET", "/api/v1/admin/events", CUSTOMER_1, 403),
        ("GET", "/api/v1/admin/events", ADMIN, 200),
        ("GET", "/api/v1/admin/sagas", OPERATOR, 403),
        ("GET", "/api/v1/admin/projections", CUSTOMER_1, 403),
        ("GET", "/metrics", NO_TOKEN, 401),
        ("GET", "/metrics", ADMIN, 200),
        ("GET", "/api/v1/inventory", CUSTOMER_1, 403),
        ("GET", "/api/v1/inventory", OPERATOR, 200),
        ("GET", "/api/v1/analytics/sales", CUSTOMER_1, 403),
        ("GET", "/api/v1/analytics/top-customers", OPERATOR, 200),
        ("POST", "/api/v1/products", CUSTOMER_1, 403),
        ("POST", "/api/v1/products", NO_TOKEN, 401),
        ("GET", "/api/v1/orders", NO_TOKEN, 401),
        ("GET", "/api/v1/orders", CUSTOMER_1, 200),
        ("GET", "/api/v1/orders?customer_id=c-2", CUSTOMER_1, 403),
    ],
)
def test_auth_matrix(
    shared: httpx.Client, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    body = {**MUG, "sku": f"A-{uuid.uuid4().hex[:6]}"} if method == "POST" else None
    r = shared.request(method, path, headers=headers, json=body)
    assert r.status_code == status, r.text
    if status >= 400:
        problem(r)
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_customers_see_only_their_own_orders(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    mine = _order(shared, sku, "c-1")["order_id"]
    theirs = _order(shared, sku, "c-2")["order_id"]
    assert shared.get(f"/api/v1/orders/{mine}/history", headers=CUSTOMER_1).status_code == 200
    r = shared.get(f"/api/v1/orders/{theirs}/history", headers=CUSTOMER_1)
    assert r.status_code == 404
    r = shared.get(f"/api/v1/orders/{theirs}?version=1", headers=CUSTOMER_1)
    assert r.status_code == 404
    r = shared.post(f"/api/v1/orders/{theirs}/place", json={}, headers=CUSTOMER_1)
    assert r.status_code == 404
    r = shared.post("/api/v1/orders", json=order_body("c-2", items=[]), headers=CUSTOMER_1)
    assert r.status_code == 403
    listed = wait_for(
        shared,
        "/api/v1/orders",
        lambda b: any(o["order_id"] == mine for o in b["orders"]),
        headers=CUSTOMER_1,
    )
    assert {o["customer_id"] for o in listed["orders"]} == {"c-1"}
    assert shared.get(f"/api/v1/orders/{theirs}", headers=CUSTOMER_2).status_code in (200, 404)


# --- idempotency and concurrency -------------------------------------------------------------


def test_idempotent_retry_replays_and_writes_nothing(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    first = _order(shared, sku, **key)
    before = _head(shared)
    r = shared.post(
        "/api/v1/orders",
        json=order_body(items=[{"sku": sku, "quantity": 2}]),
        headers={**ADMIN, **key},
    )
    assert r.status_code == 201
    assert r.json() == first
    assert r.headers["idempotent-replayed"] == "true"
    assert _head(shared) == before


def test_idempotency_key_reused_with_another_body_is_rejected(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    _order(shared, sku, **key)
    before = _head(shared)
    r = shared.post(
        "/api/v1/orders",
        json=order_body(items=[{"sku": sku, "quantity": 3}]),
        headers={**ADMIN, **key},
    )
    assert r.status_code == 422
    assert problem(r)["code"] == "app.idempotency_key_reused"
    assert _head(shared) == before


def test_if_match_gives_optimistic_concurrency(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    created = _order(shared, sku)
    oid, version = created["order_id"], created["version"]
    add = {"sku": sku, "quantity": 1}
    ok = shared.post(
        f"/api/v1/orders/{oid}/items", json=add, headers={**ADMIN, "If-Match": f'"{version}"'}
    )
    assert ok.status_code == 200
    assert ok.headers["etag"] == f'"{version + 1}"'
    stale = shared.post(
        f"/api/v1/orders/{oid}/items", json=add, headers={**ADMIN, "If-Match": f'"{version}"'}
    )
    assert stale.status_code == 412
    problem(stale)


# --- queries ---------------------------------------------------------------------------------


def test_read_your_writes_with_min_position(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    created = _order(shared, sku)
    r = shared.get(
        f"/api/v1/orders/{created['order_id']}?min_position={created['position']}", headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == created["version"]
    inventory = shared.get(
        f"/api/v1/inventory/{sku}?min_position={created['position']}", headers=ADMIN
    )
    assert inventory.status_code == 200
    assert inventory.json()["on_hand"] == 100


def test_min_position_beyond_the_log_is_503_with_retry_after(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    created = _order(shared, sku)
    started = time.monotonic()
    r = shared.get(f"/api/v1/orders/{created['order_id']}?min_position={10**9}", headers=ADMIN)
    assert r.status_code == 503
    assert "retry-after" in r.headers
    assert time.monotonic() - started < 15
    problem(r)


def test_order_as_of_and_version_answer_from_the_events(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    created = _order(shared, sku)
    oid = created["order_id"]
    time.sleep(0.05)
    between = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    r = shared.post(f"/api/v1/orders/{oid}/items", json={"sku": sku, "quantity": 5}, headers=ADMIN)
    assert r.status_code == 200
    at_version = shared.get(f"/api/v1/orders/{oid}?version=2", headers=ADMIN).json()
    assert at_version["items"][0]["quantity"] == 2
    assert at_version["version"] == 2
    as_of = shared.get(f"/api/v1/orders/{oid}", params={"as_of": between}, headers=ADMIN).json()
    assert as_of["items"][0]["quantity"] == 2
    now = shared.get(f"/api/v1/orders/{oid}?min_position={r.json()['position']}", headers=ADMIN)
    assert now.json()["items"][0]["quantity"] == 7
    before_creation = shared.get(
        f"/api/v1/orders/{oid}", params={"as_of": "2000-01-01T00:00:00Z"}, headers=ADMIN
    )
    assert before_creation.status_code == 404


def test_history_lists_events_oldest_first(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    oid = _order(shared, sku)["order_id"]
    history = shared.get(f"/api/v1/orders/{oid}/history", headers=ADMIN).json()
    assert history["order_id"] == oid
    assert [e["type"] for e in history["events"]] == ["OrderCreated", "ItemAdded"]
    assert [e["version"] for e in history["events"]] == [1, 2]


def test_order_list_pages_with_a_cursor(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    customer = f"c-{uuid.uuid4().hex[:6]}"
    ids = {_order(shared, sku, customer)["order_id"] for _ in range(3)}
    for oid in ids:
        wait_for(shared, f"/api/v1/orders/{oid}", lambda b: b["customer_id"] == customer)
    first = wait_for(
        shared,
        f"/api/v1/orders?customer_id={customer}&limit=2",
        lambda b: len(b["orders"]) == 2 and b["next_cursor"],
    )
    second = shared.get(
        "/api/v1/orders",
        params={"customer_id": customer, "limit": 2, "cursor": first["next_cursor"]},
        headers=ADMIN,
    ).json()
    seen = {o["order_id"] for o in first["orders"]} | {o["order_id"] for o in second["orders"]}
    assert seen == ids
    assert second["next_cursor"] is None
    bad = shared.get("/api/v1/orders?cursor=garbage", headers=ADMIN)
    assert bad.status_code == 400


def test_search_finds_an_order_by_number(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    created = _order(shared, sku)
    found = wait_for(
        shared,
        "/api/v1/orders/search?q=" + created["order_number"],
        lambda b: any(o["order_id"] == created["order_id"] for o in b["orders"]),
    )
    assert found["orders"]


# --- admin -----------------------------------------------------------------------------------


def test_admin_events_page_through_the_log(shared: httpx.Client) -> None:
    _catalogue(shared)
    page = shared.get("/api/v1/admin/events?after=0&limit=1", headers=ADMIN).json()
    assert len(page["events"]) == 1
    event = page["events"][0]
    assert {"id", "stream_id", "type", "version", "position", "data", "metadata"} <= set(event)
    assert page["next_after"] == event["position"]
    more = shared.get(f"/api/v1/admin/events?after={page['next_after']}&limit=5", headers=ADMIN)
    assert all(e["position"] > page["next_after"] for e in more.json()["events"])


def test_admin_projections_status_and_rebuild(shared: httpx.Client) -> None:
    status = shared.get("/api/v1/admin/projections", headers=ADMIN).json()
    names = {p["name"] for p in status["projections"]}
    assert "orders" in names
    for p in status["projections"]:
        assert {"position", "lag_events", "lag_seconds", "state", "errors", "parked"} <= set(p)
    r = shared.post("/api/v1/admin/projections/orders/rebuild", headers=ADMIN)
    assert r.status_code == 202
    assert r.json()["name"] == "orders"
    job = wait_for(
        shared, f"/api/v1/admin/replays/{r.json()['job_id']}", lambda j: j["state"] != "running"
    )
    assert job["state"] == "completed"
    assert shared.post("/api/v1/admin/projections/nope/rebuild", headers=ADMIN).status_code == 404
    assert shared.get("/api/v1/admin/projections/orders/parked", headers=ADMIN).status_code == 200


def test_admin_streams_and_snapshots(shared: httpx.Client) -> None:
    sku = _catalogue(shared)
    stream = shared.get(f"/api/v1/admin/streams/inventory-{sku}", headers=ADMIN).json()
    assert stream["version"] == 2
    r = shared.post(f"/api/v1/admin/snapshots/inventory-{sku}", headers=ADMIN)
    assert r.status_code == 201
    assert r.json()["version"] == 2
    assert shared.get("/api/v1/admin/streams/nothing-1", headers=ADMIN).status_code == 404


def test_admin_health_reports_components(shared: httpx.Client) -> None:
    r = shared.get("/api/v1/admin/health", headers=ADMIN)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] in ("ok", "degraded")
    components = body["components"]
    for name in ("event_store", "projections", "sagas", "relay", "redis", "broker"):
        assert name in components
    assert components["redis"]["status"] == "not_configured"
    assert components["broker"]["status"] == "not_configured"


def test_metrics_expose_commands_projections_and_sagas(shared: httpx.Client) -> None:
    _catalogue(shared)
    text = shared.get("/metrics", headers=ADMIN).text
    assert 'cairn_command_duration_seconds_count{command="RegisterProduct",outcome="ok"}' in text
    assert "cairn_projection_lag_events" in text
    assert 'cairn_sagas{status="running"}' in text
    assert "cairn_events_appended_total" in text
    assert "cairn_http_request_duration_seconds_bucket" in text


def test_events_carry_correlation_id_user_and_trace_context(shared: httpx.Client) -> None:
    sku = f"T-{uuid.uuid4().hex[:8]}"
    trace_id = uuid.uuid4().hex
    headers = {
        **OPERATOR,
        "X-Correlation-ID": f"corr-{sku}",
        "traceparent": f"00-{trace_id}-{'1' * 16}-01",
    }
    r = shared.post("/api/v1/products", json={**MUG, "sku": sku}, headers=headers)
    assert r.status_code == 201
    assert r.headers["x-correlation-id"] == f"corr-{sku}"
    stream = shared.get(f"/api/v1/admin/streams/inventory-{sku}", headers=ADMIN).json()
    metadata = stream["events"][0]["metadata"]
    assert metadata["correlation_id"] == f"corr-{sku}"
    assert metadata["user"].startswith("operator")
    assert trace_id in metadata["traceparent"]

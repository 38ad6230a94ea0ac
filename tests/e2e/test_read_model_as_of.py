"""``GET /api/v1/admin/projections/{name}/as-of`` and the live ``$all`` tail, on the real
``cairn serve`` over SQLite and PostgreSQL (SPEC §17)."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
from e2e_server import ADMIN, MUG, OPERATOR, order_body, problem


def _placed_order(client: httpx.Client) -> tuple[str, int, int]:
    """An order created then placed: (id, a position before the placing, the placing's)."""
    client.post("/api/v1/products", json=MUG, headers=ADMIN)
    created = client.post("/api/v1/orders", json=order_body(), headers=ADMIN).json()
    placed = client.post(
        f"/api/v1/orders/{created['order_id']}/place",
        json={"payment_method": "tok_ok"},
        headers=ADMIN,
    ).json()
    return created["order_id"], created["position"], placed["position"]


def _as_of(client: httpx.Client, name: str, **params: Any) -> httpx.Response:
    return client.get(f"/api/v1/admin/projections/{name}/as-of", params=params, headers=ADMIN)


def _status_in(body: dict[str, Any], order_id: str) -> str | None:
    return next((r["status"] for r in body["rows"] if r["order_id"] == order_id), None)


def test_an_order_reads_as_draft_at_a_position_before_it_was_placed(shared: httpx.Client) -> None:
    order_id, before, placed = _placed_order(shared)

    then = _as_of(shared, "orders", position=before, limit=1000)
    now = _as_of(shared, "orders", position=placed, limit=1000)

    assert then.status_code == 200, then.text
    assert _status_in(then.json(), order_id) == "draft"
    assert _status_in(now.json(), order_id) == "placed"


def test_rows_come_in_pages_that_a_cursor_continues(shared: httpx.Client) -> None:
    for _ in range(3):
        _placed_order(shared)
    events = shared.get("/api/v1/admin/events?limit=10000", headers=ADMIN).json()["events"]
    head = events[-1]["position"]
    whole = _as_of(shared, "orders", position=head, limit=1000).json()

    first = _as_of(shared, "orders", position=head, limit=2).json()
    rest = _as_of(shared, "orders", position=head, limit=1000, cursor=first["next_cursor"]).json()

    assert len(first["rows"]) == 2
    assert first["rows"] + rest["rows"] == whole["rows"]
    assert rest["next_cursor"] is None
    assert whole["total"] == len(whole["rows"]) >= 3


def test_an_unknown_projection_is_404(shared: httpx.Client) -> None:
    r = _as_of(shared, "nope", position=1)
    assert r.status_code == 404
    assert problem(r)["code"] == "projection.not_found"


def test_a_position_beyond_the_head_is_422(shared: httpx.Client) -> None:
    r = _as_of(shared, "orders", position=10**12)
    assert r.status_code == 422
    assert problem(r)["code"] == "projection.position_beyond_head"


def test_a_table_the_projection_lacks_is_400(shared: httpx.Client) -> None:
    r = _as_of(shared, "orders", position=0, table="customers_summary")
    assert r.status_code == 400
    assert problem(r)["code"] == "projection.unknown_table"


def test_a_cursor_that_is_not_ours_is_400(shared: httpx.Client) -> None:
    r = _as_of(shared, "orders", position=0, cursor="abc")
    assert r.status_code == 400
    assert problem(r)["code"] == "app.bad_cursor"


def test_only_an_admin_may_travel_in_time(shared: httpx.Client) -> None:
    r = shared.get("/api/v1/admin/projections/orders/as-of?position=0", headers=OPERATOR)
    assert r.status_code == 403


def test_the_live_tail_sends_a_new_order_created_as_a_server_sent_event(
    shared: httpx.Client,
) -> None:
    shared.post("/api/v1/products", json=MUG, headers=ADMIN)
    seen: list[dict[str, Any]] = []
    connected = threading.Event()

    def listen() -> None:
        with shared.stream(
            "GET", "/api/v1/admin/events/live?max_seconds=20", headers=ADMIN
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            connected.set()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if seen[-1]["type"] == "OrderCreated":
                        return

    listener = threading.Thread(target=listen)
    listener.start()
    assert connected.wait(10)
    created = shared.post("/api/v1/orders", json=order_body(), headers=ADMIN)
    assert created.status_code == 201, created.text
    listener.join(25)

    assert not listener.is_alive()
    assert [e["stream_id"] for e in seen if e["type"] == "OrderCreated"] == [
        f"order-{created.json()['order_id']}"
    ]

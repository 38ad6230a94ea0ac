"""Each read model folds the catalogue's events into the shape the API serves, on every backend."""

from __future__ import annotations

from cairn.orders.components import OrderProjections
from cairn.store.base import EventStore

from .scenario import create_order, inventory_event, order_event, place, register_product


async def test_order_view_has_every_field_of_the_api_shape(
    store: EventStore, engine: OrderProjections
) -> None:
    oid = await create_order(
        store, items=[("MUG-1", "Mug", 2, "12.50"), ("TEA-1", "Tea", 1, "4.99")]
    )
    await place(store, oid, "29.99")
    await engine.run_until_caught_up()

    order = await engine.queries.get_order(oid)

    assert order is not None
    assert order["order_id"] == oid
    assert order["order_number"] == "ORD-2026-000001"
    assert order["customer_id"] == "c-1"
    assert order["status"] == "placed"
    assert order["currency"] == "EUR"
    assert order["items"] == [
        {
            "sku": "MUG-1",
            "name": "Mug",
            "quantity": 2,
            "unit_price": "12.50",
            "line_total": "25.00",
        },
        {"sku": "TEA-1", "name": "Tea", "quantity": 1, "unit_price": "4.99", "line_total": "4.99"},
    ]
    assert order["total"] == "29.99"
    assert order["cancellation_reason"] is None
    assert order["version"] == 4
    assert order["created_at"] <= order["updated_at"]


async def test_adding_a_sku_twice_adds_to_its_line_and_removing_drops_it(
    store: EventStore, engine: OrderProjections
) -> None:
    oid = await create_order(
        store, items=[("MUG-1", "Mug", 1, "12.50"), ("MUG-1", "Mug", 2, "12.50")]
    )
    await engine.run_until_caught_up()
    order = await engine.queries.get_order(oid)
    assert order is not None
    assert [(i["sku"], i["quantity"], i["line_total"]) for i in order["items"]] == [
        ("MUG-1", 3, "37.50")
    ]
    assert order["total"] == "37.50"

    await order_event(store, oid, "ItemRemoved", sku="MUG-1")
    await engine.run_until_caught_up()
    order = await engine.queries.get_order(oid)
    assert order is not None
    assert order["items"] == []


async def test_cancelled_order_shows_its_reason(
    store: EventStore, engine: OrderProjections
) -> None:
    oid = await create_order(store, items=[("MUG-1", "Mug", 1, "12.50")])
    await order_event(
        store, oid, "OrderCancelled", reason="changed my mind", previous_status="draft"
    )
    await engine.run_until_caught_up()
    order = await engine.queries.get_order(oid)
    assert order is not None
    assert (order["status"], order["cancellation_reason"]) == ("cancelled", "changed my mind")


async def test_unknown_order_is_none(engine: OrderProjections) -> None:
    await engine.run_until_caught_up()
    assert await engine.queries.get_order("nope") is None


async def test_order_list_filters_by_customer_and_status(
    store: EventStore, engine: OrderProjections
) -> None:
    a = await create_order(store, "c-1", number=1)
    b = await create_order(store, "c-2", number=2)
    c = await create_order(store, "c-1", number=3)
    await place(store, c, "0")
    await engine.run_until_caught_up()

    mine = await engine.queries.list_orders(customer_id="c-1")
    placed = await engine.queries.list_orders(status="placed")

    assert {o["order_id"] for o in mine.orders} == {a, c}
    assert [o["order_id"] for o in placed.orders] == [c]
    assert b not in {o["order_id"] for o in mine.orders}


async def test_order_list_pages_through_every_order_once_newest_first(
    store: EventStore, engine: OrderProjections
) -> None:
    ids = [await create_order(store, number=n) for n in range(7)]
    await engine.run_until_caught_up()

    seen: list[str] = []
    cursor = None
    while True:
        page = await engine.queries.list_orders(cursor=cursor, limit=3)
        seen += [o["order_id"] for o in page.orders]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert sorted(seen) == sorted(ids)
    assert len(seen) == 7
    assert seen[0] == ids[-1]


async def test_order_list_time_window_is_from_inclusive_to_exclusive(
    store: EventStore, engine: OrderProjections
) -> None:
    first = await create_order(store, number=1)
    await create_order(store, number=2)
    await engine.run_until_caught_up()
    start = (await engine.queries.get_order(first) or {})["created_at"]

    window = await engine.queries.list_orders(from_=start, to=start)
    since = await engine.queries.list_orders(from_=start)

    assert window.orders == []
    assert len(since.orders) == 2


async def test_search_finds_orders_by_number_name_email_sku_and_item_name(
    store: EventStore, engine: OrderProjections
) -> None:
    ada = await create_order(
        store,
        "c-1",
        number=123,
        name="Ada Lovelace",
        email="ada@example.com",
        items=[("MUG-1", "Blue Mug", 1, "12.50")],
    )
    bob = await create_order(
        store,
        "c-2",
        number=124,
        name="Bob Stone",
        email="bob@example.org",
        items=[("TEA-9", "Green Tea", 1, "4.00")],
    )
    await engine.run_until_caught_up()

    async def found(q: str) -> set[str]:
        return {o["order_id"] for o in await engine.queries.search_orders(q)}

    assert await found("ORD-2026-000123") == {ada}
    assert await found("lovelace") == {ada}
    assert await found("bob@example.org") == {bob}
    assert await found("TEA-9") == {bob}
    assert await found("green") == {bob}
    assert await found("mug ada") == {ada}
    assert await found("nobody") == set()
    assert await found("   ") == set()


async def test_search_for_a_customer_filters_before_ranking_and_the_limit(
    store: EventStore, engine: OrderProjections
) -> None:
    mine = await create_order(store, "c-1", number=1, items=[("MUG-1", "Blue Mug", 1, "1.00")])
    for n in range(2, 32):  # newer, equally good matches of other customers
        await create_order(store, f"c-{n}", number=n, items=[("MUG-1", "Blue Mug", 1, "1.00")])
    await engine.run_until_caught_up()

    theirs = await engine.queries.search_orders("mug", limit=5, customer_id="c-1")
    everyone = await engine.queries.search_orders("mug", limit=5)

    assert [o["order_id"] for o in theirs] == [mine]
    assert mine not in {o["order_id"] for o in everyone}
    assert await engine.queries.search_orders("mug", customer_id="c-nobody") == []


async def test_customer_summary_counts_orders_and_spend_until_cancelled(
    store: EventStore, engine: OrderProjections
) -> None:
    a = await create_order(store, "c-1", number=1)
    b = await create_order(store, "c-1", number=2)
    await place(store, a, "59.98")
    await place(store, b, "10.01")
    await order_event(store, b, "OrderCancelled", reason="x", previous_status="placed")
    await engine.run_until_caught_up()

    summary = await engine.queries.customer_summary("c-1")

    assert summary is not None
    assert summary["orders"] == 2
    assert summary["total_spent"] == {"EUR": "59.98"}
    assert summary["last_order_at"] is not None
    assert await engine.queries.customer_summary("c-404") is None


async def test_inventory_view_tracks_on_hand_reserved_and_available(
    store: EventStore, engine: OrderProjections
) -> None:
    await register_product(store, "MUG-1", "Mug", "12.50", stock=10)
    await inventory_event(store, "InventoryReserved", "MUG-1", order_id="o1", quantity=3)
    await inventory_event(store, "InventoryReserved", "MUG-1", order_id="o2", quantity=2)
    await inventory_event(store, "InventoryReleased", "MUG-1", order_id="o2", quantity=2)
    await inventory_event(store, "StockCommitted", "MUG-1", order_id="o1", quantity=3)
    await register_product(store, "TEA-1", "Tea", "4.99")
    await engine.run_until_caught_up()

    mug = await engine.queries.get_inventory("MUG-1")

    assert mug == {
        "sku": "MUG-1",
        "name": "Mug",
        "on_hand": 7,
        "reserved": 0,
        "available": 7,
        "version": 6,
    }
    assert [i["sku"] for i in await engine.queries.list_inventory()] == ["MUG-1", "TEA-1"]
    assert [i["sku"] for i in await engine.queries.list_inventory(after="MUG-1")] == ["TEA-1"]
    assert await engine.queries.get_inventory("NOPE") is None


async def test_sales_by_day_and_top_customers_count_placed_orders_minus_cancellations(
    store: EventStore, engine: OrderProjections
) -> None:
    big = await create_order(store, "c-big", number=1)
    small = await create_order(store, "c-small", number=2)
    gone = await create_order(store, "c-gone", number=3)
    await place(store, big, "100.00")
    await place(store, small, "9.99")
    await place(store, gone, "500.00")
    await order_event(store, gone, "OrderCancelled", reason="x", previous_status="placed")
    await engine.run_until_caught_up()

    days = await engine.queries.sales_by_day()
    top = await engine.queries.top_customers(5)

    assert len(days) == 1
    assert (days[0]["orders"], days[0]["revenue"], days[0]["currency"]) == (2, "109.99", "EUR")
    assert [(t["customer_id"], t["revenue"]) for t in top] == [
        ("c-big", "100.00"),
        ("c-small", "9.99"),
    ]

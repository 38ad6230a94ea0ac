"""Everything the read models answer, as plain data, to compare two builds."""

from __future__ import annotations

from typing import Any

from cairn.orders.components import OrderProjections
from cairn.orders.read_models.orders import ORDERS


async def dump(engine: OrderProjections) -> dict[str, Any]:
    q = engine.queries
    orders: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await q.list_orders(cursor=cursor, limit=500)
        orders += page.orders
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    customers = sorted({o["customer_id"] for o in orders})
    version = await q.version("orders")
    search = await engine.db.fetchall(
        f"SELECT order_id, body FROM orders_search_v{version} ORDER BY order_id"
    )
    raw_orders = await engine.db.fetchall(f"SELECT * FROM {ORDERS.name(version)} ORDER BY order_id")
    return {
        "orders": sorted(orders, key=lambda o: o["order_id"]),
        "raw_orders": raw_orders,
        "search": search,
        "customers": [await q.customer_summary(c) for c in customers],
        "inventory": await q.list_inventory(limit=10_000),
        "sales": await q.sales_by_day(),
        "top": await q.top_customers(500),
    }

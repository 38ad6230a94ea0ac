"""Sales analytics: revenue and order count per day and currency, and top customers.

A sale is recorded on ``OrderPlaced`` (the day it was placed, its placed total) and reversed
if the order is later cancelled. ``revenue_sort`` is an exact integer (ten-thousandths) so SQL
orders amounts without ever touching a float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from cairn.projections.read_model import (
    Key,
    ReadModel,
    Rows,
    Table,
    money,
    order_id_of,
    sort_key,
)
from cairn.sql.database import Row
from cairn.store.base import RecordedEvent

SALES_DAILY = Table(
    base="sales_daily",
    key=("day", "currency"),
    columns=(
        ("day", "TEXT NOT NULL"),
        ("currency", "TEXT NOT NULL"),
        ("orders", "BIGINT NOT NULL"),
        ("revenue", "TEXT NOT NULL"),
    ),
)

CUSTOMER_SALES = Table(
    base="customer_sales",
    key=("customer_id", "currency"),
    columns=(
        ("customer_id", "TEXT NOT NULL"),
        ("currency", "TEXT NOT NULL"),
        ("orders", "BIGINT NOT NULL"),
        ("revenue", "TEXT NOT NULL"),
        ("revenue_sort", "BIGINT NOT NULL"),
    ),
    indexes=(("currency", "revenue_sort"), ("revenue_sort",)),
)

SALES_ORDERS = Table(
    base="sales_orders",
    key=("order_id",),
    columns=(
        ("order_id", "TEXT NOT NULL"),
        ("customer_id", "TEXT NOT NULL"),
        ("day", "TEXT"),
        ("currency", "TEXT"),
        ("total", "TEXT"),
        ("counted", "BIGINT NOT NULL"),
    ),
)


def _bump(
    row: dict[str, Any] | None, base: dict[str, Any], orders: int, amount: Any
) -> dict[str, Any]:
    current = row or {**base, "orders": 0, "revenue": "0"}
    revenue = money(current["revenue"]) + amount
    return {**current, "orders": current["orders"] + orders, "revenue": str(revenue)}


class AnalyticsModel(ReadModel):
    name = "analytics"
    tables = (SALES_DAILY, CUSTOMER_SALES, SALES_ORDERS)
    event_types = frozenset({"OrderCreated", "OrderPlaced", "OrderCancelled"})

    def prefetch(self, event: RecordedEvent) -> Iterable[tuple[str, Key]]:
        return [(SALES_ORDERS.base, (order_id_of(event),))]

    def prefetch_more(
        self, events: Sequence[RecordedEvent], loaded: Callable[[str, Key], Row | None]
    ) -> Iterator[tuple[str, Key]]:
        """The day and customer rows a sale or a cancellation will move."""
        created: dict[str, tuple[Any, Any]] = {}  # orders created in this batch
        for event in events:
            order_id = order_id_of(event)
            d = event.data
            if event.type == "OrderCreated":
                created[order_id] = (d.get("customer_id"), d.get("currency"))
                continue
            order = loaded(SALES_ORDERS.base, (order_id,))
            if order_id in created:
                customer, currency = created[order_id]
            elif order is not None:
                customer, currency = order["customer_id"], order["currency"]
            else:
                continue
            if event.type == "OrderPlaced":
                currency = str(d.get("currency") or currency)
                day = event.recorded_at.date().isoformat()
            elif order is not None and order["counted"]:
                day = order["day"]
            else:
                continue
            yield (SALES_DAILY.base, (day, currency))
            yield (CUSTOMER_SALES.base, (str(customer), currency))

    async def apply(self, rows: Rows, event: RecordedEvent) -> None:
        order_id = order_id_of(event)
        d = event.data
        if event.type == "OrderCreated":
            rows.put(
                SALES_ORDERS.base,
                (order_id,),
                {
                    "order_id": order_id,
                    "customer_id": str(d["customer_id"]),
                    "day": None,
                    "currency": d.get("currency"),
                    "total": None,
                    "counted": 0,
                },
            )
            return
        order = await rows.get(SALES_ORDERS.base, (order_id,))
        if order is None:
            raise LookupError(f"{event.type} for unknown order {order_id}")
        if event.type == "OrderPlaced" and not order["counted"]:
            order = {
                **order,
                "day": event.recorded_at.date().isoformat(),
                "currency": str(d.get("currency") or order["currency"]),
                "total": str(money(d.get("total"))),
                "counted": 1,
            }
            sign = 1
        elif event.type == "OrderCancelled" and order["counted"]:
            order = {**order, "counted": 0}
            sign = -1
        else:
            return
        amount = money(order["total"]) * sign
        day_key = (order["day"], order["currency"])
        rows.put(
            SALES_DAILY.base,
            day_key,
            _bump(
                await rows.get(SALES_DAILY.base, day_key),
                {"day": order["day"], "currency": order["currency"]},
                sign,
                amount,
            ),
        )
        cust_key = (order["customer_id"], order["currency"])
        cust = _bump(
            await rows.get(CUSTOMER_SALES.base, cust_key),
            {"customer_id": order["customer_id"], "currency": order["currency"]},
            sign,
            amount,
        )
        cust["revenue_sort"] = sort_key(money(cust["revenue"]))
        rows.put(CUSTOMER_SALES.base, cust_key, cust)
        rows.put(SALES_ORDERS.base, (order_id,), order)


def public_day(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "day": row["day"],
        "currency": row["currency"],
        "orders": int(row["orders"]),
        "revenue": str(money(row["revenue"])),
    }


def public_customer_sales(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer_id": row["customer_id"],
        "currency": row["currency"],
        "orders": int(row["orders"]),
        "revenue": str(money(row["revenue"])),
    }

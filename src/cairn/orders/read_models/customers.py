"""Customer order summary: orders, total spent per currency, last order date.

An order counts towards ``total_spent`` from ``OrderPlaced`` (its placed total) until it is
cancelled; ``orders`` counts every order the customer created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from cairn.projections.read_model import (
    Key,
    ReadModel,
    Rows,
    Table,
    iso,
    money,
    order_id_of,
)
from cairn.sql.database import Row
from cairn.store.base import RecordedEvent
from cairn.store.personal import REDACTED

SUMMARY = Table(
    base="customer_summary",
    key=("customer_id",),
    columns=(
        ("customer_id", "TEXT NOT NULL"),
        ("customer_name", "TEXT"),
        ("orders", "BIGINT NOT NULL"),
        ("total_spent", "TEXT NOT NULL"),
        ("last_order_at", "TEXT"),
        ("updated_at", "TEXT NOT NULL"),
    ),
    json_columns=frozenset({"total_spent"}),
)

CUSTOMER_ORDERS = Table(
    base="customer_orders",
    key=("order_id",),
    columns=(
        ("order_id", "TEXT NOT NULL"),
        ("customer_id", "TEXT NOT NULL"),
        ("currency", "TEXT"),
        ("total", "TEXT"),
        ("counted", "BIGINT NOT NULL"),
    ),
)


class CustomersModel(ReadModel):
    name = "customers"
    tables = (SUMMARY, CUSTOMER_ORDERS)
    event_types = frozenset({"OrderCreated", "OrderPlaced", "OrderCancelled", "CustomerForgotten"})

    def prefetch(self, event: RecordedEvent) -> Iterable[tuple[str, Key]]:
        if event.type == "CustomerForgotten":
            return [(SUMMARY.base, (str(event.data["customer_id"]),))]
        keys: list[tuple[str, Key]] = [(CUSTOMER_ORDERS.base, (order_id_of(event),))]
        customer = event.data.get("customer_id")
        if isinstance(customer, str):
            keys.append((SUMMARY.base, (customer,)))
        return keys

    def prefetch_more(
        self, events: Sequence[RecordedEvent], loaded: Callable[[str, Key], Row | None]
    ) -> Iterator[tuple[str, Key]]:
        """The summaries of customers whose orders are placed or cancelled (their events do
        not name the customer; the order row does)."""
        for event in events:
            if event.type != "OrderCreated":
                order = loaded(CUSTOMER_ORDERS.base, (order_id_of(event),))
                if order is not None:
                    yield (SUMMARY.base, (order["customer_id"],))

    async def apply(self, rows: Rows, event: RecordedEvent) -> None:
        if event.type == "CustomerForgotten":
            customer_id = str(event.data["customer_id"])
            summary = await rows.get(SUMMARY.base, (customer_id,))
            if summary is not None:
                rows.put(SUMMARY.base, (customer_id,), {**summary, "customer_name": REDACTED})
            return
        order_id = order_id_of(event)
        d = event.data
        when = iso(event.recorded_at)
        if event.type == "OrderCreated":
            customer_id = str(d["customer_id"])
            rows.put(
                CUSTOMER_ORDERS.base,
                (order_id,),
                {
                    "order_id": order_id,
                    "customer_id": customer_id,
                    "currency": d.get("currency"),
                    "total": None,
                    "counted": 0,
                },
            )
            summary = await rows.get(SUMMARY.base, (customer_id,)) or {
                "customer_id": customer_id,
                "orders": 0,
                "total_spent": {},
                "last_order_at": None,
            }
            last = summary["last_order_at"]
            rows.put(
                SUMMARY.base,
                (customer_id,),
                {
                    **summary,
                    "customer_name": d.get("customer_name", summary.get("customer_name")),
                    "orders": summary["orders"] + 1,
                    "last_order_at": when if last is None or when > last else last,
                    "updated_at": when,
                },
            )
            return
        found = await rows.get(CUSTOMER_ORDERS.base, (order_id,))
        if found is None:
            raise LookupError(f"{event.type} for unknown order {order_id}")
        order = found
        current = await rows.get(SUMMARY.base, (order["customer_id"],))
        if current is None:
            raise LookupError(f"no summary for customer {order['customer_id']}")
        spent: dict[str, str] = dict(current["total_spent"])
        if event.type == "OrderPlaced" and not order["counted"]:
            currency = str(d.get("currency") or order["currency"])
            total = money(d.get("total"))
            spent[currency] = str(money(spent.get(currency, "0")) + total)
            order = {**order, "currency": currency, "total": str(total), "counted": 1}
        elif event.type == "OrderCancelled" and order["counted"]:
            currency = str(order["currency"])
            spent[currency] = str(money(spent.get(currency, "0")) - money(order["total"]))
            order = {**order, "counted": 0}
        rows.put(CUSTOMER_ORDERS.base, (order_id,), order)
        rows.put(
            SUMMARY.base,
            (order["customer_id"],),
            {**current, "total_spent": spent, "updated_at": when},
        )


def public_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer_id": row["customer_id"],
        "customer_name": row["customer_name"],
        "orders": int(row["orders"]),
        "total_spent": {c: str(money(v)) for c, v in sorted(row["total_spent"].items())},
        "last_order_at": row["last_order_at"],
    }

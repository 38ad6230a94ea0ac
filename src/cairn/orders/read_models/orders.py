"""Order view (every field of ``GET /api/v1/orders/{id}``), the order list, and full-text search
over order number, customer name and email, SKUs and item names.

Search: PostgreSQL ``tsvector`` (``simple`` configuration) with a GIN index; SQLite FTS5. Both
index the same pre-tokenised text (lower-case words), so both answer a query alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from decimal import Decimal
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
from cairn.sql.database import Dialect, Tx
from cairn.store.base import RecordedEvent
from cairn.store.personal import REDACTED

ORDERS = Table(
    base="orders_view",
    key=("order_id",),
    columns=(
        ("order_id", "TEXT NOT NULL"),
        ("order_number", "TEXT"),
        ("customer_id", "TEXT"),
        ("customer_name", "TEXT"),
        ("customer_email", "TEXT"),
        ("status", "TEXT NOT NULL"),
        ("currency", "TEXT"),
        ("items", "TEXT NOT NULL"),
        ("total", "TEXT NOT NULL"),
        ("cancellation_reason", "TEXT"),
        ("payment_id", "TEXT"),
        ("shipment_id", "TEXT"),
        ("version", "BIGINT NOT NULL"),
        ("position", "BIGINT NOT NULL"),
        ("created_at", "TEXT NOT NULL"),
        ("updated_at", "TEXT NOT NULL"),
    ),
    json_columns=frozenset({"items"}),
    indexes=(("created_at", "order_id"), ("customer_id", "created_at"), ("status", "created_at")),
)

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def search_body(row: dict[str, Any]) -> str:
    parts = [row.get("order_number") or "", row.get("customer_name") or ""]
    parts.append(row.get("customer_email") or "")
    for item in row.get("items") or []:
        parts.append(str(item.get("sku") or ""))
        parts.append(str(item.get("name") or ""))
    return " ".join(words(" ".join(parts)))


def _line_total(unit_price: str, quantity: int) -> str:
    return str(money(unit_price) * quantity)


def _total(items: list[dict[str, Any]]) -> str:
    return str(sum((money(i["line_total"]) for i in items), Decimal("0")))


class OrdersModel(ReadModel):
    name = "orders"
    tables = (ORDERS,)
    event_types = frozenset(
        {
            "OrderCreated",
            "ItemAdded",
            "ItemRemoved",
            "OrderPlaced",
            "OrderConfirmed",
            "OrderShipped",
            "OrderDelivered",
            "OrderCancelled",
            "CustomerForgotten",
        }
    )

    def search_table(self, version: int) -> str:
        return f"orders_search_v{version}"

    def extra_ddl(self, version: int, dialect: Dialect) -> list[str]:
        t = self.search_table(version)
        if dialect is Dialect.SQLITE:
            return [f"CREATE VIRTUAL TABLE IF NOT EXISTS {t} USING fts5(order_id UNINDEXED, body)"]
        return [
            f"CREATE TABLE IF NOT EXISTS {t} (order_id TEXT PRIMARY KEY, body TEXT NOT NULL, "
            "tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED)",
            f"CREATE INDEX IF NOT EXISTS {t}_tsv ON {t} USING GIN (tsv)",
        ]

    def drop_ddl(self, version: int, dialect: Dialect) -> list[str]:
        return [
            *super().drop_ddl(version, dialect),
            f"DROP TABLE IF EXISTS {self.search_table(version)}",
        ]

    def prefetch(self, event: RecordedEvent) -> Iterable[tuple[str, Key]]:
        if event.type == "CustomerForgotten":
            return [(ORDERS.base, (str(o),)) for o in event.data.get("order_ids", ())]
        return [(ORDERS.base, (order_id_of(event),))]

    async def apply(self, rows: Rows, event: RecordedEvent) -> None:
        if event.type == "CustomerForgotten":
            await self._forget(rows, event)
            return
        order_id = order_id_of(event)
        d = event.data
        when = iso(event.recorded_at)
        row = await rows.get(ORDERS.base, (order_id,))
        if event.type == "OrderCreated":
            row = {
                "order_id": order_id,
                "order_number": d.get("order_number"),
                "customer_id": d.get("customer_id"),
                "customer_name": d.get("customer_name"),
                "customer_email": d.get("customer_email"),
                "status": "draft",
                "currency": d.get("currency"),
                "items": [],
                "total": "0",
                "cancellation_reason": None,
                "payment_id": None,
                "shipment_id": None,
                "created_at": when,
            }
        elif row is None:
            raise LookupError(f"{event.type} for unknown order {order_id}")
        elif event.type == "ItemAdded":
            items = list(row["items"])  # items are never changed in place: copy the list only
            # v1 payloads carry ``price`` (a number) when no upcaster ran.
            unit_price = str(d.get("unit_price", d.get("price", "0")))
            quantity = int(d["quantity"])
            for n, item in enumerate(items):
                if item["sku"] == d["sku"]:
                    total = item["quantity"] + quantity
                    line = _line_total(item["unit_price"], total)
                    items[n] = {**item, "quantity": total, "line_total": line}
                    break
            else:
                items.append(
                    {
                        "sku": d["sku"],
                        "name": d.get("name", ""),
                        "quantity": quantity,
                        "unit_price": unit_price,
                        "line_total": _line_total(unit_price, quantity),
                    }
                )
            row = {**row, "items": items, "total": _total(items)}
        elif event.type == "ItemRemoved":
            items = [i for i in row["items"] if i["sku"] != d["sku"]]
            row = {**row, "items": items, "total": _total(items)}
        elif event.type == "OrderPlaced":
            row = {**row, "status": "placed", "total": str(money(d.get("total", row["total"])))}
        elif event.type == "OrderConfirmed":
            row = {
                **row,
                "status": "confirmed",
                "payment_id": d.get("payment_id"),
                "shipment_id": d.get("shipment_id"),
            }
        elif event.type == "OrderShipped":
            row = {**row, "status": "shipped"}
        elif event.type == "OrderDelivered":
            row = {**row, "status": "delivered"}
        elif event.type == "OrderCancelled":
            row = {**row, "status": "cancelled", "cancellation_reason": d.get("reason")}
        row["version"] = max(int(row.get("version") or 0), event.version)
        row["position"] = event.position
        row["updated_at"] = when
        rows.put(ORDERS.base, (order_id,), row)

    async def _forget(self, rows: Rows, event: RecordedEvent) -> None:
        """Crypto-shredding: erase the customer's name and email (and so the search text
        built from them) from the orders the event names."""
        for order_id in event.data.get("order_ids", ()):
            row = await rows.get(ORDERS.base, (str(order_id),))
            if row is not None:
                erased = {"customer_name": REDACTED, "customer_email": REDACTED}
                rows.put(ORDERS.base, (str(order_id),), {**row, **erased})

    async def after_save(self, tx: Tx, rows: Rows, version: int, dialect: Dialect) -> None:
        t = self.search_table(version)
        changed = [
            (key[0], row) for (table, key), row in rows.dirty.items() if table == ORDERS.base
        ]
        if not changed:
            return
        docs = [(oid, search_body(row)) for oid, row in changed if row is not None]
        if dialect is Dialect.POSTGRES:
            if docs:
                await tx.execute(
                    f"INSERT INTO {t} (order_id, body) SELECT d->>0, d->>1 "
                    "FROM json_array_elements(?::json) AS d "
                    "ON CONFLICT (order_id) DO UPDATE SET body = excluded.body "
                    f"WHERE {t}.body <> excluded.body",
                    (json.dumps(docs),),
                )
            gone = [(oid,) for oid, row in changed if row is None]
            if gone:
                await tx.executemany(f"DELETE FROM {t} WHERE order_id = ?", gone)
            return
        await tx.executemany(f"DELETE FROM {t} WHERE order_id = ?", [(oid,) for oid, _ in changed])
        if docs:
            await tx.executemany(f"INSERT INTO {t} (order_id, body) VALUES (?, ?)", docs)


def public_order(row: dict[str, Any]) -> dict[str, Any]:
    """The ``GET /api/v1/orders/{id}`` shape of a stored row."""
    return {
        "order_id": row["order_id"],
        "order_number": row["order_number"],
        "customer_id": row["customer_id"],
        "status": row["status"],
        "currency": row["currency"],
        "items": [
            {
                "sku": i["sku"],
                "name": i.get("name", ""),
                "quantity": int(i["quantity"]),
                "unit_price": i["unit_price"],
                "line_total": i["line_total"],
            }
            for i in row["items"]
        ],
        "total": row["total"],
        "cancellation_reason": row["cancellation_reason"],
        "version": int(row["version"]),
        "position": int(row["position"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }

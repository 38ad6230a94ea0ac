"""Queries over the read models: plain SQL, never an aggregate load.

Each query first reads which table version is live (``read_model_versions``), so a rebuild's
swap is one pointer update: a query that read the old pointer still finds the old tables (they
are kept until the next rebuild starts).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cairn.errors import ApplicationError
from cairn.orders.cache import OrderCache
from cairn.orders.read_models.analytics import (
    CUSTOMER_SALES,
    SALES_DAILY,
    public_customer_sales,
    public_day,
)
from cairn.orders.read_models.customers import SUMMARY, public_summary
from cairn.orders.read_models.inventory import INVENTORY, public_inventory
from cairn.orders.read_models.orders import ORDERS, public_order, words
from cairn.projections.read_model import iso
from cairn.sql.database import Database, Dialect

MAX_LIMIT = 500


@dataclass(frozen=True)
class OrderPage:
    """One page of ``list_orders``; pass ``next_cursor`` back to get the next (None: no more)."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None


def _encode_cursor(created_at: str, order_id: str) -> str:
    raw = json.dumps([created_at, order_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, order_id = json.loads(base64.urlsafe_b64decode(padded))
        return str(created_at), str(order_id)
    except (ValueError, TypeError) as exc:
        raise ApplicationError("query.invalid_cursor", f"invalid cursor: {exc}") from None


def _bound(moment: datetime | str | None) -> str | None:
    if moment is None or isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        raise ApplicationError("query.invalid_time", "from/to must be timezone-aware")
    return iso(moment)


class ReadModelQueries:
    """The read side the API and CLI call."""

    def __init__(self, db: Database, cache: OrderCache | None = None) -> None:
        self.db = db
        self.cache = cache

    async def version(self, projection: str) -> int:
        row = await self.db.fetchone(
            "SELECT active_version FROM read_model_versions WHERE projection = ?", (projection,)
        )
        return int(row["active_version"]) if row else 1

    async def _orders_table(self) -> tuple[int, str]:
        version = await self.version("orders")
        return version, ORDERS.name(version)

    # -- orders ---------------------------------------------------------------------------------

    async def get_order(self, order_id: str) -> dict[str, Any] | None:
        """The order view (``GET /api/v1/orders/{id}``), or None."""
        version, table = await self._orders_table()
        if self.cache is not None:
            cached = await self.cache.get(version, order_id)
            if cached is not None:
                return cached
        raw = await self.db.fetchone(f"SELECT * FROM {table} WHERE order_id = ?", (order_id,))
        if raw is None:
            return None
        order = public_order(ORDERS.from_db(raw))
        if self.cache is not None:
            await self.cache.fill(version, order)
        return order

    async def get_orders(self, order_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Many order views in one query (GraphQL's DataLoader batches), by order id; ids that
        are absent are left out. Bypasses the hot-order cache: one round trip for the batch."""
        if not order_ids:
            return {}
        _, table = await self._orders_table()
        marks = ", ".join("?" for _ in order_ids)
        rows = await self.db.fetchall(
            f"SELECT * FROM {table} WHERE order_id IN ({marks})", list(order_ids)
        )
        views = (public_order(ORDERS.from_db(r)) for r in rows)
        return {str(view["order_id"]): view for view in views}

    async def customer_order_ids(self, customer_id: str) -> list[str]:
        """Every order id of a customer, all pages (what forgetting a customer erases)."""
        ids: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.list_orders(customer_id=customer_id, cursor=cursor, limit=MAX_LIMIT)
            ids.extend(str(o["order_id"]) for o in page.orders)
            cursor = page.next_cursor
            if cursor is None:
                return ids

    async def list_orders(
        self,
        *,
        customer_id: str | None = None,
        status: str | None = None,
        from_: datetime | str | None = None,
        to: datetime | str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> OrderPage:
        """Newest first (``created_at``, then ``order_id``), keyset-paginated; ``from_`` is
        inclusive and ``to`` exclusive, both on ``created_at``."""
        limit = max(1, min(int(limit), MAX_LIMIT))
        _, table = await self._orders_table()
        where: list[str] = []
        params: list[Any] = []
        if customer_id is not None:
            where.append("customer_id = ?")
            params.append(customer_id)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if (low := _bound(from_)) is not None:
            where.append("created_at >= ?")
            params.append(low)
        if (high := _bound(to)) is not None:
            where.append("created_at < ?")
            params.append(high)
        if cursor is not None:
            created_at, order_id = _decode_cursor(cursor)
            where.append("(created_at < ? OR (created_at = ? AND order_id < ?))")
            params += [created_at, created_at, order_id]
        sql = f"SELECT * FROM {table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, order_id DESC LIMIT ?"
        rows = await self.db.fetchall(sql, [*params, limit + 1])
        orders = [public_order(ORDERS.from_db(r)) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = orders[-1]
            next_cursor = _encode_cursor(last["created_at"], last["order_id"])
        return OrderPage(orders=orders, next_cursor=next_cursor)

    async def search_orders(
        self, q: str, limit: int = 20, *, customer_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Orders matching every word of ``q`` (prefix match) in order number, customer name or
        email, SKUs and item names; best matches first. ``customer_id`` filters in the query,
        before ranking and the limit, so one customer's matches are never crowded out."""
        terms = words(q)
        if not terms:
            return []
        limit = max(1, min(int(limit), MAX_LIMIT))
        version, table = await self._orders_table()
        search = f"orders_search_v{version}"
        owner = "" if customer_id is None else "AND o.customer_id = ? "
        if self.db.dialect is Dialect.SQLITE:
            match = " AND ".join(f'"{t}"*' for t in terms)
            sql = (
                f"SELECT o.* FROM {search} s JOIN {table} o ON o.order_id = s.order_id "
                f"WHERE {search} MATCH ? {owner}ORDER BY s.rank, o.created_at DESC LIMIT ?"
            )
            params: list[Any] = [match]
        else:
            match = " & ".join(f"{t}:*" for t in terms)
            sql = (
                f"SELECT o.* FROM {search} s JOIN {table} o ON o.order_id = s.order_id "
                f"WHERE s.tsv @@ to_tsquery('simple', ?) {owner}"
                "ORDER BY ts_rank(s.tsv, to_tsquery('simple', ?)) DESC, o.created_at DESC "
                "LIMIT ?"
            )
            params = [match]
        if customer_id is not None:
            params.append(customer_id)
        if self.db.dialect is Dialect.POSTGRES:
            params.append(match)
        params.append(limit)
        rows = await self.db.fetchall(sql, params)
        return [public_order(ORDERS.from_db(r)) for r in rows]

    # -- customers ------------------------------------------------------------------------------

    async def customer_summary(self, customer_id: str) -> dict[str, Any] | None:
        table = SUMMARY.name(await self.version("customers"))
        raw = await self.db.fetchone(f"SELECT * FROM {table} WHERE customer_id = ?", (customer_id,))
        return None if raw is None else public_summary(SUMMARY.from_db(raw))

    # -- inventory ------------------------------------------------------------------------------

    async def get_inventory(self, sku: str) -> dict[str, Any] | None:
        table = INVENTORY.name(await self.version("inventory"))
        raw = await self.db.fetchone(f"SELECT * FROM {table} WHERE sku = ?", (sku,))
        return None if raw is None else public_inventory(raw)

    async def get_products(self, skus: list[str]) -> dict[str, dict[str, Any]]:
        """Many catalogue entries in one query, by SKU: the inventory view plus the catalogue
        price (``price``, ``currency``); SKUs that are absent are left out."""
        if not skus:
            return {}
        table = INVENTORY.name(await self.version("inventory"))
        marks = ", ".join("?" for _ in skus)
        rows = await self.db.fetchall(f"SELECT * FROM {table} WHERE sku IN ({marks})", list(skus))
        return {
            str(r["sku"]): public_inventory(r)
            | {"price": r["unit_price"], "currency": r["currency"]}
            for r in rows
        }

    async def list_inventory(
        self, *, after: str | None = None, limit: int = MAX_LIMIT
    ) -> list[dict[str, Any]]:
        """Every SKU in order; ``after`` (a SKU) pages through long catalogues."""
        table = INVENTORY.name(await self.version("inventory"))
        limit = max(1, min(int(limit), 10_000))
        if after is None:
            rows = await self.db.fetchall(f"SELECT * FROM {table} ORDER BY sku LIMIT ?", (limit,))
        else:
            rows = await self.db.fetchall(
                f"SELECT * FROM {table} WHERE sku > ? ORDER BY sku LIMIT ?", (after, limit)
            )
        return [public_inventory(r) for r in rows]

    # -- analytics ------------------------------------------------------------------------------

    async def sales_by_day(
        self,
        *,
        from_: str | None = None,
        to: str | None = None,
        currency: str | None = None,
    ) -> list[dict[str, Any]]:
        """Per day (``YYYY-MM-DD``, UTC) and currency: orders placed and revenue, oldest day
        first; ``from_`` and ``to`` are inclusive days."""
        table = SALES_DAILY.name(await self.version("analytics"))
        where: list[str] = ["orders > 0"]
        params: list[Any] = []
        if from_ is not None:
            where.append("day >= ?")
            params.append(from_[:10])
        if to is not None:
            where.append("day <= ?")
            params.append(to[:10])
        if currency is not None:
            where.append("currency = ?")
            params.append(currency)
        rows = await self.db.fetchall(
            f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY day, currency", params
        )
        return [public_day(r) for r in rows]

    async def top_customers(
        self, limit: int = 10, *, currency: str | None = None
    ) -> list[dict[str, Any]]:
        """Customers by revenue (placed, not cancelled), highest first, per currency."""
        table = CUSTOMER_SALES.name(await self.version("analytics"))
        limit = max(1, min(int(limit), MAX_LIMIT))
        if currency is None:
            rows = await self.db.fetchall(
                f"SELECT * FROM {table} WHERE orders > 0 "
                "ORDER BY revenue_sort DESC, customer_id LIMIT ?",
                (limit,),
            )
        else:
            rows = await self.db.fetchall(
                f"SELECT * FROM {table} WHERE orders > 0 AND currency = ? "
                "ORDER BY revenue_sort DESC, customer_id LIMIT ?",
                (currency, limit),
            )
        return [public_customer_sales(r) for r in rows]

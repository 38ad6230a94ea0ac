"""Per-request DataLoaders: every order and product a query touches is read in one batch.

A list of 50 orders whose lines each name their product is then a bounded number of SQL
queries (the page, one read of all the products named), not one per order or per line. The
loaders live for one request (one HTTP request, or one websocket connection), so nothing read
for one caller is ever served to another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from cairn.api import services
from cairn.api.runtime import Runtime

View = dict[str, Any]
MAX_BATCH = 500


class Loaders:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # At most MAX_BATCH ids per SQL statement (well within SQLite's bound parameters).
        self.orders: DataLoader[str, View | None] = DataLoader(
            load_fn=self._orders, max_batch_size=MAX_BATCH
        )
        self.products: DataLoader[str, View | None] = DataLoader(
            load_fn=self._products, max_batch_size=MAX_BATCH
        )

    def prime_orders(self, views: Sequence[View]) -> None:
        """Orders a list already read: an ``_entities`` or ``order`` lookup of one of them in
        the same request costs nothing more."""
        for view in views:
            self.orders.prime(str(view["order_id"]), view)

    async def _orders(self, ids: list[str]) -> list[View | None]:
        found = await services.get_orders(self.runtime, list(dict.fromkeys(ids)))
        return [found.get(order_id) for order_id in ids]

    async def _products(self, skus: list[str]) -> list[View | None]:
        found = await services.get_products(self.runtime, list(dict.fromkeys(skus)))
        return [found.get(sku) for sku in skus]

"""Queries answered from the events themselves: an aggregate's state now, as of an instant or at
a version (temporal queries), and its history. Everything else is the read side's
(``cairn.projections``): queries there read read models, never aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cairn.application.repository import Loaded
from cairn.errors import NotFoundError
from cairn.orders.domain import inventory, orders
from cairn.orders.repositories import OrderRepositories
from cairn.store.base import RecordedEvent


@dataclass(frozen=True, slots=True)
class GetOrder:
    """The order as it is now, or as of ``as_of`` and/or at stream ``version``."""

    order_id: str
    as_of: datetime | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class GetProduct:
    sku: str
    as_of: datetime | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class GetStreamHistory:
    """A stream's events after ``after_version``, oldest first; at most ``limit`` (all: None)."""

    stream_id: str
    after_version: int = 0
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class AggregateView:
    """An aggregate's state with the stream facts a response needs."""

    stream_id: str
    state: Any
    version: int
    position: int
    created_at: datetime | None
    updated_at: datetime | None


class AggregateQueries:
    """Handlers of :class:`GetOrder`, :class:`GetProduct` and :class:`GetStreamHistory`."""

    def __init__(self, repositories: OrderRepositories) -> None:
        self.repositories = repositories

    async def get_order(self, query: GetOrder) -> AggregateView:
        stream = orders.stream_id(query.order_id)
        loaded = await self._load(self.repositories.orders, stream, query.as_of, query.version)
        if isinstance(loaded.state, orders.NoOrder):
            raise NotFoundError("order.not_found", f"order {query.order_id} does not exist")
        return await self._view(loaded)

    async def get_product(self, query: GetProduct) -> AggregateView:
        stream = inventory.stream_id(query.sku)
        loaded = await self._load(self.repositories.inventory, stream, query.as_of, query.version)
        if isinstance(loaded.state, inventory.UnknownProduct):
            raise NotFoundError("product.not_found", f"product {query.sku!r} does not exist")
        return await self._view(loaded)

    async def history(self, query: GetStreamHistory) -> list[RecordedEvent]:
        last = None if query.limit is None else query.after_version + query.limit
        return await self.repositories.orders.store.read_stream(
            query.stream_id, from_version=query.after_version + 1, to_version=last
        )

    async def _load(
        self, repository: Any, stream: str, as_of: datetime | None, version: int | None
    ) -> Loaded[Any]:
        if as_of is None and version is None:
            loaded: Loaded[Any] = await repository.load(stream)
            return loaded
        at: Loaded[Any] = await repository.load_at(stream, until=as_of, version=version)
        return at

    async def _view(self, loaded: Loaded[Any]) -> AggregateView:
        store = self.repositories.orders.store
        first = await store.read_stream(loaded.stream_id, to_version=1)
        last = await store.read_stream(
            loaded.stream_id, from_version=loaded.version, to_version=loaded.version
        )
        return AggregateView(
            loaded.stream_id,
            loaded.state,
            loaded.version,
            loaded.position,
            first[0].recorded_at if first else None,
            last[0].recorded_at if last else None,
        )

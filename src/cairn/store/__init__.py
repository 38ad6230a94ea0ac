"""The event store: ``open_store(url)`` picks a backend by URL scheme.

``memory://`` · ``sqlite:///relative.db`` · ``sqlite:////absolute.db`` · ``postgresql://…`` ·
``redis://host:port/db`` (``?volatile=ok`` for a Redis without persistence, ``?prefix=`` for
the keys' prefix)
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from cairn.store.base import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    EventStore,
    ExpectedVersion,
    HorizonStatus,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamState,
)
from cairn.store.personal import PersonalData, PersonalDataPolicy
from cairn.store.upcasting import Upcasters
from cairn.store.urls import Backend, backend_of

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "EventStore",
    "ExpectedVersion",
    "HorizonStatus",
    "NewEvent",
    "RecordedEvent",
    "Snapshot",
    "StreamInfo",
    "StreamState",
    "Upcasters",
    "open_store",
]


@dataclass(frozen=True, slots=True)
class _Options:
    upcasters: Upcasters | None
    migrate: bool
    personal: PersonalDataPolicy | None
    protected_categories: frozenset[str]


async def _open(url: str, options: _Options) -> EventStore:
    store = await _open_backend(url, options)
    if options.personal is not None:
        store.personal = PersonalData(options.personal, store.key_store())
    return store


async def _open_backend(url: str, options: _Options) -> EventStore:
    upcasters, protected = options.upcasters, options.protected_categories
    backend = backend_of(url)
    if backend is Backend.MEMORY:
        from cairn.store.memory import MemoryEventStore

        return MemoryEventStore(upcasters=upcasters, protected_categories=protected)
    if backend is Backend.SQLITE:
        from cairn.store.sqlite import SQLiteEventStore

        return await SQLiteEventStore.open(
            url, upcasters=upcasters, migrate=options.migrate, protected_categories=protected
        )
    if backend is Backend.REDIS:
        from cairn.store.redis_store import RedisEventStore

        return await RedisEventStore.open(url, upcasters=upcasters, protected_categories=protected)
    from cairn.store.postgres import PostgresEventStore

    return await PostgresEventStore.open(
        url, upcasters=upcasters, migrate=options.migrate, protected_categories=protected
    )


class _OpenStore(Awaitable[EventStore]):
    """``await open_store(url)`` or ``async with open_store(url) as store``."""

    def __init__(self, url: str, options: _Options) -> None:
        self._url = url
        self._options = options
        self._store: EventStore | None = None

    def __await__(self) -> Generator[Any, None, EventStore]:
        return _open(self._url, self._options).__await__()

    async def __aenter__(self) -> EventStore:
        self._store = await _open(self._url, self._options)
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()


def open_store(
    url: str,
    *,
    upcasters: Upcasters | None = None,
    migrate: bool = True,
    personal_data: PersonalDataPolicy | None = None,
    protected_categories: Collection[str] = frozenset(),
) -> _OpenStore:
    """Open the store at ``url``, creating its schema if missing unless ``migrate=False``.

    ``personal_data`` names the personal fields to store sealed with their subject's key
    (crypto-shredding, :mod:`cairn.store.personal`); without it nothing is sealed, and sealed
    fields written by another process read back as stored.

    ``protected_categories`` names the stream categories whose history is the system of record
    (``set_retention`` refuses them). The store knows no domain: the application says which,
    and by default none is protected."""
    options = _Options(upcasters, migrate, personal_data, frozenset(protected_categories))
    return _OpenStore(url, options)

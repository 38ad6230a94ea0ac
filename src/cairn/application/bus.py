"""The command bus (dispatch table + middleware pipeline) and the query bus (with a small cache).

bus = CommandBus(store, routes=app_routes, repositories=app_repositories)
result = await bus.dispatch(PlaceOrder(order_id, "tok_ok"),
                            context=CommandContext(command_id=..., user="ada"))
result.stream_id, result.version, result.position, result.events
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cachetools import TLRUCache

from cairn.application.handlers import Route, Services, handle
from cairn.application.messages import CommandContext, CommandResult, Envelope
from cairn.application.middleware import Middleware, Next, default_middleware
from cairn.application.repository import Repositories
from cairn.errors import ApplicationError
from cairn.store.base import EventStore


class CommandBus:
    """Routes each command to its handler through the middleware pipeline."""

    def __init__(
        self,
        store: EventStore,
        *,
        routes: Mapping[type, Route],
        repositories: Repositories,
        middleware: Sequence[Middleware] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``routes`` and ``repositories`` are the application's: the command types it
        handles, and the repositories their routes' categories name."""
        self.store = store
        self.repositories = repositories
        self.routes: dict[type, Route] = dict(routes)
        self.middleware: list[Middleware] = list(
            default_middleware(store) if middleware is None else middleware
        )
        self.services = Services(store, self.repositories, clock or (lambda: datetime.now(UTC)))
        self._pipeline = self._build()

    def register(self, command_type: type, route: Route) -> None:
        self.routes[command_type] = route

    def use(self, middleware: Middleware) -> None:
        """Add ``middleware`` innermost, next to the handler (to place one elsewhere, pass the
        whole list to the constructor)."""
        self.middleware.append(middleware)
        self._pipeline = self._build()

    def _build(self) -> Next:
        async def terminal(envelope: Envelope) -> CommandResult:
            return await handle(envelope, self.services)

        pipeline: Next = terminal
        for middleware in reversed(self.middleware):
            pipeline = _wrap(middleware, pipeline)
        return pipeline

    def route_of(self, command: object) -> Route:
        route = self.routes.get(type(command))
        if route is None:
            raise ApplicationError("command.unknown", f"no handler for {type(command).__name__}")
        return route

    async def dispatch(
        self, command: object, context: CommandContext | None = None
    ) -> CommandResult:
        """Handle ``command``; raises DomainError (a rule refused it), ApplicationError
        (validation, authorisation, reused command id) or ConcurrencyError (retries exhausted,
        or the caller's ``expected_version`` did not match). A refused command writes nothing."""
        route = self.route_of(command)
        envelope = Envelope(command, context or CommandContext(), route, route.stream_id(command))
        return await self._pipeline(envelope)


def _wrap(middleware: Middleware, call_next: Next) -> Next:
    async def step(envelope: Envelope) -> CommandResult:
        return await middleware(envelope, call_next)

    return step


# --- queries ---------------------------------------------------------------------------------

QueryHandler = Callable[[Any], Awaitable[Any]]


def _expires(_key: Any, entry: tuple[Any, float], now: float) -> float:
    return now + entry[1]


class QueryCache:
    """A small LRU with a time-to-live per entry (cachetools' ``TLRUCache``: the ttl differs by
    query type); queries are its keys (frozen dataclasses)."""

    def __init__(
        self, max_entries: int = 1024, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_entries = max_entries
        self.clock = clock
        # Each entry is ``(answer, ttl)``: the ttl is the query type's, given to ``put``.
        self._entries: TLRUCache[Any, tuple[Any, float]] = TLRUCache(
            maxsize=max(max_entries, 0), ttu=_expires, timer=clock
        )
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return False, None
        self.hits += 1
        return True, entry[0]

    def put(self, key: Any, value: Any, ttl: float) -> None:
        if self.max_entries > 0:
            self._entries[key] = (value, ttl)

    def invalidate(self, predicate: Callable[[Any], bool] | None = None) -> None:
        if predicate is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if predicate(k)]:
            self._entries.pop(key, None)


class QueryBus:
    """Routes each query (a frozen dataclass) to its handler; answers of query types registered
    with a ``cache_ttl`` are cached for that many seconds."""

    def __init__(
        self,
        handlers: Mapping[type, QueryHandler] | None = None,
        *,
        cache: QueryCache | None = None,
    ) -> None:
        self._handlers: dict[type, QueryHandler] = dict(handlers or {})
        self._ttl: dict[type, float] = {}
        self.cache = cache

    def register(
        self, query_type: type, handler: QueryHandler, *, cache_ttl: float | None = None
    ) -> None:
        self._handlers[query_type] = handler
        if cache_ttl is not None:
            self._ttl[query_type] = cache_ttl

    async def ask(self, query: object) -> Any:
        handler = self._handlers.get(type(query))
        if handler is None:
            raise ApplicationError("query.unknown", f"no handler for {type(query).__name__}")
        ttl = self._ttl.get(type(query))
        if self.cache is None or ttl is None:
            return await handler(query)
        hit, value = self.cache.get(query)
        if hit:
            return value
        value = await handler(query)
        self.cache.put(query, value, ttl)
        return value

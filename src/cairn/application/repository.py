"""Load an aggregate from its stream and save what it decided, with optimistic concurrency.

Load = the latest usable snapshot (if the aggregate type has a snapshot policy) plus the events
after it, or every event. A snapshot is an optimisation only: one whose ``schema`` does not
match the state classes' current shape, or that cannot be decoded, is ignored and the stream
folded from the start, so deleting every snapshot changes no result. Save appends with the
loaded version as ``expected_version`` and, when the policy says so, stores a new snapshot.

A repository also keeps a bounded in-process cache of the states it loaded or saved, stamped
with their stream version: a cached load reads only the events after that version (usually
none). Events are immutable, so a cached state at version v is exactly the fold of versions
1..v; a stale entry can only make a save fail its expected-version check (and be retried on
fresh events), never write over another process's update.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar

from cachetools import LRUCache

from cairn.application.codec import AggregateCodec, from_recorded, to_new_events
from cairn.decider import Decider, fold
from cairn.errors import CairnError
from cairn.observability.logging import get_logger
from cairn.store.base import AppendResult, EventStore, ExpectedVersion, RecordedEvent, Snapshot

C = TypeVar("C")
S = TypeVar("S")
E = TypeVar("E")

_log = get_logger("cairn.repository")


@dataclass(frozen=True, slots=True, eq=False)
class AggregateType(Generic[C, S, E]):
    """One kind of aggregate: its stream category, decider, closed state union and the codec
    between its events/states and stored JSON (the application's, passed in)."""

    category: str
    decider: Decider[C, S, E]
    state_union: Any
    codec: AggregateCodec

    def stream_id(self, key: str) -> str:
        return f"{self.category}-{key}"

    @property
    def snapshot_schema(self) -> str:
        return _schema_of(self)


_schemas: dict[int, str] = {}


def _schema_of(aggregate: AggregateType[Any, Any, Any]) -> str:
    key = id(aggregate)
    schema = _schemas.get(key)
    if schema is None:
        schema = _schemas[key] = (
            f"{aggregate.category}:{aggregate.codec.schema_fingerprint(aggregate.state_union)}"
        )
    return schema


# --- snapshot policies -----------------------------------------------------------------------


class SnapshotPolicy(Protocol):
    """Decides after each save whether to store a snapshot of the new state."""

    def should_snapshot(self, previous_version: int, new_version: int, state: Any) -> bool: ...


@dataclass(frozen=True, slots=True)
class EveryNEvents:
    """Snapshot whenever a save crosses a multiple of ``n`` events."""

    n: int

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("snapshot interval must be >= 1")

    def should_snapshot(self, previous_version: int, new_version: int, state: Any) -> bool:
        return previous_version // self.n != new_version // self.n


@dataclass(frozen=True, slots=True)
class SnapshotWhen:
    """Snapshot when ``predicate(previous_version, new_version, state)`` says so (a strategy)."""

    predicate: Callable[[int, int, Any], bool]

    def should_snapshot(self, previous_version: int, new_version: int, state: Any) -> bool:
        return self.predicate(previous_version, new_version, state)


# --- loading and saving ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded(Generic[S]):
    """An aggregate as loaded: its state, the stream version it reflects, and the global
    position of that version's event (0 for an empty stream)."""

    stream_id: str
    state: S
    version: int
    position: int
    from_snapshot: bool = False


@dataclass(frozen=True, slots=True)
class Saved(Generic[S]):
    stream_id: str
    state: S
    result: AppendResult
    event_ids: tuple[uuid.UUID, ...] = ()


class Repository(Generic[C, S, E]):
    """Loads and saves one aggregate type on one store."""

    def __init__(
        self,
        store: EventStore,
        aggregate: AggregateType[C, S, E],
        *,
        snapshots: SnapshotPolicy | None = None,
        cache_size: int = 10_000,
    ) -> None:
        self.store = store
        self.aggregate = aggregate
        self.snapshots = snapshots
        self.cache_size = cache_size
        self._cache: LRUCache[str, Loaded[S]] = LRUCache(maxsize=max(cache_size, 0))

    def _remember(self, loaded: Loaded[S]) -> Loaded[S]:
        if self.cache_size <= 0:
            return loaded
        current = self._cache.get(loaded.stream_id)
        if current is None or current.version <= loaded.version:
            self._cache[loaded.stream_id] = loaded
        return loaded

    def peek(self, stream_id: str) -> Loaded[S] | None:
        """The cached state of ``stream_id`` without asking the store (possibly behind it)."""
        return self._cache.get(stream_id)

    def forget(self, stream_id: str | None = None) -> None:
        """Drop cached state (of one stream, or all): e.g. after soft-deleting a stream, which a
        cached load cannot notice."""
        if stream_id is None:
            self._cache.clear()
        else:
            self._cache.pop(stream_id, None)

    @cached_property
    def _schema(self) -> str:
        return self.aggregate.snapshot_schema

    def _fold(self, records: Sequence[RecordedEvent], state: S | None = None) -> S:
        return fold(
            self.aggregate.decider, (from_recorded(self.aggregate.codec, r) for r in records), state
        )

    async def load(self, stream_id: str) -> Loaded[S]:
        """The current state of ``stream_id`` (the initial state if it has no events)."""
        cached = self._cache.get(stream_id)
        if cached is not None:
            loaded = await self._catch_up(cached)
            if loaded is not None:
                return self._remember(loaded)
            self.forget(stream_id)
        return self._remember(await self._load_from_store(stream_id))

    async def _catch_up(self, base: Loaded[S]) -> Loaded[S] | None:
        """``base`` plus the events after it, or ``None`` if the stream no longer extends it.

        The stream's version is one indexed lookup: when nothing was appended since ``base``
        (the common case for a cached or freshly snapshotted state) no event is read at all.
        """
        current = await self.store.stream_version(base.stream_id)
        if current == base.version:
            return base
        if current < base.version:
            return None
        later = await self.store.read_stream(base.stream_id, from_version=base.version + 1)
        if not later or later[0].version != base.version + 1:
            return None  # hidden by retention or deletion: fold from the start instead
        return Loaded(
            base.stream_id,
            self._fold(later, base.state),
            later[-1].version,
            later[-1].position,
            from_snapshot=base.from_snapshot,
        )

    async def _load_from_store(self, stream_id: str) -> Loaded[S]:
        if self.snapshots is not None:
            snapshot = await self.store.load_snapshot(stream_id)
            restored = self._restore(snapshot) if snapshot is not None else None
            if snapshot is not None and restored is not None:
                state, position = restored
                base = Loaded(stream_id, state, snapshot.version, position, from_snapshot=True)
                loaded = await self._catch_up(base)
                if loaded is not None:
                    return loaded
        records = await self.store.read_stream(stream_id)
        if not records:
            return Loaded(stream_id, self.aggregate.decider.initial_state(), 0, 0)
        return Loaded(stream_id, self._fold(records), records[-1].version, records[-1].position)

    async def load_at(
        self, stream_id: str, *, until: datetime | None = None, version: int | None = None
    ) -> Loaded[S]:
        """The state as it was at instant ``until`` and/or at stream version ``version``,
        folded from the events (snapshots describe the present, not the past)."""
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        records = await self.store.read_stream(stream_id, to_version=version, until=until)
        if not records:
            return Loaded(stream_id, self.aggregate.decider.initial_state(), 0, 0)
        return Loaded(stream_id, self._fold(records), records[-1].version, records[-1].position)

    async def history(self, stream_id: str) -> list[RecordedEvent]:
        return await self.store.read_stream(stream_id)

    async def save(
        self,
        loaded: Loaded[S],
        events: Sequence[E],
        *,
        event_ids: Sequence[uuid.UUID] | None = None,
        metadata: Mapping[str, Any] | None = None,
        expected_version: ExpectedVersion | None = None,
    ) -> Saved[S]:
        """Append ``events`` with ``loaded.version`` as the expected version (raises
        ConcurrencyError, writing nothing, if the stream moved), then snapshot per policy."""
        ids = list(event_ids) if event_ids is not None else [uuid.uuid4() for _ in events]
        new_events = to_new_events(self.aggregate.codec, events, ids, metadata or {})
        expected = loaded.version if expected_version is None else expected_version
        result = await self.store.append(loaded.stream_id, new_events, expected_version=expected)
        state = fold(self.aggregate.decider, events, loaded.state)
        if result.version == loaded.version + len(events):
            # Our events landed right after the loaded version (also on an idempotent retry).
            self._remember(Loaded(loaded.stream_id, state, result.version, result.position, False))
        if self.snapshots is not None and self.snapshots.should_snapshot(
            loaded.version, result.version, state
        ):
            await self._snapshot(loaded.stream_id, state, result)
        return Saved(loaded.stream_id, state, result, tuple(ids))

    async def snapshot_now(self, stream_id: str) -> Snapshot | None:
        """Take a snapshot of the current state (an admin action); ``None`` for no events."""
        loaded = await self.load(stream_id)
        if loaded.version == 0:
            return None
        return await self._snapshot(
            stream_id, loaded.state, AppendResult(loaded.version, loaded.position)
        )

    async def _snapshot(self, stream_id: str, state: S, at: AppendResult) -> Snapshot | None:
        snapshot = Snapshot(
            stream_id=stream_id,
            version=at.version,
            state={"state": self.aggregate.codec.encode_state(state), "position": at.position},
            schema=self._schema,
            recorded_at=datetime.now(UTC),
        )
        try:
            await self.store.save_snapshot(snapshot)
        except (CairnError, OSError) as exc:
            # A snapshot is an optimisation: failing to store one must not fail the command.
            _log.warning("snapshot_failed", stream_id=stream_id, error=str(exc))
            return None
        return snapshot

    def _restore(self, snapshot: Snapshot) -> tuple[S, int] | None:
        if snapshot.schema != self._schema:
            return None
        try:
            state: S = self.aggregate.codec.decode_state(
                self.aggregate.state_union, snapshot.state["state"]
            )
            position = int(snapshot.state.get("position", 0))
        except (CairnError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            _log.warning("snapshot_ignored", stream_id=snapshot.stream_id, error=repr(exc))
            return None
        return state, position


class Repositories:
    """The repositories of one application, found by stream category (the command bus routes a
    command to the category its route names). Applications subclass it to name theirs."""

    def __init__(self, repositories: Sequence[Repository[Any, Any, Any]]) -> None:
        self._by_category = {r.aggregate.category: r for r in repositories}

    def for_category(self, category: str) -> Repository[Any, Any, Any]:
        return self._by_category[category]

    def all(self) -> tuple[Repository[Any, Any, Any], ...]:
        return tuple(self._by_category.values())

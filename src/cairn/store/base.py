"""The event store port: the records every backend stores and the contract they all keep.

A backend module (``memory``, ``sqlite``, ``postgres``) implements :class:`EventStore`; the one
contract suite in ``tests/contract`` specifies it. Upcasting happens here, on read, so that no
backend can forget it and no stored event is ever rewritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import re
import uuid
from abc import abstractmethod
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from cairn.closing import Closing
from cairn.errors import (
    InvalidEventError,
    InvalidExpectedVersion,
    InvalidStreamIdError,
    RetentionRefusedError,
)
from cairn.observability.tracing import span

# Re-exported: the records are part of the store's interface.
from cairn.store.records import HorizonStatus as HorizonStatus
from cairn.store.records import Snapshot as Snapshot
from cairn.store.records import StreamInfo as StreamInfo
from cairn.store.upcasting import Upcasters

if TYPE_CHECKING:
    from cairn.store.personal import KeyStore, PersonalData
    from cairn.store.transfer import StoreState, StoreTransfer

MAX_STREAM_ID_LENGTH: Final = 255
MAX_EVENT_TYPE_LENGTH: Final = 255


class StreamState(enum.Enum):
    """Expected-version sentinels that are not a number."""

    ANY = "any"
    STREAM_EXISTS = "stream_exists"

    def __repr__(self) -> str:
        return self.name


ANY: Final = StreamState.ANY
STREAM_EXISTS: Final = StreamState.STREAM_EXISTS
NO_STREAM: Final = 0

ExpectedVersion = int | StreamState


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. ``id`` defaults to a fresh UUID; a caller retrying an append passes
    the same ids so the store can recognise the retry.

    ``schema_version`` is the version of ``data``'s shape; ``None`` means "the current one
    for this type" as registered with the store's :class:`Upcasters` (1 if none).
    """

    type: str
    data: Mapping[str, Any]
    metadata: Mapping[str, Any] | None = None
    id: uuid.UUID | str | None = None
    schema_version: int | None = None

    @property
    def event_id(self) -> uuid.UUID:
        """The id as a UUID (``id`` accepts a string for convenience)."""
        if isinstance(self.id, uuid.UUID):
            return self.id
        if self.id is None:  # pragma: no cover - __post_init__ always fills it
            raise InvalidEventError("event id missing")
        return uuid.UUID(self.id)

    def __post_init__(self) -> None:
        if self.id is None:
            object.__setattr__(self, "id", uuid.uuid4())
        elif isinstance(self.id, str):
            try:
                object.__setattr__(self, "id", uuid.UUID(self.id))
            except ValueError:
                raise InvalidEventError(f"event id {self.id!r} is not a UUID") from None


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: what every reader of a stream or of ``$all`` gets back."""

    id: uuid.UUID
    stream_id: str
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    version: int
    position: int
    recorded_at: datetime
    schema_version: int = 1

    @property
    def category(self) -> str:
        """The stream id up to its first ``-`` (``order-7f3a…`` → ``order``)."""
        return category_of(self.stream_id)


_new_object = object.__new__


def _slot_setter(name: str) -> Callable[[RecordedEvent, Any], None]:
    setter: Callable[[RecordedEvent, Any], None] = RecordedEvent.__dict__[name].__set__
    return setter


_set_id = _slot_setter("id")
_set_stream_id = _slot_setter("stream_id")
_set_type = _slot_setter("type")
_set_data = _slot_setter("data")
_set_metadata = _slot_setter("metadata")
_set_version = _slot_setter("version")
_set_position = _slot_setter("position")
_set_recorded_at = _slot_setter("recorded_at")
_set_schema_version = _slot_setter("schema_version")


def recorded_event(
    id: uuid.UUID,
    stream_id: str,
    type: str,
    data: dict[str, Any],
    metadata: dict[str, Any],
    version: int,
    position: int,
    recorded_at: datetime,
    schema_version: int,
) -> RecordedEvent:
    """``RecordedEvent(...)`` for the readers' hot loops, which build one per row.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (about
    2.4 µs an event here); setting the slots through their descriptors does the same in about
    half, and the instance is as frozen afterwards. ``tests/unit/store`` holds the two equal."""
    event: RecordedEvent = _new_object(RecordedEvent)
    _set_id(event, id)
    _set_stream_id(event, stream_id)
    _set_type(event, type)
    _set_data(event, data)
    _set_metadata(event, metadata)
    _set_version(event, version)
    _set_position(event, position)
    _set_recorded_at(event, recorded_at)
    _set_schema_version(event, schema_version)
    return event


class AppendResult:
    """Where an append left the stream (``version``) and the log (``position`` of its last
    event), and the events as recorded.

    ``events`` are exactly what a later ``read_stream`` returns for them (positions, versions,
    ``recorded_at``, ``schema_version``), so a caller needs no read-back after writing; for an
    idempotent retry they are the ORIGINAL stored events, not the resent ones. Empty only where
    a result is made up outside a store (a repository's no-op save).

    A backend may pass ``decode`` instead of ``events``: the events are then built on first
    use, so a caller that only wants the version and position does not pay for decoding them.
    """

    __slots__ = ("_decode", "_events", "position", "version")
    version: int
    position: int
    _events: tuple[RecordedEvent, ...]
    _decode: Callable[[], tuple[RecordedEvent, ...]] | None

    def __init__(
        self,
        version: int,
        position: int,
        events: tuple[RecordedEvent, ...] = (),
        *,
        decode: Callable[[], tuple[RecordedEvent, ...]] | None = None,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "version", version)
        setattr_(self, "position", position)
        setattr_(self, "_events", events)
        setattr_(self, "_decode", decode)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"AppendResult is immutable: cannot set {name!r}")

    @property
    def events(self) -> tuple[RecordedEvent, ...]:
        if self._decode is not None:
            object.__setattr__(self, "_events", self._decode())
            object.__setattr__(self, "_decode", None)
        return self._events

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AppendResult):
            return NotImplemented
        return (self.version, self.position, self.events) == (
            other.version,
            other.position,
            other.events,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"AppendResult(version={self.version}, position={self.position}, "
            f"events={self.events!r})"
        )


_CONTROL_CHARACTER: Final = re.compile(r"[\x00-\x1f\x7f]")


def category_of(stream_id: str) -> str:
    return stream_id.split("-", 1)[0]


def validate_stream_id(stream_id: object) -> str:
    if not isinstance(stream_id, str):
        raise InvalidStreamIdError(f"stream id must be a string, got {type(stream_id).__name__}")
    if not stream_id:
        raise InvalidStreamIdError("stream id must not be empty")
    if len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise InvalidStreamIdError(
            f"stream id is {len(stream_id)} characters long; the limit is {MAX_STREAM_ID_LENGTH}"
        )
    if _CONTROL_CHARACTER.search(stream_id):
        raise InvalidStreamIdError(f"stream id {stream_id!r} contains control characters")
    if stream_id.startswith("$"):
        raise InvalidStreamIdError(f"stream id {stream_id!r}: names starting with $ are reserved")
    return stream_id


def validate_expected_version(expected: object) -> ExpectedVersion:
    if isinstance(expected, StreamState):
        return expected
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidExpectedVersion(
            f"expected_version must be ANY, STREAM_EXISTS or an integer >= 0, got {expected!r}"
        )
    return expected


def checked_page(after: object, limit: object) -> tuple[int, int]:
    """``(after, limit)`` of a page of ``$all``; :class:`InvalidEventError` names a bad one."""
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise InvalidEventError(f"after must be an integer >= 0, got {after!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidEventError(f"limit must be an integer >= 1, got {limit!r}")
    return after, limit


def check_events(events: Sequence[NewEvent]) -> None:
    """Validate a batch before any backend touches it, so bad input writes nothing."""
    if isinstance(events, NewEvent) or not isinstance(events, Sequence):
        raise InvalidEventError("append takes a list of NewEvent")
    if not events:
        raise InvalidEventError("append needs at least one event")
    seen: set[uuid.UUID] = set()
    for event in events:
        if not isinstance(event, NewEvent):
            raise InvalidEventError(f"expected NewEvent, got {type(event).__name__}")
        if not isinstance(event.type, str) or not event.type.strip():
            raise InvalidEventError("event type must be a non-empty string")
        if len(event.type) > MAX_EVENT_TYPE_LENGTH:
            raise InvalidEventError(f"event type longer than {MAX_EVENT_TYPE_LENGTH} characters")
        event_id = event.event_id
        if event_id in seen:
            raise InvalidEventError(f"event id {event_id} appears twice in one append")
        seen.add(event_id)
        if event.schema_version is not None and (
            isinstance(event.schema_version, bool)
            or not isinstance(event.schema_version, int)
            or event.schema_version < 1
        ):
            raise InvalidEventError("schema_version must be an integer >= 1")


class EventStore(Closing):
    """An append-only log of streams, with one global order (``$all``).

    Implementations must keep every promise of SPEC §1; ``tests/contract`` holds them to it.
    Public methods validate input, then call the backend's ``_``-prefixed hooks.
    """

    #: How long ``subscribe`` waits for a wake-up before re-reading anyway.
    poll_interval: float = 0.05

    def __init__(
        self, *, upcasters: Upcasters | None = None, protected_categories: Collection[str] = ()
    ) -> None:
        self.upcasters = upcasters or Upcasters()
        #: Stream categories whose history is the system of record: retention is refused for
        #: them. The application names them (``open_store(..., protected_categories=)``); the
        #: store knows no domain, so by default none is protected.
        self.protected_categories = frozenset(protected_categories)
        #: Crypto-shredding of personal fields (:mod:`cairn.store.personal`); ``open_store``
        #: sets it when given a policy.
        self.personal: PersonalData | None = None

    @abstractmethod
    def key_store(self) -> KeyStore:
        """Where this backend keeps the subject keys of crypto-shredding."""

    async def forget_subject(self, subject: str) -> bool:
        """Crypto-shred: delete ``subject``'s keys, so their personal fields read back
        redacted everywhere from now on. Whether there was a key to delete."""
        keys = self.personal.keys if self.personal is not None else self.key_store()
        return await keys.forget(subject)

    async def streams_of_subject(self, subject: str) -> list[str]:
        """The streams with an event whose personal data is ``subject``'s (by the policy's
        subject field of its type), in order of their first such event: found in the log, so a
        forget reaches their snapshots and cached states whatever read models have seen."""
        if self.personal is None or not subject:
            return []
        by_field = self.personal.policy.types_by_subject_field()
        return await self._streams_with_field_value(by_field, subject)

    @abstractmethod
    async def _streams_with_field_value(
        self, types_by_field: Mapping[str, Sequence[str]], value: str
    ) -> list[str]:
        """Streams with an event of a type in ``types_by_field[f]`` whose field ``f`` is
        ``value``, by the position of their first such event."""

    # -- lifecycle ----------------------------------------------------------------------------

    @abstractmethod
    async def close(self) -> None:
        """Release connections. Idempotent."""

    # -- writing ------------------------------------------------------------------------------

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append ``events`` atomically to ``stream_id``.

        Raises :class:`ConcurrencyError` (writing nothing) when the stream is not at
        ``expected_version``. A retry whose event ids are already stored at the same versions
        returns the original result and writes nothing.
        """
        validate_stream_id(stream_id)
        expected = validate_expected_version(expected_version)
        check_events(events)
        with span(
            f"append {category_of(stream_id)}",
            attributes={"cairn.stream_id": stream_id, "cairn.events": len(events)},
        ) as current:
            result = await self._append_revealed(stream_id, list(events), expected)
            if current.is_recording():
                current.set_attribute("cairn.position", result.position)
                current.set_attribute("cairn.stream_version", result.version)
            return result

    async def _append_revealed(
        self, stream_id: str, batch: list[NewEvent], expected: ExpectedVersion
    ) -> AppendResult:
        if self.personal is None:
            return await self._append(stream_id, batch, expected)
        result, keys = await self.personal.sealed_append(
            batch, lambda sealed, used: self._append_sealed(stream_id, sealed, expected, used)
        )
        # The backend recorded the sealed fields; a reader gets them opened.
        revealed = await self.personal.reveal(list(result.events), keys)
        opened = AppendResult(result.version, result.position, tuple(revealed))
        self._opened(result, opened)
        return opened

    def _opened(self, stored: AppendResult, opened: AppendResult) -> None:
        """``stored`` (an append's result, personal fields sealed) opened for its caller. A hook
        for a backend keeping its appends for its followers (who then look up no key)."""

    @abstractmethod
    async def _append(
        self, stream_id: str, events: list[NewEvent], expected: ExpectedVersion
    ) -> AppendResult: ...

    async def _append_sealed(
        self,
        stream_id: str,
        events: list[NewEvent],
        expected: ExpectedVersion,
        keys: Collection[uuid.UUID],
    ) -> AppendResult:
        """:meth:`_append` of events sealed with ``keys``: a backend whose key store caches
        them must write nothing if one is gone (:class:`~cairn.store.personal.SubjectKeyGone`)."""
        return await self._append(stream_id, events, expected)

    def schema_version_for(self, event: NewEvent) -> int:
        """The schema version an event is stored with."""
        if event.schema_version is not None:
            return event.schema_version
        return self.upcasters.current_version(event.type)

    # -- reading ------------------------------------------------------------------------------

    async def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int = 1,
        to_version: int | None = None,
        until: datetime | None = None,
    ) -> list[RecordedEvent]:
        """Events of one stream, oldest first; ``[]`` for a stream that does not exist.

        ``from_version`` and ``to_version`` are inclusive; ``until`` keeps the events recorded
        at or before that instant (the stream as it was then).
        """
        validate_stream_id(stream_id)
        if until is not None and until.tzinfo is None:
            raise InvalidEventError("until must be timezone-aware")
        raw = await self._read_stream(stream_id, max(from_version, 1), to_version, until)
        return await self.present(raw)

    async def present(self, events: list[RecordedEvent]) -> list[RecordedEvent]:
        """Stored events as every reader sees them: personal fields opened (or redacted once
        their subject is forgotten), then upcast to the current shapes."""
        if self.personal is not None:
            events = await self.personal.reveal(events)
        return self.upcast_all(events)

    def upcast_all(self, events: list[RecordedEvent]) -> list[RecordedEvent]:
        """Upcast a batch; events already at their type's current version pass untouched."""
        return self.upcasters.upcast_all(events)

    @abstractmethod
    async def _read_stream(
        self, stream_id: str, from_version: int, to_version: int | None, until: datetime | None
    ) -> list[RecordedEvent]: ...

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Up to ``limit`` events with position > ``after``, in position order.

        Never returns an event while an earlier position may still commit (SPEC §1, "no skipped
        events"). Events of soft-deleted streams stay in ``$all``: projections must still see
        the history they already folded.
        """
        return await self.present(await self._read_all(*checked_page(after, limit)))

    async def read_all_live(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """:meth:`read_all` for a live follower that has read every event up to ``after``: a
        backend may answer from the events this process has just appended, without a read
        (possibly fewer than :meth:`read_all` would return; never different ones)."""
        return await self.read_all(after, limit)

    @abstractmethod
    async def _read_all(self, after: int, limit: int) -> list[RecordedEvent]: ...

    async def read_stored(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """``read_all`` as stored: personal fields still sealed, payloads not upcast (export)."""
        return await self._read_all(*checked_page(after, limit))

    @abstractmethod
    def transfer(self) -> StoreTransfer:
        """This backend's side of export and import (:mod:`cairn.store.transfer`)."""

    async def restore(
        self, state: StoreState, batches: AsyncIterable[Sequence[RecordedEvent]]
    ) -> int:
        """Load an export into this EMPTY store in one transaction, keeping positions,
        versions, ids, times, metadata, sealed payloads and subject keys; the head position.
        A store holding anything is refused (``store.not_empty``) and nothing is written."""
        return await self.transfer().restore(state, batches)

    async def subscribe(
        self, after: int = 0, *, batch_size: int = 1000
    ) -> AsyncIterator[RecordedEvent]:
        """Catch up from ``after``, then follow the log live, forever (cancel to stop)."""
        async with contextlib.aclosing(self.follow(after, batch_size=batch_size)) as batches:
            async for batch in batches:
                for event in batch:
                    yield event

    async def follow(
        self, after: int = 0, *, batch_size: int = 1000, idle: float | None = None
    ) -> AsyncGenerator[list[RecordedEvent], None]:
        """``$all`` after ``after`` in batches (never empty) as :meth:`read_all` returns them,
        live, forever (cancel to stop). After a batch shorter than ``batch_size`` it waits for
        an append, at most ``idle`` seconds (default ``poll_interval * 20``): a live follower
        reads once per append it hears of. Backends with a wake-up channel override it so that
        the wait needs no read of its own."""
        position = after
        wait = self.poll_interval * 20 if idle is None else idle
        while True:
            batch = await self.read_all(after=position, limit=batch_size)
            if batch:
                yield batch
                position = batch[-1].position
            if len(batch) < batch_size:
                await self.wait_for_append(position, timeout=wait)

    async def wait_for_append(self, after: int, timeout: float) -> None:
        """Return when events beyond ``after`` may exist, or after ``timeout``.

        The default is a short sleep; backends with a wake-up channel override it.
        """
        await asyncio.sleep(min(timeout, self.poll_interval))

    @abstractmethod
    async def head_position(self) -> int:
        """The highest position a reader of ``$all`` can see now (0 when empty)."""

    async def horizon(self) -> HorizonStatus:
        """How far uncommitted writers hold readers back; see :class:`HorizonStatus`."""
        return HorizonStatus(head=await self.head_position())

    @abstractmethod
    async def stream_version(self, stream_id: str) -> int:
        """Current version of a stream (0 if it does not exist)."""

    async def read_event(self, event_id: uuid.UUID | str) -> RecordedEvent | None:
        """One event by id (upcast), or ``None``. Lets the command side recognise a redelivered
        command by its deterministic event ids."""
        raw = await self._read_event(event_id)
        return None if raw is None else (await self.present([raw]))[0]

    @abstractmethod
    async def _read_event(self, event_id: uuid.UUID | str) -> RecordedEvent | None: ...

    # -- snapshots ----------------------------------------------------------------------------

    @abstractmethod
    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store (or replace) the snapshot of ``snapshot.stream_id``; the latest version wins."""

    @abstractmethod
    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The latest snapshot of a stream, or ``None``."""

    @abstractmethod
    async def delete_snapshots(self, stream_id: str | None = None) -> int:
        """Drop the snapshots of one stream, or of every stream; returns how many."""

    # -- lifecycle of streams -----------------------------------------------------------------

    @abstractmethod
    async def delete_stream(self, stream_id: str) -> None:
        """Soft delete: ``read_stream`` returns ``[]`` and appends are refused; events stay in
        ``$all`` and on disk."""

    @abstractmethod
    async def stream_info(self, stream_id: str) -> StreamInfo:
        """Version and lifecycle settings of a stream."""

    @abstractmethod
    async def set_retention(
        self,
        stream_id: str,
        *,
        truncate_before: int | None = None,
        max_age_seconds: float | None = None,
    ) -> None:
        """Hide events below ``truncate_before`` / older than ``max_age_seconds`` from
        ``read_stream`` (and delete them physically where the backend scavenges). Refused for
        the ``protected_categories`` the store was opened with."""

    def check_retention_allowed(self, stream_id: str) -> None:
        validate_stream_id(stream_id)
        if category_of(stream_id) in self.protected_categories:
            raise RetentionRefusedError(
                f"stream {stream_id!r} belongs to a category whose history is never truncated"
            )

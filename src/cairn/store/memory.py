"""``memory://``: the whole contract in a process's memory.

A supported backend, not a test hack: the demo of a library user, and the fake that unit tests
of the layers above use. Each ``open_store("memory://")`` is a new, empty store.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import uuid
from collections.abc import AsyncIterable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from cairn.errors import ConcurrencyError, InvalidEventError, StreamDeletedError
from cairn.store.base import (
    STREAM_EXISTS,
    AppendResult,
    EventStore,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    StreamState,
)
from cairn.store.encoding import encode_json
from cairn.store.personal import KeyStore, MemoryKeyStore
from cairn.store.subject_streams import streams_with_field_value
from cairn.store.transfer import (
    StoreState,
    StoreTransfer,
    StreamSettings,
    SubjectKeyRecord,
)
from cairn.store.upcasting import Upcasters
from cairn.waiting import wait_set


class MemoryEventStore(EventStore):
    poll_interval = 0.01

    def __init__(
        self, *, upcasters: Upcasters | None = None, protected_categories: Collection[str] = ()
    ) -> None:
        super().__init__(upcasters=upcasters, protected_categories=protected_categories)
        self._keys = MemoryKeyStore()
        self._log: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._ids: dict[uuid.UUID, RecordedEvent] = {}
        self._info: dict[str, StreamInfo] = {}
        self._appended = asyncio.Event()
        self._snapshots: dict[str, Snapshot] = {}

    async def close(self) -> None:
        return None

    async def _append(
        self, stream_id: str, events: list[NewEvent], expected: ExpectedVersion
    ) -> AppendResult:
        stream = self._streams.get(stream_id, [])
        info = self._info.get(stream_id)
        replay = self._recognise_retry(stream_id, events)
        if replay is not None:
            return replay
        actual = len(stream)
        if info is not None and info.deleted:
            raise StreamDeletedError(f"stream {stream_id!r} is deleted")
        if expected is STREAM_EXISTS:
            if actual == 0:
                raise ConcurrencyError(stream_id, expected, actual)
        elif not isinstance(expected, StreamState) and expected != actual:
            raise ConcurrencyError(stream_id, expected, actual)
        for event in events:
            if event.event_id in self._ids:
                raise InvalidEventError(f"event id {event.event_id} is already stored")
        encoded = [
            (encode_json(e.data, "data"), encode_json(e.metadata or {}, "metadata")) for e in events
        ]
        now = datetime.now(UTC)
        head = self._log[-1].position if self._log else 0
        recorded: list[RecordedEvent] = []
        for offset, (event, (data, metadata)) in enumerate(zip(events, encoded, strict=True)):
            recorded.append(
                RecordedEvent(
                    id=event.event_id,
                    stream_id=stream_id,
                    type=event.type,
                    # Round-trip through JSON so callers get the same values a database returns
                    # and cannot mutate what is stored.
                    data=json.loads(data),
                    metadata=json.loads(metadata),
                    version=actual + offset + 1,
                    position=head + offset + 1,
                    recorded_at=now,
                    schema_version=self.schema_version_for(event),
                )
            )
        self._log.extend(recorded)
        self._streams.setdefault(stream_id, []).extend(recorded)
        for r in recorded:
            self._ids[r.id] = r
        self._appended.set()
        self._appended = asyncio.Event()
        return AppendResult(recorded[-1].version, recorded[-1].position, tuple(recorded))

    def _recognise_retry(self, stream_id: str, events: list[NewEvent]) -> AppendResult | None:
        first = self._ids.get(events[0].event_id)
        if first is None or first.stream_id != stream_id:
            return None
        stream = self._streams[stream_id]
        for offset, event in enumerate(events):
            index = first.version - 1 + offset
            if index >= len(stream) or stream[index].id != event.event_id:
                raise InvalidEventError(
                    f"event id {event.event_id} is already stored at another place in "
                    f"{stream_id!r}; a retry must resend the same batch"
                )
        stored = stream[first.version - 1 : first.version - 1 + len(events)]
        return AppendResult(stored[-1].version, stored[-1].position, tuple(stored))

    async def _read_stream(
        self, stream_id: str, from_version: int, to_version: int | None, until: datetime | None
    ) -> list[RecordedEvent]:
        info = self._info.get(stream_id)
        if info is not None and info.deleted:
            return []
        lowest = from_version
        cutoff: datetime | None = None
        if info is not None:
            lowest = max(lowest, info.truncate_before)
            if info.max_age_seconds is not None:
                cutoff = datetime.now(UTC) - timedelta(seconds=info.max_age_seconds)
        return [
            e
            for e in self._streams.get(stream_id, [])
            if e.version >= lowest
            and (to_version is None or e.version <= to_version)
            and (until is None or e.recorded_at <= until)
            and (cutoff is None or e.recorded_at >= cutoff)
        ]

    async def _read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        # Positions are dense unless a restored log has holes: then look the start up.
        start = after if len(self._log) == await self.head_position() else None
        if start is None:
            start = bisect.bisect_right(self._log, after, key=lambda e: e.position)
        return self._log[start : start + limit]

    async def wait_for_append(self, after: int, timeout: float) -> None:
        if await self.head_position() > after:
            return
        await wait_set(self._appended, timeout)

    async def _read_event(self, event_id: uuid.UUID | str) -> RecordedEvent | None:
        return self._ids.get(event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(event_id))

    def key_store(self) -> KeyStore:
        return self._keys

    async def _streams_with_field_value(
        self, types_by_field: Mapping[str, Sequence[str]], value: str
    ) -> list[str]:
        return streams_with_field_value(self._log, types_by_field, value)

    def transfer(self) -> StoreTransfer:
        return _MemoryTransfer(self)

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        current = self._snapshots.get(snapshot.stream_id)
        if current is None or current.version <= snapshot.version:
            self._snapshots[snapshot.stream_id] = snapshot

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        return self._snapshots.get(stream_id)

    async def delete_snapshots(self, stream_id: str | None = None) -> int:
        if stream_id is None:
            count = len(self._snapshots)
            self._snapshots.clear()
            return count
        return 1 if self._snapshots.pop(stream_id, None) is not None else 0

    async def head_position(self) -> int:
        return self._log[-1].position if self._log else 0

    async def stream_version(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, []))

    async def stream_info(self, stream_id: str) -> StreamInfo:
        info = self._info.get(stream_id)
        version = await self.stream_version(stream_id)
        if info is None:
            return StreamInfo(stream_id=stream_id, version=version)
        return StreamInfo(
            stream_id=stream_id,
            version=version,
            deleted=info.deleted,
            truncate_before=info.truncate_before,
            max_age_seconds=info.max_age_seconds,
        )

    async def delete_stream(self, stream_id: str) -> None:
        info = await self.stream_info(stream_id)
        self._info[stream_id] = StreamInfo(
            stream_id=stream_id,
            version=info.version,
            deleted=True,
            truncate_before=info.truncate_before,
            max_age_seconds=info.max_age_seconds,
        )

    async def set_retention(
        self,
        stream_id: str,
        *,
        truncate_before: int | None = None,
        max_age_seconds: float | None = None,
    ) -> None:
        self.check_retention_allowed(stream_id)
        info = await self.stream_info(stream_id)
        self._info[stream_id] = StreamInfo(
            stream_id=stream_id,
            version=info.version,
            deleted=info.deleted,
            truncate_before=info.truncate_before if truncate_before is None else truncate_before,
            max_age_seconds=info.max_age_seconds if max_age_seconds is None else max_age_seconds,
        )


class _MemoryTransfer(StoreTransfer):
    where = "the memory store"

    def __init__(self, store: MemoryEventStore) -> None:
        self._store = store

    async def is_empty(self) -> bool:
        store = self._store
        return not (store._log or store._info or store._keys.records())

    async def count_events(self, up_to: int) -> int:
        return sum(1 for e in self._store._log if e.position <= up_to)

    async def subject_keys(self) -> list[SubjectKeyRecord]:
        return self._store._keys.records()

    async def stream_settings(self) -> list[StreamSettings]:
        return [
            StreamSettings(i.stream_id, i.deleted, i.truncate_before, i.max_age_seconds)
            for i in self._store._info.values()
        ]

    async def restore(
        self, state: StoreState, batches: AsyncIterable[Sequence[RecordedEvent]]
    ) -> int:
        store = self._store
        if not await self.is_empty():
            raise self.refusal()
        log: list[RecordedEvent] = []
        async for batch in batches:
            log.extend(batch)
        # Nothing is kept unless every batch arrived (one "transaction").
        ids = {e.id: e for e in log}
        if len(ids) != len(log):
            raise InvalidEventError("the export holds an event id twice")
        streams: dict[str, list[RecordedEvent]] = {}
        for e in log:
            stream = streams.setdefault(e.stream_id, [])
            if e.version != len(stream) + 1:
                raise InvalidEventError(f"stream {e.stream_id!r} skips to version {e.version}")
            stream.append(e)
        store._keys.load(state.subject_keys)
        store._log, store._streams, store._ids = log, streams, ids
        for s in state.streams:
            store._info[s.stream_id] = StreamInfo(
                s.stream_id, 0, s.deleted, s.truncate_before, s.max_age_seconds
            )
        return await store.head_position()

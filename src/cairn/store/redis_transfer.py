"""Export and import on the Redis event store (:mod:`cairn.store.transfer`).

The import reads every batch first (a file cut short raises before anything is sent), then
writes in ONE ``MULTI``/``EXEC`` transaction that ``WATCH``es the store's keys: an append or key
that slips in after the emptiness check aborts it, and nothing is written. Entries keep their
positions and versions as stream entry ids, so holes in an imported ``$all`` stay holes and the
head counter continues after the imported head.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, Sequence
from typing import Any

from redis.exceptions import WatchError

from cairn.errors import InvalidEventError
from cairn.store.base import RecordedEvent
from cairn.store.encoding import to_micros
from cairn.store.personal import SubjectKey
from cairn.store.redis_keys import RedisKeys, decode_key, encode_key, entry_text, reachable
from cairn.store.transfer import StoreState, StoreTransfer, StreamSettings, SubjectKeyRecord


def _checked(log: list[RecordedEvent]) -> None:
    """Refuse an export whose log cannot be stored as it is (before writing anything)."""
    if len({e.id for e in log}) != len(log):
        raise InvalidEventError("the export holds an event id twice")
    versions: dict[str, int] = {}
    for e in log:
        if e.version != versions.get(e.stream_id, 0) + 1:
            raise InvalidEventError(f"stream {e.stream_id!r} skips to version {e.version}")
        versions[e.stream_id] = e.version


class RedisTransfer(StoreTransfer):
    def __init__(self, client: Any, keys: RedisKeys, *, server: str) -> None:
        self.where = server  # names the store in reachable()'s and refusal()'s messages
        self._client = client
        self._keys = keys

    @reachable
    async def is_empty(self) -> bool:
        return int(await self._client.exists(*self._keys.every_fixed_key())) == 0

    @reachable
    async def count_events(self, up_to: int) -> int:
        head = int(await self._client.get(self._keys.head) or 0)
        if up_to >= head:
            return int(await self._client.xlen(self._keys.all))
        return len(await self._client.xrange(self._keys.all, "-", f"{up_to}-0"))

    @reachable
    async def subject_keys(self) -> list[SubjectKeyRecord]:
        stored = await self._client.hgetall(self._keys.subject_keys)
        records = []
        for key_id, text in stored.items():
            subject, key, created = decode_key(text)
            records.append(SubjectKeyRecord(uuid.UUID(key_id), subject, key, created))
        return sorted(records, key=lambda r: (r.created_at, str(r.key_id)))

    @reachable
    async def stream_settings(self) -> list[StreamSettings]:
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.deleted)
            pipe.hgetall(keys.truncate)
            pipe.hgetall(keys.max_age)
            deleted, truncate, max_age = await pipe.execute()
        return [
            StreamSettings(
                stream_id,
                stream_id in deleted,
                int(truncate.get(stream_id, 0)),
                float(max_age[stream_id]) if stream_id in max_age else None,
            )
            for stream_id in sorted({*deleted, *truncate, *max_age})
        ]

    @reachable
    async def restore(
        self, state: StoreState, batches: AsyncIterable[Sequence[RecordedEvent]]
    ) -> int:
        log: list[RecordedEvent] = []
        async for batch in batches:
            log.extend(batch)
        _checked(log)
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            await pipe.watch(*keys.every_fixed_key())
            if int(await pipe.exists(*keys.every_fixed_key())):
                raise self.refusal()
            pipe.multi()
            self._queue(pipe, state, log)
            try:
                await pipe.execute()
            except WatchError:
                raise self.refusal() from None
        return log[-1].position if log else 0

    def _queue(self, pipe: Any, state: StoreState, log: list[RecordedEvent]) -> None:
        keys = self._keys
        subjects: dict[str, list[str]] = {}
        for record in state.subject_keys:
            text = encode_key(
                SubjectKey(record.key_id, record.key), record.subject, to_micros(record.created_at)
            )
            pipe.hset(keys.subject_keys, str(record.key_id), text)
            subjects.setdefault(record.subject, []).append(str(record.key_id))
        for subject, key_ids in subjects.items():
            pipe.hset(keys.subjects, subject, " ".join(key_ids))
        for event in log:
            text = entry_text(event)
            pipe.xadd(keys.all, {"e": text}, id=f"{event.position}-0")
            pipe.xadd(keys.stream(event.stream_id), {"e": text}, id=f"{event.version}-0")
            pipe.hset(keys.ids, str(event.id), f"{event.version} {event.stream_id}")
        if log:
            pipe.set(keys.head, log[-1].position)
        for s in state.streams:
            if s.deleted:
                pipe.hset(keys.deleted, s.stream_id, 1)
            if s.truncate_before:
                pipe.hset(keys.truncate, s.stream_id, s.truncate_before)
            if s.max_age_seconds is not None:
                pipe.hset(keys.max_age, s.stream_id, repr(float(s.max_age_seconds)))

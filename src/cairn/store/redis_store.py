"""``redis://host:port/db``: the event store in Redis Streams (SPEC §18, seed 002).

Layout (:mod:`cairn.store.redis_keys`): every event is one entry of the ``$all`` stream (entry id
``<position>-0``) and one entry of its own stream's stream (``<version>-0``), both holding the
same JSON text. An append is ONE Lua script (:mod:`cairn.store.redis_scripts`): Redis runs it
with nothing in between, so the expected-version check, the idempotency check by event id, the
position counter and both XADDs are one atomic step. Positions are therefore taken and made
visible in the same order: ``$all`` is gap-free and a reader never passes an event that commits
later. ``subscribe`` waits with ``XREAD BLOCK`` on ``$all`` instead of polling.

Durability is Redis's: a Redis that keeps nothing on disk (no AOF, no RDB saving) loses every
event on restart, so opening one is refused unless the URL says ``?volatile=ok``. ``?prefix=``
names the keys' prefix (default ``cairn``), so several stores can share one Redis database.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Self

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from cairn.errors import (
    ConcurrencyError,
    InvalidEventError,
    StoreUnavailableError,
    StreamDeletedError,
)
from cairn.store.appended import recorded_as_sent
from cairn.store.base import (
    ANY,
    STREAM_EXISTS,
    AppendResult,
    EventStore,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
)
from cairn.store.encoding import decode_payloads, encode_json, from_micros, to_micros
from cairn.store.personal import KeyStore
from cairn.store.redis_keys import RedisKeys, decode_entries, json_string, reachable
from cairn.store.redis_scripts import APPEND, SAVE_SNAPSHOT
from cairn.store.redis_subject_keys import RedisKeyStore
from cairn.store.redis_transfer import RedisTransfer
from cairn.store.subject_streams import streams_with_field_value
from cairn.store.transfer import StoreTransfer
from cairn.store.upcasting import Upcasters
from cairn.store.urls import RedisTarget, redis_target

CONNECT_TIMEOUT: Final = 3.0
#: Events per ``XRANGE`` when a forget scans ``$all`` for a subject's streams.
_SCAN_PAGE: Final = 1000


def _where(target: RedisTarget) -> str:
    """The URL without credentials, for messages."""
    client_url = target.connection_url
    rest = client_url.split("://", 1)[1].rsplit("@", 1)[-1]
    return f"{client_url.split('://', 1)[0]}://{rest}"


async def _refuse_volatile(client: Any, where: str) -> None:
    """Refuse a Redis that would lose the log on restart (SPEC §18)."""
    advice = (
        "turn on persistence (appendonly yes, or RDB snapshots with save), or add "
        "?volatile=ok to the URL to accept losing every event when Redis restarts"
    )
    try:
        appendonly = (await client.config_get("appendonly")).get("appendonly", "")
        save = (await client.config_get("save")).get("save", "")
    except ResponseError as exc:
        raise StoreUnavailableError(
            f"cannot tell whether Redis at {where} has persistence (CONFIG GET refused: {exc}); "
            f"{advice}"
        ) from None
    if appendonly != "yes" and not save.strip():
        raise StoreUnavailableError(
            f"Redis at {where} has no persistence (no AOF, no RDB saving): an event store there "
            f"loses every event on restart; {advice}"
        )


class RedisEventStore(EventStore):
    poll_interval = 0.05

    def __init__(
        self,
        client: Any,
        keys: RedisKeys,
        *,
        where: str,
        upcasters: Upcasters | None = None,
        protected_categories: Collection[str] = (),
    ) -> None:
        super().__init__(upcasters=upcasters, protected_categories=protected_categories)
        self.where = where
        self.keys = keys
        self._client = client
        self._append_script = client.register_script(APPEND)
        self._save_snapshot = client.register_script(SAVE_SNAPSHOT)
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        upcasters: Upcasters | None = None,
        protected_categories: Collection[str] = (),
    ) -> Self:
        target = redis_target(url)
        where = _where(target)
        client = aioredis.Redis.from_url(
            target.connection_url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT,
            retry_on_timeout=False,
        )
        try:
            try:
                await client.ping()
            except (RedisError, OSError) as exc:
                raise StoreUnavailableError(f"Redis at {where} is unreachable: {exc}") from None
            if not target.volatile_ok:
                await _refuse_volatile(client, where)
        except BaseException:
            await client.aclose()
            raise
        return cls(
            client,
            RedisKeys(target.prefix),
            where=where,
            upcasters=upcasters,
            protected_categories=protected_categories,
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()

    # -- writing ------------------------------------------------------------------------------

    @reachable
    async def _append(
        self, stream_id: str, events: list[NewEvent], expected: ExpectedVersion
    ) -> AppendResult:
        # Encode before the script: a bad payload anywhere in the batch writes nothing.
        encoded = [
            (encode_json(e.data, "data"), encode_json(e.metadata or {}, "metadata")) for e in events
        ]
        versions = [self.schema_version_for(e) for e in events]
        now = to_micros(datetime.now(UTC))
        if expected is ANY:
            wanted = "any"
        elif expected is STREAM_EXISTS:
            wanted = "exists"
        else:
            wanted = str(expected)
        stream = json_string(stream_id)
        args: list[Any] = [wanted, now, stream_id, len(events)]
        for event, (data, metadata), schema_version in zip(events, encoded, versions, strict=True):
            event_id = str(event.event_id)
            args += (
                event_id,
                f'"{event_id}",{stream},{json_string(event.type)}',
                f"{schema_version},{data},{metadata}",
            )
        keys = self.keys
        reply = await self._append_script(
            keys=[keys.all, keys.stream(stream_id), keys.ids, keys.head, keys.deleted], args=args
        )
        outcome = reply[0]
        if outcome == "retry":
            return await self._recognise_retry(stream_id, events, reply[1])
        if outcome == "taken":
            raise InvalidEventError(f"event id {reply[1]} is already stored elsewhere")
        if outcome == "deleted":
            raise StreamDeletedError(f"stream {stream_id!r} is deleted")
        if outcome == "conflict":
            raise ConcurrencyError(stream_id, expected, int(reply[1]))
        version, position, count = int(reply[1]), int(reply[2]), len(events)
        return AppendResult(
            version,
            position,
            decode=lambda: recorded_as_sent(
                stream_id,
                events,
                decode_payloads(encoded),
                first_version=version - count + 1,
                positions=range(position - count + 1, position + 1),
                recorded_at=from_micros(now),
                schema_versions=versions,
            ),
        )

    async def _recognise_retry(
        self, stream_id: str, events: list[NewEvent], stored_at: str
    ) -> AppendResult:
        """The first id is stored: this is a retry of the same batch, or a mistake."""
        version_text, _, first_stream = stored_at.partition(" ")
        if first_stream != stream_id:
            raise InvalidEventError(
                f"event id {events[0].event_id} is already stored in another stream"
            )
        first = int(version_text)
        stored = decode_entries(
            await self._client.xrange(
                self.keys.stream(stream_id), f"{first}-0", f"{first + len(events) - 1}-0"
            )
        )
        if [r.id for r in stored] != [e.event_id for e in events]:
            raise InvalidEventError(
                f"event ids of this batch are already stored at other places in {stream_id!r}; "
                "a retry must resend the same batch"
            )
        return AppendResult(stored[-1].version, stored[-1].position, tuple(stored))

    # -- reading ------------------------------------------------------------------------------

    @reachable
    async def _read_stream(
        self, stream_id: str, from_version: int, to_version: int | None, until: datetime | None
    ) -> list[RecordedEvent]:
        keys = self.keys
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hexists(keys.deleted, stream_id)
            pipe.hget(keys.truncate, stream_id)
            pipe.hget(keys.max_age, stream_id)
            pipe.xrange(
                keys.stream(stream_id),
                f"{from_version}-0",
                "+" if to_version is None else f"{to_version}-0",
            )
            deleted, truncate, max_age, entries = await pipe.execute()
        if deleted:
            return []
        events = decode_entries(entries)
        lowest = int(truncate or 0)
        cutoff = None if max_age is None else datetime.now(UTC) - timedelta(seconds=float(max_age))
        return [
            e
            for e in events
            if e.version >= lowest
            and (until is None or e.recorded_at <= until)
            and (cutoff is None or e.recorded_at >= cutoff)
        ]

    @reachable
    async def _read_all(self, after: int, limit: int) -> list[RecordedEvent]:
        return decode_entries(await self._client.xrange(self.keys.all, f"{after + 1}", "+", limit))

    async def _streams_with_field_value(
        self, types_by_field: Mapping[str, Sequence[str]], value: str
    ) -> list[str]:
        """A scan of ``$all`` in pages: Redis has no index on payload fields, and a forget is
        rare enough that reading the log once beats a second copy of every subject's streams."""
        found: dict[str, None] = {}
        after = 0
        while page := await self._read_all(after, _SCAN_PAGE):
            found.update(dict.fromkeys(streams_with_field_value(page, types_by_field, value)))
            after = page[-1].position
        return list(found)

    @reachable
    async def wait_for_append(self, after: int, timeout: float) -> None:
        """``XREAD BLOCK`` on ``$all``: returns as soon as an entry beyond ``after`` exists."""
        await self._client.xread(
            {self.keys.all: f"{after}-0"}, count=1, block=max(1, int(timeout * 1000))
        )

    @reachable
    async def _read_event(self, event_id: Any) -> RecordedEvent | None:
        stored_at = await self._client.hget(self.keys.ids, str(event_id))
        if stored_at is None:
            return None
        version, _, stream_id = stored_at.partition(" ")
        entries = await self._client.xrange(
            self.keys.stream(stream_id), f"{version}-0", f"{version}-0"
        )
        return decode_entries(entries)[0] if entries else None

    def key_store(self) -> KeyStore:
        return RedisKeyStore(self._client, self.keys, where=self.where)

    def transfer(self) -> StoreTransfer:
        return RedisTransfer(self._client, self.keys, server=self.where)

    @reachable
    async def head_position(self) -> int:
        head = await self._client.get(self.keys.head)
        return int(head or 0)

    @reachable
    async def stream_version(self, stream_id: str) -> int:
        return int(await self._client.xlen(self.keys.stream(stream_id)))

    # -- snapshots ----------------------------------------------------------------------------

    @reachable
    async def save_snapshot(self, snapshot: Snapshot) -> None:
        state = encode_json(snapshot.state, "snapshot state")
        text = (
            f"[{snapshot.version},{json_string(snapshot.schema)},"
            f"{to_micros(snapshot.recorded_at)},{state}]"
        )
        keys = self.keys
        await self._save_snapshot(
            keys=[keys.snapshots, keys.snapshot_versions],
            args=[snapshot.stream_id, snapshot.version, text],
        )

    @reachable
    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        text = await self._client.hget(self.keys.snapshots, stream_id)
        if text is None:
            return None
        version, schema, recorded_at, state = json.loads(text)  # written by save_snapshot
        return Snapshot(stream_id, version, state, schema, from_micros(recorded_at))

    @reachable
    async def delete_snapshots(self, stream_id: str | None = None) -> int:
        keys = self.keys
        async with self._client.pipeline(transaction=True) as pipe:
            if stream_id is None:
                pipe.hlen(keys.snapshots)
                pipe.delete(keys.snapshots, keys.snapshot_versions)
            else:
                pipe.hdel(keys.snapshots, stream_id)
                pipe.hdel(keys.snapshot_versions, stream_id)
            count, _ = await pipe.execute()
        return int(count)

    # -- lifecycle of streams -----------------------------------------------------------------

    @reachable
    async def stream_info(self, stream_id: str) -> StreamInfo:
        keys = self.keys
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.xlen(keys.stream(stream_id))
            pipe.hexists(keys.deleted, stream_id)
            pipe.hget(keys.truncate, stream_id)
            pipe.hget(keys.max_age, stream_id)
            version, deleted, truncate, max_age = await pipe.execute()
        return StreamInfo(
            stream_id=stream_id,
            version=int(version),
            deleted=bool(deleted),
            truncate_before=int(truncate or 0),
            max_age_seconds=None if max_age is None else float(max_age),
        )

    @reachable
    async def delete_stream(self, stream_id: str) -> None:
        await self._client.hset(self.keys.deleted, stream_id, 1)

    @reachable
    async def set_retention(
        self,
        stream_id: str,
        *,
        truncate_before: int | None = None,
        max_age_seconds: float | None = None,
    ) -> None:
        self.check_retention_allowed(stream_id)
        async with self._client.pipeline(transaction=True) as pipe:
            if truncate_before is not None:
                pipe.hset(self.keys.truncate, stream_id, int(truncate_before))
            if max_age_seconds is not None:
                pipe.hset(self.keys.max_age, stream_id, repr(float(max_age_seconds)))
            await pipe.execute()

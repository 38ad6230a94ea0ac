"""Where the Redis event store keeps what (:mod:`cairn.store.redis_store`), and how an entry is
written: one module, so the store, its key store and its export/import agree.

Every key starts with ``{<prefix>}:``; the braces are a Redis Cluster hash tag, so all of one
store's keys live in one slot and a script may touch any of them. Positions and versions are the
stream entry ids (``<n>-0``): ``$all`` is read by id range, and a restored log keeps its holes.
"""

from __future__ import annotations

import base64
import functools
import json
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, Final, ParamSpec, Protocol, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from cairn.errors import StoreUnavailableError
from cairn.gc_tuning import paused_gc
from cairn.store.base import RecordedEvent, recorded_event
from cairn.store.encoding import EPOCH, from_micros, to_micros
from cairn.store.personal import SubjectKey

_loads = json.loads
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
#: A JSON string literal, non-ASCII kept (as the payload encoder writes it).
json_string: Final = json.encoder.encode_basestring


class _OnRedis(Protocol):
    #: The server, for messages (no credentials).
    where: str


S = TypeVar("S", bound=_OnRedis)
P = ParamSpec("P")
R = TypeVar("R")


def reachable(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """A lost or refused connection to Redis as :class:`StoreUnavailableError` naming the
    server, as the SQL backends report theirs (the API answers 503)."""

    @functools.wraps(method)
    async def call(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(self, *args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailableError(f"Redis at {self.where} is unreachable: {exc}") from None

    return call


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str

    def _key(self, name: str) -> str:
        return f"{{{self.prefix}}}:{name}"

    @property
    def all(self) -> str:
        """The ``$all`` stream: one entry per event, id ``<position>-0``."""
        return self._key("all")

    @property
    def head(self) -> str:
        """The last position taken (a counter the append script moves)."""
        return self._key("head")

    @property
    def ids(self) -> str:
        """Event id → ``"<version> <stream id>"``: idempotent appends and ``read_event``."""
        return self._key("ids")

    @property
    def deleted(self) -> str:
        return self._key("deleted")

    @property
    def truncate(self) -> str:
        return self._key("truncate")

    @property
    def max_age(self) -> str:
        return self._key("maxage")

    @property
    def snapshots(self) -> str:
        return self._key("snapshots")

    @property
    def snapshot_versions(self) -> str:
        return self._key("snapshot-versions")

    @property
    def subject_keys(self) -> str:
        return self._key("keys")

    @property
    def subjects(self) -> str:
        return self._key("subjects")

    def stream(self, stream_id: str) -> str:
        """One stream: its events again, id ``<version>-0``."""
        return self._key(f"s:{stream_id}")

    def every_fixed_key(self) -> tuple[str, ...]:
        """The keys that exist once per store (not per stream)."""
        return (
            self.all,
            self.head,
            self.ids,
            self.deleted,
            self.truncate,
            self.max_age,
            self.snapshots,
            self.snapshot_versions,
            self.subject_keys,
            self.subjects,
        )


def entry_text(event: RecordedEvent) -> str:
    """A recorded event as the append script writes it (export/import writes the same)."""
    head = f'"{event.id}",{json_string(event.stream_id)},{json_string(event.type)}'
    at = to_micros(event.recorded_at)
    tail = _ENCODER.encode([event.schema_version, event.data, event.metadata])[1:-1]
    return f"[{head},{event.version},{event.position},{at},{tail}]"


def decode_entries(entries: Sequence[tuple[Any, dict[str, str]]]) -> list[RecordedEvent]:
    """XRANGE replies → events; one ``json.loads`` for the whole batch."""
    if not entries:
        return []
    with paused_gc():
        rows = _loads("[" + ",".join([fields["e"] for _, fields in entries]) + "]")
        return [
            recorded_event(
                uuid.UUID(r[0]), r[1], r[2], r[7], r[8], r[3], r[4], from_micros(r[5]), r[6]
            )
            for r in rows
        ]


def encode_key(key: SubjectKey, subject: str, created_micros: int) -> str:
    return _ENCODER.encode([subject, base64.b64encode(key.key).decode("ascii"), created_micros])


def decode_key(text: str) -> tuple[str, bytes, Any]:
    """``(subject, key, created_at)`` of a stored subject key."""
    subject, key, created = _loads(text)
    return subject, base64.b64decode(key), EPOCH if created is None else from_micros(created)

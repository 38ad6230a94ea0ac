"""Export and import of a whole event store: the backup, restore and migration path (SPEC §16).

An export is JSON lines, one object per line, each with a ``kind``:

* ``header`` (first): ``format`` (``cairn-export``), ``format_version``, ``cairn_version``,
  ``source_backend``, ``exported_at``, ``head`` (the highest position exported), ``events``
  (how many), ``subject_keys`` and ``streams`` (how many of each follow);
* ``subject_key``: a crypto-shredding key (``key_id``, ``subject``, ``key`` in base64,
  ``created_at``). A forgotten subject has no key, so it has no line and stays forgotten;
* ``stream``: a stream's lifecycle settings (``deleted``, ``truncate_before``,
  ``max_age_seconds``), for streams that have any;
* ``event``, oldest first: ``id``, ``stream_id``, ``type``, ``version``, ``position``, ``data``
  and ``metadata`` exactly as stored (personal fields still sealed, payloads not upcast),
  ``recorded_at`` (ISO 8601, microseconds, UTC) and ``schema_version``;
* ``end`` (last): ``events`` again. A file without it was cut short and is refused.

Snapshots are not carried: they are an optimisation, and the target rebuilds them.

The import (:meth:`cairn.store.base.EventStore.restore`, one :class:`StoreTransfer` per
backend) loads such a file into an empty store in ONE transaction: positions, versions, ids,
``recorded_at``, metadata, sealed payloads and keys as they were, or nothing at all.
"""

from __future__ import annotations

import base64
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Final

from cairn.errors import ApplicationError, ConflictError
from cairn.store.base import RecordedEvent, recorded_event

if TYPE_CHECKING:
    from cairn.store.base import EventStore

FORMAT: Final = "cairn-export"
FORMAT_VERSION: Final = 1
#: Events per read while exporting, and per insert batch while importing.
BATCH: Final = 1000

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SubjectKeyRecord:
    """One row of the subject keys table (crypto-shredding), as stored."""

    key_id: uuid.UUID
    subject: str
    key: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """A stream's lifecycle settings (soft deletion, retention); its version is its events'."""

    stream_id: str
    deleted: bool = False
    truncate_before: int = 0
    max_age_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class StoreState:
    """What a restore needs besides the events."""

    subject_keys: Sequence[SubjectKeyRecord] = ()
    streams: Sequence[StreamSettings] = ()


class StoreTransfer(ABC):
    """A backend's side of export and import."""

    #: The store, for messages ("SQLite database /x.db").
    where: str = "the store"

    @abstractmethod
    async def is_empty(self) -> bool:
        """Whether the store holds no event, subject key or stream row."""

    def refusal(self) -> ConflictError:
        """The error for a restore into a store that is not empty."""
        return ConflictError(
            "store.not_empty",
            f"{self.where} is not empty: import only into a new, migrated store "
            "(nothing was written)",
        )

    @abstractmethod
    async def count_events(self, up_to: int) -> int:
        """How many events are stored at positions up to ``up_to``."""

    @abstractmethod
    async def subject_keys(self) -> list[SubjectKeyRecord]:
        """Every subject key that still exists."""

    @abstractmethod
    async def stream_settings(self) -> list[StreamSettings]:
        """The streams that have lifecycle settings (deleted, or with retention)."""

    @abstractmethod
    async def restore(
        self, state: StoreState, batches: AsyncIterable[Sequence[RecordedEvent]]
    ) -> int:
        """Load ``state`` and the events of ``batches`` (ascending positions) in one
        transaction, keeping every position, version, id and time; returns the head position.
        Refuses (:meth:`refusal`) a store that holds any event, key or stream row."""


# -- the file -------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def event_line(event: RecordedEvent) -> dict[str, Any]:
    return {
        "kind": "event",
        "id": str(event.id),
        "stream_id": event.stream_id,
        "type": event.type,
        "version": event.version,
        "position": event.position,
        "data": event.data,
        "metadata": event.metadata,
        "recorded_at": _iso(event.recorded_at),
        "schema_version": event.schema_version,
    }


def _dump(line: dict[str, Any]) -> str:
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass(slots=True)
class Summary:
    """What an export wrote or an import loaded."""

    events: int = 0
    head: int = 0
    subject_keys: int = 0
    streams: int = 0
    header: dict[str, Any] = field(default_factory=dict)


async def export_store(
    store: EventStore,
    out: IO[str],
    *,
    source_backend: str,
    cairn_version: str,
    on_start: Callable[[int], None] | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Write ``store`` to ``out`` as of now: every event up to the current head (events
    appended meanwhile are left for the next export), with the keys and stream settings read
    after the head was fixed, so every exported sealed field has its key unless forgotten."""
    transfer = store.transfer()
    head = await store.head_position()
    total = await transfer.count_events(head)
    keys = await transfer.subject_keys()
    streams = await transfer.stream_settings()
    header = {
        "kind": "header",
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "cairn_version": cairn_version,
        "source_backend": source_backend,
        "exported_at": _iso(datetime.now(UTC)),
        "head": head,
        "events": total,
        "subject_keys": len(keys),
        "streams": len(streams),
    }
    if on_start is not None:
        on_start(total)
    out.write(_dump(header))
    for k in keys:
        out.write(
            _dump(
                {
                    "kind": "subject_key",
                    "key_id": str(k.key_id),
                    "subject": k.subject,
                    "key": base64.b64encode(k.key).decode("ascii"),
                    "created_at": _iso(k.created_at),
                }
            )
        )
    for s in streams:
        out.write(
            _dump(
                {
                    "kind": "stream",
                    "stream_id": s.stream_id,
                    "deleted": s.deleted,
                    "truncate_before": s.truncate_before,
                    "max_age_seconds": s.max_age_seconds,
                }
            )
        )
    written = position = 0
    while position < head:
        stored = await store.read_stored(after=position, limit=BATCH)
        batch = [e for e in stored if e.position <= head]
        if not batch:
            raise ApplicationError(
                "export.incomplete", f"the log ended at position {position}, before {head}"
            )
        out.write("".join([_dump(event_line(e)) for e in batch]))
        written += len(batch)
        position = batch[-1].position
        if progress is not None:
            progress(written, total)
    out.write(_dump({"kind": "end", "events": written}))
    return Summary(written, head, len(keys), len(streams), header)


def _malformed(line_number: int, problem: str) -> ApplicationError:
    return ApplicationError("export.malformed", f"line {line_number}: {problem}")


def _parse(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, text in lines:
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _malformed(number, f"not JSON ({exc.msg})") from None
        if not isinstance(value, dict) or "kind" not in value:
            raise _malformed(number, "not an object with a 'kind'")
        yield number, value


def _event(number: int, line: dict[str, Any]) -> RecordedEvent:
    try:
        return recorded_event(
            uuid.UUID(line["id"]),
            str(line["stream_id"]),
            str(line["type"]),
            dict(line["data"]),
            dict(line["metadata"]),
            int(line["version"]),
            int(line["position"]),
            datetime.fromisoformat(line["recorded_at"]).astimezone(UTC),
            int(line["schema_version"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed(number, f"not an event ({type(exc).__name__}: {exc})") from None


def _key(number: int, line: dict[str, Any]) -> SubjectKeyRecord:
    try:
        return SubjectKeyRecord(
            uuid.UUID(line["key_id"]),
            str(line["subject"]),
            base64.b64decode(line["key"], validate=True),
            datetime.fromisoformat(line["created_at"]).astimezone(UTC),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed(number, f"not a subject key ({type(exc).__name__}: {exc})") from None


def _stream(number: int, line: dict[str, Any]) -> StreamSettings:
    try:
        age = line["max_age_seconds"]
        return StreamSettings(
            str(line["stream_id"]),
            bool(line["deleted"]),
            int(line["truncate_before"]),
            None if age is None else float(age),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _malformed(number, f"not a stream ({type(exc).__name__}: {exc})") from None


class ExportReader:
    """Reads an export: the header, keys and stream settings at once, then the events in
    batches (checked against the header and the ``end`` line as they stream by)."""

    def __init__(self, source: IO[str], *, batch_size: int = BATCH) -> None:
        self._lines = _parse(enumerate(source, start=1))
        self.batch_size = batch_size
        first = next(self._lines, None)
        if first is None or first[1].get("kind") != "header":
            raise _malformed(1, "no header: this is not a cairn export")
        self.header = first[1]
        if self.header.get("format") != FORMAT:
            raise _malformed(1, f"format {self.header.get('format')!r} is not {FORMAT!r}")
        if self.header.get("format_version") != FORMAT_VERSION:
            raise _malformed(
                1, f"format_version {self.header.get('format_version')!r} is not {FORMAT_VERSION}"
            )
        keys: list[SubjectKeyRecord] = []
        streams: list[StreamSettings] = []
        self._pending: tuple[int, dict[str, Any]] | None = None
        for number, line in self._lines:
            if line["kind"] == "subject_key":
                keys.append(_key(number, line))
            elif line["kind"] == "stream":
                streams.append(_stream(number, line))
            else:
                self._pending = (number, line)
                break
        self.state = StoreState(keys, streams)
        self.events_expected = int(self.header.get("events", 0))
        self.head = int(self.header.get("head", 0))

    async def batches(self, progress: Progress | None = None) -> AsyncIterator[list[RecordedEvent]]:
        """The events in batches; raises at the end if the file was cut short or does not
        match its header (the import's transaction then writes nothing)."""
        batch: list[RecordedEvent] = []
        loaded = previous = 0
        ended = False
        pending = [self._pending] if self._pending is not None else []
        for number, line in _chain(pending, self._lines):
            if ended:
                raise _malformed(number, "a line after the 'end' line")
            if line["kind"] == "end":
                ended = True
                if line.get("events") != loaded + len(batch):
                    raise _malformed(number, "the 'end' line counts other events than the file")
                continue
            if line["kind"] != "event":
                raise _malformed(number, f"unexpected {line['kind']!r} line among the events")
            event = _event(number, line)
            if event.position <= previous:
                raise _malformed(number, f"position {event.position} does not ascend")
            previous = event.position
            batch.append(event)
            if len(batch) >= self.batch_size:
                yield batch
                loaded += len(batch)
                batch = []
                if progress is not None:
                    progress(loaded, self.events_expected)
        if batch:
            yield batch
            loaded += len(batch)
            if progress is not None:
                progress(loaded, self.events_expected)
        if not ended:
            raise ApplicationError(
                "export.truncated", "the export has no 'end' line: it was cut short"
            )
        if loaded != self.events_expected or previous != self.head:
            raise ApplicationError(
                "export.malformed",
                f"the header promises {self.events_expected} events up to position {self.head}; "
                f"the file holds {loaded} up to {previous}",
            )


def _chain(
    first: list[tuple[int, dict[str, Any]]], rest: Iterator[tuple[int, dict[str, Any]]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    yield from first
    yield from rest

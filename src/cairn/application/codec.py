"""Between an application's event and state classes and the store's JSON records.

The toolkit's repositories need four things from an application's codec, and nothing else:
a stable type name and JSON for each event (and back), the schema version an event type is
written at, and JSON for aggregate states (snapshots) with a fingerprint of their shape, so
that a snapshot taken before the state classes changed is ignored rather than misread.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cairn.store.base import NewEvent, RecordedEvent


class AggregateCodec(Protocol):
    def encode_event(self, event: object) -> tuple[str, dict[str, Any]]:
        """The event's stable type name and its JSON payload."""

    def decode_event(self, name: str, data: Mapping[str, Any]) -> Any:
        """The event a stored (already upcast) payload holds."""

    def schema_version(self, name: str) -> int:
        """The version new events of type ``name`` are written at."""

    def encode_state(self, state: object) -> dict[str, Any]:
        """An aggregate state as JSON, for a snapshot."""

    def decode_state(self, union: Any, stored: Mapping[str, Any]) -> Any:
        """A snapshot's state back, as one of the classes of ``union``."""

    def schema_fingerprint(self, union: Any) -> str:
        """Changes whenever the shape of a state class in ``union`` changes."""


def to_new_events(
    codec: AggregateCodec,
    events: Sequence[object],
    ids: Sequence[uuid.UUID],
    metadata: Mapping[str, Any],
) -> list[NewEvent]:
    """Events as store records, with the given ids and their current schema versions."""
    out: list[NewEvent] = []
    for event, event_id in zip(events, ids, strict=True):
        name, data = codec.encode_event(event)
        out.append(
            NewEvent(
                name,
                data,
                metadata=dict(metadata),
                id=event_id,
                schema_version=codec.schema_version(name),
            )
        )
    return out


def from_recorded(codec: AggregateCodec, event: RecordedEvent) -> Any:
    """The event a (upcast) stored record holds."""
    return codec.decode_event(event.type, event.data)

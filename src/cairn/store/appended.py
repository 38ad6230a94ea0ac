"""An append's events as a later read returns them, built from what the backend stored instead
of reading them back (``AppendResult.events`` of the SQL and Redis backends)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cairn.store.base import NewEvent, RecordedEvent, recorded_event


def recorded_as_sent(
    stream_id: str,
    events: Sequence[NewEvent],
    payloads: Sequence[Sequence[Any]],
    *,
    first_version: int,
    positions: Sequence[int],
    recorded_at: datetime,
    schema_versions: Sequence[int],
) -> tuple[RecordedEvent, ...]:
    """An append's events as a later read returns them (``AppendResult.events``), built from
    each event's ``(data, metadata)`` as decoded from the JSON the backend stored, instead of
    reading them back."""
    return tuple(
        [
            recorded_event(e.event_id, stream_id, e.type, p[0], p[1], version, pos, recorded_at, v)
            for version, (e, p, pos, v) in enumerate(
                zip(events, payloads, positions, schema_versions, strict=True),
                start=first_version,
            )
        ]
    )

"""Finding a subject's streams by scanning events, for the backends with no query language over
payloads (memory, Redis); SQLite and PostgreSQL ask their own SQL
(``EventStore._streams_with_field_value``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cairn.store.base import RecordedEvent


def streams_with_field_value(
    events: Iterable[RecordedEvent], types_by_field: Mapping[str, Sequence[str]], value: str
) -> list[str]:
    """The streams of ``events`` with an event of a type in ``types_by_field[f]`` whose field
    ``f`` is ``value``, by their first such event: the scan of the backends that have no query
    language over payloads (memory, Redis)."""
    wanted = {t: field for field, types in types_by_field.items() for t in types}
    found: dict[str, None] = {}
    for event in events:
        field = wanted.get(event.type)
        if field is not None and event.data.get(field) == value:
            found.setdefault(event.stream_id)
    return list(found)

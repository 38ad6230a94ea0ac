"""Schema evolution by upcasting on read.

Each event type has a current schema version. Stored payloads of an older version pass through
one small function per step (v1→v2, v2→v3, …) every time they are read; the stored row is never
rewritten, so a bad upcaster can be fixed and the history re-read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cairn.errors import UpcastError

if TYPE_CHECKING:
    from cairn.store.base import RecordedEvent

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]


class Upcasters:
    """Registry of upcaster chains, keyed by event type and the version they upgrade from."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}
        self._current: dict[str, int] = {}

    def register(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: ``@upcasters.register("ItemAdded", 1)`` turns a v1 payload into v2."""

        def decorate(fn: Upcaster) -> Upcaster:
            self.add(event_type, from_version, fn)
            return fn

        return decorate

    def add(self, event_type: str, from_version: int, fn: Upcaster) -> None:
        if (event_type, from_version) in self._steps:
            raise ValueError(f"upcaster {event_type} v{from_version} registered twice")
        self._steps[(event_type, from_version)] = fn
        self._current[event_type] = max(self._current.get(event_type, 1), from_version + 1)

    def current_version(self, event_type: str) -> int:
        return self._current.get(event_type, 1)

    def upcast_all(self, events: list[RecordedEvent]) -> list[RecordedEvent]:
        """Upcast a batch. Only types with an upcaster can be behind (any other type's current
        version is 1, the lowest there is), so a store without upcasters returns the batch as
        it is and otherwise one dict lookup per event decides."""
        current = self._current
        if not current:
            return events
        return [
            event
            if (target := current.get(event.type)) is None or event.schema_version >= target
            else self.upcast(event)
            for event in events
        ]

    def upcast(self, event: RecordedEvent) -> RecordedEvent:
        target = self.current_version(event.type)
        if event.schema_version >= target:
            return event
        data = dict(event.data)
        version = event.schema_version
        while version < target:
            step = self._steps.get((event.type, version))
            if step is None:
                raise UpcastError(
                    f"no upcaster for {event.type} v{version} (current is v{target})",
                    event_type=event.type,
                    schema_version=version,
                )
            try:
                data = step(data)
            except Exception as exc:
                raise UpcastError(
                    f"upcasting {event.type} v{version} failed: {exc}",
                    event_type=event.type,
                    schema_version=version,
                ) from exc
            version += 1
        return dataclasses.replace(event, data=data, schema_version=version)

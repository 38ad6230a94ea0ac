"""``recorded_event``: the readers' fast way to build a ``RecordedEvent`` builds the same value."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from cairn.store.base import RecordedEvent, recorded_event


def fields() -> tuple[object, ...]:
    return (uuid4(), "order-1", "OrderPlaced", {"a": 1}, {"m": 2}, 3, 17, datetime.now(UTC), 2)


def test_builds_the_event_the_constructor_builds() -> None:
    values = fields()
    fast = recorded_event(*values)  # type: ignore[arg-type]
    assert type(fast) is RecordedEvent
    assert fast == RecordedEvent(*values)  # type: ignore[arg-type]
    assert dataclasses.astuple(fast) == values


def test_builds_an_event_that_cannot_be_changed() -> None:
    event = recorded_event(*fields())  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.version = 4  # type: ignore[misc]


def test_builds_an_event_that_replace_copies() -> None:
    event = recorded_event(*fields())  # type: ignore[arg-type]
    assert dataclasses.replace(event, data={"b": 2}).data == {"b": 2}

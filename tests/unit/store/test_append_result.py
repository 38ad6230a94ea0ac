"""``AppendResult``: a value that decodes its events on first use and cannot be changed."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from cairn.store.base import AppendResult, RecordedEvent


def recorded() -> tuple[RecordedEvent, ...]:
    return (RecordedEvent(uuid4(), "order-1", "A", {}, {}, 1, 7, datetime.now(UTC)),)


def test_events_are_decoded_once_on_first_use() -> None:
    calls: list[int] = []

    def decode() -> tuple[RecordedEvent, ...]:
        calls.append(1)
        return events

    events = recorded()
    result = AppendResult(1, 7, decode=decode)
    assert calls == []
    assert result.events == events
    assert result.events == events
    assert calls == [1]


def test_results_with_the_same_fields_are_equal() -> None:
    events = recorded()
    assert AppendResult(1, 7, events) == AppendResult(1, 7, decode=lambda: events)
    assert AppendResult(1, 7, events) != AppendResult(2, 7, events)


def test_a_result_cannot_be_changed() -> None:
    result = AppendResult(1, 7)
    with pytest.raises(AttributeError, match="immutable"):
        result.version = 2

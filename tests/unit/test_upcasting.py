"""Upcasting on read: chains of one-step functions, stored payloads never rewritten."""

import uuid
from datetime import UTC, datetime

import pytest

from cairn.errors import UpcastError
from cairn.store.base import RecordedEvent
from cairn.store.upcasting import Upcasters


def stored(type_: str, data: dict[str, object], schema_version: int) -> RecordedEvent:
    return RecordedEvent(
        id=uuid.uuid4(),
        stream_id="thing-1",
        type=type_,
        data=dict(data),
        metadata={},
        version=1,
        position=1,
        recorded_at=datetime.now(UTC),
        schema_version=schema_version,
    )


def chain() -> Upcasters:
    up = Upcasters()
    up.add("Renamed", 1, lambda d: {"full_name": d["name"]})
    up.add("Renamed", 2, lambda d: {**d, "nick": d["full_name"].split()[0]})
    return up


def test_a_v1_payload_passes_through_every_step_to_the_current_shape() -> None:
    event = chain().upcast(stored("Renamed", {"name": "Ada Lovelace"}, 1))
    assert event.data == {"full_name": "Ada Lovelace", "nick": "Ada"}
    assert event.schema_version == 3


def test_a_current_payload_is_returned_untouched() -> None:
    original = stored("Renamed", {"full_name": "A B", "nick": "A"}, 3)
    assert chain().upcast(original) is original


def test_the_stored_record_is_not_modified() -> None:
    original = stored("Renamed", {"name": "Ada Lovelace"}, 1)
    chain().upcast(original)
    assert original.data == {"name": "Ada Lovelace"}


def test_a_missing_step_is_an_explicit_error() -> None:
    up = Upcasters()
    up.add("Gap", 2, lambda d: d)
    with pytest.raises(UpcastError, match="no upcaster for Gap v1"):
        up.upcast(stored("Gap", {}, 1))


def test_registering_the_same_step_twice_is_refused() -> None:
    up = chain()
    with pytest.raises(ValueError, match="registered twice"):
        up.add("Renamed", 1, lambda d: d)

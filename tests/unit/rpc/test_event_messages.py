"""One stored event becomes one ``cairn.v1.Event`` message (SPEC §15): the REST fields, with
the payload and metadata as JSON text that reads back equal."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime

from cairn.rpc.event_store_service import event_message
from cairn.store.base import RecordedEvent

EVENT = RecordedEvent(
    id=uuid.UUID("5698f95f-5c5a-47ea-a2ff-a60f8bda07fe"),
    stream_id="order-1",
    type="OrderCreated",
    data={"customer_name": "Zoë", "items": [{"sku": "MUG-1", "quantity": 2}], "total": "25.00"},
    metadata={"correlation_id": "c-9", "user": "admin:1"},
    version=1,
    position=17,
    recorded_at=datetime(2026, 12, 4, 23, 0, 0, 123456, tzinfo=UTC),
    schema_version=2,
)


def test_an_event_message_carries_every_field_of_the_recorded_event() -> None:
    message = event_message(EVENT)
    assert (message.id, message.stream_id, message.type) == (
        str(EVENT.id),
        "order-1",
        "OrderCreated",
    )
    assert (message.version, message.position, message.schema_version) == (1, 17, 2)
    assert message.recorded_at == "2026-12-04T23:00:00.123456+00:00"
    assert json.loads(message.data_json) == EVENT.data
    assert json.loads(message.metadata_json) == EVENT.metadata


def test_non_ascii_text_is_kept_as_is_in_the_json() -> None:
    assert "Zoë" in event_message(EVENT).data_json


def test_integers_beyond_64_bits_are_encoded_too() -> None:
    big = dataclasses.replace(EVENT, data={"n": 2**70, "m": -(2**70)})
    assert json.loads(event_message(big).data_json) == {"n": 2**70, "m": -(2**70)}

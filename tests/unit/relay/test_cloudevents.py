"""A recorded event → CloudEvents 1.0 structured JSON (SPEC §6)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from cairn.relay.cloudevents import (
    OutgoingMessage,
    encode_cloudevent,
    routing_token,
    to_cloudevent,
)
from cairn.store.base import RecordedEvent

EVENT_ID = uuid.UUID("5f1c2b6e-0000-4000-8000-000000000001")


def recorded(**overrides: object) -> RecordedEvent:
    fields: dict[str, object] = {
        "id": EVENT_ID,
        "stream_id": "order-7f3a-42",
        "type": "OrderPlaced",
        "data": {"order_id": "7f3a-42", "total": "59.98"},
        "metadata": {"correlation_id": "corr-1", "causation_id": "cmd-1", "user": "ada"},
        "version": 3,
        "position": 17,
        "recorded_at": datetime(2026, 11, 26, 18, 30, 1, 123456, tzinfo=UTC),
    }
    fields.update(overrides)
    return RecordedEvent(**fields)  # type: ignore[arg-type]


def test_cloudevent_carries_every_spec_attribute() -> None:
    assert to_cloudevent(recorded()) == {
        "specversion": "1.0",
        "id": str(EVENT_ID),
        "source": "/cairn",
        "type": "OrderPlaced",
        "subject": "order-7f3a-42",
        "time": "2026-11-26T18:30:01.123456Z",
        "datacontenttype": "application/json",
        "data": {"order_id": "7f3a-42", "total": "59.98"},
        "position": 17,
        "streamversion": 3,
        "correlationid": "corr-1",
        "causationid": "cmd-1",
    }


def test_correlation_and_causation_are_left_out_when_unknown() -> None:
    ce = to_cloudevent(recorded(metadata={}))
    assert "correlationid" not in ce
    assert "causationid" not in ce


def test_position_and_streamversion_are_json_integers() -> None:
    body = json.loads(OutgoingMessage.from_event(recorded()).body)
    assert type(body["position"]) is int
    assert type(body["streamversion"]) is int


def test_message_id_is_the_event_id_and_routing_key_is_category_dot_type() -> None:
    message = OutgoingMessage.from_event(recorded())
    assert message.id == str(EVENT_ID)
    assert message.routing_key == "order.OrderPlaced"


def test_traceparent_from_metadata_becomes_a_header_and_an_extension() -> None:
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    message = OutgoingMessage.from_event(recorded(metadata={"traceparent": tp}))
    assert message.headers == {"traceparent": tp}
    assert json.loads(message.body)["traceparent"] == tp


def test_time_is_rendered_in_utc_whatever_the_offset_of_recorded_at() -> None:
    from datetime import timedelta, timezone

    paris = timezone(timedelta(hours=1))
    event = recorded(recorded_at=datetime(2026, 11, 26, 19, 30, 1, 0, tzinfo=paris))
    assert to_cloudevent(event)["time"] == "2026-11-26T18:30:01.000000Z"


def test_unsafe_characters_never_split_a_subject_token() -> None:
    assert routing_token("a.b c*>#") == "a_b_c___"
    assert routing_token("") == "_"


@pytest.mark.parametrize(
    "event",
    [
        recorded(),
        recorded(metadata={}),
        recorded(metadata={"traceparent": "00-ab-cd-01", "tracestate": "x=1", "user": "u"}),
        recorded(
            stream_id='order-"quoted"\\ü',
            type="Bestellung✓",
            data={"name": "Zoë 🚀", "n": [1, 2.5, None, True], "nested": {"a": {}}},
            metadata={"correlation_id": 42, "causation_id": "é"},
        ),
    ],
)
def test_the_fast_encoder_produces_exactly_the_cloudevent(event: RecordedEvent) -> None:
    assert json.loads(encode_cloudevent(event)) == to_cloudevent(event)
    assert json.loads(OutgoingMessage.from_event(event).body) == to_cloudevent(event)

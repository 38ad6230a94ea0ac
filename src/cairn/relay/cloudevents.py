"""A recorded event → one CloudEvents 1.0 message (structured JSON mode), SPEC §6.

Everything a broker adapter needs is computed here once, so the three adapters only differ in
how they put bytes on the wire: the JSON body, the de-duplication id, the routing suffix
``<category>.<type>`` and the headers that carry W3C trace context.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Final

from cairn.store.base import RecordedEvent, category_of

SPECVERSION: Final = "1.0"
SOURCE: Final = "/cairn"
DATA_CONTENT_TYPE: Final = "application/json"
#: The content type of a structured-mode CloudEvents message.
CONTENT_TYPE: Final = "application/cloudevents+json; charset=utf-8"

#: W3C trace-context keys copied from event metadata into message headers (and, as the
#: CloudEvents distributed-tracing extension, into the event itself).
TRACE_KEYS: Final = ("traceparent", "tracestate")

# One encoder, reused: ``json.dumps`` with non-default options builds a new one per call, which
# shows in the relay's per-event cost.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

_string: Final = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept
_CORRELATION: Final = (
    ("correlation_id", ',"correlationid":'),
    ("causation_id", ',"causationid":'),
)

# Characters that would split or wildcard a NATS subject / AMQP routing-key token.
_UNSAFE_TOKEN = re.compile(r"[\s.*>#]")


def routing_token(value: str) -> str:
    """``value`` made safe as one token of a subject or routing key (``_`` for unsafe chars)."""
    return _UNSAFE_TOKEN.sub("_", value) or "_"


@functools.lru_cache(maxsize=4096)
def routing_key(category: str, event_type: str) -> str:
    """``<category>.<type>`` with each part made safe (cached: a log has few distinct pairs)."""
    return f"{routing_token(category)}.{routing_token(event_type)}"


def rfc3339(event: RecordedEvent) -> str:
    """``recorded_at`` as RFC 3339 in UTC with a ``Z`` suffix."""
    moment = event.recorded_at
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # drop "+00:00"


def to_cloudevent(event: RecordedEvent) -> dict[str, Any]:
    """The CloudEvents attributes of ``event`` (its data already upcast by the store)."""
    ce: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": str(event.id),
        "source": SOURCE,
        "type": event.type,
        "subject": event.stream_id,
        "time": rfc3339(event),
        "datacontenttype": DATA_CONTENT_TYPE,
        "data": event.data,
        "position": event.position,
        "streamversion": event.version,
    }
    metadata = event.metadata
    for meta_key, attribute in (
        ("correlation_id", "correlationid"),
        ("causation_id", "causationid"),
    ):
        value = metadata.get(meta_key)
        if value is not None:
            ce[attribute] = str(value)
    for key in TRACE_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            ce[key] = value
    return ce


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One event, ready for any broker."""

    id: str
    position: int
    #: ``<category>.<type>``: appended to the topic (NATS) or used as the routing key (AMQP).
    routing_key: str
    body: bytes
    #: Trace-context headers (``traceparent``/``tracestate``) when the event carries them.
    headers: dict[str, str] = field(default_factory=dict)
    #: The event's stream id and type (Kafka's record key and ``ce_type`` header).
    stream_id: str = ""
    type: str = ""

    @classmethod
    def from_event(cls, event: RecordedEvent) -> OutgoingMessage:
        event_id = str(event.id)
        headers: dict[str, str] = {}
        metadata = event.metadata
        for key in TRACE_KEYS:
            value = metadata.get(key)
            if isinstance(value, str) and value:
                headers[key] = value
        return cls(
            id=event_id,
            position=event.position,
            routing_key=routing_key(category_of(event.stream_id), event.type),
            body=encode_cloudevent(event, event_id, headers),
            headers=headers,
            stream_id=event.stream_id,
            type=event.type,
        )


def encode_cloudevent(
    event: RecordedEvent, event_id: str | None = None, trace: dict[str, str] | None = None
) -> bytes:
    """``to_cloudevent(event)`` as compact JSON, assembled directly: the relay's hottest path,
    about twice as fast as building the dict and encoding it (the unit tests hold the two to
    the same result)."""
    parts = [
        '{"specversion":"1.0","id":"',
        event_id or str(event.id),
        '","source":"/cairn","type":',
        _string(event.type),
        ',"subject":',
        _string(event.stream_id),
        ',"time":"',
        rfc3339(event),
        '","datacontenttype":"application/json","data":',
        _ENCODER.encode(event.data),
        ',"position":',
        str(event.position),
        ',"streamversion":',
        str(event.version),
    ]
    metadata = event.metadata
    for meta_key, attribute in _CORRELATION:
        value = metadata.get(meta_key)
        if value is not None:
            parts += (attribute, _string(str(value)))
    if trace is None:
        trace = {k: v for k in TRACE_KEYS if isinstance(v := metadata.get(k), str) and v}
    for key, value in trace.items():
        parts += (f',"{key}":', _string(value))
    parts.append("}")
    return "".join(parts).encode()

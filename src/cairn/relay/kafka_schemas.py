"""JSON Schemas of the relay's messages, for a broker's schema registry (SPEC §18).

The envelope is the CloudEvent of SPEC §6; its ``data`` is checked against the payload schema of
the event's ``type`` when the application gives one, and is any JSON object otherwise (a type
added after the schemas were exported must not stop the relay). The application supplies the
payload schemas (the toolkit knows no domain); ``cairn schemas export`` writes them for the
order domain.

A topic schema (``<topic>.json``) is the layout of file-based registries such as Tansu's: an
object whose ``value`` property is the schema of the record value (the key, a plain stream id,
is not JSON and is left unchecked). Every schema here is self-contained (its ``$defs`` inside),
because such a registry compiles the ``value`` schema on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cairn.relay.cloudevents import DATA_CONTENT_TYPE, SOURCE, SPECVERSION, TRACE_KEYS

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def _hoisted(name: str, schema: Mapping[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its own ``$defs`` moved into ``defs`` (so one envelope can hold every
    payload), and its references rewritten to match."""
    inner = dict(schema)
    for key, value in inner.pop("$defs", {}).items():
        defs.setdefault(key, value)
    inner.pop("$schema", None)
    defs[name] = inner
    return {"$ref": f"#/$defs/{name}"}


def envelope_schema(payloads: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The CloudEvent JSON schema; ``payloads`` maps an event type to its payload schema."""
    defs: dict[str, Any] = {}
    checks = [
        {
            "if": {"properties": {"type": {"const": event_type}}, "required": ["type"]},
            "then": {"properties": {"data": _hoisted(event_type, schema, defs)}},
        }
        for event_type, schema in sorted((payloads or {}).items())
    ]
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "title": "CloudEvent",
        "description": "An event of the cairn log, as the relay publishes it (SPEC §6).",
        "type": "object",
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "data",
            "position",
            "streamversion",
        ],
        "properties": {
            "specversion": {"const": SPECVERSION},
            "id": {"type": "string", "format": "uuid"},
            "source": {"const": SOURCE},
            "type": {"type": "string", "minLength": 1},
            "subject": {"type": "string", "minLength": 1},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": DATA_CONTENT_TYPE},
            "data": {"type": "object"},
            "position": {"type": "integer", "minimum": 1},
            "streamversion": {"type": "integer", "minimum": 1},
            "correlationid": {"type": "string"},
            "causationid": {"type": "string"},
            **{key: {"type": "string"} for key in TRACE_KEYS},
        },
    }
    if checks:
        schema["allOf"] = checks
        schema["$defs"] = defs
    return schema


def topic_schema(topic: str, envelope: Mapping[str, Any]) -> dict[str, Any]:
    """``<topic>.json`` of a file-based registry: the record ``value`` is ``envelope``."""
    value = {k: v for k, v in envelope.items() if k != "$schema"}
    return {
        "$schema": DIALECT,
        "title": topic,
        "type": "object",
        "properties": {"value": value},
    }

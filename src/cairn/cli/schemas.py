"""``cairn schemas export DIR``: JSON Schemas of the order events and of the relay's messages.

Written, from the domain's event classes (pydantic builds each schema from the dataclass, as
the codec serialises it: decimals as strings, value objects as objects)::

    DIR/payloads/<EventType>.json     the payload of each event type, current schema version
    DIR/envelope/cloudevent.json      the CloudEvent the relay publishes (SPEC §6), its data
                                      checked per type
    DIR/<topic>.json                  the topic's schema for a file-based registry (Tansu's
                                      ``--schema-registry file://DIR``): value = the CloudEvent

A personal field may also read back as the redaction marker once its subject is forgotten, and
the schemas allow that.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

schemas_app = typer.Typer(help="JSON Schemas of the events, for a schema registry.")


def payload_schemas() -> dict[str, dict[str, Any]]:
    """Every order event type's payload schema (its current schema version)."""
    from pydantic import TypeAdapter

    from cairn.orders.domain.codec import EVENT_TYPES, PERSONAL_FIELDS, SCHEMA_VERSIONS
    from cairn.relay.kafka_schemas import DIALECT
    from cairn.store.personal import REDACTED

    out: dict[str, dict[str, Any]] = {}
    for name, cls in EVENT_TYPES.items():
        schema = TypeAdapter(cls).json_schema(mode="serialization")
        properties = schema.get("properties", {})
        for field in PERSONAL_FIELDS.get(name, ()):
            properties[field] = {"anyOf": [properties[field], {"const": REDACTED}]}
        out[name] = {
            "$schema": DIALECT,
            **schema,
            "title": name,
            "x-cairn-schema-version": SCHEMA_VERSIONS.get(name, 1),
        }
    return out


def _write(path: Path, schema: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_schemas(directory: Path, topic: str) -> list[Path]:
    """Write every schema under ``directory``; the files written."""
    from cairn.relay.kafka_schemas import envelope_schema, topic_schema

    payloads = payload_schemas()
    envelope = envelope_schema(payloads)
    files = {directory / "payloads" / f"{name}.json": s for name, s in sorted(payloads.items())}
    files[directory / "envelope" / "cloudevent.json"] = envelope
    files[directory / f"{topic}.json"] = topic_schema(topic, envelope)
    for path, schema in files.items():
        _write(path, schema)
    return list(files)


@schemas_app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(help="Where to write the schemas (created).")],
    topic: Annotated[
        str | None,
        typer.Option(help="The topic of <topic>.json (default: CAIRN_BROKER_TOPIC)."),
    ] = None,
) -> None:
    """Write the JSON Schema of every event type's payload, of the CloudEvents envelope, and
    of the relay's topic for a file-based schema registry (Tansu: --schema-registry)."""
    from cairn.settings import Settings

    chosen = topic or Settings().broker_topic
    if not chosen or "/" in chosen or chosen.startswith("."):
        typer.echo(f"error: {chosen!r} is not a topic name", err=True)
        raise typer.Exit(2)
    written = export_schemas(directory, chosen)
    typer.echo(f"{len(written)} schemas written to {directory} (topic {chosen})")

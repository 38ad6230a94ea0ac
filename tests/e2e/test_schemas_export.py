"""SPEC §18, ``cairn schemas export DIR``: JSON Schemas of every event type's payload and of the
CloudEvents envelope, generated from the domain's event classes; an order flow's messages pass
them (checked by a JSON Schema validator, and by Tansu's file-based schema registry, which then
refuses a malformed record)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from e2e_server import ADMIN, CAIRN, Server, cairn_env, wait_for
from order_flow import place_and_deliver

from cairn.orders.domain.codec import EVENT_TYPES
from cairn.store.personal import REDACTED
from tansu_broker import Tansu, start_tansu, stop_tansu, topic_records

TOPIC = "cairn.events"


def export(directory: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CAIRN, "schemas", "export", str(directory)],
        cwd=cwd,
        env=cairn_env("memory://"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load(path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


@pytest.fixture
def schemas(tmp_path: Path) -> Path:
    directory = tmp_path / "schemas"
    result = export(directory, tmp_path)
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture
def registry_tansu(schemas: Path, tmp_path: Path) -> Iterator[Tansu]:
    broker = start_tansu(tmp_path / "tansu.log", schema_registry=schemas)
    yield broker
    stop_tansu(broker)


def test_export_writes_a_payload_schema_per_event_type_the_envelope_and_the_topic(
    schemas: Path,
) -> None:
    assert sorted(p.stem for p in (schemas / "payloads").glob("*.json")) == sorted(EVENT_TYPES)
    item_added = load(schemas / "payloads" / "ItemAdded.json")
    assert item_added["x-cairn-schema-version"] == 2  # the current version, after upcasting
    assert item_added["properties"]["unit_price"]["type"] == "string"  # decimals as strings
    envelope = load(schemas / "envelope" / "cloudevent.json")
    jsonschema.Draft202012Validator.check_schema(envelope)
    assert {"specversion", "id", "type", "data", "position"} <= set(envelope["required"])
    assert load(schemas / f"{TOPIC}.json")["properties"]["value"]["title"] == "CloudEvent"


def test_a_forgotten_customers_redacted_fields_still_match(schemas: Path) -> None:
    payload = {
        "order_id": "o-1",
        "order_number": "ORD-1",
        "customer_id": "c-1",
        "customer_name": REDACTED,
        "customer_email": REDACTED,
        "currency": "EUR",
        "shipping_address": REDACTED,
    }
    jsonschema.validate(payload, load(schemas / "payloads" / "OrderCreated.json"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**payload, "shipping_address": 7}, load(schemas / "payloads" / "OrderCreated.json")
        )


def test_an_order_flows_messages_pass_the_registry_and_a_malformed_record_is_refused(
    schemas: Path, registry_tansu: Tansu, sqlite_url: str, tmp_path: Path
) -> None:
    server = Server(sqlite_url, tmp_path, CAIRN_BROKER_URL=registry_tansu.url)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            place_and_deliver(client)
            relay = client.get("/api/v1/admin/health", headers=ADMIN).json()["components"]["relay"]
            head = relay["position"] + relay["lag_events"]
            wait_for(
                client,
                "/api/v1/admin/health",
                lambda b: b["components"]["relay"].get("position", 0) >= head,
            )
    finally:
        assert server.stop() == 0, server.log()
    records = asyncio.run(topic_records(registry_tansu.bootstrap, TOPIC))
    events = [json.loads(r.value) for r in records]
    assert [e["position"] for e in events] == list(range(1, head + 1))
    envelope = jsonschema.Draft202012Validator(
        load(schemas / "envelope" / "cloudevent.json"),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    for event in events:
        envelope.validate(event)

    malformed = {**events[0], "data": {**events[0]["data"]}}
    del malformed["data"][next(iter(malformed["data"]))]
    assert list(envelope.iter_errors(malformed))
    assert asyncio.run(_produce(registry_tansu.bootstrap, malformed)) == "refused"
    assert asyncio.run(_produce(registry_tansu.bootstrap, events[0])) == "accepted"


async def _produce(bootstrap: str, value: dict[str, Any]) -> str:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=5000)
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, json.dumps(value).encode(), key=b"order-1")
    except KafkaError:
        return "refused"
    finally:
        await producer.stop()
    return "accepted"

"""One order, one trace, over the real OTLP/HTTP wire (SPEC §16): ``cairn serve`` exports to a
receiver in this process, and every span from the HTTP request to the relay's publish is in the
trace the client started."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_server import ADMIN, CUSTOMER_1, MUG, OPERATOR, Server, order_body, wait_for
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Receiver:
    """An OTLP/HTTP trace receiver: ``POST /v1/traces``, ``application/x-protobuf``."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self.content_types: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver.accept(self.headers.get("Content-Type", ""), body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def accept(self, content_type: str, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self._lock:
            self.content_types.add(content_type)
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                self.resources.append(resource)
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        self.spans.append(
                            {
                                "name": s.name,
                                "trace_id": s.trace_id.hex(),
                                "span_id": s.span_id.hex(),
                                "parent": s.parent_span_id.hex(),
                                "kind": s.kind,
                                "start": s.start_time_unix_nano,
                                "end": s.end_time_unix_nano,
                                "links": [link.trace_id.hex() for link in s.links],
                                "attributes": {
                                    a.key: a.value.string_value or a.value.int_value
                                    for a in s.attributes
                                },
                            }
                        )

    def in_trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]

    def linking_to(self, trace_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.spans if trace_id in s["links"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _print_trace(spans: list[dict[str, Any]]) -> None:
    """The trace as a tree, with each span's start (from the trace's first) and duration."""
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_parent.setdefault(s["parent"], []).append(s)
    ids = {s["span_id"] for s in spans}
    t0 = min(s["start"] for s in spans)

    def show(s: dict[str, Any], depth: int) -> None:
        start = (s["start"] - t0) / 1e6
        took = (s["end"] - s["start"]) / 1e6
        print(f"{start:9.2f} ms {took:8.2f} ms  {'  ' * depth}{s['name']}")
        for child in sorted(by_parent.get(s["span_id"], []), key=lambda c: c["start"]):
            show(child, depth + 1)

    for root in sorted((s for s in spans if s["parent"] not in ids), key=lambda s: s["start"]):
        show(root, 0)


def _confirmed_order_with_a_traceparent(server: Server) -> dict[str, Any]:
    """Create a product and an order, add an item, place it with the caller's ``traceparent``
    (trace :data:`TRACE_ID`), wait until it is confirmed; the order's stream."""
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        r = client.post("/api/v1/products", json=MUG, headers=OPERATOR)
        assert r.status_code == 201, r.text
        r = client.post("/api/v1/orders", json=order_body(items=[]), headers=CUSTOMER_1)
        assert r.status_code == 201, r.text
        oid = r.json()["order_id"]
        r = client.post(
            f"/api/v1/orders/{oid}/items", json={"sku": "MUG-1", "quantity": 2}, headers=CUSTOMER_1
        )
        assert r.status_code in (200, 201), r.text
        r = client.post(
            f"/api/v1/orders/{oid}/place",
            json={"payment_method": "tok_ok"},
            headers={**CUSTOMER_1, "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
        )
        assert r.status_code == 202, r.text
        wait_for(client, f"/api/v1/orders/{oid}", lambda o: o["status"] == "confirmed")
        stream: dict[str, Any] = client.get(
            f"/api/v1/admin/streams/order-{oid}", headers=ADMIN
        ).json()
        return stream


def _confirmation_traceparent(stream: dict[str, Any]) -> str:
    confirmed = [e for e in stream["events"] if e["type"] == "OrderConfirmed"]
    assert confirmed, stream
    return str(confirmed[0]["metadata"]["traceparent"])


def test_one_order_is_one_trace_from_the_request_to_the_broker(
    sqlite_url: str, nats_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    topic = f"cairn.trace{uuid.uuid4().hex[:8]}"
    server = Server(
        sqlite_url,
        tmp_path,
        CAIRN_BROKER_URL=nats_url,
        CAIRN_BROKER_TOPIC=topic,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_SERVICE_NAME="cairn-e2e",
    )
    try:
        stream = _confirmed_order_with_a_traceparent(server)
        assert _confirmation_traceparent(stream).startswith(f"00-{TRACE_ID}-")

        wanted = {
            "POST /api/v1/orders/{order_id}/place",
            "command PlaceOrder",
            "append order",
            "saga fulfilment reserve_stock",
            "saga fulfilment authorize_payment",
            "saga fulfilment create_shipment",
            "saga fulfilment confirm_order",
            "command ReserveStock",
            "command ConfirmOrder",
            f"publish {topic}",
        }
        deadline = time.monotonic() + 20
        names: set[str] = set()
        while time.monotonic() < deadline:
            names = {s["name"] for s in receiver.in_trace(TRACE_ID)}
            projected = "projection orders" in names or any(
                s["name"] == "projection orders" for s in receiver.linking_to(TRACE_ID)
            )
            if wanted <= names and projected:
                break
            time.sleep(0.2)
    finally:
        code = server.stop()
    spans = receiver.in_trace(TRACE_ID)
    _print_trace(spans)
    assert wanted <= names, f"missing {wanted - names}; got {sorted(names)}"
    assert projected, sorted(names)
    assert code == 0, server.log()
    assert receiver.content_types == {"application/x-protobuf"}
    assert {"service.name": "cairn-e2e"}.items() <= receiver.resources[0].items()
    assert receiver.resources[0]["service.version"]
    http = next(s for s in spans if s["name"].startswith("POST "))
    assert http["parent"] == CALLER_SPAN  # it continues the caller's span
    assert http["kind"] == 2  # SPAN_KIND_SERVER
    publish = next(s for s in spans if s["name"] == f"publish {topic}")
    assert publish["kind"] == 4  # SPAN_KIND_PRODUCER
    assert publish["attributes"]["messaging.system"] == "nats"
    assert publish["attributes"]["messaging.destination.name"] == topic


def test_without_an_exporter_saga_sent_events_still_carry_the_callers_trace(
    sqlite_url: str, tmp_path: Path
) -> None:
    server = Server(sqlite_url, tmp_path, OTEL_TRACES_EXPORTER="none")
    try:
        stream = _confirmed_order_with_a_traceparent(server)
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert _confirmation_traceparent(stream).startswith(f"00-{TRACE_ID}-")

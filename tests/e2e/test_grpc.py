"""gRPC (SPEC §15): a real ``cairn serve`` with ``CAIRN_GRPC_PORT``, driven by a client compiled
from ``proto/`` in the test (``grpc_client.py``): health, reflection, the order flow, status
codes, auth, ``ReadStream`` and ``SubscribeAll`` (catching up, then live).

One server per backend for the module; every test makes its own product and orders.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from e2e_server import ADMIN, MUG, Server, free_port
from grpc_client import Proto, Stub, bearer, cairn_code, compile_proto
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import cairn
from cairn.store.base import NewEvent

PG_ADMIN_URL = os.environ.get("CAIRN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TIMEOUT = 20.0
ADMIN_MD = bearer("adm")
OPERATOR_MD = bearer("ops")
C1_MD = bearer("c1")
C2_MD = bearer("c2")


@dataclass
class Grpc:
    proto: Proto
    channel: grpc.Channel
    orders: Stub
    events: Stub
    http: httpx.Client


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rpc(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grpc]:
    """``cairn serve`` with gRPC on a free port, and a client compiled from ``proto/``."""
    workdir = tmp_path_factory.mktemp("grpc")
    proto = compile_proto(tmp_path_factory.mktemp("client"))
    database = None
    if request.param == "sqlite":
        url = f"sqlite:///{workdir}/cairn.db"
    else:
        database = f"cairn_grpc_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{database}"
    grpc_port = free_port()
    server = Server(url, workdir, CAIRN_GRPC_PORT=str(grpc_port))
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        with httpx.Client(base_url=server.url, timeout=30.0) as http:
            yield Grpc(
                proto=proto,
                channel=channel,
                orders=Stub(channel, proto.orders, "Orders"),
                events=Stub(channel, proto.event_store, "EventStore"),
                http=http,
            )
    finally:
        channel.close()
        code = server.stop()
        if database is not None:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        assert code == 0, f"cairn serve exited with {code} on SIGTERM:\n{server.log()}"


# --- helpers ---------------------------------------------------------------------------------


def product(rpc: Grpc, stock: int = 50) -> str:
    """A new product over REST (the catalogue has no gRPC service); its SKU."""
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    body = {"sku": sku, "name": "Mug", "price": "12.50", "currency": "EUR", "initial_stock": stock}
    r = rpc.http.post("/api/v1/products", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return sku


def create_request(
    rpc: Grpc, sku: str, customer_id: str = "c-1", quantity: int = 2, **extra: Any
) -> Any:
    m = rpc.proto.orders
    return m.CreateOrderRequest(
        customer_id=customer_id,
        customer_name="Ada",
        customer_email="ada@example.com",
        currency="EUR",
        shipping_address=m.ShippingAddress(
            line1="1 Main St", city="Paris", postal_code="75001", country="FR"
        ),
        items=[m.OrderItem(sku=sku, quantity=quantity)] if sku else [],
        **extra,
    )


def create(rpc: Grpc, sku: str, metadata: Any = ADMIN_MD, **kwargs: Any) -> Any:
    return rpc.orders.CreateOrder(
        create_request(rpc, sku, **kwargs), metadata=metadata, timeout=TIMEOUT
    )


def refused(call: Any) -> grpc.RpcError:
    """The error ``call()`` ends with (it must fail)."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def read_stream(rpc: Grpc, stream_id: str, **fields: Any) -> list[Any]:
    request = rpc.proto.event_store.ReadStreamRequest(stream_id=stream_id, **fields)
    return list(rpc.events.ReadStream(request, metadata=ADMIN_MD, timeout=TIMEOUT))


# --- health and reflection -------------------------------------------------------------------


def test_health_says_serving_for_the_server_and_each_cairn_service(rpc: Grpc) -> None:
    health = health_pb2_grpc.HealthStub(rpc.channel)
    for service in ("", "cairn.v1.Orders", "cairn.v1.EventStore"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service


def test_reflection_lists_the_cairn_services_health_and_reflection(rpc: Grpc) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(rpc.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (answer,) = list(reflection.ServerReflectionInfo(iter([request]), timeout=TIMEOUT))
    names = {s.name for s in answer.list_services_response.service}
    assert {
        "cairn.v1.Orders",
        "cairn.v1.EventStore",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


def test_reflection_serves_the_proto_files_of_the_cairn_services(rpc: Grpc) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(rpc.channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="cairn.v1.Orders")
    (answer,) = list(reflection.ServerReflectionInfo(iter([request]), timeout=TIMEOUT))
    files = answer.file_descriptor_response.file_descriptor_proto
    assert files, answer
    assert rpc.proto.orders.DESCRIPTOR.serialized_pb in files


# --- the order flow --------------------------------------------------------------------------


def test_an_order_is_created_filled_placed_and_read_back(rpc: Grpc) -> None:
    sku = product(rpc)
    m = rpc.proto.orders
    created = create(rpc, sku)
    assert created.order_number.startswith("ORD-")
    assert (created.version, created.position > 0) == (2, True)
    added = rpc.orders.AddItem(
        m.AddItemRequest(order_id=created.order_id, sku=sku, quantity=1),
        metadata=ADMIN_MD,
        timeout=TIMEOUT,
    )
    assert (added.order_id, added.version) == (created.order_id, 3)
    assert added.position > created.position
    placed = rpc.orders.PlaceOrder(
        m.PlaceOrderRequest(order_id=created.order_id, payment_method="tok_ok"),
        metadata=ADMIN_MD,
        timeout=TIMEOUT,
    )
    assert placed.version == 4
    order = rpc.orders.GetOrder(
        m.GetOrderRequest(order_id=created.order_id, min_position=placed.position),
        metadata=ADMIN_MD,
        timeout=TIMEOUT,
    )
    assert order.order_id == created.order_id
    assert order.order_number == created.order_number
    assert order.customer_id == "c-1"
    assert order.status in ("placed", "confirmed")
    assert order.version >= placed.version
    assert [(i.sku, i.quantity, i.unit_price, i.line_total) for i in order.items] == [
        (sku, 3, "12.50", "37.50")
    ]
    assert (order.total, order.currency) == ("37.50", "EUR")


def test_the_order_read_over_grpc_is_the_one_rest_answers(rpc: Grpc) -> None:
    created = create(rpc, product(rpc))
    m = rpc.proto.orders
    order = rpc.orders.GetOrder(
        m.GetOrderRequest(order_id=created.order_id, min_position=created.position),
        metadata=ADMIN_MD,
        timeout=TIMEOUT,
    )
    rest = rpc.http.get(
        f"/api/v1/orders/{created.order_id}",
        params={"min_position": created.position},
        headers=ADMIN,
    ).json()
    for field in ("order_id", "order_number", "customer_id", "status", "currency", "total"):
        assert getattr(order, field) == rest[field], field
    assert (order.version, order.created_at) == (rest["version"], rest["created_at"])


def test_a_draft_order_is_cancelled_with_its_reason(rpc: Grpc) -> None:
    created = create(rpc, product(rpc))
    m = rpc.proto.orders
    cancelled = rpc.orders.CancelOrder(
        m.CancelOrderRequest(order_id=created.order_id, reason="changed my mind"),
        metadata=ADMIN_MD,
        timeout=TIMEOUT,
    )
    order = rpc.orders.GetOrder(
        m.GetOrderRequest(order_id=created.order_id, min_position=cancelled.position),
        metadata=ADMIN_MD,
        timeout=TIMEOUT,
    )
    assert (order.status, order.cancellation_reason) == ("cancelled", "changed my mind")


# --- status codes ----------------------------------------------------------------------------


def test_bad_input_is_invalid_argument_naming_the_field_and_writes_nothing(rpc: Grpc) -> None:
    order_id = str(uuid.uuid4())
    error = refused(lambda: create(rpc, product(rpc), quantity=0, order_id=order_id))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert cairn_code(error) == "app.validation"
    assert "quantity" in (error.details() or "")
    assert read_stream(rpc, f"order-{order_id}") == []


def test_a_control_character_is_invalid_argument(rpc: Grpc) -> None:
    error = refused(lambda: create(rpc, product(rpc), customer_id="c-\x00"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert cairn_code(error) == "request.control_character"


def test_a_command_a_business_rule_refuses_is_failed_precondition(rpc: Grpc) -> None:
    created = create(rpc, "")  # no items: an empty order cannot be placed
    m = rpc.proto.orders
    error = refused(
        lambda: rpc.orders.PlaceOrder(
            m.PlaceOrderRequest(order_id=created.order_id), metadata=ADMIN_MD, timeout=TIMEOUT
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert cairn_code(error) == "order.empty"


def test_an_order_that_does_not_exist_is_not_found(rpc: Grpc) -> None:
    m = rpc.proto.orders
    missing = str(uuid.uuid4())
    error = refused(
        lambda: rpc.orders.GetOrder(
            m.GetOrderRequest(order_id=missing), metadata=ADMIN_MD, timeout=TIMEOUT
        )
    )
    assert (error.code(), cairn_code(error)) == (grpc.StatusCode.NOT_FOUND, "order.not_found")
    error = refused(
        lambda: rpc.orders.PlaceOrder(
            m.PlaceOrderRequest(order_id=missing), metadata=ADMIN_MD, timeout=TIMEOUT
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_a_stale_expected_version_is_aborted_and_writes_nothing(rpc: Grpc) -> None:
    sku = product(rpc)
    created = create(rpc, sku)
    m = rpc.proto.orders
    error = refused(
        lambda: rpc.orders.AddItem(
            m.AddItemRequest(order_id=created.order_id, sku=sku, quantity=1, expected_version=1),
            metadata=ADMIN_MD,
            timeout=TIMEOUT,
        )
    )
    assert (error.code(), cairn_code(error)) == (grpc.StatusCode.ABORTED, "store.concurrency")
    assert len(read_stream(rpc, f"order-{created.order_id}")) == created.version


# --- idempotency keys ------------------------------------------------------------------------


def test_a_create_retried_with_its_idempotency_key_answers_the_first_and_writes_once(
    rpc: Grpc,
) -> None:
    request = create_request(rpc, product(rpc))
    metadata = (*ADMIN_MD, ("idempotency-key", f"k-{uuid.uuid4()}"))
    first, first_call = rpc.orders.CreateOrder.with_call(
        request, metadata=metadata, timeout=TIMEOUT
    )
    retry, retry_call = rpc.orders.CreateOrder.with_call(
        request, metadata=metadata, timeout=TIMEOUT
    )
    assert retry == first
    assert ("idempotent-replayed", "true") in tuple(retry_call.trailing_metadata())
    assert ("idempotent-replayed", "true") not in tuple(first_call.trailing_metadata())
    assert len(read_stream(rpc, f"order-{first.order_id}")) == first.version


def test_an_idempotency_key_reused_for_another_request_is_invalid_argument(rpc: Grpc) -> None:
    sku = product(rpc)
    metadata = (*ADMIN_MD, ("idempotency-key", f"k-{uuid.uuid4()}"))
    create(rpc, sku, metadata=metadata)
    error = refused(lambda: create(rpc, sku, metadata=metadata, quantity=3))
    assert (error.code(), cairn_code(error)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "app.idempotency_key_reused",
    )


# --- auth ------------------------------------------------------------------------------------


def test_a_call_without_a_token_is_unauthenticated(rpc: Grpc) -> None:
    m = rpc.proto.orders
    error = refused(lambda: rpc.orders.GetOrder(m.GetOrderRequest(order_id="x"), timeout=TIMEOUT))
    assert (error.code(), cairn_code(error)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "auth.missing_token",
    )


def test_a_call_with_an_unknown_token_is_unauthenticated(rpc: Grpc) -> None:
    error = refused(lambda: create(rpc, product(rpc), metadata=bearer("nope")))
    assert (error.code(), cairn_code(error)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "auth.invalid_token",
    )


def test_a_customer_creates_orders_only_for_itself(rpc: Grpc) -> None:
    sku = product(rpc)
    assert create(rpc, sku, metadata=C1_MD, customer_id="c-1").order_id
    error = refused(lambda: create(rpc, sku, metadata=C1_MD, customer_id="c-2"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_another_customers_order_is_not_found_for_reads_and_commands(rpc: Grpc) -> None:
    sku = product(rpc)
    created = create(rpc, sku, metadata=C1_MD, customer_id="c-1")
    m = rpc.proto.orders
    own = rpc.orders.GetOrder(
        m.GetOrderRequest(order_id=created.order_id, min_position=created.position),
        metadata=C1_MD,
        timeout=TIMEOUT,
    )
    assert own.customer_id == "c-1"
    calls = {
        "GetOrder": m.GetOrderRequest(order_id=created.order_id, min_position=created.position),
        "AddItem": m.AddItemRequest(order_id=created.order_id, sku=sku, quantity=1),
        "PlaceOrder": m.PlaceOrderRequest(order_id=created.order_id),
        "CancelOrder": m.CancelOrderRequest(order_id=created.order_id),
    }
    for name, request in calls.items():
        method = getattr(rpc.orders, name)
        error = refused(lambda: method(request, metadata=C2_MD, timeout=TIMEOUT))  # noqa: B023
        assert error.code() == grpc.StatusCode.NOT_FOUND, name
    assert len(read_stream(rpc, f"order-{created.order_id}")) == created.version


@pytest.mark.parametrize("metadata", [OPERATOR_MD, C1_MD], ids=["operator", "customer"])
def test_the_event_store_is_for_admins_only(rpc: Grpc, metadata: Any) -> None:
    es = rpc.proto.event_store
    for call in (
        lambda: list(
            rpc.events.ReadStream(
                es.ReadStreamRequest(stream_id="order-x"), metadata=metadata, timeout=TIMEOUT
            )
        ),
        lambda: next(
            rpc.events.SubscribeAll(es.SubscribeAllRequest(), metadata=metadata, timeout=TIMEOUT)
        ),
    ):
        error = refused(call)
        assert (error.code(), cairn_code(error)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "auth.forbidden",
        )


# --- ReadStream ------------------------------------------------------------------------------


def test_read_stream_streams_one_event_per_message_oldest_first(rpc: Grpc) -> None:
    sku = product(rpc)
    created = create(rpc, sku)
    events = read_stream(rpc, f"order-{created.order_id}")
    assert [(e.version, e.type) for e in events] == [(1, "OrderCreated"), (2, "ItemAdded")]
    first = events[0]
    assert first.stream_id == f"order-{created.order_id}"
    assert uuid.UUID(first.id)
    assert json.loads(first.data_json)["customer_id"] == "c-1"
    assert json.loads(first.metadata_json)["user"] == "admin:1"
    assert first.recorded_at.endswith("+00:00")
    assert events[-1].position == created.position
    assert events[0].position < events[1].position


def test_read_stream_from_a_version_starts_there(rpc: Grpc) -> None:
    created = create(rpc, product(rpc))
    events = read_stream(rpc, f"order-{created.order_id}", from_version=2)
    assert [e.version for e in events] == [2]


def test_read_stream_of_a_stream_that_does_not_exist_streams_nothing(rpc: Grpc) -> None:
    assert read_stream(rpc, f"order-{uuid.uuid4()}") == []


# --- SubscribeAll ----------------------------------------------------------------------------


def _follow(call: Any, into: queue.Queue[Any]) -> None:
    try:
        for event in call:
            into.put(event)
    except grpc.RpcError as exc:  # cancelled at the end of the test
        into.put(exc)


def _take_until(events: queue.Queue[Any], stream_id: str, version: int) -> list[Any]:
    """Events from ``events`` up to ``stream_id`` reaching ``version``."""
    seen: list[Any] = []
    while True:
        event = events.get(timeout=TIMEOUT)
        assert not isinstance(event, grpc.RpcError), event
        seen.append(event)
        if event.stream_id == stream_id and event.version == version:
            return seen


def test_subscribe_all_catches_up_from_after_then_streams_live_events(rpc: Grpc) -> None:
    sku = product(rpc)
    before = create(rpc, sku)  # in the log before the subscription starts
    es = rpc.proto.event_store
    start = before.position - 1  # just before its ItemAdded: OrderCreated is not streamed
    call = rpc.events.SubscribeAll(
        es.SubscribeAllRequest(after=start), metadata=ADMIN_MD, timeout=60
    )
    events: queue.Queue[Any] = queue.Queue()
    follower = threading.Thread(target=_follow, args=(call, events), daemon=True)
    follower.start()
    try:
        caught_up = _take_until(events, f"order-{before.order_id}", 2)
        assert [(e.type, e.position) for e in caught_up[:1]] == [("ItemAdded", before.position)]
        live = create(rpc, sku)  # appended while the subscription waits
        streamed = caught_up + _take_until(events, f"order-{live.order_id}", 2)
    finally:
        call.cancel()
        follower.join(timeout=TIMEOUT)
    positions = [e.position for e in streamed]
    assert positions == sorted(set(positions))
    assert positions[0] == start + 1
    mine = [(e.stream_id, e.type) for e in streamed if e.stream_id == f"order-{live.order_id}"]
    assert mine == [
        (f"order-{live.order_id}", "OrderCreated"),
        (f"order-{live.order_id}", "ItemAdded"),
    ]


def test_subscribe_all_without_after_starts_at_the_first_event(rpc: Grpc) -> None:
    es = rpc.proto.event_store
    call = rpc.events.SubscribeAll(es.SubscribeAllRequest(), metadata=ADMIN_MD, timeout=TIMEOUT)
    try:
        first = next(call)
    finally:
        call.cancel()
    assert first.position == 1


# --- metrics ---------------------------------------------------------------------------------


def test_calls_are_counted_by_method_and_status_code_in_the_metrics(rpc: Grpc) -> None:
    created = create(rpc, product(rpc))
    m = rpc.proto.orders
    refused(
        lambda: rpc.orders.GetOrder(
            m.GetOrderRequest(order_id=str(uuid.uuid4())), metadata=ADMIN_MD, timeout=TIMEOUT
        )
    )
    assert read_stream(rpc, f"order-{created.order_id}")
    text = rpc.http.get("/metrics", headers=ADMIN).text
    for method, code in (
        ("cairn.v1.Orders/CreateOrder", "OK"),
        ("cairn.v1.Orders/GetOrder", "NOT_FOUND"),
        ("cairn.v1.EventStore/ReadStream", "OK"),
    ):
        assert f'cairn_grpc_requests_total{{code="{code}",method="{method}"}}' in text, method
    assert 'cairn_grpc_request_duration_seconds_count{method="cairn.v1.Orders/CreateOrder"}' in text


# --- limits ----------------------------------------------------------------------------------


def test_calls_beyond_the_configured_bound_are_resource_exhausted(tmp_path: Path) -> None:
    proto = compile_proto(tmp_path / "client")
    port = free_port()
    server = Server(
        f"sqlite:///{tmp_path}/cairn.db",
        tmp_path,
        CAIRN_GRPC_PORT=str(port),
        CAIRN_GRPC_MAX_CONCURRENT_CALLS="2",
    )
    calls: list[Any] = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            events = Stub(channel, proto.event_store, "EventStore")
            request = proto.event_store.SubscribeAllRequest()
            for _ in range(2):  # two live subscriptions hold both places
                call = events.SubscribeAll(request, metadata=ADMIN_MD, timeout=60)
                calls.append(call)
                r = httpx.post(
                    f"{server.url}/api/v1/products",
                    json={**MUG, "sku": f"SKU-{uuid.uuid4().hex[:8]}"},
                    headers=ADMIN,
                    timeout=30,
                )
                assert r.status_code == 201, r.text
                assert next(call).type == "ProductRegistered"  # it is streaming
            error = refused(lambda: read_stream_with(events, proto, "order-x"))
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            calls.pop().cancel()
            time.sleep(0.5)  # the server sees the cancellation
            assert read_stream_with(events, proto, "order-x") == []
    finally:
        for call in calls:
            call.cancel()
        assert server.stop() == 0, server.log()


def read_stream_with(events: Stub, proto: Proto, stream_id: str) -> list[Any]:
    request = proto.event_store.ReadStreamRequest(stream_id=stream_id)
    return list(events.ReadStream(request, metadata=ADMIN_MD, timeout=TIMEOUT))


# --- database outage -------------------------------------------------------------------------


def _connections_to(database: str, allowed: bool) -> None:
    """Let clients connect to ``database`` (this test's own) or not, cutting the present ones."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


def test_calls_are_unavailable_while_the_database_is_down_and_work_again_after(
    tmp_path: Path, pg_url: str
) -> None:
    database = pg_url.rsplit("/", 1)[1]
    proto = compile_proto(tmp_path / "client")
    port = free_port()
    server = Server(pg_url, tmp_path, CAIRN_GRPC_PORT=str(port))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            events = Stub(channel, proto.event_store, "EventStore")
            r = httpx.post(f"{server.url}/api/v1/products", json=MUG, headers=ADMIN, timeout=30)
            assert r.status_code == 201, r.text
            _connections_to(database, allowed=False)
            try:
                error = refused(lambda: read_stream_with(events, proto, "inventory-MUG-1"))
                assert (error.code(), cairn_code(error)) == (
                    grpc.StatusCode.UNAVAILABLE,
                    "store.unavailable",
                )
            finally:
                _connections_to(database, allowed=True)
            deadline = time.monotonic() + 30
            while True:  # the pool reconnects by itself
                try:
                    assert len(read_stream_with(events, proto, "inventory-MUG-1")) == 2
                    break
                except grpc.RpcError:
                    assert time.monotonic() < deadline, "still unavailable 30 s after"
                    time.sleep(0.5)
    finally:
        assert server.stop() == 0, server.log()


# --- flow control ----------------------------------------------------------------------------


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def _fill(database_url: str, events: int) -> None:
    async with cairn.open_store(database_url) as store:
        for batch in range(events // 500):
            payload = {"batch": batch, "text": "x" * 200}
            await store.append(
                f"bulk-{batch}", [NewEvent("BulkAdded", payload) for _ in range(500)]
            )


def test_a_slow_subscriber_does_not_make_the_server_buffer_the_log(
    tmp_path: Path, pg_url: str
) -> None:
    """60,000 events (about 30 MB as messages) wait for a client that reads one and stops:
    the server produces only what gRPC's flow control lets through, so its memory stays put."""
    asyncio.run(_fill(pg_url, 60_000))
    proto = compile_proto(tmp_path / "client")
    port = free_port()
    server = Server(pg_url, tmp_path, args=("--no-workers",), CAIRN_GRPC_PORT=str(port))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            events = Stub(channel, proto.event_store, "EventStore")
            assert len(read_stream_with(events, proto, "bulk-0")) == 500  # warm
            before = _rss_mb(server.proc.pid)
            call = events.SubscribeAll(
                proto.event_store.SubscribeAllRequest(), metadata=ADMIN_MD, timeout=120
            )
            assert next(call).position == 1
            time.sleep(3)  # the client reads nothing more
            grown = _rss_mb(server.proc.pid) - before
            assert grown < 15, f"the server grew by {grown:.0f} MB for one slow client"
            received = 1
            for event in call:  # the rest still comes, in order
                received += 1
                assert event.position == received
                if received == 60_000:
                    break
            call.cancel()
    finally:
        assert server.stop() == 0, server.log()


# --- stopping --------------------------------------------------------------------------------


def test_a_live_subscription_does_not_keep_the_server_from_stopping(tmp_path: Path) -> None:
    proto = compile_proto(tmp_path / "client")
    port = free_port()
    server = Server(f"sqlite:///{tmp_path}/cairn.db", tmp_path, CAIRN_GRPC_PORT=str(port))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            events = Stub(channel, proto.event_store, "EventStore")
            call = events.SubscribeAll(
                proto.event_store.SubscribeAllRequest(), metadata=ADMIN_MD, timeout=60
            )
            received: queue.Queue[Any] = queue.Queue()
            follower = threading.Thread(target=_follow, args=(call, received), daemon=True)
            follower.start()
            r = httpx.post(f"{server.url}/api/v1/products", json=MUG, headers=ADMIN, timeout=30)
            assert r.status_code == 201, r.text
            assert received.get(timeout=TIMEOUT).type == "ProductRegistered"
            started = time.monotonic()
            assert server.stop(timeout=30) == 0, server.log()
            assert time.monotonic() - started < 15
            follower.join(timeout=TIMEOUT)
            ended = [received.get_nowait() for _ in range(received.qsize())]
            assert isinstance(ended[-1], grpc.RpcError), ended
    finally:
        server.stop()

"""gRPC under ``cairn serve --only`` (SPEC §15, seed 004's service shape): a process serves
only the gRPC methods of its roles, as it serves only their REST routes. The others answer
``UNIMPLEMENTED`` (a method this server does not have: REST's 404) and write nothing; a service
with no method served is absent from reflection and health. Real processes on one SQLite file:
a command service and a query service, each with gRPC on its own port. A taken gRPC port
stops ``cairn serve`` with one line, not a traceback."""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from e2e_server import ADMIN, CAIRN, MUG, Server, cairn_env, free_port
from grpc_client import Proto, Stub, bearer, compile_proto
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

TIMEOUT = 20.0
ADMIN_MD = bearer("adm")


@dataclass
class Listener:
    server: Server
    channel: grpc.Channel
    orders: Stub
    events: Stub


def _listener(url: str, workdir: Path, proto: Proto, *args: str) -> Listener:
    port = free_port()
    server = Server(url, workdir, args=args, CAIRN_GRPC_PORT=str(port))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
    except BaseException:
        channel.close()
        server.stop()
        raise
    return Listener(
        server,
        channel,
        Stub(channel, proto.orders, "Orders"),
        Stub(channel, proto.event_store, "EventStore"),
    )


@dataclass
class Layout:
    proto: Proto
    command: Listener
    query: Listener


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    workdir = tmp_path_factory.mktemp("grpc-roles")
    proto = compile_proto(tmp_path_factory.mktemp("client"))
    url = f"sqlite:///{workdir}/cairn.db"
    listeners: list[Listener] = []
    try:
        listeners.append(_listener(url, workdir, proto, "--only", "command"))
        listeners.append(_listener(url, workdir, proto, "--only", "query", "--no-workers"))
        yield Layout(proto, *listeners)
    finally:
        for listener in listeners:
            listener.channel.close()
            assert listener.server.stop() == 0, listener.server.log()


def _create_request(proto: Proto, sku: str) -> object:
    m = proto.orders
    return m.CreateOrderRequest(
        customer_id="c-1",
        customer_name="Ada",
        customer_email="ada@example.com",
        currency="EUR",
        shipping_address=m.ShippingAddress(
            line1="1 Main St", city="Paris", postal_code="75001", country="FR"
        ),
        items=[m.OrderItem(sku=sku, quantity=1)],
    )


def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    code: grpc.StatusCode = info.value.code()
    return code


def _a_product(layout: Layout) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    r = httpx.post(
        f"{layout.command.server.url}/api/v1/products",
        json={**MUG, "sku": sku},
        headers=ADMIN,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return sku


def test_the_command_service_creates_orders_and_does_not_read_them(layout: Layout) -> None:
    created = layout.command.orders.CreateOrder(
        _create_request(layout.proto, _a_product(layout)), metadata=ADMIN_MD, timeout=TIMEOUT
    )
    assert created.version == 2
    get = layout.proto.orders.GetOrderRequest(order_id=created.order_id)
    assert (
        _code(lambda: layout.command.orders.GetOrder(get, metadata=ADMIN_MD, timeout=TIMEOUT))
        == grpc.StatusCode.UNIMPLEMENTED
    )


def test_the_query_service_reads_orders_and_refuses_commands_without_writing(
    layout: Layout,
) -> None:
    created = layout.command.orders.CreateOrder(
        _create_request(layout.proto, _a_product(layout)), metadata=ADMIN_MD, timeout=TIMEOUT
    )
    m = layout.proto.orders
    order = layout.query.orders.GetOrder(
        m.GetOrderRequest(order_id=created.order_id, min_position=created.position),
        metadata=ADMIN_MD,
        timeout=TIMEOUT,
    )
    assert order.order_id == created.order_id
    place = m.PlaceOrderRequest(order_id=created.order_id, payment_method="tok_ok")
    assert (
        _code(lambda: layout.query.orders.PlaceOrder(place, metadata=ADMIN_MD, timeout=TIMEOUT))
        == grpc.StatusCode.UNIMPLEMENTED
    )
    again = layout.query.orders.GetOrder(
        m.GetOrderRequest(order_id=created.order_id), metadata=ADMIN_MD, timeout=TIMEOUT
    )
    assert (again.status, again.version) == ("draft", created.version)


def test_the_event_store_service_is_the_admin_apis(layout: Layout) -> None:
    request = layout.proto.event_store.ReadStreamRequest(stream_id="order-x")
    for listener in (layout.command, layout.query):
        assert (
            _code(
                lambda events=listener.events: list(
                    events.ReadStream(request, metadata=ADMIN_MD, timeout=TIMEOUT)
                )
            )
            == grpc.StatusCode.UNIMPLEMENTED
        )


def test_a_service_with_nothing_served_is_absent_from_reflection_and_health(
    layout: Layout,
) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(layout.query.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (answer,) = list(reflection.ServerReflectionInfo(iter([request]), timeout=TIMEOUT))
    names = {s.name for s in answer.list_services_response.service}
    assert "cairn.v1.Orders" in names
    assert "cairn.v1.EventStore" not in names
    health = health_pb2_grpc.HealthStub(layout.query.channel)
    serving = health.Check(
        health_pb2.HealthCheckRequest(service="cairn.v1.Orders"), timeout=TIMEOUT
    )
    assert serving.status == health_pb2.HealthCheckResponse.SERVING
    missing = health_pb2.HealthCheckRequest(service="cairn.v1.EventStore")
    assert _code(lambda: health.Check(missing, timeout=TIMEOUT)) == grpc.StatusCode.NOT_FOUND


def test_a_taken_grpc_port_stops_serve_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [CAIRN, "serve", "--port", str(free_port())],
            cwd=tmp_path,
            env=cairn_env(f"sqlite:///{tmp_path}/cairn.db", CAIRN_GRPC_PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert f"cannot listen on 127.0.0.1:{port} for gRPC (CAIRN_GRPC_PORT)" in last
    assert last.endswith("[app.port_unavailable]")
    assert "Traceback" not in r.stdout + r.stderr

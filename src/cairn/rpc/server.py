"""The gRPC server of one ``cairn serve`` process (``CAIRN_GRPC_PORT``): grpcio's asyncio
server in the same event loop and over the same :class:`~cairn.api.runtime.Runtime` as the HTTP
app (one store, one command bus, one set of read models and workers), started and stopped by the
app's lifespan.

It serves ``cairn.v1.Orders`` and ``cairn.v1.EventStore`` (``proto/cairn/v1``), the standard
health service ``grpc.health.v1.Health`` (``SERVING`` for the server, ``""``, and each service
while it runs; ``NOT_SERVING`` once it is stopping) and server reflection, so that tools such as
``grpcurl`` need no ``.proto`` file.

With ``cairn serve --only`` it serves only the methods of those roles
(:func:`cairn.api.service_roles.grpc_method_role`); the others answer ``UNIMPLEMENTED``, as a
method the server does not have (REST's 404), and a service none of whose methods is served is
not registered at all (absent from reflection and health).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cairn.api.runtime import Runtime
from cairn.api.service_roles import ALL_ROLES, ServiceRole, grpc_method_role
from cairn.observability.logging import get_logger
from cairn.rpc.event_store_service import EventStoreService
from cairn.rpc.orders_service import OrdersService
from cairn.v1 import event_store_pb2, event_store_pb2_grpc, orders_pb2, orders_pb2_grpc

_log = get_logger("cairn.rpc")

#: Seconds in-flight calls get to finish when the server stops (live subscriptions are cut).
STOP_GRACE: Final = 5.0
#: Largest request message accepted (a CreateOrder has at most 100 items).
MAX_RECEIVE_BYTES: Final = 1_048_576


class _ServedRoles(grpc.aio.ServerInterceptor):
    """Answers ``UNIMPLEMENTED`` for the methods of roles this process does not serve (grpcio
    does so when an interceptor finds no handler)."""

    def __init__(self, roles: Collection[ServiceRole]) -> None:
        self.roles = frozenset(roles)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        role = grpc_method_role(handler_call_details.method)
        if role is not None and role not in self.roles:
            return None
        return await continuation(handler_call_details)


def _served(service: str, methods: Collection[str], roles: Collection[ServiceRole]) -> bool:
    """Whether any of ``service``'s ``methods`` is of ``roles``."""
    return any(grpc_method_role(f"/{service}/{m}") in roles for m in methods)


@dataclass
class GrpcServer:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    #: The port it listens on (the one asked for, or the one the system chose for port 0).
    port: int

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Say ``NOT_SERVING``, then stop: new calls are refused, calls in flight get ``grace``
        seconds, live ``SubscribeAll`` streams are then cancelled."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        _log.info("grpc_stopped", port=self.port)


async def start_grpc_server(
    runtime: Runtime, host: str, port: int, roles: Collection[ServiceRole] = ALL_ROLES
) -> GrpcServer:
    """Listen on ``host:port`` (plaintext HTTP/2; put TLS in front, as for HTTP), with at most
    ``CAIRN_GRPC_MAX_CONCURRENT_CALLS`` calls in progress (one more: RESOURCE_EXHAUSTED).
    ``roles``: the services of ``cairn serve --only`` (see the module docstring)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            # A port another process listens on is an error, not shared with it (grpcio's
            # default on Linux), which would split the calls between two servers.
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=runtime.settings.grpc_max_concurrent_calls,
        interceptors=[] if set(roles) >= ALL_ROLES else [_ServedRoles(roles)],
    )
    services: list[str] = []
    for descriptor, add in (
        (orders_pb2.DESCRIPTOR.services_by_name["Orders"], _add_orders),
        (event_store_pb2.DESCRIPTOR.services_by_name["EventStore"], _add_event_store),
    ):
        if _served(descriptor.full_name, [m.name for m in descriptor.methods], roles):
            add(runtime, server)
            services.append(descriptor.full_name)
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection((*services, health_name, reflection.SERVICE_NAME), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as exc:  # grpcio's "Failed to bind to address"
        raise OSError(f"gRPC could not listen on {host}:{port}") from exc
    await server.start()
    for name in ("", *services):
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    _log.info("grpc_listening", host=host, port=bound, services=services)
    return GrpcServer(server=server, health=checks, port=bound)


def _add_orders(runtime: Runtime, server: grpc.aio.Server) -> None:
    orders_pb2_grpc.add_OrdersServicer_to_server(OrdersService(runtime), server)


def _add_event_store(runtime: Runtime, server: grpc.aio.Server) -> None:
    event_store_pb2_grpc.add_EventStoreServicer_to_server(EventStoreService(runtime), server)

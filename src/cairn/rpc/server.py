"""The gRPC server of one ``cairn serve`` process (``CAIRN_GRPC_PORT``): grpcio's asyncio
server in the same event loop and over the same :class:`~cairn.api.runtime.Runtime` as the HTTP
app (one store, one command bus, one set of read models and workers), started and stopped by the
app's lifespan.

It serves ``cairn.v1.Orders`` and ``cairn.v1.EventStore`` (``proto/cairn/v1``), the standard
health service ``grpc.health.v1.Health`` (``SERVING`` for the server, ``""``, and each service
while it runs; ``NOT_SERVING`` once it is stopping) and server reflection, so that tools such as
``grpcurl`` need no ``.proto`` file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cairn.api.runtime import Runtime
from cairn.observability.logging import get_logger
from cairn.rpc.event_store_service import EventStoreService
from cairn.rpc.orders_service import OrdersService
from cairn.v1 import event_store_pb2, event_store_pb2_grpc, orders_pb2, orders_pb2_grpc

_log = get_logger("cairn.rpc")

#: The application's services, by their full names.
SERVICES: Final = (
    orders_pb2.DESCRIPTOR.services_by_name["Orders"].full_name,
    event_store_pb2.DESCRIPTOR.services_by_name["EventStore"].full_name,
)
#: Seconds in-flight calls get to finish when the server stops (live subscriptions are cut).
STOP_GRACE: Final = 5.0
#: Largest request message accepted (a CreateOrder has at most 100 items).
MAX_RECEIVE_BYTES: Final = 1_048_576


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


async def start_grpc_server(runtime: Runtime, host: str, port: int) -> GrpcServer:
    """Listen on ``host:port`` (plaintext HTTP/2; put TLS in front, as for HTTP), with at most
    ``CAIRN_GRPC_MAX_CONCURRENT_CALLS`` calls in progress (one more: RESOURCE_EXHAUSTED)."""
    server = grpc.aio.server(
        options=[("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)],
        maximum_concurrent_rpcs=runtime.settings.grpc_max_concurrent_calls,
    )
    orders_pb2_grpc.add_OrdersServicer_to_server(OrdersService(runtime), server)
    event_store_pb2_grpc.add_EventStoreServicer_to_server(EventStoreService(runtime), server)
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    reflection.enable_server_reflection((*SERVICES, health_name, reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"gRPC could not listen on {host}:{port}")
    await server.start()
    for name in ("", *SERVICES):
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    _log.info("grpc_listening", host=host, port=bound, services=list(SERVICES))
    return GrpcServer(server=server, health=checks, port=bound)

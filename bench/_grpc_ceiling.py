"""grpcio's own ceiling for ``bench/grpc.py``: an asyncio gRPC server whose SubscribeAll streams
pre-built ``Event`` messages, no store and no encoding, so the catch-up figure of ``cairn serve``
can be read against what the transport alone allows on the same machine at the same time.

    python -m bench._grpc_ceiling PORT EVENTS     (started and stopped by bench/grpc.py)
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc

from cairn.v1 import event_store_pb2, event_store_pb2_grpc


def prebuilt(events: int) -> list[event_store_pb2.Event]:
    """``events`` messages shaped like the benchmark's (same sizes), positions 1..events."""
    order_id = str(uuid.uuid4())
    data = (
        f'{{"order_id":"{order_id}","sku":"SKU-1","name":"Bench mug","quantity":2,'
        '"unit_price":"12.50"}'
    )
    metadata = f'{{"correlation_id":"{order_id}","user":"bench","batch":1}}'
    return [
        event_store_pb2.Event(
            id=str(uuid.uuid4()),
            stream_id=f"bench-{order_id}",
            type="BenchItemAdded",
            version=1 + i % 100,
            position=i + 1,
            data_json=data,
            metadata_json=metadata,
            recorded_at="2026-01-01T00:00:00.000000+00:00",
            schema_version=1,
        )
        for i in range(events)
    ]


class Ceiling(event_store_pb2_grpc.EventStoreServicer):
    def __init__(self, messages: list[event_store_pb2.Event]) -> None:
        self.messages = messages

    async def ReadStream(
        self, request: event_store_pb2.ReadStreamRequest, context: Any
    ) -> AsyncIterator[event_store_pb2.Event]:
        for message in self.messages:
            yield message

    async def SubscribeAll(
        self, request: event_store_pb2.SubscribeAllRequest, context: Any
    ) -> AsyncIterator[event_store_pb2.Event]:
        for message in self.messages:
            yield message


async def serve(port: int, events: int) -> None:
    server = grpc.aio.server()
    event_store_pb2_grpc.add_EventStoreServicer_to_server(Ceiling(prebuilt(events)), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
